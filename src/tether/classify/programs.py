"""What a path-qualified program really is, and the links and copies a command line makes.

``./cat`` is judged by the file it names, not by its name: a link into a system ``bin`` directory is
that binary; a file whose content is a system binary's (a copy) is that binary; a ``#!`` script is
its interpreter running it; any other program is ``unknown``. Project tools (``./gradlew``,
``node_modules/.bin/jest``, ``.venv/bin/pytest``) keep their name unless they are a copy of a
system binary. Links, copies and moves made earlier in the same command line are tracked in
``Scan.links``: a path under a link made in the line is the path it points to, and a program made
by ``cp /bin/rm ./cat`` is ``rm``. The file system is read (stat, realpath, the first bytes, a
hash), each file's answer cached by path, inode, mtime and size.
"""

from __future__ import annotations

import hashlib
import os
import re
import stat as st
import threading
from typing import TYPE_CHECKING, Final

from tether.classify.argv import parse
from tether.classify.paths import PH, normalize

if TYPE_CHECKING:
    from tether.classify.scan import Cmd, Scan

#: Where a bare command name is found (the default PATH): a program there is what its name says.
SYSTEM_DIRS: Final = ("/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin")
#: Multi-call binaries: the program is the name they were invoked by.
_MULTI: Final = frozenset({"busybox", "toybox", "coreutils"})
#: The dynamic loader (``/lib64/ld-linux-x86-64.so.2 PROG ARGS``).
_LOADER: Final = re.compile(r"^ld(-linux[-\w.]*|-musl-\w+|)\.so(\.\d+)*$")
#: Loader options that take a value; ``--preload``/``--audit`` load code of their own.
_LOADER_VALUE: Final = frozenset(
    {"--library-path", "--preload", "--audit", "--argv0", "--glibc-hwcaps-prepend", "--glibc-hwcaps-mask"}
)
#: Package managers of the host: never a project tool, whatever the file is called.
_HOST_TOOLS: Final = frozenset(
    {
        "apt",
        "apt-get",
        "apt-cache",
        "aptitude",
        "dpkg",
        "dpkg-query",
        "rpm",
        "yum",
        "dnf",
        "zypper",
        "apk",
        "pacman",
        "yay",
        "paru",
        "brew",
        "port",
        "snap",
        "flatpak",
        "emerge",
        "nix",
        "nix-env",
        "nix-shell",
        "nix-build",
        "nix-collect-garbage",
    }
)
#: Shells: a program whose ``#!`` names one is read and classified as shell text.
SHELLS: Final = frozenset({"sh", "bash", "dash", "zsh", "ksh", "ash", "mksh", "yash", "rbash"})
MAX_SCRIPT: Final = 256 * 1024
_MAX_LINKS: Final = 8
_MAX_CACHE: Final = 4096
_MAX_TEXTS: Final = 128  # x MAX_SCRIPT (256 KiB): at most 32 MiB of script text held

_lock: Final = threading.Lock()
_hashes: dict[tuple[str, int, int, int], str] = {}
_texts: dict[tuple[str, int, int, int], str | None] = {}
_copies: dict[tuple[str, int, int, int], str | None] = {}
#: size -> system files of that size (real paths); built once, on the first copy check.
_by_size: dict[int, list[str]] | None = None
_system_real: frozenset[str] | None = None


# ------------------------------------------------------------------------------- the system binaries


def _system_dirs() -> frozenset[str]:
    global _system_real
    if _system_real is None:
        _system_real = frozenset({os.path.realpath(d) for d in SYSTEM_DIRS} | set(SYSTEM_DIRS))
    return _system_real


def _system_index() -> dict[int, list[str]]:
    """Regular files of the system bin directories by size (one listing and stat each, once)."""
    global _by_size
    if _by_size is not None:
        return _by_size
    index: dict[int, list[str]] = {}
    seen: set[str] = set()
    for d in sorted(_system_dirs()):
        try:
            entries = list(os.scandir(d))
        except OSError:
            continue
        for e in entries:
            try:
                real = os.path.realpath(e.path)
                if real in seen:
                    continue
                seen.add(real)
                s = os.stat(real)
            except (OSError, ValueError):
                continue
            if st.S_ISREG(s.st_mode) and os.path.dirname(real) in _system_dirs():
                index.setdefault(s.st_size, []).append(real)
    _by_size = index
    return index


def _key(path: str, s: os.stat_result) -> tuple[str, int, int, int]:
    return (path, s.st_ino, s.st_mtime_ns, s.st_size)


def _digest(path: str, s: os.stat_result) -> str | None:
    k = _key(path, s)
    h = _hashes.get(k)
    if h is not None:
        return h
    try:
        with open(path, "rb") as f:
            h = hashlib.file_digest(f, "sha256").hexdigest()
    except OSError:
        return None
    with _lock:
        if len(_hashes) >= _MAX_CACHE:
            _hashes.clear()
        _hashes[k] = h
    return h


def copy_of(path: str, s: os.stat_result) -> str | None:
    """The system binary (real path) whose content ``path`` has, if any (cached by path, inode, mtime, size)."""
    same = _system_index().get(s.st_size)
    if not same:
        return None
    k = _key(path, s)
    if k in _copies:
        return _copies[k]
    mine = _digest(path, s)
    found = None
    for other in same if mine is not None else ():
        try:
            if _digest(other, os.stat(other)) == mine:
                found = other
                break
        except OSError:
            continue
    with _lock:
        if len(_copies) >= _MAX_CACHE:
            _copies.clear()
        _copies[k] = found
    return found


def read_text(path: str) -> str | None:
    """A small text file's content (cached by path, inode, mtime and size); None when it is not one."""
    try:
        s = os.stat(path)
    except (OSError, ValueError):
        return None
    if not st.S_ISREG(s.st_mode) or s.st_size > MAX_SCRIPT:
        return None
    k = _key(path, s)
    if k in _texts:
        return _texts[k]
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_SCRIPT + 1)
    except OSError:
        return None
    text = None if len(data) > MAX_SCRIPT or b"\x00" in data else data.decode("utf-8", "replace")
    with _lock:
        if len(_texts) >= _MAX_TEXTS:  # texts are up to MAX_SCRIPT each: fewer of them
            _texts.clear()
        _texts[k] = text
    return text


def unreadable(path: str) -> str:
    """Why ``read_text`` has no text for ``path``, in a few words (for ``tether explain``)."""
    try:
        s = os.stat(path)
    except FileNotFoundError:
        return "it is not there"
    except (OSError, ValueError) as err:
        return f"it cannot be looked at ({getattr(err, 'strerror', None) or err})"
    if st.S_ISDIR(s.st_mode):
        return "it is a folder"
    if not st.S_ISREG(s.st_mode):
        return "it is not a regular file (a pipe, socket or device)"
    if s.st_size > MAX_SCRIPT:
        return f"it is over {MAX_SCRIPT // 1024} KiB"
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_SCRIPT + 1)
    except OSError as err:
        return f"it cannot be opened ({err.strerror or err})"
    if b"\x00" in data:
        return "it is binary"
    if len(data) > MAX_SCRIPT:
        return f"it is over {MAX_SCRIPT // 1024} KiB"
    return "it changed while it was read"


# ------------------------------------------------------------------------------------ path spelling


def spelled(p: str, cwd: str) -> str:
    """``/proc/self/root/X`` is ``/X`` and ``/proc/self/cwd/X`` is ``cwd/X`` (absolute, normalised ``p``)."""
    parts = p.split("/", 4)
    if len(parts) > 3 and parts[1] == "proc" and (parts[2] in ("self", "thread-self") or parts[2].isdigit()):
        rest = "/" + parts[4] if len(parts) > 4 else ""
        if parts[3] == "root":
            return rest or "/"
        if parts[3] == "cwd" and parts[2] != "thread-self" and not parts[2].isdigit():
            return (cwd.rstrip("/") + rest) or "/"
    return p


def follow(links: dict[str, tuple[str, bool]], p: str, copies: bool = False) -> str:
    """``p`` with the links made earlier in the line followed (copies too with ``copies``)."""
    for _ in range(_MAX_LINKS):
        hit = None
        probe = p
        while probe and probe != "/":
            entry = links.get(probe)
            if entry is not None and (entry[1] or copies):
                hit = (probe, entry[0])
                break
            probe = probe.rsplit("/", 1)[0]
        if hit is None:
            return p
        p = hit[1] + p[len(hit[0]) :]
    return p


def relocate(scan: Scan, p: str) -> str:
    """The path an absolute, normalised ``p`` names: ``/proc/self/root`` spellings and links made in the line."""
    if p[:6] == "/proc/":
        p = spelled(p, scan.cwd)
    return follow(scan.links, p) if scan.links else p


def where(scan: Scan, raw: str) -> str:
    """The absolute path ``raw`` names for this command: ``~`` and the working directory, then ``relocate``."""
    return relocate(scan, normalize(raw, scan.cwd, scan.home if raw[:1] == "~" else ""))


# ----------------------------------------------------------------------------- links in the line

_TRACKED_SPECS: Final[dict[str, tuple[str, frozenset[str]]]] = {
    "ln": ("tS", frozenset({"--target-directory", "--suffix", "--backup"})),
    "link": ("", frozenset()),
    "cp": (
        "tS",
        frozenset(
            {"--target-directory", "--suffix", "--backup", "--sparse", "--reflink", "--preserve", "--no-preserve"}
        ),
    ),
    "mv": ("tS", frozenset({"--target-directory", "--suffix", "--backup"})),
    "install": (
        "tSgmoC",
        frozenset({"--target-directory", "--suffix", "--group", "--mode", "--owner", "--backup", "--strip-program"}),
    ),
}
TRACKED: Final = frozenset(_TRACKED_SPECS)


def track(scan: Scan, cmd: Cmd) -> None:
    """Remember the links, copies and moves ``cmd`` makes, for the rest of the command line."""
    name = cmd.name
    short_val, long_val = _TRACKED_SPECS[name]
    o = parse(cmd.args, short_val, long_val)
    pos = [a for a in o.pos if PH not in a]
    if name == "install" and o.has("-d", "--directory"):
        return
    if len(pos) != len(o.pos):
        return
    symbolic = (name == "ln" and o.has("-s", "--symbolic")) or (name == "cp" and o.has("-s", "--symbolic-link"))
    through = name in ("ln", "link", "mv") or (name == "cp" and o.has("-l", "--link", "-s", "--symbolic-link"))
    target_dir = o.get("-t", "--target-directory")
    if target_dir is not None:
        dest_dir: str | None = where(scan, target_dir)
        sources = pos
    elif not pos:
        return
    elif len(pos) == 1 and name == "ln":
        dest_dir, sources = scan.cwd if PH not in scan.cwd else None, pos
    elif len(pos) == 1:
        return
    else:
        last = pos[-1]
        sources = pos[:-1]
        dst = where(scan, last)
        if not o.has("-T", "--no-target-directory") and (len(sources) > 1 or last.endswith("/") or _is_dir(dst)):
            dest_dir = dst
        else:
            dest_dir = None
            _remember(scan, sources[0], dst, symbolic, through)
            return
    if dest_dir is None or PH in dest_dir:
        return
    for src in sources:
        base = src.rstrip("/").rsplit("/", 1)[-1]
        if base and base not in (".", ".."):
            _remember(scan, src, dest_dir.rstrip("/") + "/" + base, symbolic, through)


def _is_dir(p: str) -> bool:
    try:
        return os.path.isdir(p)
    except (OSError, ValueError):
        return False


def _remember(scan: Scan, src: str, dst: str, symbolic: bool, through: bool) -> None:
    if PH in dst or PH in scan.cwd:
        return
    if symbolic and src[:1] not in ("/", "~"):
        # A relative symlink points from the link's own directory.
        base = dst.rsplit("/", 1)[0] or "/"
        target = normalize(src, base, "")
        target = follow(scan.links, target) if scan.links else target
    else:
        target = where(scan, src)
    if target == dst:
        return
    links = scan.links
    if links is None:
        links = scan.links = {}
    if len(links) < 256:
        links[dst] = (target, through)


# ---------------------------------------------------------------------------- program resolution


def _shebang(head: bytes) -> list[str] | None:
    """The interpreter argv of a ``#!`` line (``/usr/bin/env -S node --x`` -> ``[env, -S, node --x]``)."""
    if not head.startswith(b"#!"):
        return None
    line = head[2:].split(b"\n", 1)[0].decode("utf-8", "replace").strip()
    if not line:
        return None
    interp, _, arg = line.partition(" ")
    arg = arg.strip()
    return [interp, arg] if arg else [interp]


class Program:
    """What a path-qualified program is: a ``name`` to classify as, an ``argv`` to classify instead,
    or an ``unknown`` reason."""

    __slots__ = ("argv", "name", "unknown")

    def __init__(self, name: str = "", argv: list[str] | None = None, unknown: str = "") -> None:
        self.name = name
        self.argv = argv
        self.unknown = unknown


def _system_name(real: str, invoked: str) -> str:
    base = real.rsplit("/", 1)[-1]
    if base in _MULTI:
        ibase = invoked.rsplit("/", 1)[-1]
        return ibase if ibase and ibase not in _MULTI else base
    return base


def identify(scan: Scan, word: str, trusted: bool, depth: int = 0) -> Program:
    """What running ``word`` (a program name with a ``/``) runs. ``trusted``: a project tool's name."""
    shown = word if len(word) <= 80 else word[:79] + "…"
    p = normalize(word, scan.cwd, scan.home if word[:1] == "~" else "")
    if p[:6] == "/proc/":
        p = spelled(p, scan.cwd)
        if p[:6] == "/proc/":
            return Program(unknown=f"runs {shown}, a program named through /proc")
    if p[:8] == "/dev/fd/":
        return Program(unknown=f"runs {shown}, an open file")
    links = scan.links
    if links:
        made = follow(links, p, copies=True)
        if made != p:
            if depth >= _MAX_LINKS:
                return Program(unknown=f"runs {shown} through too many links made in this command")
            return identify(scan, made, trusted, depth + 1)
    if scan.wrote(p, ("write",) if depth else ("write", "delete")):
        # Reached through a link or move made in the line: its source moved away is not new content.
        return Program(unknown=f"runs {shown}, which this command writes first")
    system = _system_dirs()
    try:
        real = os.path.realpath(p)
        if os.path.dirname(real) in system:
            return Program(name=_system_name(real, p))
        if os.path.dirname(p) in system:
            # A link kept in a system bin directory (/usr/bin/java -> /etc/alternatives/java -> ...).
            return Program(name=p.rsplit("/", 1)[-1])
        s = os.stat(real)
    except FileNotFoundError:
        return Program()  # nothing there, so nothing runs (one this line writes is caught above)
    except (OSError, ValueError) as err:
        why = getattr(err, "strerror", None) or type(err).__name__
        return (
            Program() if trusted else Program(unknown=f"runs {shown}, which the classifier could not look at ({why})")
        )
    if not st.S_ISREG(s.st_mode):
        return Program() if st.S_ISDIR(s.st_mode) else Program(unknown=f"runs {shown}, which is not a file")
    same = copy_of(real, s)
    if same is not None:
        return Program(name=_system_name(same, p))
    if trusted:
        return Program()
    try:
        with open(real, "rb") as f:
            head = f.read(256)
    except OSError as err:
        return Program(unknown=f"runs {shown}, which the classifier could not read ({err.strerror or err})")
    interp = _shebang(head)
    if interp is not None:
        return Program(argv=[*interp, word])
    if head[:4] == b"\x7fELF" or head[:4] in (b"\xcf\xfa\xed\xfe", b"\xca\xfe\xba\xbe") or b"\x00" in head:
        return Program(
            unknown=f"runs {shown}, a compiled program that is no system binary: the classifier cannot see what it does"
        )
    return Program(argv=["sh", word])  # a text file without #!: the shell runs it (ENOEXEC)


def loader(scan: Scan, cmd: Cmd) -> None:
    """``ld-linux-x86-64.so.2 [--library-path P] [--preload L] PROG ARGS``: runs PROG."""
    args = cmd.args
    i = 0
    while i < len(args):
        a = args[i]
        name = a.split("=", 1)[0]
        if name in ("--preload", "--audit"):
            scan.add("unknown", f"the dynamic loader preloads code ({name})", cmd.text)
        if name in ("--list", "--verify", "--help", "--version", "--list-tunables", "--list-diagnostics"):
            scan.add("repo.read", "the dynamic loader lists libraries", cmd.text)
            return
        if a == "--":
            i += 1
            break
        if not a.startswith("--"):
            break
        i += 2 if name in _LOADER_VALUE and "=" not in a else 1
    if i >= len(args):
        scan.add("repo.read", "the dynamic loader without a program", cmd.text)
        return
    prog = args[i]
    # The loader runs the file itself, whatever PATH says: a bare name is a file in the cwd.
    scan.run(cmd.sub([prog if "/" in prog else "./" + prog, *args[i + 1 :]]))


def is_loader(name: str) -> bool:
    return _LOADER.match(name) is not None


def resolve_into(scan: Scan, cmd: Cmd, trusted: bool) -> bool:
    """Classify ``cmd`` (whose name has a ``/``) as the program it really runs; False: as named."""
    word = cmd.argv[0]
    if PH in word:
        return False
    name = cmd.name
    if is_loader(name):
        loader(scan, cmd)
        return True
    prog = identify(scan, word, trusted and name not in _HOST_TOOLS)
    if prog.unknown:
        scan.add("unknown", prog.unknown, cmd.text)
        scan.path(word, "exec", cmd.text, kind="script")
        return True
    if prog.argv is not None:
        scan.run(cmd.sub([*prog.argv, *cmd.args]))
        return True
    if prog.name and prog.name != name and prog.name.lower() != name:
        scan.run(cmd.sub([prog.name, *cmd.args]))
        return True
    return False
