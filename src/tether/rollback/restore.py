"""Restoring a snapshot: the folder made byte-identical to it.

Contents, modes, symlinks, empty directories, mtimes (and owners when run as root): what was created
after the snapshot is removed and only what differs is rewritten, from contents verified by hash on the
way. Git repositories found inside a folder are left to git: never removed. Not kept: hard links
(restored as separate files), extended attributes and ACLs; sockets, FIFOs and devices are left alone.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import stat
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tether.rollback.manifest import Entry, Manifest, Manifests, content_same, fsname, is_repo, join, kind, under_any
from tether.rollback.packs import PackReader, Packs, SnapshotError


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


Write = tuple[Entry, str, bool]  # the entry, its path, whether a file is there to replace


def restore(packs: Packs, manifests: Manifests, ident: str, folder: str | os.PathLike[str] | None,
            workers: int) -> RestoreInfo:
    """Make ``folder`` (default: the one snapshotted) exactly what snapshot ``ident`` holds; file writes on
    up to ``workers`` threads."""
    started = time.monotonic()
    m = manifests.read(ident)
    root = Path(os.path.realpath(folder if folder is not None else m.root))
    result = RestoreInfo(ident, str(root))
    want = {e.path: e for e in m.entries}
    ignore = m.ignored()
    is_root = os.geteuid() == 0
    with packs.locked(exclusive=False):
        known = packs.index()
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
        _prune(root, want, ignore, result, opened)
        base = str(root)
        writes: list[Write] = []
        for e in m.entries:
            if e.path and not under_any(e.path, ignore):
                job = _put_back(base, e, m, result, opened, is_root)
                if job is not None:
                    writes.append(job)
        reader = PackReader(packs, known)

        def write(job: Write) -> None:
            _write(reader, job[0], job[1], job[2], is_root)

        try:
            if len(writes) > 1 and workers > 1:  # file creation is syscall-bound: threads overlap it
                with ThreadPoolExecutor(workers) as pool:
                    list(pool.map(write, writes))
            else:
                for job in writes:
                    write(job)
        finally:
            reader.close()
        result.written += [e.path for e, _, _ in writes]
        for e in sorted((e for e in m.entries if e.kind == "d"), key=lambda e: e.path.count("/"), reverse=True):
            if e.path and under_any(e.path, ignore):
                continue
            _finish(os.path.join(base, e.path) if e.path else base, e, is_root, result)
    result.seconds = round(time.monotonic() - started, 4)
    return result


def _prune(root: Path, want: dict[str, Entry], ignore: set[str], result: RestoreInfo, opened: dict[str, int]) -> None:
    """Remove what the snapshot does not hold, and whatever changed type."""
    stack = [""]
    while stack:
        rel = stack.pop()
        here = os.path.join(root, rel) if rel else str(root)
        for de in list(os.scandir(here)):
            child = join(rel, fsname(de.name))
            if child in ignore:
                continue
            st = de.stat(follow_symlinks=False)
            e = want.get(child)
            k = kind(st.st_mode)
            if k == "d" and is_repo(de.path) and (e is None or f"{child}/.git" not in want):
                result.left.append(child)  # a git repository made since: git's business, not ours
                ignore.add(child)
                continue
            if e is None or e.kind != k:
                _writable(here, rel, opened)
                _remove(Path(de.path))
                result.removed.append(child)
            elif k == "d":
                stack.append(child)


def _put_back(base: str, e: Entry, m: Manifest, result: RestoreInfo, opened: dict[str, int],
              is_root: bool) -> Write | None:
    """Directories and symlinks now; for a file whose content differs, the write to do."""
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
        if st is not None and fsname(os.readlink(path)) == target:
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
    if st is not None and content_same(Path(path), st, e, m):
        if _fix(path, e, st, is_root, link=False):
            result.fixed.append(e.path)
        return None
    _writable(parent, parent_rel, opened)
    return e, path, st is not None


def _write(reader: PackReader, e: Entry, path: str, replace: bool, is_root: bool) -> None:
    """Write a file's content from its object, verified by hash on the way. A file that is there
    is replaced by a rename (unlinked first: ext4 flushes data renamed over an existing file)."""
    dest = os.path.join(os.path.dirname(path), f".tether-restore-{secrets.token_hex(6)}") if replace else path
    try:
        reader.copy_out(e.data or "", dest, e.path)
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
