"""Typed errors. Each carries one line a user can act on; the CLI prints it and exits non-zero."""

from __future__ import annotations


class TetherError(Exception):
    """A failure the user can cause and fix. ``str(err)`` is one line: what is wrong and what to do."""

    exit_code = 1


class UsageError(TetherError):
    exit_code = 2


class RunbookError(TetherError):
    """The runbook is invalid. ``problems`` holds every one-line error (``file:line: field: message``)."""

    exit_code = 2

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__(problems[0] if problems else "invalid runbook")

    def __str__(self) -> str:
        return "\n".join(self.problems)


class StoreError(TetherError):
    """The store cannot be opened, read or written (corrupt file, no permission, disk full)."""


class NotFound(TetherError):
    """A named thing (agent, task, approval, incident) does not exist."""


class RouteMissing(NotFound):
    """The daemon has no such route (an older daemon than this CLI): not a missing thing."""


class DaemonUnavailable(TetherError):
    """The daemon is not running or does not answer."""
