"""Run the daemon: one per state directory (an flock), the API on uvicorn, signals, clean shutdown.

Files it keeps in the state directory: ``daemon.lock`` (held while it runs), ``daemon.json`` (pid
and URL, for the CLI), ``admin.token`` (0600: the CLI's admin credential on this host), ``tether.sock``
(the same API on a unix socket; callers whose UID is an agent's ``run_as`` user are refused),
``last-port`` (with ``listen: HOST:0`` the port picked is kept across restarts, so agents that outlive
a daemon still reach the next one).
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import os
import signal
import socket
import struct
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import uvicorn
from uvicorn.protocols.http.auto import AutoHTTPProtocol

from tether import auth
from tether.api.app import create_app
from tether.atomic import write_atomic, write_private
from tether.daemon import memory
from tether.daemon.budgetwatch import BudgetWatch
from tether.daemon.core import Daemon
from tether.daemon.hostwatch import HostWatch
from tether.daemon.launch import AlreadyRunning
from tether.daemon_state import info
from tether.errors import TetherError
from tether.host import sdnotify
from tether.runbook import LoadedRunbook
from tether.unixsock import bind_unix
from tether.wall import violations, writewatch
from tether.wall.egress import for_daemon
from tether.wall.proxy import EgressProxy
from tether.web.bind import check_bind


def _lock(path: Path) -> int:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        running = info(path.parent) or {}
        raise AlreadyRunning(
            f"a daemon already runs for {path.parent} (pid {running.get('pid', '?')}, {running.get('url', '?')}); "
            "`tether down` stops it"
        ) from None
    return fd


def _bind(listen: str, last_port_file: Path | None = None) -> socket.socket:
    host, _, port_text = listen.rpartition(":")
    host = host.strip("[]")
    port = int(port_text)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    tries = [port]
    if port == 0 and last_port_file is not None:
        with contextlib.suppress(OSError, ValueError):
            tries.insert(0, int(last_port_file.read_text().strip()))
    for i, p in enumerate(tries):
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, p))
        except OSError as err:
            sock.close()
            if i + 1 < len(tries):
                continue  # the remembered port is taken: any free one
            raise TetherError(
                f"cannot listen on {listen} ({err.strerror}); change host.listen in the runbook"
            ) from None
        break
    sock.listen(128)
    sock.set_inheritable(False)
    if port == 0 and last_port_file is not None:
        with contextlib.suppress(OSError):
            write_atomic(last_port_file, f"{sock.getsockname()[1]}\n")
    return sock


def _bind_unix(path: Path) -> socket.socket | None:
    """The API on ``<state>/tether.sock`` (0600 in a 0700 directory). None where paths are too long."""
    return bind_unix(path)


def peer_uid(sock: socket.socket) -> int | None:
    """The UID of the process at the other end of a unix socket (SO_PEERCRED), where the OS tells."""
    opt = getattr(socket, "SO_PEERCRED", None)
    if opt is None or sock.family != socket.AF_UNIX:
        return None
    try:
        _pid, uid, _gid = struct.unpack("3i", sock.getsockopt(socket.SOL_SOCKET, opt, struct.calcsize("3i")))
    except OSError:
        return None
    return int(uid)


REFUSED = (
    b"HTTP/1.1 403 Forbidden\r\ncontent-type: application/json\r\nconnection: close\r\ncontent-length: %d\r\n\r\n%s"
)


def guarded_protocol(base: type[asyncio.Protocol], refused: Callable[[], set[int]]) -> type[asyncio.Protocol]:
    """``base`` (uvicorn's HTTP protocol) refusing unix-socket peers whose UID is an agent's."""

    class Guarded(base):  # type: ignore[valid-type,misc]
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            super().connection_made(transport)
            sock = transport.get_extra_info("socket")
            if sock is None or getattr(sock, "family", None) != socket.AF_UNIX:
                return
            uid = peer_uid(sock)
            if uid is not None and uid in refused():
                body = json.dumps({"detail": f"uid {uid} runs an agent; agents may not use the control socket"})
                transport.write(REFUSED % (len(body), body.encode()))  # type: ignore[attr-defined]
                transport.close()

    return Guarded


def serve(
    loaded: LoadedRunbook, daemon_factory: Callable[[LoadedRunbook], Daemon] = Daemon, allow_remote: bool = False
) -> None:
    """Run in the foreground until SIGTERM/SIGINT or ``tether down``. A non-loopback ``listen`` needs
    ``host.tls`` or ``allow_remote`` (``tether up --allow-remote``)."""
    memory.limit_arenas()  # before any thread: bench_fuzz's peak RSS 162 -> 136 MB at 60,000 inputs

    tls = loaded.runbook.host.tls
    check_bind(loaded.runbook.host.listen, tls=tls, allow_remote=allow_remote)
    state = loaded.state
    lock_fd = _lock(state.lock)
    daemon = daemon_factory(loaded)
    sock = _bind(loaded.runbook.host.listen, state.root / "last-port")
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # else keep-alive requests wait ~40 ms
    host, port = sock.getsockname()[:2]
    url = f"{'https' if tls else 'http'}://{'[' + host + ']' if ':' in host else host}:{port}"
    admin_file = state.root / "admin.token"
    token = admin_file.read_text().strip() if admin_file.exists() else ""
    who = auth.identify(daemon.store, token) if token else None
    if who is None or who.role != "admin":
        write_private(admin_file, auth.create(daemon.store, "admin") + "\n")
    unix = _bind_unix(state.socket)

    def reload(*_: Any) -> None:
        threading.Thread(target=_reload, args=(daemon,), name="tether-reload", daemon=True).start()

    def stop(*_: Any) -> None:
        daemon.shutdown_requested.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGHUP, reload)
    seen = violations.for_daemon(daemon)  # repeated violations open an incident: connections and writes
    rules, record = for_daemon(daemon, seen)  # egress: one proxy, listeners per agent, on a thread of its own
    daemon.writewatch = writewatch.for_daemon(daemon, seen)  # denied writes, from the kernel's audit
    off = daemon.writewatch.update()  # before the agents start: their first denied write is recorded
    if off is not None and any(a.sandbox == "on" for a in loaded.runbook.agents.values()):
        print(f"tether: denied writes are not recorded as they happen: {off}", flush=True)
    daemon.proxy = EgressProxy(rules, record, api=(host, port))
    daemon.proxy.start()
    daemon.boot(url)
    hostwatch = HostWatch(daemon)  # probes and free disk, on a thread of their own
    hostwatch.start()
    daemon.on_host_change.append(hostwatch.wake)
    budgetwatch = BudgetWatch(daemon)  # a spent budget pauses its agent; a fast burn is an incident
    budgetwatch.start()
    write_atomic(
        state.root / "daemon.json",
        json.dumps(
            {
                "pid": os.getpid(),
                "url": url,
                "socket": str(state.socket) if unix else None,
                "started": time.time(),
                # the sandbox drill reads whether a denied write is recorded as it happens, or why not
                "denied_writes": {"on": daemon.writewatch.on, "reason": daemon.writewatch.reason},
            }
        ),
    )

    config = uvicorn.Config(
        create_app(daemon),
        log_level="warning",
        access_log=False,
        lifespan="off",
        http=guarded_protocol(AutoHTTPProtocol, lambda: daemon.agent_uids),
        ws="none",  # no WebSocket routes (websockets is installed for Slack's Socket Mode client: not served)
        timeout_graceful_shutdown=2,
        ssl_certfile=str(loaded.resolve(tls.cert)) if tls else None,
        ssl_keyfile=str(loaded.resolve(tls.key)) if tls else None,
    )
    server = _make_server(config)

    def watch() -> None:
        daemon.shutdown_requested.wait()
        daemon.approvals.close()  # release checks waiting on a human, or their threads hold shutdown
        server.stop()

    threading.Thread(target=watch, name="tether-shutdown", daemon=True).start()
    sd = _systemd(daemon, server)
    try:
        server.run(sockets=[sock] + ([unix] if unix else []))
    finally:
        if sd is not None:
            sd.stop()
        _notify("stopping")
        hostwatch.stop()
        budgetwatch.stop()
        daemon.proxy.stop()  # before the store closes: the last connections are recorded
        daemon.writewatch.stop()  # and its rules out of the kernel
        daemon.halt(stop_agents=True)
        (state.root / "daemon.json").unlink(missing_ok=True)
        if unix is not None:
            state.socket.unlink(missing_ok=True)
        os.close(lock_fd)


def _make_server(config: Any) -> Any:
    """uvicorn's server, ticking once a second instead of ten times (an idle daemon should sleep);
    ``stop()`` (from any thread) ends it at once."""
    class Server(uvicorn.Server):
        _wake: asyncio.Event | None = None
        _loop: asyncio.AbstractEventLoop | None = None

        async def main_loop(self) -> None:
            self._loop = asyncio.get_running_loop()
            self._wake = asyncio.Event()
            counter = 0
            while not await self.on_tick(counter):
                counter += 10  # on_tick refreshes the Date header every 10th count
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), 1.0)

        def stop(self) -> None:
            self.should_exit = True
            loop, wake = self._loop, self._wake
            if loop is not None and wake is not None:
                with contextlib.suppress(RuntimeError):
                    loop.call_soon_threadsafe(wake.set)

    return Server(config)


def _notify(what: str) -> None:
    getattr(sdnotify, what)()


def _systemd(daemon: Daemon, server: Any) -> Any:
    """READY=1 once the API answers, then the watchdog (when systemd asked for one)."""
    watchdog = sdnotify.Watchdog(daemon.healthy)

    def ready() -> None:
        deadline = time.monotonic() + 30
        while not server.started and time.monotonic() < deadline and not daemon.shutdown_requested.is_set():
            time.sleep(0.01)
        if server.started:
            sdnotify.ready()
            sdnotify.status(f"{len(daemon.supervisors)} agent(s); API at {daemon.url}")
            watchdog.start()

    threading.Thread(target=ready, name="tether-sd-ready", daemon=True).start()
    return watchdog


def _reload(daemon: Daemon) -> None:
    try:
        daemon.reload()
    except TetherError as err:
        daemon.store.emit("runbook.rejected", None, errors=str(err).splitlines())
