"""The egress proxy: every connection an agent makes to the network goes through it (HTTP ``CONNECT`` and
plain HTTP with an absolute URL), is judged by ``wall.egress`` and recorded as one ``network.connection``
event (agent, host, port, bytes each way, verdict) when it ends.

One proxy per daemon, on a thread and event loop of its own (a 10 MB download never slows the API). Each
agent gets its own listeners, so the listener is the agent's identity: a TCP port on 127.0.0.1 (its
``HTTP(S)_PROXY`` outside a wall; the port is remembered in the agent's run folder and taken again by the
next daemon, as agents outlive daemons) and a unix socket ``STATE/agents/NAME/run/net/proxy.sock`` (0600,
owned by the agent's ``run_as`` user). A second socket there, ``api.sock``, relays to the daemon's own API.
The wall binds that folder into a sandbox that has no network of its own and bridges both sockets to
127.0.0.1 with socat (``wall/bridge.py``); the folder, not the sockets, so that a next daemon's sockets
reach agents that outlived this one. A root daemon needs no bridge: ``inside`` makes the agent's own
network namespace once (``wall/netns.py``) and listens in it, at the bridges' addresses, directly; a next
daemon listens again in the namespace of a run that outlived this one (``open``).

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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tether.wall import netns
from tether.wall.egress import Egress, Verdict
from tether.wall.relay import relay

PORT_FILE = "proxy-port"
NET_DIR = "net"  # in the run folder: the two sockets, and nothing else (the wall binds this folder in)
NETNS_FILE = "netns"  # in the run folder: the endpoints inside the agent's namespace (a next daemon's, too)
PROXY_SOCK = "proxy.sock"
API_SOCK = "api.sock"
INSIDE_PORT = 3128  # where the bridge listens inside a sandbox
ALLOWED_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


@dataclass(frozen=True)
class Limits:
    head_bytes: int = 16 * 1024  # a request line and headers longer than this: 431
    head_timeout: float = 10.0  # to send them
    connect_timeout: float = 10.0  # to reach the host
    idle_timeout: float = 600.0  # no byte either way for this long: closed
    per_agent: int = 256  # open connections of one agent at once; more are refused (503)


@dataclass
class Conn:
    """One connection as it is recorded."""

    agent: str
    started: float
    host: str = ""
    port: int = 0
    method: str = ""
    up: int = 0
    down: int = 0
    verdict: str = ""
    reason: str = ""
    approval: int | None = None

    def event(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "host": self.host,
            "port": self.port,
            "method": self.method,
            "verdict": self.verdict,
            "bytes_up": self.up,
            "bytes_down": self.down,
            "seconds": round(time.time() - self.started, 3),
        }
        if self.reason and self.verdict != "allow":
            data["reason"] = self.reason[:300]
        if self.approval is not None:
            data["approval"] = self.approval
        return data


def phrase(text: str) -> str:
    """A reason phrase for a status line: printable ASCII on one line, at most 200 characters."""
    clean = "".join(c if " " <= c < "\x7f" else " " for c in text)
    return clean[:200] or "Forbidden"


def response(status: int, reason: str, headers: dict[str, str] | None = None) -> bytes:
    body = f"tether: {reason}\n".encode("ascii", "replace")
    extra = "".join(f"{k}: {phrase(v)}\r\n" for k, v in (headers or {}).items())
    head = (
        f"HTTP/1.1 {status} {phrase(reason)}\r\ncontent-type: text/plain\r\nconnection: close\r\n"
        f"content-length: {len(body)}\r\n{extra}\r\n"
    )
    return head.encode("ascii", "replace") + body


class BadRequest(Exception):
    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


def parse_head(head: bytes) -> tuple[str, str, int, bytes]:
    """``(method, host, port, what to send upstream first)`` from a request head (up to and with CRLFCRLF).
    For CONNECT nothing is sent; for plain HTTP the request in origin form, ``Proxy-*`` headers dropped and
    ``connection: close`` (one request per connection: each is judged on its own)."""
    try:
        text = head.decode("latin-1")
    except UnicodeDecodeError:  # pragma: no cover - latin-1 decodes every byte
        raise BadRequest(400, "request head is not text") from None
    lines = text.split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
        raise BadRequest(400, "not an HTTP/1.x request line")
    method, target, version = parts
    if method == "CONNECT":
        host, port = split_authority(target, None)
        return method, host, port, b""
    if method not in ALLOWED_METHODS:
        raise BadRequest(405, f"method {method[:20]} is not proxied")
    if not target.lower().startswith("http://"):
        raise BadRequest(400, "plain requests need an absolute http:// URL (use CONNECT for https)")
    rest = target[7:]
    authority, slash, path = rest.partition("/")
    authority = authority.rpartition("@")[2]  # credentials in the URL are not forwarded
    host, port = split_authority(authority, 80)
    out = [f"{method} /{path if slash else ''} {version}"]
    for line in lines[1:]:
        if not line:
            continue
        name = line.split(":", 1)[0].strip().lower()
        if name.startswith("proxy-") or name in ("connection", "keep-alive"):
            continue
        out.append(line)
    out.append("connection: close")
    return method, host, port, ("\r\n".join(out) + "\r\n\r\n").encode("latin-1")


def split_authority(authority: str, default: int | None) -> tuple[str, int]:
    """``host:port`` (``[v6]:port``) → (host, port)."""
    a = authority.strip()
    if a.startswith("["):
        close = a.find("]")
        if close < 0:
            raise BadRequest(400, f"bad authority {a[:100]!r}")
        host, port_text = a[1:close], a[close + 1 :].removeprefix(":")
    elif a.count(":") == 1:
        host, port_text = a.split(":")
    elif ":" in a:
        raise BadRequest(400, f"bad authority {a[:100]!r} (IPv6 needs brackets)")
    else:
        host, port_text = a, ""
    if not port_text:
        if default is None:
            raise BadRequest(400, f"CONNECT needs host:port, got {a[:100]!r}")
        port_text = str(default)
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise BadRequest(400, f"bad port in {a[:100]!r}")
    if not host or len(host) > 253 or any(c in host for c in " /\\@\x00"):
        raise BadRequest(400, f"bad host in {a[:100]!r}")
    return host.lower(), int(port_text)


async def _read_head(loop: asyncio.AbstractEventLoop, sock: socket.socket, limit: int) -> tuple[bytes, bytes]:
    """The request head (through CRLFCRLF) and whatever came after it."""
    data = bytearray()
    while True:
        chunk = await loop.sock_recv(sock, 16 * 1024)
        if not chunk:
            raise BadRequest(400, "the connection closed before a request")
        data += chunk
        end = data.find(b"\r\n\r\n", max(0, len(data) - len(chunk) - 3))
        if end >= 0 and end + 4 <= limit:
            return bytes(data[: end + 4]), bytes(data[end + 4 :])
        if len(data) > limit or end >= 0:
            raise BadRequest(431, "request head too large")


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


@dataclass
class _Agent:
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
        record: Callable[[list[tuple[str, dict[str, Any]]]], None],
        api: tuple[str, int] | None = None,
        limits: Limits | None = None,
        flush_every: float = 0.5,
    ) -> None:
        self.egress = egress
        self.record = record
        self.api = api
        self.limits = limits or Limits()
        self.flush_every = flush_every
        self.loop = asyncio.new_event_loop()
        self.agents: dict[str, _Agent] = {}
        self._pending: list[tuple[str, dict[str, Any]]] = []
        self._flushing = False
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
        self._flush_now()

    def open(self, agent: str, run_dir: Path, uid: int | None = None, gid: int | None = None) -> int:
        """Listen for ``agent`` (once): a TCP port on 127.0.0.1, ``run_dir/net/proxy.sock`` and, when the
        daemon's API is known, ``run_dir/net/api.sock``. Returns the port."""
        with self._lock:
            known = self.agents.get(agent)
            if known is not None:
                return known.port
            got: _Agent = self._call(self._listen(agent, run_dir, uid, gid), 10)
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
                from tether.atomic import write_atomic

                lines = "".join(f"{ep.host} {ep.port} {int(ep.relay)}\n" for ep in endpoints)
                with contextlib.suppress(OSError):
                    write_atomic(got.run_dir / NETNS_FILE, lines)
            return space.path

    def _rejoin(self, got: _Agent) -> None:
        """Listen again inside the namespace of a run that outlived the daemon that made it (its agent's
        ``/proc/PID/ns/net``, by identity), at the endpoints that daemon recorded; nothing when there is
        none. Its next run is started in the same namespace."""
        if got.run_dir is None or not netns.supported():
            return
        from tether.process.identity import read_pid_file
        from tether.process.rundir import AGENT_PID

        try:
            lines = (got.run_dir / NETNS_FILE).read_text().splitlines()
            endpoints = tuple(
                netns.Endpoint(h, int(p), r == "1") for h, p, r in (line.split() for line in lines if line.strip())
            )
        except (OSError, ValueError):
            return
        if not endpoints or (self.api is None and any(ep.relay for ep in endpoints)):
            return
        ident = read_pid_file(got.run_dir / AGENT_PID)
        if ident is None or not ident.alive():
            return
        path = f"/proc/{ident.pid}/ns/net"
        try:
            if netns.same_as_mine(path):
                return
            space = netns.join(path, endpoints)
            if not ident.alive():  # the pid went to another process meanwhile
                space.close()
                return
        except OSError:  # ended meanwhile, or bridges of its own listen there: its next run gets a new one
            return
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
    async def _listen(self, agent: str, run_dir: Path, uid: int | None, gid: int | None) -> _Agent:
        run_dir.mkdir(parents=True, exist_ok=True)
        tcp = _tcp_socket(run_dir / PORT_FILE)
        got = _Agent(agent, [tcp], int(tcp.getsockname()[1]), None, None, run_dir=run_dir)
        self._serve(got, tcp, None)
        net = _net_dir(run_dir / NET_DIR)
        _SERVING[os.path.realpath(net)] = self
        proxy_sock = _unix_socket(net / PROXY_SOCK, uid, gid)
        if proxy_sock is not None:
            got.listeners.append(proxy_sock)
            got.sock = net / PROXY_SOCK
            self._serve(got, proxy_sock, None)
        api_sock = _unix_socket(net / API_SOCK, uid, gid) if self.api is not None else None
        if api_sock is not None:
            got.listeners.append(api_sock)
            got.api_sock = net / API_SOCK
            self._serve(got, api_sock, self.api)
        return got

    def _serve(self, got: _Agent, listener: socket.socket, relay_to: tuple[str, int] | None) -> asyncio.Task[Any]:
        task = self.loop.create_task(self._accept(got, listener, relay_to))
        got.tasks.add(task)
        task.add_done_callback(got.tasks.discard)
        return task

    async def _enter(self, got: _Agent, space: netns.Space) -> None:
        """Serve ``space``'s listeners for ``got`` instead of those of its namespace before (closed)."""
        await self._leave(got)
        got.spaces.append(space)
        for ep, listener in zip(space.endpoints, space.listeners, strict=True):
            got.space_tasks.append(self._serve(got, listener, self.api if ep.relay else None))

    async def _leave(self, got: _Agent) -> None:
        tasks, got.space_tasks[:] = list(got.space_tasks), []
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for space in got.spaces:
            space.close()
        got.spaces.clear()

    async def _accept(self, got: _Agent, listener: socket.socket, relay_to: tuple[str, int] | None) -> None:
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
                self._note(Conn(got.name, time.time(), verdict="refused", reason="too many open connections"))
                continue
            got.open.add(sock)
            task = self.loop.create_task(self._handle(got, sock, relay_to))
            got.tasks.add(task)
            task.add_done_callback(got.tasks.discard)

    def _linger(self, got: _Agent, sock: socket.socket) -> None:
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

    async def _unlisten(self, got: _Agent) -> None:
        await self._leave(got)
        for listener in got.listeners:
            listener.close()
        for path in (got.sock, got.api_sock):
            if path is not None:
                path.unlink(missing_ok=True)
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
    async def _handle(self, got: _Agent, sock: socket.socket, relay_to: tuple[str, int] | None) -> None:
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
                self._note(conn)

    async def _open(self, sock: socket.socket, conn: Conn) -> tuple[socket.socket | None, bytes]:
        """Read the request, judge it, open the host. None (the agent told why) when refused."""
        try:
            head, rest = await asyncio.wait_for(
                _read_head(self.loop, sock, self.limits.head_bytes), self.limits.head_timeout
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

    # -- events ---------------------------------------------------------------------------------------------
    def _note(self, conn: Conn) -> None:
        self._pending.append((conn.agent, conn.event()))
        if not self._flushing:
            self._flushing = True
            self.loop.call_later(self.flush_every, self._flush)

    def _flush(self) -> None:
        batch, self._pending = self._pending, []
        self._flushing = False
        if batch:
            self.loop.run_in_executor(None, self._store, batch)

    def _flush_now(self) -> None:
        batch, self._pending = self._pending, []
        if batch:
            self._store(batch)

    def _store(self, batch: list[tuple[str, dict[str, Any]]]) -> None:
        try:
            self.record(batch)
        except Exception as err:  # recording must never take the proxy down
            print(f"tether: proxy: {len(batch)} connection event(s) not recorded: {err!r}", flush=True)


def proxy_env(proxy_url: str, daemon_url: str) -> dict[str, str]:
    from urllib.parse import urlsplit

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
    from tether.atomic import write_atomic

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
    from tether.unixsock import bind_unix

    sock = bind_unix(path, uid, gid, backlog=256)
    if sock is not None:
        sock.setblocking(False)
    return sock


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
