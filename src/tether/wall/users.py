"""The agents' own users: created once per host, given exactly the access their scope needs.

- ``ensure_user``: the per-host agent user (``tether-agent``), a system user without a login shell or a
  home of its own (each agent gets a private HOME from the wall);
- ``grant``: the agent's user may reach (search, ``x``) every folder above its trees, and read and
  write its trees (POSIX ACLs with ``setfacl``, also as the default for what is created later); no more:
  nothing is made readable to other users;
- ``private_dir``: a 0700 folder owned by the agent's user (its TMPDIR, its HOME).
"""

from __future__ import annotations

import os
import pwd
import shutil
import stat
import subprocess
from dataclasses import dataclass
from pathlib import Path

from tether.errors import TetherError

DEFAULT_USER = "tether-agent"
PATH = "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin"
_granted: set[tuple[str, str, str]] = set()  # (path, user, what) done by this process: starts stay cheap


class UserError(TetherError):
    """The agent's user is missing or unusable; the message says how to fix it."""


@dataclass(frozen=True)
class AgentUser:
    name: str
    uid: int
    gid: int
    groups: frozenset[int]


def lookup(name: str) -> AgentUser:
    try:
        pw = pwd.getpwnam(name)
    except KeyError:
        hint = "run `tether init --user` (or `tether service install`)" if name == DEFAULT_USER else "create it"
        raise UserError(f"the agent user {name!r} does not exist: {hint}, or set `sandbox: off`") from None
    groups = {pw.pw_gid, *os.getgrouplist(pw.pw_name, pw.pw_gid)}
    return AgentUser(pw.pw_name, pw.pw_uid, pw.pw_gid, frozenset(groups))


def lookup_uid(uid: int) -> AgentUser:
    try:
        return lookup(pwd.getpwuid(uid).pw_name)
    except KeyError:
        return AgentUser(str(uid), uid, os.getegid(), frozenset(os.getgroups()))


def ensure_user(name: str = DEFAULT_USER) -> tuple[AgentUser, bool]:
    """The user, created (system user, no login, no home) if missing; True when it was created."""
    try:
        return lookup(name), False
    except UserError:
        pass
    if os.geteuid() != 0:
        raise UserError(f"creating the agent user {name!r} needs root: sudo tether init --user")
    useradd = shutil.which("useradd", path=PATH)
    if useradd is None:
        raise UserError(f"no useradd to create the agent user {name!r}: create it with your system's tools")
    got = subprocess.run(
        [useradd, "--system", "--no-create-home", "--home-dir", "/nonexistent", "--shell", "/usr/sbin/nologin", name],
        capture_output=True,
        text=True,
        timeout=30,
    )
    if got.returncode != 0:
        raise UserError(f"useradd {name} failed: {got.stderr.strip() or got.returncode}")
    return lookup(name), True


def _setfacl(*args: str) -> None:
    setfacl = shutil.which("setfacl", path=PATH)
    if setfacl is None:
        raise UserError("setfacl is missing: apt-get install acl (it grants the agent's user its folders)")
    got = subprocess.run([setfacl, *args], capture_output=True, text=True, timeout=120)
    if got.returncode != 0:
        raise UserError(f"setfacl {' '.join(args)}: {got.stderr.strip() or got.returncode}")


def _can(st: os.stat_result, user: AgentUser, bits: int) -> bool:
    """Whether the mode alone lets ``user`` do ``bits`` (an octal digit: 1 search, 2 write, 4 read)."""
    if st.st_uid == user.uid:
        return st.st_mode >> 6 & bits == bits
    if st.st_gid in user.groups:
        return st.st_mode >> 3 & bits == bits
    return st.st_mode & bits == bits


def unreachable(user: AgentUser, tree: str, reachable: set[str]) -> str | None:
    """The outermost folder above ``tree`` that ``user`` cannot search by its mode (``reachable``: folders
    known to be searchable anyway, such as those ``grant`` opened), or None."""
    for parent in reversed(Path(tree).parents):
        if parent == Path("/") or str(parent) in reachable:
            continue
        try:
            if not _can(parent.stat(), user, 1):
                return str(parent)
        except OSError:
            return None
    return None


def grant(user: AgentUser, tree: Path, *, write: bool = True) -> None:
    """Let ``user`` reach ``tree`` (search on each folder above it) and, with ``write``, read and write in
    it (recursively, and by default for what is created later). Once per process per tree."""
    tree = Path(os.path.realpath(tree))
    key = (str(tree), user.name, "w" if write else "x")
    if key in _granted or os.geteuid() != 0:
        return
    for parent in reversed(tree.parents):
        if parent == Path("/"):
            continue
        try:
            st = parent.stat()
        except OSError:
            break
        if not _can(st, user, 1):
            _setfacl("-m", f"u:{user.name}:x", str(parent))
    if write and tree.is_dir():
        st = tree.stat()
        if st.st_uid != user.uid:
            _setfacl("-R", "-m", f"u:{user.name}:rwX,d:u:{user.name}:rwX", str(tree))
    _granted.add(key)


def private_dir(path: Path, user: AgentUser) -> Path:
    """A folder only ``user`` reads and writes (0700, owned by it), made if missing."""
    path.mkdir(parents=True, exist_ok=True)
    st = path.lstat()
    if not stat.S_ISDIR(st.st_mode):
        raise UserError(f"{path} is not a folder: remove it")
    if st.st_uid != user.uid or st.st_gid != user.gid:
        os.chown(path, user.uid, user.gid, follow_symlinks=False)
    if stat.S_IMODE(st.st_mode) != 0o700:
        os.chmod(path, 0o700)
    return path
