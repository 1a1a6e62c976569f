"""What a snapshot holds: its manifest, every path of the folder with its type, mode, owner, size, mtime and
content hash (files) or target (symlinks); directories, empty ones too. And how a folder now compares with
one (``walk``, ``diff``).

Under ``<state>/snapshots/``::

    manifests/<id>.json.gz  one per snapshot

A file whose size, mtime, ctime and inode match its entry has the entry's content (as git's index
assumes), unless it changed within ``RACY_NS`` of the snapshot (``Manifest.trusted``). Git repositories
found inside a folder are left to git: never listed.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import json
import os
import stat
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

from tether.errors import NotFound
from tether.rollback.packs import CHUNK, SnapshotError, replace_file

RACY_NS = 2_000_000_000  # a file changed this close to a snapshot is re-read next time, whatever its stat says
FORMAT = 1


class Entry(NamedTuple):
    """One path in a snapshot. ``path`` is relative and ``/``-separated; the folder itself is ``""``."""

    path: str
    kind: str  # "d" directory, "f" regular file, "l" symlink
    mode: int
    size: int
    mtime_ns: int
    data: str | None  # content hash for a file, target for a symlink
    uid: int
    gid: int
    ino: int
    ctime_ns: int

    @classmethod
    def of_row(cls, row: list[Any]) -> Entry:
        return cls(*row)


@dataclass
class Manifest:
    id: str
    root: str
    created: float
    started_ns: int
    entries: list[Entry]
    excluded: list[str] = field(default_factory=list)
    repos: list[str] = field(default_factory=list)  # git repositories found inside, left to git
    skipped: list[str] = field(default_factory=list)  # sockets, FIFOs, devices: left alone

    def trusted(self, e: Entry) -> bool:
        """Whether ``e``'s stat can stand for its content (it did not change around the snapshot)."""
        return e.ctime_ns < self.started_ns - RACY_NS

    def ignored(self) -> set[str]:
        """Paths a restore or a diff leaves alone: excluded, git repositories, sockets and such."""
        return set(self.excluded) | set(self.repos) | set(self.skipped)

    def to_json(self) -> dict[str, Any]:
        return {"format": FORMAT, "id": self.id, "root": self.root, "created": self.created,
                "started_ns": self.started_ns, "excluded": self.excluded, "repos": self.repos,
                "skipped": self.skipped, "entries": self.entries}


class Manifests:
    """The manifests of one snapshot store (``manifests/``)."""

    def __init__(self, folder: Path) -> None:
        self.dir = folder

    def write(self, m: Manifest, durable: bool) -> int:
        """Store ``m``; its size, compressed."""
        blob = gzip.compress(json.dumps(m.to_json(), separators=(",", ":")).encode(), compresslevel=1, mtime=0)
        replace_file(self.dir / f"{m.id}.json.gz", blob, durable)
        return len(blob)

    def read(self, ident: str) -> Manifest:
        if not ident or "/" in ident or ident.startswith("."):
            raise NotFound(f"no snapshot {ident!r}")
        try:
            raw = gzip.decompress((self.dir / f"{ident}.json.gz").read_bytes())
        except FileNotFoundError:
            raise NotFound(f"no snapshot {ident!r} in {self.dir}") from None
        except (OSError, EOFError) as err:
            raise SnapshotError(f"snapshot {ident}: its manifest cannot be read ({err})") from None
        try:
            d = json.loads(raw)
            return Manifest(d["id"], d["root"], d["created"], d["started_ns"],
                            [Entry.of_row(r) for r in d["entries"]], d.get("excluded", []), d.get("repos", []),
                            d.get("skipped", []))
        except (ValueError, KeyError, TypeError) as err:
            raise SnapshotError(f"snapshot {ident}: its manifest is damaged ({err})") from None

    def ids(self) -> list[str]:
        try:
            return sorted(p.name.removesuffix(".json.gz") for p in self.dir.glob("*.json.gz"))
        except OSError:
            return []

    def forget(self, ids: Iterable[str]) -> int:
        n = 0
        for ident in ids:
            with contextlib.suppress(FileNotFoundError):
                (self.dir / f"{ident}.json.gz").unlink()
                n += 1
        return n

    def live(self) -> set[str]:
        """Every content a manifest refers to."""
        out: set[str] = set()
        for ident in self.ids():
            out.update(e.data for e in self.read(ident).entries if e.kind == "f" and e.data)
        return out


# --- a folder as a manifest sees it -------------------------------------------------------------------


def kind(mode: int) -> str | None:
    if stat.S_ISREG(mode):
        return "f"
    if stat.S_ISDIR(mode):
        return "d"
    if stat.S_ISLNK(mode):
        return "l"
    return None


def join(rel: str, name: str) -> str:
    return f"{rel}/{name}" if rel else name


def fsname(raw: str | bytes) -> str:
    return raw if isinstance(raw, str) else os.fsdecode(raw)


def is_repo(path: str) -> bool:
    return os.path.lexists(os.path.join(path, ".git"))


def under_any(rel: str, prefixes: Iterable[str]) -> bool:
    return any(rel == p or rel.startswith(p + "/") for p in prefixes)


def entry(rel: str, kind: str, st: os.stat_result, data: str | None) -> Entry:
    return Entry(rel, kind, stat.S_IMODE(st.st_mode), st.st_size if kind == "f" else 0, st.st_mtime_ns, data,
                 st.st_uid, st.st_gid, st.st_ino, st.st_ctime_ns)


def walk(root: Path, excluded: set[str], repos: list[str]) -> Iterator[tuple[str, os.stat_result]]:
    """Every path under ``root`` (itself first, as ``""``), parents before children, with its lstat; git
    repositories inside are appended to ``repos``, not walked."""
    yield "", os.lstat(root)
    stack = [""]
    while stack:
        rel = stack.pop()
        try:
            listing = sorted(os.scandir(os.path.join(root, rel) if rel else root), key=lambda d: d.name)
        except OSError as err:
            raise SnapshotError(f"{os.path.join(root, rel)}: cannot list it ({err.strerror})") from None
        subdirs = []
        for de in listing:
            child = join(rel, fsname(de.name))
            if child in excluded:
                continue
            st = de.stat(follow_symlinks=False)
            if stat.S_ISDIR(st.st_mode):
                if is_repo(de.path):
                    repos.append(child)
                    continue
                subdirs.append(child)
            yield child, st
        stack.extend(reversed(subdirs))


def _hash_file(path: Path) -> str:
    h = hashlib.sha256()
    try:
        with open(path, "rb") as f:
            while chunk := f.read(CHUNK):
                h.update(chunk)
    except OSError:
        return ""
    return h.hexdigest()


def content_same(path: Path, st: os.stat_result, e: Entry, m: Manifest) -> bool:
    """Whether the file at ``path`` (``st``) holds ``e``'s content: by its stat when ``m`` trusts it, else hashed."""
    if st.st_size != e.size:
        return False
    if m.trusted(e) and st.st_mtime_ns == e.mtime_ns and st.st_ctime_ns == e.ctime_ns and st.st_ino == e.ino:
        return True
    return _hash_file(path) == e.data


def _differs(path: Path, k: str, st: os.stat_result, e: Entry | None, m: Manifest) -> bool:
    if e is None or e.kind != k:
        return True
    if k == "l":
        return fsname(os.readlink(path)) != e.data
    if k == "f":
        return stat.S_IMODE(st.st_mode) != e.mode or not content_same(path, st, e, m)
    return False


def diff(m: Manifest, root: Path) -> list[str]:
    """Relative paths that differ between the folder ``root`` now and the snapshot (added, removed, changed)."""
    want = {e.path: e for e in m.entries}
    seen: set[str] = set()
    out: list[str] = []
    ignore = m.ignored()
    repos: list[str] = []
    if not root.is_dir():
        return sorted(p for p in want if p)
    for rel, st in walk(root, ignore, repos):
        seen.add(rel)
        k = kind(st.st_mode)
        if k is None:
            continue
        if _differs(root / rel, k, st, want.get(rel), m):
            out.append(rel)
    out += [p for p in want if p not in seen and p not in ignore and not under_any(p, repos)]
    return sorted(set(out))
