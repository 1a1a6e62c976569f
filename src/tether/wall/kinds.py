"""What each kind of agent needs inside its wall beyond its scope: the caches and the CLI's own folders it
writes in its private HOME, the settings there it may only read, and the programs it runs that live where
its user cannot reach them.

The private HOME (``STATE/agents/NAME/home``) is read-only inside; only the folders its kind declares
(``NEEDS``) are writable: package caches (npm, pip, uv) for every kind, plus the agent CLI's own config and
state folder (``~/.claude``, ``~/.codex``, ``~/.openclaw``). The hook settings in those folders are bound
read-only over themselves, so an agent cannot switch its hooks off from inside.

``runtime``: the host trees a walled agent must read to work, which its user may not be able to reach (a
``pyenv`` Python under ``/root``, an npm install under ``/root/.cache``): tether's own interpreter and
package (Codex's command hook, Claude Code's SessionStart hook and ``tether exec`` run them inside), and
the agent CLI's install (its ``node_modules``, the interpreter its ``#!`` line names). The wall binds each
read-only at its own path; a folder above it that the agent's user cannot search gets an empty read-only
tmpfs first (``plan.prepare``), so nothing else of that folder shows. Chosen over a hook written in sh (a
second client to keep in step, and curl is not everywhere) and over ACLs on ``/root`` (which would open
every world-readable file under it to the agent's user on the host too).
"""

from __future__ import annotations

import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

import tether

#: Package caches every kind may fill (relative to its private HOME; the tools' defaults under HOME).
CACHES = (".npm", ".cache/pip", ".cache/uv")


@dataclass(frozen=True)
class Needs:
    """One kind's folders in its private HOME (relative paths) and its CLI."""

    writable: tuple[str, ...] = CACHES  # made at each start if missing, owned by the agent's user
    read_only: tuple[str, ...] = ()  # inside a writable one: bound read-only over itself when it exists
    cli: tuple[str, str] | None = None  # (variable naming the binary, program on PATH)


NEEDS: dict[str, Needs] = {
    "command": Needs(),
    "python": Needs(),
    "claude-code": Needs(
        writable=(*CACHES, ".claude", ".cache/claude", ".local/state/claude", ".local/share/claude"),
        read_only=(".claude/settings.json", ".claude/settings.local.json"),
        cli=("TETHER_CLAUDE", "claude"),
    ),
    "codex": Needs(
        writable=(*CACHES, ".codex"),
        read_only=(".codex/hooks.json", ".codex/config.toml", ".codex/requirements.toml"),
        cli=("TETHER_CODEX", "codex"),
    ),
    "openclaw": Needs(writable=(*CACHES, ".openclaw"), cli=("TETHER_OPENCLAW", "openclaw")),
}


def needs(kind: str) -> Needs:
    return NEEDS.get(kind, Needs())


def cli(kind: str) -> str | None:
    """The kind's CLI as the supervisor finds it (``$TETHER_CLAUDE``/``$TETHER_CODEX``, else PATH)."""
    spec = needs(kind).cli
    if spec is None:
        return None
    return os.environ.get(spec[0]) or shutil.which(spec[1])


def _interpreter(script: Path) -> str | None:
    """The program a ``#!`` line runs (``/usr/bin/env node``: node on PATH), resolved; None for a binary."""
    try:
        with open(script, "rb") as f:
            head = f.read(256)
    except OSError:
        return None
    if not head.startswith(b"#!"):
        return None
    words = head[2:].split(b"\n", 1)[0].decode(errors="replace").split()
    if not words:
        return None
    prog = words[1] if os.path.basename(words[0]) == "env" and len(words) > 1 else words[0]
    found = prog if os.path.isabs(prog) else shutil.which(prog)
    return os.path.realpath(found) if found else None


def _install(exe: str) -> list[str]:
    """The tree a CLI needs to run: the innermost ``node_modules`` holding it (an npm package's siblings,
    such as Codex's platform binary), else its folder; and its ``#!`` interpreter's prefix."""
    real = Path(os.path.realpath(exe))
    tree = next((p for p in real.parents if p.name == "node_modules"), real.parent)
    out = [str(tree)]
    interp = _interpreter(real)
    if interp is not None:
        out.append(str(Path(interp).parent.parent) if Path(interp).parent.name == "bin" else str(Path(interp).parent))
    return out


#: What `tether` inside the wall (hooks, `tether beat`, `tether exec`) imports first: where they live is bound too.
FIRST_IMPORTS = ("click", "pydantic", "pydantic_core", "yaml")


def _dependency_sites() -> list[str]:
    """The folders tether's first imports come from, when they are not under its interpreter's prefix (a
    ``.pth`` line or PYTHONPATH pointing at another environment: hidden inside the wall otherwise, and every
    ``tether`` there failed with "No module named 'click'")."""
    import importlib.util

    out = []
    for name in FIRST_IMPORTS:
        try:
            spec = importlib.util.find_spec(name)
        except (ImportError, ValueError):
            continue
        if spec is not None and spec.origin:
            origin = Path(os.path.realpath(spec.origin))
            out.append(str(origin.parent.parent if origin.name == "__init__.py" else origin.parent))
    return out


def runtime(kind: str) -> list[str]:
    """Host trees the agent reads to work (resolved, outermost only): tether's interpreter and package, and
    for an agent CLI kind, the CLI's install."""
    trees = [
        os.path.realpath(sys.base_prefix),
        os.path.realpath(sys.prefix),
        os.path.dirname(os.path.realpath(sys.executable)),
        os.path.realpath(Path(tether.__file__).parent),
        *_dependency_sites(),
    ]
    exe = cli(kind)
    if exe is not None:
        trees += _install(exe)
    out: list[str] = []
    for t in sorted(set(trees), key=len):
        if t != "/" and os.path.isdir(t) and not any(t == o or t.startswith(o + "/") for o in out):
            out.append(t)
    return out
