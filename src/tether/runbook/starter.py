"""The runbook ``tether init`` writes: the commented example, or one agent of the kind a user names.

A kind's file (``kinds/KIND.yaml``) holds only its ``agents:`` section, commented for that kind (how it
starts, its prompt or task queue, autostart, its tokens, its scope); the host and the shared defaults
come from ``example.yaml``, so there is one place to change them. ``{python}`` and ``{tether}`` are filled
in with this installation's interpreter and command, so the written file runs as it is.
"""

from __future__ import annotations

import json
import shlex
import sys
from importlib.resources import files
from pathlib import Path
from typing import TYPE_CHECKING

from tether.runbook.load import from_text

if TYPE_CHECKING:
    from tether.runbook.load import LoadedRunbook

#: The agent ``tether explain`` judges for when there is no runbook: the default table, this folder its scope.
DEFAULT_AGENT = "any-agent"

#: ``tether init --agent`` choices; ``sdk`` is a ``kind: python`` agent written against ``tether.Agent``.
KINDS = ("claude-code", "codex", "sdk", "command")


def _read(name: str) -> str:
    return files("tether.runbook").joinpath(name).read_text(encoding="utf-8")


def tether_command() -> str:
    """How an agent reaches this installation's ``tether`` (beside the interpreter, as pip/pipx/uv put it)."""
    exe = Path(sys.executable).with_name("tether")
    return shlex.quote(str(exe)) if exe.is_file() else "tether"


def runbook_text(kind: str | None = None) -> str:
    """The example runbook, or the host part of it with one commented agent of ``kind``."""
    example = _read("example.yaml")
    if kind is None:
        return example
    if kind not in KINDS:
        raise ValueError(f"unknown agent kind {kind!r}")
    head, _, _ = example.partition("\nagents:\n")
    agents = _read(f"kinds/{kind}.yaml")
    return head + "\n" + agents.replace("{python}", json.dumps(sys.executable)).replace("{tether}", tether_command())


def default_runbook(folder: Path) -> LoadedRunbook:
    """No runbook here: one agent working in ``folder`` (its scope) under the default policy table, so
    ``tether explain`` answers before anyone has written a runbook."""
    where = json.dumps(str(folder))
    person = '{name: you, contact: "mailto://you@example.com"}'
    text = (
        f"version: 1\nagents:\n  {DEFAULT_AGENT}:\n    owner: {person}\n    backup: {person}\n"
        f'    command: ["true"]\n    cwd: {where}\n    scope: {{folders: [{where}]}}\n'
    )
    return from_text(text, folder / "(no runbook)")
