"""Where tether keeps things: the state directory and the files in it (documented in docs/FILES.md)."""

from __future__ import annotations

import os
from pathlib import Path

RUNBOOK_NAME = "tether.yaml"


def default_state_dir() -> Path:
    """``$TETHER_HOME``, else the platform's user state directory (e.g. ``~/.local/state/tether``)."""
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
        """The runbook the daemon last loaded (so recovery commands know it without the original)."""
        return self.root / "runbook.yaml"

    @property
    def audit_file(self) -> Path:
        return self.root / "audit.chain"

    @property
    def socket(self) -> Path:
        return self.root / "tether.sock"

    @property
    def lock(self) -> Path:
        return self.root / "daemon.lock"
