"""The snapshots' content store: every distinct content once, addressed by its SHA-256, in packs.

Under ``<state>/snapshots/``::

    objects/<id>.pack     the contents one snapshot added, stored as is, one after another
    objects/<id>.idx      the pack's index: SHA-256 → offset and size; written (and fsynced) after
                          its pack, so a pack without an index is an unfinished one (``gc`` drops it)
    lock                  snapshots and restores hold it shared, ``gc`` exclusive

Contents are appended to one pack per snapshot rather than written as a file each: a file creation
costs more than the copy of a small file, and one fsync of one pack makes a snapshot's contents durable.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import secrets
import struct
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tether.atomic import write_atomic
from tether.errors import TetherError

CHUNK = 1 << 20
IDX_MAGIC = b"tether-idx 1\n"
IDX_ROW = struct.Struct("<32sQQ")  # digest, offset, size


class SnapshotError(TetherError):
    """A snapshot cannot be taken, read or restored."""


@dataclass(frozen=True)
class Loc:
    """Where one content lives: a pack, an offset and a size."""

    pack: str
    offset: int
    size: int


def replace_file(path: Path, blob: bytes, durable: bool) -> None:
    """Replace ``path`` whole with ``blob`` (a temp file beside it, renamed over it); ``durable``: the one
    way (``atomic.write_atomic``: fsynced, the folder too)."""
    if durable:
        write_atomic(path, blob)
        return
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}")
    tmp.write_bytes(blob)
    os.replace(tmp, path)


class Packs:
    """The packs of one snapshot store: ``dir`` (``objects/``) and the store's ``lock`` file."""

    def __init__(self, objects: Path, lock: Path) -> None:
        self.dir = objects
        self.lock = lock

    @contextlib.contextmanager
    def locked(self, exclusive: bool) -> Iterator[None]:
        """Shared while contents are added or read, exclusive while ``gc`` drops them."""
        self.lock.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.lock, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
            yield
        finally:
            os.close(fd)

    def index(self) -> dict[str, Loc]:
        """Every stored content, from the packs' indexes (a pack with no index is unfinished: skipped)."""
        out: dict[str, Loc] = {}
        try:
            names = sorted(os.listdir(self.dir))
        except FileNotFoundError:
            return out
        for name in names:
            if not name.endswith(".idx"):
                continue
            pack = name.removesuffix(".idx")
            try:
                raw = (self.dir / name).read_bytes()
            except OSError:
                continue
            if not raw.startswith(IDX_MAGIC) or (len(raw) - len(IDX_MAGIC)) % IDX_ROW.size:
                raise SnapshotError(f"{self.dir / name}: a damaged pack index; snapshots using it cannot be read")
            for digest, offset, size in IDX_ROW.iter_unpack(raw[len(IDX_MAGIC):]):
                out.setdefault(digest.hex(), Loc(pack, offset, size))
        return out

    def pack_path(self, pack: str) -> Path:
        return self.dir / f"{pack}.pack"

    def idx_path(self, pack: str) -> Path:
        return self.dir / f"{pack}.idx"

    def gc(self, live: set[str]) -> tuple[int, int]:
        """Drop the contents not in ``live`` (packs rewritten without them, unfinished packs removed); return
        (contents, bytes) removed. The caller holds the lock exclusive."""
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
                new = PackWriter(self.pack_path(f"{pack}-gc{secrets.token_hex(3)}"), {})
                with open(self.pack_path(pack), "rb") as src:
                    for d, loc in sorted(keep.items(), key=lambda kv: kv[1].offset):
                        src.seek(loc.offset)
                        new.add(d, src.read(loc.size))
                new.finish(self.idx_path(new.path.name.removesuffix(".pack")), durable=True)
            self.idx_path(pack).unlink()
            self.pack_path(pack).unlink(missing_ok=True)
        indexed = {n.removesuffix(".idx") for n in os.listdir(self.dir) if n.endswith(".idx")}
        for name in os.listdir(self.dir):
            if name.endswith(".pack") and name.removesuffix(".pack") not in indexed:
                (self.dir / name).unlink()  # unfinished: its snapshot never got a manifest
        return removed, freed


class PackWriter:
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
        replace_file(idx, body, durable)
        for d, (o, n) in self.rows.items():
            self.known[d] = Loc(self.path.name.removesuffix(".pack"), o, n)

    def abandon(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None
        self.path.unlink(missing_ok=True)


class PackReader:
    """Reads contents out of packs (``pread`` on one descriptor per pack, shared by threads)."""

    def __init__(self, packs: Packs, index: dict[str, Loc]) -> None:
        self.packs = packs
        self.index = index
        self.fds: dict[str, int] = {}
        self.lock = threading.Lock()

    def _fd(self, pack: str) -> int:
        with self.lock:
            fd = self.fds.get(pack)
            if fd is None:
                fd = os.open(self.packs.pack_path(pack), os.O_RDONLY | os.O_CLOEXEC)
                self.fds[pack] = fd
            return fd

    def copy_out(self, digest: str, dest: str, what: str) -> None:
        """Write content ``digest`` to a new file ``dest``, verified by hash on the way (``what``: its path)."""
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
            raise SnapshotError(f"stored content of {what} is damaged (hash mismatch); the restore stopped there")

    def close(self) -> None:
        for fd in self.fds.values():
            os.close(fd)
        self.fds.clear()
