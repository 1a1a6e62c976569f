"""Where tether keeps things: the state directory and the files in it (documented in docs/FILES.md)."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from tether.atomic import write_atomic

RUNBOOK_NAME = "tether.yaml"
COPY_HEADER = "# tether: the runbook the daemon last loaded, copied from "


def default_state_dir() -> Path:
    """``$TETHER_HOME``, else the platform's user state directory (e.g. ``~/.local/state/tether``).

    The one rule for the state directory, for every command and the daemon: ``--home`` (the CLI, and
    what the daemon was started with), else the runbook's ``host.state_dir``, else this. Agents, hooks
    and keepers get what they need from the daemon (``TETHER_URL``, ``TETHER_KILL_FILES``)."""
    home = os.environ.get("TETHER_HOME")
    if home:
        return Path(home).expanduser()
    from platformdirs import user_state_dir

    return Path(user_state_dir("tether", appauthor=False))


class StateDir:
    """The layout of one state directory."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    @property
    def db(self) -> Path:
        return self.root / "tether.db"

    @property
    def agents(self) -> Path:
        return self.root / "agents"

    def agent_dir(self, agent: str) -> Path:
        return self.agents / agent

    def status_file(self, agent: str) -> Path:
        """``<state>/agents/<agent>/agent-status.json``, rewritten atomically on every state change."""
        return self.agent_dir(agent) / "agent-status.json"

    def agent_tmp(self, agent: str) -> Path:
        """The agent's private ``TMPDIR``: its only scratch space (any other temporary path is outside)."""
        return self.agent_dir(agent) / "tmp"

    def log_dir(self, agent: str) -> Path:
        return self.agent_dir(agent) / "logs"

    @property
    def kill_file(self) -> Path:
        """While this file exists every agent's gated actions are denied."""
        return self.root / "KILL"

    def agent_kill_file(self, agent: str) -> Path:
        return self.agent_dir(agent) / "KILL"

    def kill_engaged(self, agent: str) -> Path | None:
        """The kill file that holds this agent (the global one first), or None."""
        for path in (self.kill_file, self.agent_kill_file(agent)):
            if path.exists():
                return path
        return None

    @property
    def runbook_copy(self) -> Path:
        """The runbook the daemon last loaded (so recovery commands know it without the original): its
        first line names the original (relative paths in it are taken from the original's folder)."""
        return self.root / "runbook.yaml"

    def write_runbook_copy(self, source: Path, text: str) -> None:
        """Keep ``text``, loaded from ``source``, as the runbook copy (the daemon, at boot and on every
        reload). Best effort: without it recovery commands ask for ``-f RUNBOOK``."""
        with contextlib.suppress(OSError):
            write_atomic(self.runbook_copy, f"{COPY_HEADER}{Path(source).absolute()}\n{text}", 0o600)

    def runbook_source(self) -> Path | None:
        """The runbook file the copy came from, or None when there is no copy."""
        try:
            with open(self.runbook_copy, encoding="utf-8") as f:
                first = f.readline()
        except (OSError, UnicodeDecodeError):
            return None
        return Path(first[len(COPY_HEADER):].rstrip("\n")) if first.startswith(COPY_HEADER) else None

    @property
    def audit_file(self) -> Path:
        return self.root / "audit.chain"

    @property
    def socket(self) -> Path:
        return self.root / "tether.sock"

    @property
    def lock(self) -> Path:
        return self.root / "daemon.lock"
