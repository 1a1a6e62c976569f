"""What deleting or overwriting a path loses: nothing git cannot restore, regenerable output, or data.

Git's view is read from the index file itself (no subprocess): an entry whose recorded stat (mtime, ctime,
size, inode) still matches the file says the file's content is the blob git holds, so ``git restore``
brings it back as it was. The parsed index is cached per repository on the index file's (mtime_ns,
inode, size); a file changed within the index's own timestamp (git's "racy" case) counts as changed.
A file the latest tether snapshot of its folder holds as it is now (``snapshots``, asked when the context
names the state directory's store) is restorable too: ``tether rollback`` puts it back.

Never raises for a path it cannot read: what cannot be checked is data.
"""

from __future__ import annotations

import fnmatch
import glob
import itertools
import os
import stat
import struct
import threading
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Final

from tether.classify import snapshots
from tether.classify.paths import PH, has_magic

if TYPE_CHECKING:
    from tether.classify.scan import Scan

#: Directory names whose contents a build or an install recreates.
REGENERABLE_DIRS: Final = frozenset(
    {
        "node_modules",
        "dist",
        "build",
        "target",
        "__pycache__",
        ".venv",
        "venv",
        ".tox",
        ".nox",
        ".pytest_cache",
        ".mypy_cache",
        ".ruff_cache",
        ".hypothesis",
        ".cache",
        ".parcel-cache",
        ".next",
        ".nuxt",
        ".svelte-kit",
        ".turbo",
        ".gradle",
        ".eggs",
        "htmlcov",
        "coverage",
        "_build",
        ".angular",
        ".dart_tool",
        "bower_components",
        ".pnpm-store",
        ".yarn-cache",
        ".vite",
        ".docusaurus",
        ".expo",
        "DerivedData",
        ".build",
        "cmake-build-debug",
        "cmake-build-release",
        ".ipynb_checkpoints",
        ".benchmarks",
        ".sass-cache",
    }
)
#: File names and suffixes of build output.
REGENERABLE_FILES: Final = frozenset({".coverage", ".DS_Store", "Thumbs.db", ".eslintcache", ".stylelintcache"})
REGENERABLE_SUFFIXES: Final = (".pyc", ".pyo", ".o", ".obj", ".class", ".tsbuildinfo", ".egg-info", ".d.o")

#: Files a redirect commonly captures a command's output into: overwriting one again is logged, not data loss.
CAPTURE_SUFFIXES: Final = (".log", ".out", ".txt")

#: How many entries a tree walk looks at before it gives up (a bigger tree counts as data).
MAX_WALK: Final = 5000
MAX_INDEX_BYTES: Final = 256 << 20

NONE: Final = "none"  # nothing there: nothing is lost
RESTORABLE: Final = "restorable"  # git holds it as it is
REGENERABLE: Final = "regenerable"  # build output, caches, installed dependencies
DATA: Final = "data"  # anything else: untracked, ignored, changed since git saw it, or not checkable


def regenerable_name(path: str) -> bool:
    """Whether ``path`` (any form) is build output by its name: in a regenerable directory, or named so."""
    segs = [s for s in path.split("/") if s]
    if not segs:
        return False
    base = segs[-1]
    if base in REGENERABLE_FILES or base.endswith(REGENERABLE_SUFFIXES):
        return True
    return any(s in REGENERABLE_DIRS or s.endswith(".egg-info") for s in segs)


def regenerable_pattern(pattern: str) -> bool:
    """Whether every name a glob (``*.pyc``, ``__pycache__``) matches is build output."""
    if pattern in REGENERABLE_DIRS or pattern in REGENERABLE_FILES:
        return True
    if pattern.startswith("*") and not any(c in pattern[1:] for c in "*?["):
        return pattern[1:].endswith(REGENERABLE_SUFFIXES) and pattern[1:2] == "."
    return False


# ------------------------------------------------------------------------------------------ git index


class _Index:
    __slots__ = ("entries", "mtime_ns")

    def __init__(self, mtime_ns: int, entries: dict[str, tuple[int, int, int, int, int]]) -> None:
        self.mtime_ns = mtime_ns
        #: path relative to the work tree -> (mode, mtime_ns, ctime_ns, size & 0xffffffff, ino & 0xffffffff)
        self.entries = entries


_lock: Final = threading.Lock()
#: git dir -> (the index file's (mtime_ns, inode, size), its entries or None when unreadable)
_indexes: dict[str, tuple[tuple[int, int, int], _Index | None]] = {}


def _parse_index(data: bytes) -> dict[str, tuple[int, int, int, int, int]] | None:
    """The entries of a git index (versions 2 to 4, sha1), or None for anything else (split index, sha256)."""
    if len(data) < 12 or data[:4] != b"DIRC":
        return None
    version, count = struct.unpack_from(">II", data, 4)
    if version not in (2, 3, 4):
        return None
    out: dict[str, tuple[int, int, int, int, int]] = {}
    pos = 12
    prev = b""
    n = len(data)
    unpack = struct.unpack_from
    for _ in range(count):
        if pos + 62 > n:
            return None
        cs, cn, ms, mn, _dev, ino, mode, _uid, _gid, size = unpack(">10I", data, pos)
        flags = unpack(">H", data, pos + 60)[0]
        p = pos + 62
        if flags & 0x4000:
            p += 2
        if version == 4:
            strip = data[p] & 127
            c = data[p]
            p += 1
            while c & 128:
                c = data[p]
                p += 1
                strip = ((strip + 1) << 7) | (c & 127)
            end = data.find(b"\x00", p)
            if end < 0 or strip > len(prev):
                return None
            name = prev[: len(prev) - strip] + data[p:end]
            pos = end + 1
        else:
            end = data.find(b"\x00", p)
            if end < 0:
                return None
            name = data[p:end]
            pos = pos + ((p - pos + len(name) + 8) & ~7)
        prev = name
        if flags & 0x3000:  # a merge stage: the file is in conflict, not as git holds it
            continue
        out[name.decode("utf-8", "surrogateescape")] = (
            mode,
            ms * 1_000_000_000 + mn,
            cs * 1_000_000_000 + cn,
            size,
            ino,
        )
    # A split index keeps its entries elsewhere: "link" extension.
    if data.find(b"link", pos, pos + 8) == pos:
        return None
    return out


def _git_dir(top: str) -> str | None:
    """The git directory of the work tree at ``top`` (``.git`` itself, or where a ``.git`` file points)."""
    dot = top.rstrip("/") + "/.git"
    try:
        st = os.stat(dot)
    except OSError:
        return None
    if stat.S_ISDIR(st.st_mode):
        return dot
    try:
        with open(dot, encoding="utf-8") as f:
            line = f.read(4096).strip()
    except (OSError, UnicodeDecodeError):
        return None
    if not line.startswith("gitdir:"):
        return None
    gd = line[7:].strip()
    return gd if gd.startswith("/") else os.path.normpath(os.path.join(top, gd))


def _index(gitdir: str) -> _Index | None:
    path = gitdir + "/index"
    try:
        st = os.stat(path)
    except OSError:
        return None
    key = (st.st_mtime_ns, st.st_ino, st.st_size)
    cached = _indexes.get(gitdir)
    if cached is not None and cached[0] == key:
        return cached[1]
    entries = None
    if st.st_size <= MAX_INDEX_BYTES:
        try:
            with open(path, "rb") as f:
                entries = _parse_index(f.read(MAX_INDEX_BYTES + 1))
        except (OSError, IndexError, struct.error):
            entries = None
    idx = None if entries is None else _Index(st.st_mtime_ns, entries)
    with _lock:
        if len(_indexes) > 64:
            _indexes.clear()
        _indexes[gitdir] = (key, idx)
    return idx


def _repo_of(path: str) -> tuple[str, str] | None:
    """(work tree, git dir) of the repository holding ``path``, or None."""
    d = path
    for _ in range(64):
        d = d.rsplit("/", 1)[0] or "/"
        gd = _git_dir(d)
        if gd is not None:
            return d, gd
        if d == "/":
            return None
    return None


def _clean(idx: _Index, rel: str, st: os.stat_result) -> bool:
    e = idx.entries.get(rel)
    if e is None:
        return False
    mode, mtime_ns, ctime_ns, size, ino = e
    if st.st_mtime_ns >= idx.mtime_ns:  # racy: changed in the same instant the index was written
        return False
    if stat.S_ISLNK(st.st_mode) != (mode & 0o170000 == 0o120000):
        return False
    return (
        st.st_mtime_ns == mtime_ns
        and st.st_ctime_ns == ctime_ns
        and st.st_size & 0xFFFFFFFF == size
        and st.st_ino & 0xFFFFFFFF == ino
    )


# ------------------------------------------------------------------------------------------- judging


class Verdict:
    """What destroying some paths loses: the worst fate found, and the path that decided it."""

    __slots__ = ("fate", "path", "why")

    def __init__(self, fate: str, path: str = "", why: str = "") -> None:
        self.fate = fate
        self.path = path
        self.why = why


_RANK: Final = {NONE: 0, REGENERABLE: 1, RESTORABLE: 2, DATA: 3}


def _worse(a: Verdict, b: Verdict) -> Verdict:
    return b if _RANK[b.fate] > _RANK[a.fate] else a


#: ``Verdict.why`` of a restorable file that only a tether snapshot holds.
SNAPSHOT: Final = "a tether snapshot holds it"


def file_fate(path: str, st: os.stat_result | None = None, snaps: str = "") -> Verdict:
    """The fate of one absolute, normalised path's current content (not following a final symlink);
    ``snaps``: the snapshot store to ask when git cannot restore it (empty: none)."""
    if st is None:
        try:
            st = os.lstat(path)
        except OSError:
            return Verdict(NONE, path)
    if regenerable_name(path):
        return Verdict(REGENERABLE, path)
    if stat.S_ISDIR(st.st_mode):
        return Verdict(RESTORABLE, path)  # an empty directory holds nothing; callers walk full ones
    if not (stat.S_ISREG(st.st_mode) or stat.S_ISLNK(st.st_mode)):
        return Verdict(DATA, path, "is not a regular file")
    if st.st_size == 0 and stat.S_ISREG(st.st_mode):
        return Verdict(NONE, path)
    v = _git_fate(path, st)
    if v.fate == DATA and snaps and snapshots.holds(snaps, path, st):
        return Verdict(RESTORABLE, path, SNAPSHOT)
    return v


def _git_fate(path: str, st: os.stat_result) -> Verdict:
    repo = _repo_of(path)
    if repo is None:
        return Verdict(DATA, path, "is in no git repository")
    top, gitdir = repo
    idx = _index(gitdir)
    if idx is None:
        return Verdict(DATA, path, "has a git index tether cannot read")
    rel = path[len(top.rstrip("/")) + 1 :]
    if _clean(idx, rel, st):
        return Verdict(RESTORABLE, path)
    if rel in idx.entries:
        return Verdict(DATA, path, "has changes git does not hold")
    return Verdict(DATA, path, "is not tracked by git")


def tree_fate(path: str, snaps: str = "") -> Verdict:
    """The worst fate of everything under ``path`` (a file or a directory), walking at most ``MAX_WALK``
    entries; regenerable directories are not entered."""
    try:
        st = os.lstat(path)
    except OSError:
        return Verdict(NONE, path)
    if not stat.S_ISDIR(st.st_mode) or regenerable_name(path):
        return file_fate(path, st, snaps)
    repo = _repo_of(path + "/x")
    if repo is None:
        if not snapshots.covers(snaps, path):
            return Verdict(DATA, path, "is in no git repository")
    elif (repo[0] + "/").startswith(path.rstrip("/") + "/"):
        return Verdict(DATA, repo[0] + "/.git", "is the git repository itself")
    worst = Verdict(RESTORABLE, path)
    held = False
    seen = 0
    stack = [path]
    while stack:
        d = stack.pop()
        try:
            it = os.scandir(d)
        except OSError:
            return Verdict(DATA, d, "cannot be read")
        with it:
            for e in it:
                seen += 1
                if seen > MAX_WALK:
                    return Verdict(DATA, path, f"holds more than {MAX_WALK} entries to check")
                p = d + "/" + e.name
                try:
                    est = e.stat(follow_symlinks=False)
                except OSError:
                    return Verdict(DATA, p, "cannot be read")
                if stat.S_ISDIR(est.st_mode):
                    if e.name == ".git":
                        return Verdict(DATA, p, "is a git repository")
                    if not regenerable_name(e.name):
                        stack.append(p)
                    continue
                v = file_fate(p, est, snaps)
                held = held or v.why == SNAPSHOT
                worst = _worse(worst, v)
                if worst.fate == DATA:
                    return worst
    if held and worst.fate == RESTORABLE:
        worst.why = SNAPSHOT
    return worst


def matches(root: str, patterns: Iterable[str], icase: bool = False) -> Iterable[str]:
    """Paths under ``root`` whose name matches one of ``patterns`` (all paths when there is none), at most
    ``MAX_WALK`` entries looked at; past that, ``root`` itself is yielded (the caller judges the whole tree)."""
    pats = [p.lower() for p in patterns] if icase else list(patterns)
    seen = 0
    stack = [root]
    while stack:
        d = stack.pop()
        try:
            it = os.scandir(d)
        except OSError:
            continue
        with it:
            for e in it:
                seen += 1
                if seen > MAX_WALK:
                    yield root
                    return
                name = e.name.lower() if icase else e.name
                p = d + "/" + e.name
                if not pats or any(fnmatch.fnmatchcase(name, x) for x in pats):
                    yield p
                elif e.is_dir(follow_symlinks=False):
                    stack.append(p)


# --------------------------------------------------------------------------------------- into a scan

MAX_GLOB: Final = 200


def judge(scan: Scan, p: str | None, how: str, text: str, recursive: bool = False, missing: str = "") -> None:
    """Add what destroying ``p`` (a normalised path from ``Scan.path``; None when only known at run time)
    means: ``pr.draft`` when git can restore it, ``deps.install`` (logged) for regenerable output,
    ``data.delete`` for anything else. ``how`` is a verb (``deletes``, ``truncates``, ``overwrites``);
    ``missing`` the class when nothing is there now (none: nothing is lost). Wildcards are expanded now;
    a recursive delete of a path that is not there is judged by its name, as before this module. A file
    the latest tether snapshot of its folder holds as it is now (``Context.snapshots``) is restorable."""
    if p is None or PH in p:
        if how.endswith("deletes"):  # an overwrite of a run-time path is already unknown (Scan.path)
            scan.add("data.delete", f"{how} files chosen at run time", text)
        return
    if has_magic(p):
        found = list(itertools.islice(glob.iglob(p), MAX_GLOB + 1))
        if len(found) > MAX_GLOB:
            scan.add("data.delete", f"{how} more than {MAX_GLOB} files matching {p}", text)
            return
        if not found:
            if regenerable_name(p.rsplit("/", 1)[0]) or regenerable_pattern(p.rsplit("/", 1)[-1]):
                scan.add("deps.install", f"{how} regenerable output {p}", text)
            else:
                scan.add("data.delete", f"{how} files chosen at run time ({p})", text)
            return
        for f in found:
            judge(scan, os.path.normpath(f), how, text, recursive, missing)
        return
    snaps = scan.ctx.snapshots
    _say(scan, tree_fate(p, snaps) if recursive else file_fate(p, None, snaps), p, how, text, recursive, missing)


def _say(scan: Scan, v: Verdict, p: str, how: str, text: str, recursive: bool = False, missing: str = "") -> None:
    if v.fate == NONE:
        if recursive and not regenerable_name(p):
            scan.add("data.delete", f"{how} {p} and everything in it", text)
        elif recursive:
            scan.add("deps.install", f"{how} regenerable output {p}", text)
        elif missing:
            scan.add(missing, f"{how} {p}, which is not there now", text)
    elif v.fate == REGENERABLE:
        scan.add("deps.install", f"{how} regenerable output {v.path}", text)
    elif v.fate == RESTORABLE:
        scan.add("pr.draft", f"{how} {p}; {'tether rollback' if v.why == SNAPSHOT else 'git'} can restore it", text)
    elif how == "overwrites" and p.endswith(CAPTURE_SUFFIXES):
        # `pytest > out.txt`, run twice: a command's captured output, written again (rm of it stays data)
        scan.add("deps.install", f"{how} {v.path}, captured output", text)
    else:
        scan.add("data.delete", f"{how} {v.path}, which {v.why}: nothing can restore it", text)


# ------------------------------------------------------------------------------ rewrites by tool calls

#: A file read to weigh a rewrite against it: past this, the rewrite counts as replacing all of it.
MAX_REWRITE_READ: Final = 1 << 20


def lost(old: str, new: str) -> int:
    """Bytes of ``old`` that ``new`` does not keep: what an edit that turns ``old`` into ``new`` takes away.

    Lines are matched as a multiset (blanks at their ends ignored), so moving lines around or adding some takes
    nothing away; the lines left over are paired in order, and of each pair only what lies between their common
    start and common end counts (``x = foo`` to ``x = bar`` takes three bytes); an old line with no partner
    counts whole."""
    old_lines = [line.strip().encode("utf-8", "surrogatepass") for line in old.splitlines()]
    new_lines = [line.strip().encode("utf-8", "surrogatepass") for line in new.splitlines()]
    keep = Counter(new_lines)
    gone: list[bytes] = []
    for line in old_lines:
        if keep[line] > 0:
            keep[line] -= 1
        else:
            gone.append(line)
    if not gone:
        return 0
    left: list[bytes] = []  # the new lines no old line matched, in order
    for line in new_lines:
        if keep[line] > 0:
            keep[line] -= 1
            left.append(line)
    total = 0
    for i, o in enumerate(gone):
        n = left[i] if i < len(left) else b""
        head = _common(o, n)
        tail = _common(o[head:][::-1], n[head:][::-1])
        total += len(o) - head - tail + 1  # and its line break
    return total


def _common(a: bytes, b: bytes) -> int:
    """The length of the longest common start of ``a`` and ``b``."""
    n = min(len(a), len(b))
    i = 0
    while i < n and a[i] == b[i]:
        i += 1
    return i


def _current(path: str, size: int) -> str | None:
    if size > MAX_REWRITE_READ:
        return None
    try:
        with open(path, "rb") as f:
            return f.read(MAX_REWRITE_READ + 1).decode("utf-8", "replace")
    except OSError:
        return None


def rewrite(
    scan: Scan, p: str | None, how: str, text: str, new: str = "", edits: Sequence[tuple[str, str, bool]] | None = None
) -> None:
    """Judge a tool's rewrite of the file ``p`` (a path from ``Scan.path``, taken literally) like a shell
    overwrite (``judge``) when it takes away at least half of what the file holds now; a smaller change is an
    edit, as ``sed -i`` is, and a file that is not there (or empty) is simply written.

    The rewrite replaces the whole file with ``new``, or makes ``edits``: (text replaced, its replacement,
    whether every occurrence is). What is taken away is counted in lines (``lost``), so a file written again
    with small changes keeps most of itself; a whole-file rewrite of a file past ``MAX_REWRITE_READ`` is not
    read and counts as replacing all of it. The file itself is judged: a write goes through a symlink."""
    if p is None or PH in p:
        return
    try:
        real = os.path.realpath(p)
        st = os.stat(real)
    except (OSError, ValueError):
        return
    size = st.st_size
    if not stat.S_ISREG(st.st_mode) or size == 0:
        return
    snaps = scan.ctx.snapshots
    if edits is None:
        v = file_fate(real, st, snaps)
        if v.fate != DATA:  # git, a snapshot or a rebuild brings it back: no need to read it
            _say(scan, v, real, how, text)
            return
        current = _current(real, size)
        gone = size if current is None else lost(current, new)
    else:
        gone = 0
        current = None
        for old, repl, every in edits:
            n = lost(old, repl)
            if every and n and old:
                current = _current(real, size) if current is None else current
                n *= max(1, current.count(old)) if current is not None else 1
            gone += n
        if gone * 2 < size:
            return
        v = file_fate(real, st, snaps)
    if gone * 2 < size:
        scan.add("pr.draft", f"{how} {real}, keeping most of it", text)
        return
    _say(scan, v, real, how, text)
