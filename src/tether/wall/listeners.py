"""An agent's listeners on the egress proxy (``wall/proxy.py``): the listener is the agent's identity. Each
agent has a TCP port on 127.0.0.1 (its ``HTTP(S)_PROXY`` outside a wall; the port is remembered in the run
folder, ``proxy-port``, and taken again by the next daemon, as agents outlive daemons) and, in the run
folder's ``net/`` (0711; the wall binds this folder in, not the sockets, so a next daemon's sockets reach the
runs that outlived this one), ``proxy.sock`` and, when the daemon's API is known, ``api.sock`` (0600, owned by
the agent's ``run_as`` user). A root daemon's listeners inside the agent's own network namespace are
remembered in the run folder (``netns``) and found again by the next daemon through a run that outlived
this one (``rejoin``). Made, found and closed here; served by the proxy."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tether.atomic import write_atomic
from tether.unixsock import bind_unix
from tether.wall import netns

PORT_FILE = "proxy-port"
NET_DIR = "net"  # in the run folder: the two sockets, and nothing else (the wall binds this folder in)
NETNS_FILE = "netns"  # in the run folder: the endpoints inside the agent's namespace (a next daemon's, too)
PROXY_SOCK = "proxy.sock"
API_SOCK = "api.sock"


@dataclass
class Agent:
    name: str
    listeners: list[socket.socket]
    port: int
    sock: Path | None
    api_sock: Path | None
    tasks: set[asyncio.Task[Any]] = field(default_factory=set)
    open: set[socket.socket] = field(default_factory=set)
    run_dir: Path | None = None
    spaces: list[netns.Space] = field(default_factory=list)  # its network namespace (the last one is in use)
    space_tasks: list[asyncio.Task[Any]] = field(default_factory=list)  # accepting in it
    relays: socket.socket | None = None  # the listener of api.sock: relayed to the daemon's API


def bind(agent: str, run_dir: Path, uid: int | None, gid: int | None, api: bool) -> Agent:
    """``agent``'s listeners: the TCP port, ``net/proxy.sock`` and, when ``api``, ``net/api.sock`` (a socket
    whose path is too long for one is left out)."""
    run_dir.mkdir(parents=True, exist_ok=True)
    tcp = _tcp_socket(run_dir / PORT_FILE)
    got = Agent(agent, [tcp], int(tcp.getsockname()[1]), None, None, run_dir=run_dir)
    net = _net_dir(run_dir / NET_DIR)
    proxy_sock = _unix_socket(net / PROXY_SOCK, uid, gid)
    if proxy_sock is not None:
        got.listeners.append(proxy_sock)
        got.sock = net / PROXY_SOCK
    api_sock = _unix_socket(net / API_SOCK, uid, gid) if api else None
    if api_sock is not None:
        got.listeners.append(api_sock)
        got.api_sock = net / API_SOCK
        got.relays = api_sock
    return got


def release(got: Agent) -> None:
    """Close ``got``'s listeners and remove its sockets."""
    for listener in got.listeners:
        listener.close()
    for path in (got.sock, got.api_sock):
        if path is not None:
            path.unlink(missing_ok=True)


def remember(run_dir: Path, endpoints: tuple[netns.Endpoint, ...]) -> None:
    """Keep the endpoints the proxy listens on inside the agent's namespace for the next daemon (``rejoin``)."""
    lines = "".join(f"{ep.host} {ep.port} {int(ep.relay)}\n" for ep in endpoints)
    with contextlib.suppress(OSError):
        write_atomic(run_dir / NETNS_FILE, lines)


def rejoin(run_dir: Path, api: bool) -> netns.Space | None:
    """Listeners inside the namespace of a run that outlived the daemon that made it (its agent's
    ``/proc/PID/ns/net``, by identity), at the endpoints that daemon remembered; None when there is none (or
    it relays to an API this daemon does not have: ``api`` False)."""
    if not netns.supported():
        return None
    from tether.process.identity import read_pid_file  # lazy: tether.process costs ~15 ms to wall.plan's importers
    from tether.process.rundir import AGENT_PID  # lazy: as above

    try:
        lines = (run_dir / NETNS_FILE).read_text().splitlines()
        endpoints = tuple(
            netns.Endpoint(h, int(p), r == "1") for h, p, r in (line.split() for line in lines if line.strip())
        )
    except (OSError, ValueError):
        return None
    if not endpoints or (not api and any(ep.relay for ep in endpoints)):
        return None
    ident = read_pid_file(run_dir / AGENT_PID)
    if ident is None or not ident.alive():
        return None
    path = f"/proc/{ident.pid}/ns/net"
    try:
        if netns.same_as_mine(path):
            return None
        space = netns.join(path, endpoints)
        if not ident.alive():  # the pid went to another process meanwhile
            space.close()
            return None
    except OSError:  # ended meanwhile, or bridges of its own listen there: its next run gets a new one
        return None
    return space


def _tcp_socket(port_file: Path) -> socket.socket:
    """127.0.0.1, on the port this agent had before (agents outlive daemons), else any free one."""
    tries = [0]
    with contextlib.suppress(OSError, ValueError):
        tries.insert(0, int(port_file.read_text().strip()))
    for i, port in enumerate(tries):
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            sock.close()
            if i + 1 < len(tries):
                continue
            raise
        break
    sock.listen(256)
    sock.setblocking(False)
    sock.set_inheritable(False)
    with contextlib.suppress(OSError):
        write_atomic(port_file, f"{sock.getsockname()[1]}\n")
    return sock


def _net_dir(path: Path) -> Path:
    """The sockets' folder: 0711 (an agent's user reaches its own sockets in it, lists nothing)."""
    path.mkdir(mode=0o711, exist_ok=True)
    with contextlib.suppress(OSError):
        path.chmod(0o711)
    return path


def _unix_socket(path: Path, uid: int | None, gid: int | None) -> socket.socket | None:
    """A listening unix socket at ``path`` (0600; the agent's user owns it), non-blocking for the event
    loop, or None when the path is too long for one."""
    sock = bind_unix(path, uid, gid, backlog=256)
    if sock is not None:
        sock.setblocking(False)
    return sock
