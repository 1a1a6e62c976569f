"""Whether a tether snapshot holds a file as it is now, so destroying it loses nothing (``recover``).

The store is rollback's (``rollback/snapshot.py``, under ``<state>/snapshots``): ``latest/<key>`` names the
last snapshot of each folder (``key``: the first 24 hex digits of the sha256 of the folder's real path), and
that snapshot's manifest lists every file with the stat it had when it was read. A file whose size, mtime,
ctime and inode still match, and which had not changed just before the snapshot (``Manifest.trusted``), has the content
the snapshot stored, so ``tether rollback`` puts it back as it was (the rule git's index follows, and the
store's own stat cache).

Read cheaply: the ``latest`` folder once per change of its mtime (each snapshot replaces one file in it), a
manifest once per snapshot, keeping for each file only its stat (at most ``MAX_MANIFESTS`` of them, none
over ``MAX_MANIFEST_BYTES`` compressed). Only the latest snapshot of each folder is asked. Never raises:
what cannot be read holds nothing.
"""

from __future__ import annotations

import hashlib
import os
import stat
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Final

MAX_MANIFESTS: Final = 8
MAX_MANIFEST_BYTES: Final = 32 << 20
_MAX_LATEST: Final = 4096

_lock: Final = threading.Lock()
#: store -> (its latest folder's (mtime_ns, inode), folder key -> snapshot id)
_latest: dict[str, tuple[tuple[int, int], dict[str, str]]] = {}
#: manifest file -> (its (mtime_ns, inode, size), relative path -> (kind, size, mtime_ns, ctime_ns, inode, data))
_manifests: dict[str, tuple[tuple[int, int, int], dict[str, tuple[str, int, int, int, int, str]]]] = {}


def folder_key(real: str) -> str:
    """The store's name for a folder (its ``latest/`` file): as ``rollback.snapshot`` computes it."""
    return hashlib.sha256(os.fsencode(real)).hexdigest()[:24]


def _latest_ids(store: str) -> dict[str, str]:
    d = store + "/latest"
    try:
        st = os.stat(d)
    except OSError:
        return {}
    key = (st.st_mtime_ns, st.st_ino)
    cached = _latest.get(store)
    if cached is not None and cached[0] == key:
        return cached[1]
    ids: dict[str, str] = {}
    try:
        with os.scandir(d) as it:
            for n, e in enumerate(it):
                if n >= _MAX_LATEST:
                    break
                if e.name.startswith(".") or not e.is_file(follow_symlinks=False):
                    continue
                try:
                    with open(e.path, encoding="ascii") as f:
                        ident = f.read(128).strip()
                except (OSError, UnicodeDecodeError):
                    continue
                if ident and "/" not in ident and not ident.startswith("."):
                    ids[e.name] = ident
    except OSError:
        return {}
    with _lock:
        if len(_latest) > 16:
            _latest.clear()
        _latest[store] = (key, ids)
    return ids


def _files(store: str, ident: str) -> dict[str, tuple[str, int, int, int, int, str]]:
    """The files (and links) a snapshot can put back as they were, by relative path; empty when unreadable."""
    path = f"{store}/manifests/{ident}.json.gz"
    try:
        st = os.stat(path)
    except OSError:
        return {}
    key = (st.st_mtime_ns, st.st_ino, st.st_size)
    cached = _manifests.get(path)
    if cached is not None and cached[0] == key:
        return cached[1]
    files: dict[str, tuple[str, int, int, int, int, str]] = {}
    if st.st_size <= MAX_MANIFEST_BYTES:
        # start-up: the snapshot store (and its errors) bring gzip, secrets and a thread pool, wanted only when a
        # deletion's check reads a manifest
        from tether.errors import TetherError  # with the line below: only when a folder has snapshots
        from tether.rollback.snapshot import SnapshotStore  # rollback imports classify: a package cycle

        try:
            m = SnapshotStore(Path(store)).manifest(ident)
        except (TetherError, OSError, MemoryError):
            m = None
        if m is not None:
            for e in m.entries:
                if e.kind in ("f", "l") and isinstance(e.data, str) and m.trusted(e):
                    files[e.path] = (e.kind, e.size, e.mtime_ns, e.ctime_ns, e.ino, e.data)
    with _lock:
        if len(_manifests) >= MAX_MANIFESTS:
            _manifests.clear()
        _manifests[path] = (key, files)
    return files


def _above(d: str, rel: str = "") -> Iterator[tuple[str, str]]:
    """The folder ``d`` and those above it (64 at most), each with the path from it to ``d``'s ``rel``."""
    for _ in range(64):
        yield d, rel
        if d == "/":
            return
        d, base = d.rsplit("/", 1)
        d = d or "/"
        rel = f"{base}/{rel}"


def covers(store: str, folder: str) -> bool:
    """Whether some snapshot in ``store`` is of ``folder`` or of a folder above it."""
    ids = _latest_ids(store) if store else {}
    if not ids:
        return False
    try:
        d = os.path.realpath(folder)
    except (OSError, ValueError):
        return False
    return any(folder_key(f) in ids for f, _ in _above(d))


def holds(store: str, path: str, st: os.stat_result) -> bool:
    """Whether the latest snapshot of a folder above ``path`` holds it as it is now (``st``: its lstat)."""
    ids = _latest_ids(store) if store else {}
    if not ids:
        return False
    try:
        parent, name = path.rsplit("/", 1)
        d = os.path.realpath(parent or "/")
    except (OSError, ValueError):
        return False
    return any(
        (ident := ids.get(folder_key(f))) is not None and _matches(_files(store, ident).get(rel), path, st)
        for f, rel in _above(d, name)
    )


def _matches(e: tuple[str, int, int, int, int, str] | None, path: str, st: os.stat_result) -> bool:
    if e is None:
        return False
    kind, size, mtime_ns, ctime_ns, ino, data = e
    if kind == "l":
        if not stat.S_ISLNK(st.st_mode):
            return False
        try:
            return os.fsdecode(os.readlink(path)) == data
        except OSError:
            return False
    return (
        stat.S_ISREG(st.st_mode)
        and st.st_size == size
        and st.st_mtime_ns == mtime_ns
        and st.st_ctime_ns == ctime_ns
        and st.st_ino == ino
    )
