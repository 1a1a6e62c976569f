"""A ``Profile`` as a command prefix: ``setpriv`` to the agent's user first, then ``bwrap``.

Never bwrap as root (measured: as root the sandbox kept every capability and could remount a read-only
bind writable). A root daemon drops to the agent's uid with ``setpriv --no-new-privs`` and bwrap then
builds its namespaces unprivileged; a daemon that is not root runs bwrap as itself.

The mounts are ordered by depth, so a folder is placed before anything inside it (the state dir is
hidden, then the agent's TMPDIR and HOME inside it are bound back; a workspace is bound, then its
``.git/config`` read-only and its ``.env`` hidden). The process stays in the keeper's session and process
group (no ``--new-session``: the agent has no terminal) and in the run's cgroup; it has a pid namespace of
its own (agents sharing a user cannot reach each other through /proc), while the host still sees every
process (the kill switch finds them by cgroup, ``TETHER_INSTANCE`` and descendants). ``--die-with-parent``:
when the agent's command ends (or its keeper dies) nothing of the run outlives it inside. With a ``Net``
(``network: scoped`` or ``none``) it has a network namespace of its own too, with only ``lo``: the agent's
socket folder is bound in and the command starts with ``bridge.launcher`` (socat to the egress proxy and
the daemon's API); a ``Net`` with ``netns`` (a root daemon's namespace for the agent, its listeners
inside) is entered first instead (``nsenter --net``, as root, before ``setpriv``), nothing bound, nothing
started; without one (``network: open``) it shares the host's network.
"""

from __future__ import annotations

import os

from tether.wall.bridge import SOCKETS_INSIDE, Net, launcher
from tether.wall.profile import SCRATCH, Profile

RESOLVER = "/run/systemd/resolve"  # kept readable under the emptied /run (DNS through systemd-resolved)


def _depth(path: str) -> int:
    return len([p for p in path.split("/") if p])


def argv(
    profile: Profile, *, bwrap: str = "bwrap", setpriv: str | None = "setpriv", net: Net | None = None
) -> list[str]:
    """The prefix that runs a command inside ``profile``'s wall (append the agent's argv). ``setpriv``
    None: bwrap runs as the caller (a daemon that is not root). ``net``: the wall's own network (only
    ``lo``, the socket folder read-only at ``SOCKETS_INSIDE``, the bridges started first); None: the
    host's."""
    prefix: list[str] = []
    if setpriv is not None:
        prefix = [
            setpriv,
            "--reuid",
            str(profile.uid),
            "--regid",
            str(profile.gid),
            "--init-groups",
            "--no-new-privs",
            "--inh-caps=-all",
        ]
    bridged = net is not None and net.netns is None
    if net is not None and net.netns is not None:  # the daemon's namespace for the agent: no bridge to start
        prefix = [net.nsenter, f"--net={net.netns}", *prefix]
    ops: list[tuple[int, list[str]]] = []  # (depth, args): placed parents first

    def add(path: str, *args: str) -> None:
        ops.append((_depth(path), list(args)))

    for scratch in SCRATCH:
        if os.path.isdir(scratch):
            add(scratch, "--tmpfs", scratch)
    add("/run", "--tmpfs", "/run")
    if os.path.isdir(RESOLVER):
        add(RESOLVER, "--ro-bind", RESOLVER, RESOLVER)
    for d in (*profile.hidden_dirs, *profile.masked):
        add(d, "--tmpfs", d)
    for e in profile.exposed:
        add(e, "--ro-bind", e, e)
    if not profile.home_writable:
        add(profile.home, "--ro-bind", profile.home, profile.home)
    for w in profile.writable:
        add(w, "--bind", w, w)
    for r in profile.read_only:
        add(r, "--ro-bind", r, r)
    for f in profile.hidden_files:
        add(f, "--ro-bind-try", "/dev/null", f)
    for src, inside in profile.files:
        add(inside, "--ro-bind", src, inside)
    if net is not None and bridged:
        add(SOCKETS_INSIDE, "--ro-bind", net.sockets, SOCKETS_INSIDE)
    ops.sort(key=lambda op: op[0])  # stable: same depth keeps its order

    out = [*prefix, bwrap, "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc"]
    for _, args in ops:
        out += args
    # last: the mount points inside were made while they were writable; /run too, the emptied tmpfs (its
    # only scratch space is its TMPDIR: a writable /run inside would be another, unbounded by its scope)
    for d in (*profile.hidden_dirs, *profile.masked, *(s for s in SCRATCH if os.path.isdir(s)), "/run"):
        out += ["--remount-ro", d]
    # a pid namespace: agents sharing a user cannot see (/proc/PID/root, cwd, environ) or signal each
    # other; the host still sees every process (cgroup, process group, TETHER_INSTANCE all kept)
    out += ["--unshare-pid", "--unshare-ipc", "--unshare-uts", "--cap-drop", "ALL"]
    # the run ends whole: when the agent's command ends, bwrap's init is killed and with it every process
    # left in the pid namespace (the bridges, what the agent left behind); measured: without it they lived on
    out.append("--die-with-parent")
    if bridged:  # only `lo` inside: the bridges are the only ways out
        out.append("--unshare-net")
    for name, value in sorted(profile.env.items()):
        out += ["--setenv", name, value]
    return [*out, "--", *(launcher(net) if net is not None and bridged else [])]
