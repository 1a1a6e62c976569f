"""The kernel audit rules that report the wall's denied writes, kept equal to what the host's daemons need.

Each daemon registers the uids its walled agents run as (``register``: a file per daemon in
``REGISTRY``, named by its pid); ``reconcile`` then makes the kernel's rules keyed ``KEY`` exactly those
for the uids of the daemons still alive, under one host-wide lock, so several daemons (or a daemon killed
before it could clean up) never leave another without its rules or the host with rules nobody reads:

- per uid and architecture, exit rules for the calls that write (``open``/``openat`` only when their flags
  ask for a write: ``O_WRONLY|O_RDWR|O_CREAT|O_TRUNC``) that failed with ``EROFS``, ``EACCES``,
  ``EPERM`` or ``ENOENT``: the answers of the wall's read-only mounts, the agent's own user and the trees
  hidden from it (the watch keeps an ENOENT only for a path in one of those);
- one task rule, ``never`` for every process whose uid is none of them: processes of the host
  (started by root or by anyone else) take no audited path at all, so the audit costs only the agents
  (measured in ``bench/bench_wall.py``). Audit decides this when a process is forked: an agent's
  processes are forked by its wall after the drop to its uid.

Audit is enabled while rules are in place; ``reconcile`` with nothing registered removes them, leaves a
bare ``never`` task rule (audit once enabled would otherwise give every new process the audited path,
even disabled) and restores the enabled flag tether found (``STATE``). On a host whose audit is owned by
an audit daemon (its pid set), tether adds its exit rules beside the daemon's and touches nothing else.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import platform
from collections.abc import Iterable, Iterator
from pathlib import Path

from tether.wall import auditlink as nl

KEY = "tether-wall"
REGISTRY = Path("/run/tether-audit")
STATE = "found.json"  # the enabled flag before tether touched audit
WRITE_FLAGS = 0o1 | 0o2 | 0o100 | 0o1000  # O_WRONLY | O_RDWR | O_CREAT | O_TRUNC
# the wall's answers: read-only mounts, the agent's own user, and ENOENT for a path in a tree hidden from it
# (kept only there: wall/writewatch.py; anywhere else it is an everyday miss)
ERRNOS = (errno.EROFS, errno.EACCES, errno.EPERM, errno.ENOENT)
ERRNAMES = tuple(errno.errorcode[e] for e in ERRNOS)
BACKLOG = 8192

X86_64, I386, AARCH64 = 0xC000003E, 0x40000003, 0xC00000B7
# per architecture: (open-like calls with their flags argument index, calls that always write), by number
OPENS: dict[int, dict[int, int]] = {
    X86_64: {2: 1, 257: 2},  # open(a1 flags), openat(a2 flags)
    I386: {5: 1, 295: 2},
    AARCH64: {56: 2},
}
WRITES: dict[int, dict[int, str]] = {
    X86_64: {
        85: "creat", 83: "mkdir", 84: "rmdir", 82: "rename", 86: "link", 87: "unlink", 88: "symlink",
        90: "chmod", 92: "chown", 94: "lchown", 76: "truncate", 133: "mknod", 258: "mkdirat", 259: "mknodat",
        260: "fchownat", 263: "unlinkat", 264: "renameat", 265: "linkat", 266: "symlinkat", 268: "fchmodat",
        280: "utimensat", 316: "renameat2", 437: "openat2", 452: "fchmodat2", 188: "setxattr",
        189: "lsetxattr", 197: "removexattr", 198: "lremovexattr",
    },
    I386: {
        8: "creat", 9: "link", 10: "unlink", 14: "mknod", 15: "chmod", 16: "lchown", 38: "rename",
        39: "mkdir", 40: "rmdir", 83: "symlink", 92: "truncate", 182: "chown", 193: "truncate64",
        198: "lchown32", 212: "chown32", 296: "mkdirat", 297: "mknodat", 298: "fchownat", 301: "unlinkat",
        302: "renameat", 303: "linkat", 304: "symlinkat", 306: "fchmodat", 320: "utimensat", 353: "renameat2",
        437: "openat2", 452: "fchmodat2",
    },
    AARCH64: {
        34: "mkdirat", 33: "mknodat", 35: "unlinkat", 38: "renameat", 37: "linkat", 36: "symlinkat",
        53: "fchmodat", 54: "fchownat", 45: "truncate", 88: "utimensat", 276: "renameat2", 437: "openat2",
        452: "fchmodat2",
    },
}
OPEN_NAMES = {2: "open", 257: "openat", 5: "open", 295: "openat", 56: "openat"}


def arches() -> tuple[int, ...]:
    """The architectures whose calls a process on this host can make."""
    machine = platform.machine()
    if machine in ("x86_64", "amd64"):
        return (X86_64, I386)
    if machine in ("aarch64", "arm64"):
        return (AARCH64,)
    return ()


def call_name(arch: int, nr: int) -> str | None:
    """The name of a watched call, None for any other."""
    if nr in OPENS.get(arch, {}):
        return OPEN_NAMES.get(nr, "open")
    return WRITES.get(arch, {}).get(nr)


def exit_rules(uid: int) -> list[nl.Rule]:
    """The exit rules for one uid."""
    out = []
    for arch in arches():
        base = ((nl.F_ARCH, nl.EQUAL, arch), (nl.F_UID, nl.EQUAL, uid))
        for err in ERRNOS:
            fail = (nl.F_EXIT, nl.EQUAL, -err & 0xFFFFFFFF)  # as the kernel gives it back
            for nr, arg in sorted(OPENS[arch].items()):
                flags = (nl.F_ARG1 if arg == 1 else nl.F_ARG2, nl.BIT_MASK, WRITE_FLAGS)
                out.append(nl.Rule(nl.FILTER_EXIT, nl.ALWAYS, (nr,), (*base, fail, flags), KEY))
            out.append(nl.Rule(nl.FILTER_EXIT, nl.ALWAYS, tuple(sorted(WRITES[arch])), (*base, fail), KEY))
    return out


def task_rule(uids: Iterable[int]) -> nl.Rule:
    """``never`` for every process whose uid is none of ``uids`` (all of them when there is none)."""
    fields = tuple((nl.F_UID, nl.NOT_EQUAL, u) for u in sorted(set(uids)))
    return nl.Rule(nl.FILTER_TASK, nl.NEVER, fields=fields[: nl.MAX_FIELDS - 1], key=KEY)


@contextlib.contextmanager
def _locked(root: Path) -> Iterator[None]:
    root.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd = os.open(root / ".lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _registered(root: Path) -> set[int]:
    """The uids of the daemons alive (the files of dead ones are removed)."""
    uids: set[int] = set()
    for f in root.glob("*.json"):
        if f.name == STATE:
            continue
        try:
            pid = int(f.stem)
            got = json.loads(f.read_text())
        except (ValueError, OSError):
            f.unlink(missing_ok=True)
            continue
        if pid != os.getpid() and not _alive(pid):
            f.unlink(missing_ok=True)
            continue
        uids.update(int(u) for u in got.get("uids", []) if isinstance(u, int) and u > 0)
    return uids


def watched_by(pid: int, root: Path = REGISTRY) -> set[int]:
    """The uids daemon ``pid`` has registered now (empty when none, or unreadable)."""
    try:
        got = json.loads((root / f"{pid}.json").read_text())
    except (OSError, ValueError):
        return set()
    return {int(u) for u in got.get("uids", []) if isinstance(u, int)}


def intact(uids: Iterable[int]) -> bool:
    """Whether the kernel still has every rule these uids need, and audit on (someone's ``auditctl -D`` or
    ``-e 0`` takes them away)."""
    with nl.Link() as link:
        if link.status().enabled == 0 and any(True for _ in uids):
            return False
        have = link.rules()
    return all(r in have for u in uids for r in exit_rules(u))


def register(uids: Iterable[int], root: Path = REGISTRY) -> set[int]:
    """Set this daemon's uids (empty: none) and make the kernel's rules match every daemon's; returns the
    uids whose denied writes are now reported. Raises ``AuditError`` when the kernel refuses."""
    mine = sorted({u for u in uids if u > 0})
    with _locked(root):
        path = root / f"{os.getpid()}.json"
        if mine:
            path.write_text(json.dumps({"uids": mine}))
        else:
            path.unlink(missing_ok=True)
        return _reconcile(root, _registered(root))


def _reconcile(root: Path, uids: set[int]) -> set[int]:
    with nl.Link() as link:
        status = link.status()
        owned = status.pid == 0  # no audit daemon: the enabled flag and task rules are ours to set
        found = root / STATE
        if owned and not found.exists():
            found.write_text(json.dumps({"enabled": status.enabled}))
        want = [r for u in sorted(uids) for r in exit_rules(u)]
        have = [r for r in link.rules() if r.key == KEY]
        for rule in have:
            if rule.list == nl.FILTER_EXIT and rule not in want:
                link.delete(rule)
        if owned:
            task = task_rule(uids)
            for rule in have:
                if rule.list == nl.FILTER_TASK and rule != task:
                    link.delete(rule)
            if task not in have:
                link.add(task)
        for rule in want:
            if rule not in have:
                link.add(rule)
        if owned and uids:
            if status.enabled != 1 or status.backlog_limit < BACKLOG:
                link.set(enabled=1, backlog_limit=max(BACKLOG, status.backlog_limit))
        elif owned and found.exists():
            with contextlib.suppress(ValueError, OSError):
                before = int(json.loads(found.read_text()).get("enabled", 0))
                if before != status.enabled and before in (0, 1):
                    link.set(enabled=before)
            found.unlink(missing_ok=True)
    return uids
