"""Rollback: a branch per task and snapshots of other folders at task start, so an agent's work can
be moved aside (never lost) and its workspace put back; last-known-good marks and release rollback.

- ``gitops``    git through its command line: hooks off, a temporary index for tether's own commits
- ``snapshot``  content-addressed, deduplicated folder snapshots under ``<state>/snapshots`` (``SnapshotStore``),
                of ``packs`` (the contents and their indexes), ``manifest`` (what a snapshot holds; a folder
                compared with it), ``take`` (taking one) and ``restore`` (putting a folder back)
- ``tasks``     ``begin``/``end`` of a task: branches, snapshots, the base recorded as an event
- ``rollback``  ``rollback``, ``mark_good``: quarantine, reset, restore, release command
"""

from __future__ import annotations

from tether.rollback.gitops import GitError
from tether.rollback.rollback import GOOD, ApprovalPending, mark_good, read_good, rollback
from tether.rollback.snapshot import SnapshotError, SnapshotStore
from tether.rollback.tasks import Refused, begin, changed, describe, end, layout, workspace

__all__ = [
    "GOOD",
    "ApprovalPending",
    "GitError",
    "Refused",
    "SnapshotError",
    "SnapshotStore",
    "begin",
    "changed",
    "describe",
    "end",
    "layout",
    "mark_good",
    "read_good",
    "rollback",
    "workspace",
]
