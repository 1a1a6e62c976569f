"""Snapshots of folders that are not git repositories: content-addressed and deduplicated.

``SnapshotStore`` is the snapshots of one state directory (``<state>/snapshots/``), made of:

- ``packs``     the contents, each distinct one once, in packs with their indexes (``objects/``), the lock
- ``manifest``  what each snapshot holds (``manifests/<id>.json.gz``), and a folder compared with it
- ``take``      taking a snapshot: only what changed since the folder's last one is read (``latest/<key>``)
- ``restore``   making a folder byte-identical to a snapshot, rewriting only what differs

Listing, ``diff``, ``forget`` and ``gc`` (contents no manifest uses dropped) are here.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Unpack

from tether.rollback.manifest import RACY_NS, Entry, Manifest, Manifests, diff
from tether.rollback.packs import Loc, Packs, SnapshotError
from tether.rollback.restore import RestoreInfo, restore
from tether.rollback.take import WHOLE, SnapshotInfo, TakeOptions, take

__all__ = [
    "RACY_NS",
    "WHOLE",
    "Entry",
    "Loc",
    "Manifest",
    "RestoreInfo",
    "SnapshotError",
    "SnapshotInfo",
    "SnapshotStore",
]


class SnapshotStore:
    """The snapshots of one state directory (``<state>/snapshots``)."""

    def __init__(self, root: Path, workers: int | None = None) -> None:
        self.root = Path(root)
        self.objects = self.root / "objects"
        self.manifests = self.root / "manifests"
        self.packs = Packs(self.objects, self.root / "lock")
        self.book = Manifests(self.manifests)
        # threads for restores, where file creation dominates; a snapshot reads and appends in one
        # thread (on two loaded cores, threads made it slower: every syscall hands the GIL over)
        self.workers = workers or min(4, 2 * (os.cpu_count() or 1))

    def take(self, folder: str | os.PathLike[str], **options: Unpack[TakeOptions]) -> SnapshotInfo:
        """Snapshot ``folder``. ``exclude`` lists relative paths to leave out; git repositories inside
        are left out too (and listed). ``previous`` (default: this folder's last snapshot) feeds the
        stat cache; ``verify`` re-reads every file; ``durable`` syncs objects before the manifest."""
        return take(self.packs, self.book, self.root / "latest", folder, **options)

    def restore(self, ident: str, folder: str | os.PathLike[str] | None = None) -> RestoreInfo:
        """Make ``folder`` (default: the one snapshotted) exactly what snapshot ``ident`` holds."""
        return restore(self.packs, self.book, ident, folder, self.workers)

    def manifest(self, ident: str) -> Manifest:
        return self.book.read(ident)

    def ids(self) -> list[str]:
        return self.book.ids()

    def diff(self, ident: str, folder: str | os.PathLike[str] | None = None) -> list[str]:
        """Relative paths that differ between the folder now and the snapshot (added, removed, changed)."""
        m = self.book.read(ident)
        return diff(m, Path(folder if folder is not None else m.root))

    def index(self) -> dict[str, Loc]:
        """Every stored content, from the packs' indexes (a pack with no index is unfinished: skipped)."""
        return self.packs.index()

    def locate(self, digest: str) -> Loc | None:
        return self.packs.index().get(digest)

    def pack_path(self, pack: str) -> Path:
        return self.packs.pack_path(pack)

    def stored_bytes(self) -> int:
        """Bytes the store takes: packs, their indexes and manifests (file sizes)."""
        total = 0
        for base in (self.objects, self.manifests):
            for dirpath, _, files in os.walk(base):
                for name in files:
                    with contextlib.suppress(OSError):
                        total += os.lstat(os.path.join(dirpath, name)).st_size
        return total

    def forget(self, ids: Iterable[str]) -> int:
        return self.book.forget(ids)

    def gc(self) -> tuple[int, int]:
        """Drop contents no manifest refers to (packs rewritten without them, unfinished packs removed);
        return (contents, bytes) removed."""
        with self.packs.locked(exclusive=True):
            return self.packs.gc(self.book.live())
