"""Typed errors of the process layer (each ``str()`` is one line a user can act on)."""

from __future__ import annotations

from tether.errors import TetherError


class ProcessError(TetherError):
    """Starting, adopting or stopping an agent process failed."""


class SpawnError(ProcessError):
    """The keeper or the agent could not be started (bad cwd, unknown user, keeper did not report in)."""


class AlreadyRunning(ProcessError):
    """A live keeper or agent already owns this run folder: an agent never runs twice."""

    def __init__(self, message: str, keeper_pid: int | None = None, agent_pid: int | None = None) -> None:
        super().__init__(message)
        self.keeper_pid = keeper_pid
        self.agent_pid = agent_pid
