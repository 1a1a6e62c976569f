"""Taking a snapshot of a folder: its manifest, and the contents the store did not hold yet, in a new pack.

A second snapshot of a folder re-reads only what changed: a file whose size, mtime, ctime and inode
match the previous manifest keeps its hash (as git's index does; files that changed within
``RACY_NS`` of the previous snapshot are read again), and content already stored is not written
twice. So a snapshot of an unchanged folder costs a walk and a manifest.

Under ``<state>/snapshots/``::

    latest/<key>          the last snapshot id of each folder, for the stat cache
"""

from __future__ import annotations

import hashlib
import os
import secrets
import stat
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypedDict

from tether.errors import NotFound
from tether.rollback.manifest import Entry, Manifest, Manifests, entry, fsname, kind, walk
from tether.rollback.packs import Packs, PackWriter, SnapshotError, replace_file

WHOLE = 4 << 20  # files up to this size are read in one go; larger ones are streamed


@dataclass
class SnapshotInfo:
    """What ``take`` did."""

    id: str
    root: str
    files: int = 0
    dirs: int = 0
    links: int = 0
    bytes: int = 0  # size of the folder's files
    hashed: int = 0  # files read this time (the rest came from the stat cache)
    new_objects: int = 0
    new_bytes: int = 0  # bytes written to the store this time (objects)
    manifest_bytes: int = 0
    repos: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


class TakeOptions(TypedDict, total=False):
    """``take``'s options (``SnapshotStore.take`` says what each does)."""

    exclude: Iterable[str]
    previous: str | None
    verify: bool
    durable: bool


def take(packs: Packs, manifests: Manifests, latest: Path, folder: str | os.PathLike[str], *,
         exclude: Iterable[str] = (), previous: str | None = None, verify: bool = False,
         durable: bool = True) -> SnapshotInfo:
    """Snapshot ``folder`` (``SnapshotStore.take``); ``latest`` is the folder of each folder's last snapshot id."""
    started = time.monotonic()
    started_ns = time.time_ns()
    root = Path(os.path.realpath(folder))
    try:
        top = os.lstat(root)
    except FileNotFoundError:
        raise SnapshotError(f"{root}: no such folder to snapshot") from None
    if not stat.S_ISDIR(top.st_mode):
        raise SnapshotError(f"{root}: not a folder; only folders can be snapshotted")
    excluded = {p.strip("/") for p in exclude if p.strip("/")}
    with packs.locked(exclusive=False):
        packs.dir.mkdir(parents=True, exist_ok=True)
        manifests.dir.mkdir(parents=True, exist_ok=True)
        prev = None if verify else _previous(manifests, latest, root, previous)
        cache = {e.path: e for e in prev.entries if e.kind == "f" and prev.trusted(e)} if prev else {}
        known = packs.index()
        info = SnapshotInfo(id=_new_id(), root=str(root))
        entries: list[Entry] = []
        todo: list[tuple[int, str]] = []
        for rel, st in walk(root, excluded, info.repos):
            k = kind(st.st_mode)
            if k is None:
                info.skipped.append(rel)
                continue
            data: str | None = None
            if k == "l":
                data = fsname(os.readlink(os.path.join(root, rel)))
                info.links += 1
            elif k == "d":
                info.dirs += 1
            else:
                info.files += 1
                info.bytes += st.st_size
                old = cache.get(rel)
                if (old is not None and old.data in known and old.size == st.st_size
                        and old.mtime_ns == st.st_mtime_ns and old.ctime_ns == st.st_ctime_ns
                        and old.ino == st.st_ino):
                    data = old.data
                else:
                    todo.append((len(entries), rel))
            entries.append(entry(rel, k, st, data))
        info.hashed = len(todo)
        pack = PackWriter(packs.pack_path(info.id), known)
        base = str(root)
        try:
            for index, rel in todo:
                entries[index] = entry(rel, "f", *_store_file(os.path.join(base, rel), pack))
            info.new_objects, info.new_bytes = len(pack.rows), pack.offset
            pack.finish(packs.idx_path(info.id), durable)  # contents on disk before a manifest
        except BaseException:
            pack.abandon()
            raise
        manifest = Manifest(info.id, str(root), time.time(), started_ns, entries, sorted(excluded),
                            sorted(info.repos), sorted(info.skipped))
        info.manifest_bytes = manifests.write(manifest, durable)
        latest.mkdir(parents=True, exist_ok=True)
        replace_file(latest / _key(root), info.id.encode(), durable=False)
    info.seconds = round(time.monotonic() - started, 4)
    return info


def _previous(manifests: Manifests, latest: Path, root: Path, wanted: str | None) -> Manifest | None:
    ident = wanted
    if ident is None:
        try:
            ident = (latest / _key(root)).read_text().strip()
        except OSError:
            return None
    try:
        m = manifests.read(ident)
    except (NotFound, SnapshotError):
        return None
    return m if m.root == str(root) else None


def _store_file(path: str, pack: PackWriter) -> tuple[os.stat_result, str]:
    """Hash a file and add its content to the pack unless stored; re-read it if it changed meanwhile."""
    for _ in range(3):
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except OSError as err:
            raise SnapshotError(f"{path}: cannot read it ({err.strerror})") from None
        try:
            before = os.fstat(fd)
            if before.st_size <= WHOLE:
                data = _read_all(fd, before.st_size)
                digest = hashlib.sha256(data).hexdigest()
                after = os.fstat(fd)
                if _same(before, after) and len(data) == after.st_size:
                    pack.add(digest, data)
                    return after, digest
                continue
            digest, added = pack.add_stream(fd)
            after = os.fstat(fd)
            if _same(before, after):
                return after, digest
            if added:
                pack.drop(digest)
        finally:
            os.close(fd)
    raise SnapshotError(f"{path}: kept changing while it was read; snapshot again when it is quiet")


def _new_id() -> str:
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()) + "-" + secrets.token_hex(4)


def _key(root: Path) -> str:
    return hashlib.sha256(os.fsencode(str(root))).hexdigest()[:24]


def _same(a: os.stat_result, b: os.stat_result) -> bool:
    return (a.st_size, a.st_mtime_ns, a.st_ctime_ns, a.st_ino) == (b.st_size, b.st_mtime_ns, b.st_ctime_ns, b.st_ino)


def _read_all(fd: int, size: int) -> bytes:
    parts = []
    while True:
        chunk = os.read(fd, max(size + 1, 65536))
        if not chunk:
            break
        parts.append(chunk)
    return b"".join(parts)
