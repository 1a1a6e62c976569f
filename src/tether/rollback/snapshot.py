"""Snapshots of folders that are not git repositories: content-addressed and deduplicated.

Layout under ``<state>/snapshots/``::

    objects/<id>.pack     the contents a snapshot added, each distinct content once, stored as is
    objects/<id>.idx      the pack's index: SHA-256 → offset and size; written (and fsynced) after
                          its pack, so a pack without an index is an unfinished one (``gc`` drops it)
    manifests/<id>.json.gz  one per snapshot: every path with its type, mode, owner, size, mtime and
                          content hash (files) or target (symlinks); directories, empty ones too
    latest/<key>          the last snapshot id of each folder, for the stat cache
    lock                  snapshots and restores hold it shared, ``gc`` exclusive

Contents are addressed by their SHA-256 and appended to one pack per snapshot rather than written as
a file each: a file creation costs more than the copy of a small file, and one fsync of one pack
makes a snapshot durable.

A second snapshot of a folder re-reads only what changed: a file whose size, mtime, ctime and inode
match the previous manifest keeps its hash (as git's index does; files that changed within
``RACY_NS`` of the previous snapshot are read again), and content already stored is not written
twice. So a snapshot of an unchanged folder costs a walk and a manifest.

``restore`` makes the folder byte-identical to the snapshot: contents, modes, symlinks, empty
directories, mtimes (and owners when run as root); it removes what was created after the snapshot
and rewrites only what differs, from objects it verifies by hash on the way. Git repositories found
inside a folder are left to git: never stored, never removed. Not kept: hard links (restored as
separate files), extended attributes and ACLs; sockets, FIFOs and devices are skipped and left alone.
"""

from __future__ import annotations

import contextlib
import fcntl
import gzip
import hashlib
import json
import os
import secrets
import shutil
import stat
import struct
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

from tether.errors import NotFound, TetherError

RACY_NS = 2_000_000_000  # a file changed this close to a snapshot is re-read next time, whatever its stat says
WHOLE = 4 << 20  # files up to this size are read in one go; larger ones are streamed
CHUNK = 1 << 20
FORMAT = 1
IDX_MAGIC = b"tether-idx 1\n"
IDX_ROW = struct.Struct("<32sQQ")  # digest, offset, size


class SnapshotError(TetherError):
    """A snapshot cannot be taken, read or restored."""


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


@dataclass(frozen=True)
class Loc:
    """Where one content lives: a pack, an offset and a size."""

    pack: str
    offset: int
    size: int


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

    def to_json(self) -> dict[str, Any]:
        return {"format": FORMAT, "id": self.id, "root": self.root, "created": self.created,
                "started_ns": self.started_ns, "excluded": self.excluded, "repos": self.repos,
                "skipped": self.skipped, "entries": self.entries}


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


@dataclass
class RestoreInfo:
    id: str
    root: str
    written: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    fixed: list[str] = field(default_factory=list)  # mode, owner or mtime only
    left: list[str] = field(default_factory=list)  # git repositories created since, left to git
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "root": self.root, "written": len(self.written), "removed": len(self.removed),
                "fixed": len(self.fixed), "left": self.left, "seconds": self.seconds,
                "paths": sorted(self.written + self.removed)[:200]}


def _kind(mode: int) -> str | None:
    if stat.S_ISREG(mode):
        return "f"
    if stat.S_ISDIR(mode):
        return "d"
    if stat.S_ISLNK(mode):
        return "l"
    return None


def _join(rel: str, name: str) -> str:
    return f"{rel}/{name}" if rel else name


def _name(name: str | bytes) -> str:
    return name if isinstance(name, str) else os.fsdecode(name)


def _is_repo(path: str) -> bool:
    return os.path.lexists(os.path.join(path, ".git"))


class SnapshotStore:
    """The snapshots of one state directory (``<state>/snapshots``)."""

    def __init__(self, root: Path, workers: int | None = None) -> None:
        self.root = Path(root)
        self.objects = self.root / "objects"
        self.manifests = self.root / "manifests"
        # threads for restores, where file creation dominates; a snapshot reads and appends in one
        # thread (on two loaded cores, threads made it slower: every syscall hands the GIL over)
        self.workers = workers or min(4, 2 * (os.cpu_count() or 1))

    # -- locking -------------------------------------------------------------------------------------
    @contextlib.contextmanager
    def _locked(self, exclusive: bool) -> Iterator[None]:
        self.root.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.root / "lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
            yield
        finally:
            os.close(fd)

    # -- objects -------------------------------------------------------------------------------------
    def index(self) -> dict[str, Loc]:
        """Every stored content, from the packs' indexes (a pack with no index is unfinished: skipped)."""
        out: dict[str, Loc] = {}
        try:
            names = sorted(os.listdir(self.objects))
        except FileNotFoundError:
            return out
        for name in names:
            if not name.endswith(".idx"):
                continue
            pack = name.removesuffix(".idx")
            try:
                raw = (self.objects / name).read_bytes()
            except OSError:
                continue
            if not raw.startswith(IDX_MAGIC) or (len(raw) - len(IDX_MAGIC)) % IDX_ROW.size:
                raise SnapshotError(f"{self.objects / name}: a damaged pack index; snapshots using it cannot be read")
            for digest, offset, size in IDX_ROW.iter_unpack(raw[len(IDX_MAGIC):]):
                out.setdefault(digest.hex(), Loc(pack, offset, size))
        return out

    def locate(self, digest: str) -> Loc | None:
        return self.index().get(digest)

    def pack_path(self, pack: str) -> Path:
        return self.objects / f"{pack}.pack"

    # -- taking --------------------------------------------------------------------------------------
    def take(
        self,
        folder: str | os.PathLike[str],
        *,
        exclude: Iterable[str] = (),
        previous: str | None = None,
        verify: bool = False,
        durable: bool = True,
    ) -> SnapshotInfo:
        """Snapshot ``folder``. ``exclude`` lists relative paths to leave out; git repositories inside
        are left out too (and listed). ``previous`` (default: this folder's last snapshot) feeds the
        stat cache; ``verify`` re-reads every file; ``durable`` syncs objects before the manifest."""
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
        with self._locked(exclusive=False):
            self.objects.mkdir(parents=True, exist_ok=True)
            self.manifests.mkdir(parents=True, exist_ok=True)
            prev = None if verify else self._previous(root, previous)
            cache = {e.path: e for e in prev.entries if e.kind == "f" and prev.trusted(e)} if prev else {}
            known = self.index()
            info = SnapshotInfo(id=_new_id(), root=str(root))
            entries: list[Entry] = []
            todo: list[tuple[int, str, os.stat_result]] = []
            for rel, st in self._walk(root, excluded, info):
                kind = _kind(st.st_mode)
                if kind is None:
                    info.skipped.append(rel)
                    continue
                data: str | None = None
                if kind == "l":
                    data = _name(os.readlink(os.path.join(root, rel)))
                    info.links += 1
                elif kind == "d":
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
                        todo.append((len(entries), rel, st))
                entries.append(_entry(rel, kind, st, data))
            info.hashed = len(todo)
            pack = _PackWriter(self.pack_path(info.id), known)
            base = str(root)

            def one(item: tuple[int, str, os.stat_result]) -> None:
                index, rel, _ = item
                entries[index] = _entry(rel, "f", *self._store_file(os.path.join(base, rel), pack))

            try:
                for item in todo:
                    one(item)
                info.new_objects, info.new_bytes = len(pack.rows), pack.offset
                pack.finish(self.objects / f"{info.id}.idx", durable)  # contents on disk before a manifest
            except BaseException:
                pack.abandon()
                raise
            manifest = Manifest(info.id, str(root), time.time(), started_ns, entries, sorted(excluded),
                                sorted(info.repos), sorted(info.skipped))
            info.manifest_bytes = self._write_manifest(manifest, durable)
            _write_small(self.root / "latest" / _key(root), info.id)
        info.seconds = round(time.monotonic() - started, 4)
        return info

    def _previous(self, root: Path, wanted: str | None) -> Manifest | None:
        ident = wanted
        if ident is None:
            try:
                ident = (self.root / "latest" / _key(root)).read_text().strip()
            except OSError:
                return None
        try:
            m = self.manifest(ident)
        except (NotFound, SnapshotError):
            return None
        return m if m.root == str(root) else None

    def _walk(self, root: Path, excluded: set[str], info: SnapshotInfo) -> Iterator[tuple[str, os.stat_result]]:
        """Every path under ``root`` (itself first, as ``""``), parents before children, with its lstat."""
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
                child = _join(rel, _name(de.name))
                if child in excluded:
                    continue
                st = de.stat(follow_symlinks=False)
                if stat.S_ISDIR(st.st_mode):
                    if _is_repo(de.path):
                        info.repos.append(child)
                        continue
                    subdirs.append(child)
                yield child, st
            stack.extend(reversed(subdirs))

    def _store_file(self, path: str, pack: _PackWriter) -> tuple[os.stat_result, str]:
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

    def _write_manifest(self, m: Manifest, durable: bool) -> int:
        blob = gzip.compress(json.dumps(m.to_json(), separators=(",", ":")).encode(), compresslevel=1, mtime=0)
        path = self.manifests / f"{m.id}.json.gz"
        tmp = self.manifests / f".{m.id}.tmp"
        with open(tmp, "wb") as f:
            f.write(blob)
            if durable:
                f.flush()
                os.fsync(f.fileno())
        os.replace(tmp, path)
        if durable:
            _fsync_dir(self.manifests)
        return len(blob)

    # -- reading -------------------------------------------------------------------------------------
    def manifest(self, ident: str) -> Manifest:
        if not ident or "/" in ident or ident.startswith("."):
            raise NotFound(f"no snapshot {ident!r}")
        try:
            raw = gzip.decompress((self.manifests / f"{ident}.json.gz").read_bytes())
        except FileNotFoundError:
            raise NotFound(f"no snapshot {ident!r} in {self.manifests}") from None
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
            return sorted(p.name.removesuffix(".json.gz") for p in self.manifests.glob("*.json.gz"))
        except OSError:
            return []

    def stored_bytes(self) -> int:
        """Bytes the store takes: packs, their indexes and manifests (file sizes)."""
        total = 0
        for base in (self.objects, self.manifests):
            for dirpath, _, files in os.walk(base):
                for name in files:
                    with contextlib.suppress(OSError):
                        total += os.lstat(os.path.join(dirpath, name)).st_size
        return total

    def diff(self, ident: str, folder: str | os.PathLike[str] | None = None) -> list[str]:
        """Relative paths that differ between the folder now and the snapshot (added, removed, changed)."""
        m = self.manifest(ident)
        root = Path(folder if folder is not None else m.root)
        want = {e.path: e for e in m.entries}
        seen: set[str] = set()
        out: list[str] = []
        ignore = set(m.excluded) | set(m.repos) | set(m.skipped)
        info = SnapshotInfo(id=ident, root=str(root))
        if not root.is_dir():
            return sorted(p for p in want if p)
        for rel, st in self._walk(root, ignore, info):
            seen.add(rel)
            e = want.get(rel)
            kind = _kind(st.st_mode)
            if kind is None:
                continue
            if self._differs(root / rel, kind, st, e, m):
                out.append(rel)
        out += [p for p in want if p not in seen and p not in ignore and not _under_any(p, info.repos)]
        return sorted(set(out))

    def _differs(self, path: Path, kind: str, st: os.stat_result, e: Entry | None, m: Manifest) -> bool:
        if e is None or e.kind != kind:
            return True
        if kind == "l":
            return _name(os.readlink(path)) != e.data
        if kind == "f":
            return stat.S_IMODE(st.st_mode) != e.mode or not self._content_same(path, st, e, m)
        return False

    def _content_same(self, path: Path, st: os.stat_result, e: Entry, m: Manifest) -> bool:
        if st.st_size != e.size:
            return False
        if (m.trusted(e) and st.st_mtime_ns == e.mtime_ns and st.st_ctime_ns == e.ctime_ns
                and st.st_ino == e.ino):
            return True
        return _hash_file(path) == e.data

    # -- restoring -----------------------------------------------------------------------------------
    def restore(self, ident: str, folder: str | os.PathLike[str] | None = None) -> RestoreInfo:
        """Make ``folder`` (default: the one snapshotted) exactly what snapshot ``ident`` holds."""
        started = time.monotonic()
        m = self.manifest(ident)
        root = Path(os.path.realpath(folder if folder is not None else m.root))
        result = RestoreInfo(ident, str(root))
        want = {e.path: e for e in m.entries}
        ignore = set(m.excluded) | set(m.repos) | set(m.skipped)
        is_root = os.geteuid() == 0
        with self._locked(exclusive=False):
            known = self.index()
            missing = [e for e in m.entries if e.kind == "f" and e.data not in known]
            if missing:
                raise SnapshotError(
                    f"snapshot {ident}: {len(missing)} stored object(s) are missing (first: {missing[0].path}); "
                    "nothing was changed"
                )
            if not root.is_dir() or root.is_symlink():
                if os.path.lexists(root):
                    _remove(root)
                root.mkdir(parents=True, mode=0o700)
            opened: dict[str, int] = {}  # dirs made writable for the restore -> their mode to put back
            self._prune(root, want, ignore, result, opened)
            base = str(root)
            writes: list[tuple[Entry, str, bool]] = []
            for e in m.entries:
                if e.path and not _under_any(e.path, ignore):
                    job = self._put_back(base, e, m, result, opened, is_root)
                    if job is not None:
                        writes.append(job)
            packs = _PackReader(self, known)

            def write(job: tuple[Entry, str, bool]) -> None:
                self._write(packs, job[0], job[1], job[2], is_root)

            try:
                if len(writes) > 1 and self.workers > 1:  # file creation is syscall-bound: threads overlap it
                    with ThreadPoolExecutor(self.workers) as pool:
                        list(pool.map(write, writes))
                else:
                    for job in writes:
                        write(job)
            finally:
                packs.close()
            result.written += [e.path for e, _, _ in writes]
            for e in sorted((e for e in m.entries if e.kind == "d"), key=lambda e: e.path.count("/"), reverse=True):
                if e.path and _under_any(e.path, ignore):
                    continue
                _finish(os.path.join(base, e.path) if e.path else base, e, is_root, result)
        result.seconds = round(time.monotonic() - started, 4)
        return result

    def _prune(self, root: Path, want: dict[str, Entry], ignore: set[str], result: RestoreInfo,
               opened: dict[str, int]) -> None:
        """Remove what the snapshot does not hold, and whatever changed type."""
        stack = [""]
        while stack:
            rel = stack.pop()
            here = os.path.join(root, rel) if rel else str(root)
            for de in list(os.scandir(here)):
                child = _join(rel, _name(de.name))
                if child in ignore:
                    continue
                st = de.stat(follow_symlinks=False)
                e = want.get(child)
                kind = _kind(st.st_mode)
                if kind == "d" and _is_repo(de.path) and (e is None or f"{child}/.git" not in want):
                    result.left.append(child)  # a git repository made since: git's business, not ours
                    ignore.add(child)
                    continue
                if e is None or e.kind != kind:
                    _writable(here, rel, opened)
                    _remove(Path(de.path))
                    result.removed.append(child)
                elif kind == "d":
                    stack.append(child)

    def _put_back(self, base: str, e: Entry, m: Manifest, result: RestoreInfo, opened: dict[str, int],
                  is_root: bool) -> tuple[Entry, str, bool] | None:
        """Directories and symlinks now; for a file whose content differs, the write to do (entry,
        path, whether a file is there to replace)."""
        path = os.path.join(base, e.path)
        parent_rel = e.path.rpartition("/")[0]
        parent = os.path.dirname(path)
        try:
            st: os.stat_result | None = os.lstat(path)
        except FileNotFoundError:
            st = None
        if e.kind == "d":
            if st is None:
                _writable(parent, parent_rel, opened)
                os.mkdir(path, 0o700)
                result.written.append(e.path)
            return None
        if e.kind == "l":
            target = e.data or ""
            if st is not None and _name(os.readlink(path)) == target:
                if _fix(path, e, st, is_root, link=True):
                    result.fixed.append(e.path)
                return None
            _writable(parent, parent_rel, opened)
            tmp = os.path.join(parent, f".tether-restore-{secrets.token_hex(6)}")
            os.symlink(target, tmp)
            _own(tmp, e, is_root)
            os.utime(tmp, ns=(e.mtime_ns, e.mtime_ns), follow_symlinks=False)
            os.replace(tmp, path)
            result.written.append(e.path)
            return None
        if st is not None and self._content_same(Path(path), st, e, m):
            if _fix(path, e, st, is_root, link=False):
                result.fixed.append(e.path)
            return None
        _writable(parent, parent_rel, opened)
        return e, path, st is not None

    def _write(self, packs: _PackReader, e: Entry, path: str, replace: bool, is_root: bool) -> None:
        """Write a file's content from its object, verified by hash on the way. A file that is there
        is replaced by a rename (unlinked first: ext4 flushes data renamed over an existing file)."""
        dest = os.path.join(os.path.dirname(path), f".tether-restore-{secrets.token_hex(6)}") if replace else path
        try:
            packs.copy_out(e, dest)
            _own(dest, e, is_root)  # before chmod: chown clears set-id bits
            os.chmod(dest, e.mode)
            os.utime(dest, ns=(e.mtime_ns, e.mtime_ns))
            if replace:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(path)
                os.rename(dest, path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(dest)
            raise

    # -- housekeeping --------------------------------------------------------------------------------
    def forget(self, ids: Iterable[str]) -> int:
        n = 0
        for ident in ids:
            with contextlib.suppress(FileNotFoundError):
                (self.manifests / f"{ident}.json.gz").unlink()
                n += 1
        return n

    def gc(self) -> tuple[int, int]:
        """Drop contents no manifest refers to (packs rewritten without them, unfinished packs removed);
        return (contents, bytes) removed."""
        with self._locked(exclusive=True):
            live: set[str] = set()
            for ident in self.ids():
                live.update(e.data for e in self.manifest(ident).entries if e.kind == "f" and e.data)
            by_pack: dict[str, dict[str, Loc]] = {}
            for digest, loc in self.index().items():
                by_pack.setdefault(loc.pack, {})[digest] = loc
            removed = freed = 0
            for pack, objs in sorted(by_pack.items()):
                dead = {d: loc for d, loc in objs.items() if d not in live}
                if not dead:
                    continue
                removed += len(dead)
                freed += sum(loc.size for loc in dead.values())
                keep = {d: loc for d, loc in objs.items() if d in live}
                if keep:  # rewrite the pack with what is still used
                    new = _PackWriter(self.pack_path(f"{pack}-gc{secrets.token_hex(3)}"), {})
                    with open(self.pack_path(pack), "rb") as src:
                        for d, loc in sorted(keep.items(), key=lambda kv: kv[1].offset):
                            src.seek(loc.offset)
                            new.add(d, src.read(loc.size))
                    new.finish(self.objects / f"{new.path.name.removesuffix('.pack')}.idx", durable=True)
                (self.objects / f"{pack}.idx").unlink()
                self.pack_path(pack).unlink(missing_ok=True)
            indexed = {n.removesuffix(".idx") for n in os.listdir(self.objects) if n.endswith(".idx")}
            for name in os.listdir(self.objects):
                if name.endswith(".pack") and name.removesuffix(".pack") not in indexed:
                    (self.objects / name).unlink()  # unfinished: its snapshot never got a manifest
        return removed, freed


class _PackWriter:
    """Appends new contents to one pack file; thread-safe. ``known`` is the store's index."""

    def __init__(self, path: Path, known: dict[str, Loc]) -> None:
        self.path = path
        self.known = known
        self.rows: dict[str, tuple[int, int]] = {}
        self.offset = 0
        self.fd: int | None = None
        self.lock = threading.Lock()

    def _open(self) -> int:
        if self.fd is None:
            self.fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o444)
        return self.fd

    def add(self, digest: str, data: bytes) -> None:
        with self.lock:
            if digest in self.known or digest in self.rows:
                return
            fd = self._open()
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            self.rows[digest] = (self.offset, len(data))
            self.offset += len(data)

    def add_stream(self, src: int) -> tuple[str, bool]:
        """Copy a large file in, hashing on the way; take it back out if its content was stored already.
        Returns the digest and whether the content was added."""
        with self.lock:
            fd = self._open()
            start = self.offset
            h = hashlib.sha256()
            while chunk := os.read(src, CHUNK):
                h.update(chunk)
                view = memoryview(chunk)
                while view:
                    view = view[os.write(fd, view):]
                self.offset += len(chunk)
            digest = h.hexdigest()
            if digest in self.known or digest in self.rows:
                os.ftruncate(fd, start)
                os.lseek(fd, start, os.SEEK_SET)
                self.offset = start
                return digest, False
            self.rows[digest] = (start, self.offset - start)
            return digest, True

    def drop(self, digest: str) -> None:
        """Forget a content just added (its file changed while read); the bytes stay as dead weight."""
        with self.lock:
            self.rows.pop(digest, None)

    def finish(self, idx: Path, durable: bool) -> None:
        if self.fd is None:
            return
        if durable:
            os.fsync(self.fd)
        os.close(self.fd)
        self.fd = None
        body = IDX_MAGIC + b"".join(IDX_ROW.pack(bytes.fromhex(d), o, n) for d, (o, n) in sorted(self.rows.items()))
        tmp = idx.with_name(f".{idx.name}.tmp")
        with open(tmp, "wb") as f:
            f.write(body)
            if durable:
                f.flush()
                os.fsync(f.fileno())
        os.replace(tmp, idx)
        if durable:
            _fsync_dir(idx.parent)
        for d, (o, n) in self.rows.items():
            self.known[d] = Loc(self.path.name.removesuffix(".pack"), o, n)

    def abandon(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None
        self.path.unlink(missing_ok=True)


class _PackReader:
    """Reads contents out of packs (``pread`` on one descriptor per pack, shared by threads)."""

    def __init__(self, store: SnapshotStore, index: dict[str, Loc]) -> None:
        self.store = store
        self.index = index
        self.fds: dict[str, int] = {}
        self.lock = threading.Lock()

    def _fd(self, pack: str) -> int:
        with self.lock:
            fd = self.fds.get(pack)
            if fd is None:
                fd = os.open(self.store.pack_path(pack), os.O_RDONLY | os.O_CLOEXEC)
                self.fds[pack] = fd
            return fd

    def copy_out(self, e: Entry, dest: str) -> None:
        digest = e.data or ""
        loc = self.index[digest]
        fd = self._fd(loc.pack)
        h = hashlib.sha256()
        out = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
        try:
            done = 0
            while done < loc.size:
                chunk = os.pread(fd, min(CHUNK, loc.size - done), loc.offset + done)
                if not chunk:
                    break
                h.update(chunk)
                view = memoryview(chunk)
                while view:
                    view = view[os.write(out, view):]
                done += len(chunk)
        finally:
            os.close(out)
        if done != loc.size or h.hexdigest() != digest:
            raise SnapshotError(f"stored content of {e.path} is damaged (hash mismatch); the restore stopped there")

    def close(self) -> None:
        for fd in self.fds.values():
            os.close(fd)
        self.fds.clear()


# --- helpers ----------------------------------------------------------------------------------------


def _new_id() -> str:
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()) + "-" + secrets.token_hex(4)


def _key(root: Path) -> str:
    return hashlib.sha256(os.fsencode(str(root))).hexdigest()[:24]


def _entry(rel: str, kind: str, st: os.stat_result, data: str | None) -> Entry:
    return Entry(rel, kind, stat.S_IMODE(st.st_mode), st.st_size if kind == "f" else 0, st.st_mtime_ns, data,
                 st.st_uid, st.st_gid, st.st_ino, st.st_ctime_ns)


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


def _hash_file(path: Path) -> str:
    h = hashlib.sha256()
    try:
        with open(path, "rb") as f:
            while chunk := f.read(CHUNK):
                h.update(chunk)
    except OSError:
        return ""
    return h.hexdigest()


def _under_any(rel: str, prefixes: Iterable[str]) -> bool:
    return any(rel == p or rel.startswith(p + "/") for p in prefixes)


def _write_small(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}")
    tmp.write_text(text)
    os.replace(tmp, path)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _writable(path: str | Path, rel: str, opened: dict[str, int]) -> None:
    """Make sure we may create and remove entries in ``path`` (put its mode back in ``_finish``)."""
    if rel in opened or os.access(path, os.W_OK | os.X_OK):
        return
    mode = stat.S_IMODE(os.lstat(path).st_mode)
    opened[rel] = mode
    os.chmod(path, mode | stat.S_IRWXU)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():

        def onerror(fn: Callable[..., Any], p: str, exc: Any) -> None:
            os.chmod(os.path.dirname(p), stat.S_IRWXU)
            if os.path.isdir(p) and not os.path.islink(p):
                os.chmod(p, stat.S_IRWXU)
                shutil.rmtree(p, onerror=onerror)
            else:
                os.unlink(p)

        shutil.rmtree(path, onerror=onerror)
    else:
        path.unlink()


def _own(path: str | Path, e: Entry, is_root: bool) -> None:
    if is_root:
        os.lchown(path, e.uid, e.gid)


def _fix(path: str | Path, e: Entry, st: os.stat_result, is_root: bool, link: bool) -> bool:
    """Put back mode, owner and mtime of an entry whose content is right; True when anything changed."""
    changed = False
    if is_root and (st.st_uid, st.st_gid) != (e.uid, e.gid):
        os.lchown(path, e.uid, e.gid)
        changed = True
    if not link and stat.S_IMODE(st.st_mode) != e.mode:
        os.chmod(path, e.mode)
        changed = True
    if st.st_mtime_ns != e.mtime_ns:
        os.utime(path, ns=(st.st_atime_ns, e.mtime_ns), follow_symlinks=not link)
        changed = True
    return changed


def _finish(path: str | Path, e: Entry, is_root: bool, result: RestoreInfo) -> None:
    """A directory's own mode, owner and mtime, set after everything inside it is in place."""
    st = os.lstat(path)
    if _fix(path, e, st, is_root, link=False) and e.path not in result.written:
        result.fixed.append(e.path)
