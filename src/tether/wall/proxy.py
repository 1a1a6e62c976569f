"""The egress proxy: every connection an agent makes to the network goes through it (HTTP ``CONNECT`` and
plain HTTP with an absolute URL), is judged by ``wall.egress`` and recorded as one ``network.connection``
event (agent, host, port, bytes each way, verdict) when it ends.

One proxy per daemon, on a thread and event loop of its own (a 10 MB download never slows the API). Each
agent gets its own listeners, so the listener is the agent's identity (``wall/listeners.py``): a TCP port on
127.0.0.1 (its ``HTTP(S)_PROXY`` outside a wall) and a unix socket ``STATE/agents/NAME/run/net/proxy.sock``;
a second socket there, ``api.sock``, relays to the daemon's own API. The wall binds that folder into a
sandbox that has no network of its own and bridges both sockets to 127.0.0.1 with socat
(``wall/bridge.py``); the folder, not the sockets, so that a next daemon's sockets reach agents that
outlived this one. A root daemon needs no bridge: ``inside`` makes the agent's own
network namespace once (``wall/netns.py``) and listens in it, at the bridges' addresses, directly; a next
daemon listens again in the namespace of a run that outlived this one (``open``).

Here: the proxy's thread and loop, each agent's listeners served, and each connection accepted, judged
and relayed; the request parsed in ``wall/request.py``, the events batched in ``wall/connlog.py``.

A connection that needs a human is refused at once (package managers and git time out in seconds) with
``403 held for approval N: `tether approve N```; the retry after the approval goes through.

Outside the wall (``sandbox: off``, ``TETHER_SANDBOX=off``) this is advisory: it binds only the programs that
honour the proxy variables; nothing stops a process that opens its own sockets.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from tether.wall import listeners, netns
from tether.wall.connlog import Batch, Conn, Recorder
from tether.wall.egress import Egress, Verdict
from tether.wall.listeners import API_SOCK, NET_DIR, PORT_FILE, PROXY_SOCK, Agent
from tether.wall.relay import relay
from tether.wall.request import BadRequest, parse_head, read_head, response

__all__ = [  # the names other modules import from here (the sockets' names are listeners.py's)
    "API_SOCK",
    "INSIDE_PORT",
    "NET_DIR",
    "PORT_FILE",
    "PROXY_SOCK",
    "EgressProxy",
    "Limits",
    "bridge_argv",
    "parse_head",
    "proxy_env",
    "sandbox_env",
    "serving",
]

INSIDE_PORT = 3128  # where the bridge listens inside a sandbox


@dataclass(frozen=True)
class Limits:
    head_bytes: int = 16 * 1024  # a request line and headers longer than this: 431
    head_timeout: float = 10.0  # to send them
    connect_timeout: float = 10.0  # to reach the host
    idle_timeout: float = 600.0  # no byte either way for this long: closed
    per_agent: int = 256  # open connections of one agent at once; more are refused (503)


async def _dial(host: str, port: int, timeout: float) -> socket.socket:
    """A connected non-blocking socket to host:port (each address in turn), within ``timeout``."""
    loop = asyncio.get_running_loop()

    async def dial() -> socket.socket:
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        last: OSError = OSError(f"no address for {host}")
        for family, kind, proto, _, addr in infos:
            sock = socket.socket(family, kind, proto)
            sock.setblocking(False)
            try:
                await loop.sock_connect(sock, addr)
            except OSError as err:
                sock.close()
                last = err
                continue
            return sock
        raise last

    return await asyncio.wait_for(dial(), timeout)


_SERVING: dict[str, EgressProxy] = {}  # the sockets' folder (real path) -> the proxy of this process serving it


def serving(folder: str) -> EgressProxy | None:
    """The proxy of this process that listens in ``folder`` (an agent's socket folder), if any: a wall built
    inside the daemon gets the daemon's namespace for the agent through it (``inside``)."""
    return _SERVING.get(os.path.realpath(folder))


class EgressProxy:
    """The daemon's proxy. ``egress()`` gives the current rules (the caller rebuilds them after a reload);
    ``record(batch)`` stores ``(agent, data)`` connection events, called off the loop, at most every
    ``flush_every`` seconds; ``api`` is the daemon's own (host, port), always reachable."""

    def __init__(
        self,
        egress: Callable[[], Egress],
        record: Callable[[Batch], None],
        api: tuple[str, int] | None = None,
        limits: Limits | None = None,
        flush_every: float = 0.5,
    ) -> None:
        self.egress = egress
        self.api = api
        self.limits = limits or Limits()
        self.loop = asyncio.new_event_loop()
        self.recorder = Recorder(self.loop, record, flush_every)
        self.agents: dict[str, Agent] = {}
        self._lingering = 0
        self._thread = threading.Thread(target=self._run, name="tether-proxy", daemon=True)
        self._lock = threading.Lock()
        self._passes: dict[tuple[str, str, int], int] = {}  # (agent, host, port) let through for a while

    # -- lifecycle (any thread) ---------------------------------------------------------------------------
    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Stop listening, end every connection, record what is left."""
        if self._thread.is_alive():
            with contextlib.suppress(Exception):
                self._call(self._close_all(), 10)
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(timeout=10)
        self.recorder.flush_now()

    def open(self, agent: str, run_dir: Path, uid: int | None = None, gid: int | None = None) -> int:
        """Listen for ``agent`` (once): a TCP port on 127.0.0.1, ``run_dir/net/proxy.sock`` and, when the
        daemon's API is known, ``run_dir/net/api.sock``. Returns the port."""
        with self._lock:
            known = self.agents.get(agent)
            if known is not None:
                return known.port
            got: Agent = self._call(self._listen(agent, run_dir, uid, gid), 10)
            self.agents[agent] = got
            self._rejoin(got)
            return got.port

    def inside(self, agent: str, endpoints: tuple[netns.Endpoint, ...]) -> str:
        """The agent's own network namespace (only ``lo``), made once and kept across its runs, with this
        proxy listening inside on ``endpoints`` (the API's relayed to the daemon's): the path a run enters
        (``nsenter --net=``). Raises ``OSError`` (``netns.NetnsError``) when it cannot be made. ``open``
        first."""
        with self._lock:
            got = self.agents.get(agent)
            if got is None or (self.api is None and any(ep.relay for ep in endpoints)):
                raise netns.NetnsError(0, f"no proxy is open for {agent}, or it has no API to relay to")
            if got.spaces and got.spaces[-1].endpoints == endpoints:
                return got.spaces[-1].path
            space = netns.make(endpoints)
            self._call(self._enter(got, space), 10)
            if got.run_dir is not None:
                listeners.remember(got.run_dir, endpoints)
            return space.path

    def _rejoin(self, got: Agent) -> None:
        """Listen again inside the namespace of a run that outlived the daemon that made it
        (``listeners.rejoin``); nothing when there is none. Its next run is started in the same namespace."""
        space = listeners.rejoin(got.run_dir, self.api is not None) if got.run_dir is not None else None
        if space is not None:
            self._call(self._enter(got, space), 10)

    @contextlib.contextmanager
    def passing(self, agent: str, host: str, port: int) -> Iterator[None]:
        """Let ``agent`` reach ``host``:``port`` while the block runs: a listener of the daemon's own that a
        CLI inside the wall reaches only through its proxy (the canary's stand-in model API)."""
        key = (agent, host, port)
        with self._lock:
            self._passes[key] = self._passes.get(key, 0) + 1
        try:
            yield
        finally:
            with self._lock:
                left = self._passes.pop(key, 1) - 1
                if left > 0:
                    self._passes[key] = left

    def close(self, agent: str) -> None:
        """Stop listening for ``agent`` and end its connections."""
        with self._lock:
            got = self.agents.pop(agent, None)
        if got is not None:
            self._call(self._unlisten(got), 10)

    def env(
        self, agent: str, run_dir: Path, daemon_url: str, uid: int | None = None, gid: int | None = None
    ) -> dict[str, str]:
        """The proxy variables for an agent's environment."""
        port = self.open(agent, run_dir, uid, gid)
        return proxy_env(f"http://127.0.0.1:{port}", daemon_url)

    def _call(self, coro: Any, timeout: float) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()
        with contextlib.suppress(Exception):
            self.loop.close()

    # -- listeners (on the loop) ----------------------------------------------------------------------------
    async def _listen(self, agent: str, run_dir: Path, uid: int | None, gid: int | None) -> Agent:
        got = listeners.bind(agent, run_dir, uid, gid, self.api is not None)
        _SERVING[os.path.realpath(run_dir / NET_DIR)] = self
        for listener in got.listeners:
            self._serve(got, listener, self.api if listener is got.relays else None)
        return got

    def _serve(self, got: Agent, listener: socket.socket, relay_to: tuple[str, int] | None) -> asyncio.Task[Any]:
        task = self.loop.create_task(self._accept(got, listener, relay_to))
        got.tasks.add(task)
        task.add_done_callback(got.tasks.discard)
        return task

    async def _enter(self, got: Agent, space: netns.Space) -> None:
        """Serve ``space``'s listeners for ``got`` instead of those of its namespace before (closed)."""
        await self._leave(got)
        got.spaces.append(space)
        for ep, listener in zip(space.endpoints, space.listeners, strict=True):
            got.space_tasks.append(self._serve(got, listener, self.api if ep.relay else None))

    async def _leave(self, got: Agent) -> None:
        tasks, got.space_tasks[:] = list(got.space_tasks), []
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for space in got.spaces:
            space.close()
        got.spaces.clear()

    async def _accept(self, got: Agent, listener: socket.socket, relay_to: tuple[str, int] | None) -> None:
        while True:
            try:
                sock, _ = await self.loop.sock_accept(listener)
            except OSError:  # out of descriptors, or the listener closed
                await asyncio.sleep(0.05)
                if listener.fileno() < 0:
                    return
                continue
            sock.setblocking(False)
            if len(got.open) >= self.limits.per_agent:
                with contextlib.suppress(OSError):
                    sock.send(response(503, f"agent {got.name} has {len(got.open)} connections open; close some"))
                self._linger(got, sock)
                self.recorder.note(Conn(got.name, time.time(), verdict="refused", reason="too many open connections"))
                continue
            got.open.add(sock)
            task = self.loop.create_task(self._handle(got, sock, relay_to))
            got.tasks.add(task)
            task.add_done_callback(got.tasks.discard)

    def _linger(self, got: Agent, sock: socket.socket) -> None:
        """Close a refused connection so the refusal arrives: what the agent sent and we did not read would
        make the close a reset, and its answer lost. Its side shut, then up to 64 KiB read for at most 1 s
        (at most 64 such closes at once; beyond, closed at once)."""
        if self._lingering >= 64:
            sock.close()
            return
        self._lingering += 1

        async def drain() -> None:
            try:
                sock.shutdown(socket.SHUT_WR)
                async with asyncio.timeout(1.0):
                    left = 65536
                    while left > 0 and (chunk := await self.loop.sock_recv(sock, left)):
                        left -= len(chunk)
            except (OSError, TimeoutError):
                pass
            finally:
                sock.close()
                self._lingering -= 1

        task = self.loop.create_task(drain())
        got.tasks.add(task)
        task.add_done_callback(got.tasks.discard)

    async def _unlisten(self, got: Agent) -> None:
        await self._leave(got)
        listeners.release(got)
        if got.run_dir is not None:
            folder = os.path.realpath(got.run_dir / NET_DIR)
            if _SERVING.get(folder) is self:
                del _SERVING[folder]
        for task in list(got.tasks):
            task.cancel()
        await asyncio.gather(*got.tasks, return_exceptions=True)

    async def _close_all(self) -> None:
        with self._lock:
            agents, self.agents = list(self.agents.values()), {}
        for got in agents:
            await self._unlisten(got)

    # -- one connection (on the loop) -----------------------------------------------------------------------
    async def _handle(self, got: Agent, sock: socket.socket, relay_to: tuple[str, int] | None) -> None:
        conn = Conn(got.name, time.time())
        host_sock: socket.socket | None = None
        try:
            if relay_to is not None:  # api.sock: straight to the daemon's API
                conn.method, (conn.host, conn.port), conn.verdict = "RELAY", relay_to, "allow"
                host_sock, rest = await self._connect(sock, conn), b""
            else:
                host_sock, rest = await self._open(sock, conn)
            if host_sock is None:
                return
            if rest:
                conn.up += len(rest)
                await self.loop.sock_sendall(host_sock, rest)

            def up(n: int) -> None:
                conn.up += n

            def down(n: int) -> None:
                conn.down += n

            await relay(sock, host_sock, up, down, self.limits.idle_timeout)
        except (OSError, TimeoutError):
            pass
        finally:
            got.open.discard(sock)
            if host_sock is None:
                self._linger(got, sock)
            else:
                sock.close()
            if host_sock is not None:
                host_sock.close()
            if conn.method != "RELAY":  # the daemon's API records its own requests
                self.recorder.note(conn)

    async def _open(self, sock: socket.socket, conn: Conn) -> tuple[socket.socket | None, bytes]:
        """Read the request, judge it, open the host. None (the agent told why) when refused."""
        try:
            head, rest = await asyncio.wait_for(
                read_head(self.loop, sock, self.limits.head_bytes), self.limits.head_timeout
            )
            conn.method, conn.host, conn.port, first = parse_head(head)
        except TimeoutError:
            await self._refuse(sock, conn, 408, "the request head took too long")
            return None, b""
        except BadRequest as err:
            await self._refuse(sock, conn, err.status, err.reason)
            return None, b""
        verdict = await self.verdict(conn.agent, conn.host, conn.port)
        conn.verdict, conn.reason, conn.approval = verdict.decision, verdict.reason, verdict.approval
        if not verdict.allowed:
            headers = {"x-tether-approval": str(verdict.approval)} if verdict.approval is not None else {}
            await self._refuse(
                sock, conn, 403, f"{conn.host}:{conn.port} refused: {verdict.reason}", verdict.decision, headers
            )
            return None, b""
        host_sock = await self._connect(sock, conn)
        if host_sock is None:
            return None, b""
        if conn.method == "CONNECT":
            await self.loop.sock_sendall(sock, b"HTTP/1.1 200 Connection established\r\n\r\n")
            return host_sock, rest
        return host_sock, first + rest

    async def _connect(self, sock: socket.socket, conn: Conn) -> socket.socket | None:
        try:
            host_sock = await _dial(conn.host, conn.port, self.limits.connect_timeout)
        except (OSError, TimeoutError) as err:
            why = "timed out" if isinstance(err, TimeoutError) else (err.strerror or str(err))
            await self._refuse(sock, conn, 502, f"cannot reach {conn.host}:{conn.port}: {why}", "failed")
            return None
        with contextlib.suppress(OSError):
            host_sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return host_sock

    async def _refuse(
        self,
        sock: socket.socket,
        conn: Conn,
        status: int,
        reason: str,
        verdict: str = "refused",
        headers: dict[str, str] | None = None,
    ) -> None:
        conn.verdict = verdict if verdict != "refused" or not conn.verdict else conn.verdict
        conn.reason = reason
        with contextlib.suppress(OSError, TimeoutError):
            await asyncio.wait_for(self.loop.sock_sendall(sock, response(status, reason, headers)), 5)

    async def verdict(self, agent: str, host: str, port: int) -> Verdict:
        if self.api is not None and (host, port) == self.api:
            return Verdict("allow", "the daemon's API")
        if (agent, host, port) in self._passes:
            return Verdict("allow", "the daemon's own listener (passing)")
        egress = self.egress()
        got = egress.quick(agent, host, port)
        if got is not None:
            return got
        try:  # the boundary touches the store: off the loop
            return await self.loop.run_in_executor(None, egress.judge, agent, host, port)
        except Exception as err:  # a failing store must not let a connection through, nor end the proxy
            return Verdict("deny", f"the egress check failed ({type(err).__name__}); try again", rule="proxy")


def proxy_env(proxy_url: str, daemon_url: str) -> dict[str, str]:
    parts = urlsplit(daemon_url) if daemon_url else None
    bypass = []
    if parts is not None and parts.hostname:
        port = parts.port or (443 if parts.scheme == "https" else 80)
        bypass = (
            [f"{parts.hostname}:{port}", f"localhost:{port}"]
            if parts.hostname in ("127.0.0.1", "localhost")
            else [f"{parts.hostname}:{port}"]
        )
    env = {}
    for name in ("http_proxy", "https_proxy", "all_proxy"):
        env[name] = env[name.upper()] = proxy_url
    env["no_proxy"] = env["NO_PROXY"] = ",".join(bypass)
    return env


def bridge_argv(
    inside_socket: str, port: int = INSIDE_PORT, socat: str = "socat", host: str = "127.0.0.1"
) -> list[str]:
    """The command to run inside a sandbox without network: listens on ``host``:``port`` and carries each
    connection to ``inside_socket`` (where the wall binds ``proxy.sock`` or ``api.sock``). ``-d -d``: socat
    says ``listening on`` when it does, which ``wall/bridge.py`` waits for."""
    return [
        socat,
        "-d",
        "-d",
        f"TCP-LISTEN:{port},bind={host},reuseaddr,fork,backlog=256",
        f"UNIX-CONNECT:{inside_socket}",
    ]


def sandbox_env(daemon_url: str, port: int = INSIDE_PORT) -> dict[str, str]:
    """The proxy variables inside the sandbox (the bridge at 127.0.0.1:``port``). The daemon's API is reached
    through the ``api.sock`` bridge on the daemon's own port, so ``TETHER_URL`` stays as it is."""
    return proxy_env(f"http://127.0.0.1:{port}", daemon_url)
