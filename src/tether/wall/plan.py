"""The wall for one agent of a loaded runbook, ready to prefix its command.

``prepare`` does what needs the host (the user, its private folders, the grants, the walk for protected
files, the agent CLIs' logins, the network: its own namespace with bridges to the proxy and the API unless
``network: open``) and returns a ``Wall``: the argv prefix and the environment it sets. It raises
``WallError`` with one line and the fix when the wall cannot be built; the supervisor then does not start
the agent (a failed start with that reason). ``sandbox: off`` agents get None.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from tether.errors import TetherError
from tether.runbook.load import LoadedRunbook
from tether.runbook.model import Agent
from tether.wall import bridge, bwrap, check, kinds, macos, netns, profile, proxy, ssh, users
from tether.wall.listeners import API_SOCK, PROXY_SOCK

#: The agent CLIs' logins, from the daemon user's HOME into the agent's private HOME (read-only there).
LOGINS = {"claude-code": (".claude/.credentials.json",), "codex": (".codex/auth.json",)}
OFF_VAR = "TETHER_SANDBOX"  # "off" in the daemon's environment: no wall for any agent (test suites, migration)


class WallError(TetherError):
    """The wall cannot be built for this agent; one line with the fix."""


@dataclass(frozen=True)
class Wall:
    prefix: list[str]
    env: dict[str, str]
    profile: profile.Profile
    net: bridge.Net | None = None  # its own network (None: the host's, ``network: open``)


def enabled(loaded: LoadedRunbook, name: str) -> bool:
    """Whether this agent runs inside the wall (its runbook's ``sandbox``, unless the host turned it off)."""
    return loaded.runbook.agents[name].sandbox == "on" and os.environ.get(OFF_VAR, "").lower() != "off"


def host_off() -> bool:
    return os.environ.get(OFF_VAR, "").lower() == "off"


def tmpdir(loaded: LoadedRunbook, name: str) -> Path:
    """The agent's private TMPDIR (the only scratch space inside its wall; the classifier's rule too)."""
    return loaded.state.agent_tmp(name)


def home(loaded: LoadedRunbook, name: str) -> Path:
    return loaded.state.agent_dir(name) / "home"


def _user(run_as: str | None) -> users.AgentUser:
    if os.geteuid() != 0:  # a daemon that is not root: the agent is the daemon's user, in a user namespace
        me = users.lookup_uid(os.geteuid())
        if run_as is not None and run_as != me.name:
            raise WallError(f"run_as {run_as!r} needs the daemon to run as root (it runs as {me.name!r})")
        return me
    agent_user = users.lookup(run_as or users.DEFAULT_USER)
    if agent_user.uid == 0:
        raise WallError(
            f"run_as {agent_user.name!r} is root: the wall never runs an agent as root; "
            "name another user, or set `sandbox: off`"
        )
    return agent_user


def problems(spec: Agent, uid: int, *, socat: bool = True, resolve: Callable[[str], Path] | None = None) -> list[str]:
    """What would keep this agent's wall from being built on this host (for ``tether check``; ``socat``
    False: without the missing socat, which ``tether doctor`` says once for all agents; ``resolve``: the
    runbook's paths, to check its ``ssh:`` files)."""
    out = []
    why = check.problem()
    if why is not None:
        out.append(f"the wall cannot be built here: {why}; the agent will not start")
    if uid == 0:
        try:
            if users.lookup(spec.run_as or users.DEFAULT_USER).uid == 0:
                out.append("run_as is root: the wall never runs an agent as root; the agent will not start")
        except users.UserError as exc:
            out.append(f"{exc}; the agent will not start until it exists")
    elif spec.run_as is not None and spec.run_as != users.lookup_uid(uid).name:
        out.append(f"run_as {spec.run_as!r} needs the daemon to run as root")
    if socat and spec.network != "open" and not macos.ON and check.socat() is None and check.needs_socat():
        out.append(f"network: {spec.network}: {check.SOCAT_MISSING} (or set `network: open`); the agent will not start")
    if resolve is not None:
        out += ssh.problems(spec, resolve)
    return out


def _network(
    name: str, spec: Agent, user: users.AgentUser, proxy_socket: str | None, daemon_url: str
) -> tuple[bridge.Net | None, dict[str, str]]:
    """The wall's own network (None for ``network: open``: the host's) and what it sets in the environment."""
    if spec.network == "open":
        return None, {}
    folder = os.path.dirname(proxy_socket) if proxy_socket else ""
    owner = proxy.serving(folder) if folder and daemon_url and netns.supported() else None
    if owner is not None:  # the daemon's own namespace for the agent, its proxy listening inside: no bridge
        # socat stays the ssh client's ProxyCommand (wall/ssh.py), not a bridge
        net, env = bridge.network(spec.network, os.path.realpath(folder), daemon_url, check.socat() or "socat")
        try:
            path = owner.inside(name, bridge.endpoints(net))
        except OSError as exc:
            if check.socat() is None:
                raise WallError(
                    f"sandbox: network: {spec.network}: {exc.strerror or exc}, and for bridges instead "
                    f"{check.SOCAT_MISSING}, "
                    "or set `network: open`"
                ) from None
        else:
            return replace(net, netns=path, nsenter=netns.nsenter() or "nsenter"), env
    socat = check.socat()
    if socat is None:
        raise WallError(f"sandbox: network: {spec.network}: {check.SOCAT_MISSING}, or set `network: open`")
    needed = (API_SOCK, PROXY_SOCK) if spec.network == "scoped" else (API_SOCK,)
    if not daemon_url or not folder or not all(os.path.exists(os.path.join(folder, n)) for n in needed):
        raise WallError(
            f"sandbox: network: {spec.network}: the daemon has no unix socket for {name}'s proxy "
            "and API (unix socket paths are limited to 103 bytes: a shorter state_dir fixes a long "
            "one), or set `network: open`"
        )
    try:
        users.grant(user, Path(folder), write=False)  # bwrap, as the agent's user, must reach it to bind it
    except (users.UserError, OSError) as exc:
        raise WallError(f"sandbox: {exc}") from None
    return bridge.network(spec.network, os.path.realpath(folder), daemon_url, socat)


def _logins(kind: str, agent_home: Path, user: users.AgentUser) -> list[tuple[str, str]]:
    """Copies of the agent CLI's login in the agent's HOME (0600, its own), each bound read-only."""
    out = []
    for rel in LOGINS.get(kind, ()):
        src = Path(os.path.expanduser("~")) / rel
        if not src.is_file():
            continue
        dst = agent_home / rel
        dst.parent.mkdir(parents=True, exist_ok=True)
        if not dst.exists() or dst.stat().st_mtime < src.stat().st_mtime:
            shutil.copyfile(src, dst)
        os.chmod(dst, 0o600)
        if os.geteuid() == 0:
            for p in (dst.parent, dst):
                os.chown(p, user.uid, user.gid)
        out.append((str(dst), str(dst)))
    return out


def _runtime(kind: str, user: users.AgentUser, trees: list[str]) -> tuple[list[str], list[str]]:
    """The host trees the agent must read (``kinds.runtime``) that its user cannot reach by the folders'
    modes, and the outermost such folder above each, to mask (an empty tmpfs inside, the trees bound back
    into it). bwrap runs as the agent's user and must reach a tree to bind it, so the folders above it get
    a search ACL (``users.grant``): the agent's user only ever runs inside walls, which mask those folders.
    ``trees``: the agent's own (granted: the folders above them are searchable and stay as they are)."""
    reachable = {str(p) for t in trees for p in Path(os.path.realpath(t)).parents}
    exposed: list[str] = []
    masked: list[str] = []
    for tree in kinds.runtime(kind):
        top = users.unreachable(user, tree, reachable)
        if top is not None:
            users.grant(user, Path(tree), write=False)  # bwrap, as the agent's user, must reach it to bind it
            exposed.append(tree)
            if top not in masked:
                masked.append(top)
        elif any(tree == s or tree.startswith(s + "/") for s in profile.SCRATCH):
            exposed.append(tree)  # reachable, but /tmp and /var/tmp are emptied inside: bound back (a checkout in /tmp)
    return exposed, masked


def _existing(paths: list[Path]) -> list[str]:
    return [os.path.realpath(p) for p in paths if p.exists()]


def _existing_dirs(paths: list[Path]) -> list[str]:
    return [os.path.realpath(p) for p in paths if p.is_dir()]


def prepare(loaded: LoadedRunbook, name: str, *, proxy_socket: str | None = None, daemon_url: str = "") -> Wall | None:
    """The wall for agent ``name`` (None for ``sandbox: off``); raises ``WallError``. ``proxy_socket``: the
    agent's ``proxy.sock`` (its folder holds ``api.sock`` too) and ``daemon_url`` the daemon's API, both
    needed unless ``network: open``."""
    if not enabled(loaded, name):
        return None
    spec = loaded.runbook.agents[name]
    try:
        tools = None if macos.ON else check.tools()  # macOS: sandbox-exec (macos.tools() below)
        if tools is None:
            macos.tools()
        user = _user(spec.run_as)
        private_tmp = users.private_dir(tmpdir(loaded, name), user)
        private_home = users.private_dir(home(loaded, name), user)
        local = [
            loaded.resolve(p)
            for p in (*spec.scope.folders, *spec.scope.repos)
            if "://" not in p and not p.startswith("git@")
        ]
        writable = _existing_dirs([loaded.agent_cwd(name), *local])
        for tree in writable:
            users.grant(user, Path(tree))
        for mine in (private_tmp, private_home):
            users.grant(user, mine, write=False)
        files = _logins(spec.kind, private_home, user)
        needs = kinds.needs(spec.kind)
        home_dirs = [os.path.realpath(users.private_dir(private_home / rel, user)) for rel in needs.writable]
        exposed, masked = _runtime(spec.kind, user, [*writable, str(private_tmp), str(private_home)])
    except (check.WallUnavailable, users.UserError, OSError) as exc:
        raise WallError(f"sandbox: {exc}") from None
    patterns = [*profile.HIDDEN, *(p for p in spec.approvals.protected_paths if not os.path.isabs(p))]
    found_dirs, found_files = profile.find_protected(writable, patterns)
    for p in spec.approvals.protected_paths:
        if os.path.isabs(p) and os.path.lexists(p):
            (found_dirs if os.path.isdir(p) else found_files).append(os.path.realpath(p))
    others = _existing_dirs([loaded.agent_cwd(n) for n in loaded.runbook.agents if n != name])
    net, net_env = (None, {}) if tools is None else _network(name, spec, user, proxy_socket, daemon_url)
    try:
        ssh_files, ssh_env = ssh.prepare(spec, loaded.resolve, private_home, user, net)
    except (ssh.SshError, users.UserError, OSError) as exc:
        raise WallError(f"sandbox: {exc}") from None
    prof = profile.build(
        agent=name,
        uid=user.uid,
        gid=user.gid,
        user=user.name,
        home=os.path.realpath(private_home),
        tmpdir=os.path.realpath(private_tmp),
        writable=writable,
        state_dir=os.path.realpath(loaded.state.root),
        runbook=os.path.realpath(loaded.path),
        others=others,
        protected_dirs=found_dirs,
        protected_files=found_files,
        read_only=[*profile.read_only_in(writable), *_existing([private_home / rel for rel in needs.read_only])],
        files=[*files, *ssh_files],
        home_writable=home_dirs,
        exposed=exposed,
        masked=masked,
    )
    if tools is None:  # macOS: a sandbox-exec profile from the same scope, in the run folder (wall/macos.py)
        try:
            prefix, mac_env = macos.wall(prof, spec.network, loaded.state.agent_dir(name) / "run", daemon_url)
        except (check.WallUnavailable, OSError) as exc:
            raise WallError(f"sandbox: {exc}") from None
        return Wall(prefix=prefix, env={**prof.env, **mac_env, **ssh_env}, profile=prof)
    prefix = bwrap.argv(prof, bwrap=tools.bwrap, setpriv=tools.setpriv, net=net)
    return Wall(prefix=prefix, env={**prof.env, **net_env, **ssh_env}, profile=prof, net=net)
