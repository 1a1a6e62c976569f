"""An agent's own network namespace made by a root daemon, with the daemon's own listeners inside it.

Without it (a daemon that is not root, or a wall built outside the daemon) the wall makes the namespace
itself (``bwrap --unshare-net``) and socat bridges carry the agent's connections to the daemon's unix
sockets (``wall/bridge.py``): two processes and a wait for them at every start. A root daemon instead
makes one namespace per agent, once: on a short-lived thread of its own it ``unshare``s a new network
namespace (only ``lo``, brought up here), opens it (the descriptor keeps it alive) and creates the
listening sockets there: a socket stays in the namespace it was made in, so the daemon's proxy, on its
own thread in the host's namespace, accepts the agent's connections on them directly. No process, no
wait; each run of the agent enters the namespace with ``nsenter --net=PATH`` (root, before ``setpriv``
drops to the agent's user), where everything is already listening. The namespace belongs to the host's
user namespace, so nothing inside it (no capability there) can add a way out or leave it.

Lifetimes: the listeners are the daemon's (they end with it or with ``Space.close``); the namespace lives
while the daemon holds it or a process is inside. A next daemon joins the namespace of a run that
outlived the last one (``join``: the agent's ``/proc/PID/ns/net``) and listens there again.
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import functools
import os
import shutil
import socket
import struct
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

CLONE_NEWNET = 0x40000000
SIOCGIFFLAGS, SIOCSIFFLAGS, IFF_UP = 0x8913, 0x8914, 0x1
BACKLOG = 256


class NetnsError(OSError):
    """The namespace or a listener in it could not be made."""


@dataclass(frozen=True)
class Endpoint:
    """A listener inside the namespace: ``host``:``port``, and what it leads to (``relay``: the daemon's
    API; else the egress proxy)."""

    host: str
    port: int
    relay: bool


@dataclass
class Space:
    """One agent's namespace (``fd``, kept open) and the daemon's listeners in it."""

    fd: int
    endpoints: tuple[Endpoint, ...]
    listeners: list[socket.socket] = field(default_factory=list)

    @property
    def path(self) -> str:
        """What ``nsenter --net=`` opens: this process's descriptor (valid while the daemon holds it)."""
        return f"/proc/{os.getpid()}/fd/{self.fd}"

    def close(self) -> None:
        for sock in self.listeners:
            sock.close()
        with contextlib.suppress(OSError):
            os.close(self.fd)


@functools.cache
def nsenter() -> str | None:
    return shutil.which("nsenter", path=os.pathsep.join([os.environ.get("PATH", ""), "/usr/bin", "/bin"]))


def supported() -> bool:
    """Whether this process can make agents' namespaces: Linux, root, ``nsenter`` (util-linux)."""
    return sys.platform.startswith("linux") and os.geteuid() == 0 and nsenter() is not None


def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(None, use_errno=True)


def _check(rc: int, what: str) -> None:
    if rc != 0:
        err = ctypes.get_errno()
        raise NetnsError(err, f"{what}: {os.strerror(err)}")


def _lo_up() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        req = struct.pack("16sH14x", b"lo", 0)
        flags = struct.unpack("16sH14x", fcntl.ioctl(s.fileno(), SIOCGIFFLAGS, req))[1]
        fcntl.ioctl(s.fileno(), SIOCSIFFLAGS, struct.pack("16sH14x", b"lo", flags | IFF_UP))


def _listen(ep: Endpoint) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((ep.host, ep.port))
        sock.listen(BACKLOG)
        sock.setblocking(False)
    except OSError as exc:
        sock.close()
        raise NetnsError(exc.errno, f"cannot listen on {ep.host}:{ep.port} inside: {exc.strerror}") from None
    return sock


def _on_thread(enter: Callable[[], None], endpoints: tuple[Endpoint, ...]) -> Space:
    """``enter`` a namespace on a new thread (only that thread changes namespace), open it and listen there."""
    got: list[Space | BaseException] = []

    def work() -> None:
        try:
            enter()
            fd = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
            space = Space(fd, endpoints)
            try:
                space.listeners = [_listen(ep) for ep in endpoints]
            except BaseException:
                space.close()
                raise
            got.append(space)
        except BaseException as exc:  # handed to the caller
            got.append(exc)

    thread = threading.Thread(target=work, name="tether-netns", daemon=True)
    thread.start()
    thread.join()
    result = got[0] if got else NetnsError(0, "the namespace thread ended without a result")
    if isinstance(result, BaseException):
        raise result
    return result


def make(endpoints: tuple[Endpoint, ...]) -> Space:
    """A new namespace with only ``lo`` (up) and a listener for each endpoint."""

    def enter() -> None:
        _check(_libc().unshare(CLONE_NEWNET), "cannot make a network namespace")
        _lo_up()

    return _on_thread(enter, endpoints)


def same_as_mine(path: str) -> bool:
    """Whether ``path`` (a ``/proc/PID/ns/net``) is this process's own network namespace (the host's)."""
    a, b = os.stat(path), os.stat("/proc/self/ns/net")
    return (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)


def join(path: str, endpoints: tuple[Endpoint, ...]) -> Space:
    """The namespace at ``path`` (a run's ``/proc/PID/ns/net``) with a listener for each endpoint."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:

        def enter() -> None:
            _check(_libc().setns(fd, CLONE_NEWNET), "cannot enter the agent's network namespace")

        return _on_thread(enter, endpoints)
    finally:
        os.close(fd)
