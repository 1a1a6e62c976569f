"""The egress proxy (issue 16, network): real sockets on 127.0.0.x only. A real daemon gives each agent
its proxy (``HTTP(S)_PROXY`` in its environment); curl reaches a listener in ``scope.hosts`` through it,
one outside is refused at once with a 403 naming the approval, and goes through after ``tether approve``;
a port of an in-scope host that is not listed is refused; ``network: none`` and ``open``; every
connection is a ``network.connection`` event. Then the proxy alone: limits, plain HTTP, half-close."""

from __future__ import annotations

import contextlib
import functools
import http.server
import json
import os
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from helpers import cli_env
from tether.wall.egress import Egress, HostPorts, parse_entry
from tether.wall.proxy import EgressProxy, Limits, bridge_argv, parse_head

BODY = os.urandom(300_000)
PROXY_VARS = ("http_proxy", "https_proxy", "all_proxy", "no_proxy")


def _no_proxy_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in cli_env().items() if k.lower() not in PROXY_VARS and not k.startswith("TETHER_")}
    env.update(extra or {})
    return env


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = BODY if self.path == "/big" else f"hello from {self.server.server_address[0]}\n".encode()
        self.send_response(200)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@contextlib.contextmanager
def _server(host: str, tls: Path | None = None) -> Iterator[int]:
    srv = http.server.ThreadingHTTPServer((host, 0), _Handler)
    if tls is not None:
        import ssl

        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(tls / "cert.pem", tls / "key.pem")
        srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    try:
        yield int(srv.server_address[1])
    finally:
        srv.shutdown()
        srv.server_close()


@functools.cache
def _cert(root: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.2",
                    "-keyout", str(root / "key.pem"), "-out", str(root / "cert.pem")],
                   check=True, capture_output=True, timeout=60)
    return root


def _raw(port: int, request: bytes, unix: Path | None = None, timeout: float = 10) -> bytes:
    """Send ``request`` to the proxy, return everything it answers until it closes (or 64 KiB)."""
    s = socket.socket(socket.AF_UNIX) if unix else socket.socket()
    s.settimeout(timeout)
    with s:
        s.connect(str(unix) if unix else ("127.0.0.1", port))
        s.sendall(request)
        got = b""
        while len(got) < 65536:
            chunk = s.recv(65536 - len(got))  # never past 64 KiB: the tests count on exactly that much
            if not chunk:
                break
            got += chunk
        return got


def _curl(url: str, env: dict[str, str], *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["curl", "-sS", "--max-time", "20", *extra, url], env=_no_proxy_env(env),
                          capture_output=True, text=True, timeout=30)


# -- a real daemon --------------------------------------------------------------------------------------------

RUNBOOK = """\
version: 1
host: {{state_dir: ./state, workspace_root: ./ws, listen: "127.0.0.1:0"}}
x-agent: &agent
  owner: {{name: Olive Owner, contact: "json://127.0.0.1:9/owner"}}
  backup: {{name: Bob Backup, contact: "json://127.0.0.1:9/backup"}}
  command: [{python}, -c, "import os,json,time; open('env.json','w').write(json.dumps(dict(os.environ)));
            time.sleep(3600)"]
  sandbox: off
agents:
  a:
    <<: *agent
    scope: {{hosts: ["127.0.0.2:{inside}", "127.0.0.2:{tls}"]}}
  shut:
    <<: *agent
    network: none
    scope: {{hosts: ["127.0.0.2:{inside}"]}}
  free:
    <<: *agent
    network: open
"""


class Daemon:
    def __init__(self, root: Path, inside: int, tls: int) -> None:
        self.root, self.state = root, root / "state"
        self.runbook = root / "tether.yaml"
        self.runbook.write_text(RUNBOOK.format(python=sys.executable, inside=inside, tls=tls))
        log = open(root / "daemon.out", "ab")  # noqa: SIM115 - the child holds it
        self.proc = subprocess.Popen([sys.executable, "-m", "tether", "-f", str(self.runbook), "up", "--foreground"],
                                     env=self.env(), stdout=log, stderr=log, stdin=subprocess.DEVNULL, cwd=root)
        log.close()

    def env(self) -> dict[str, str]:
        return _no_proxy_env({"TETHER_SANDBOX": "off"})

    def agent_env(self, name: str) -> dict[str, str]:
        path = self.root / "ws" / name / "env.json"
        deadline = time.monotonic() + 30
        while not path.exists() or not path.read_text():
            assert self.proc.poll() is None, (self.root / "daemon.out").read_text()
            assert time.monotonic() < deadline, f"agent {name} did not start"
            time.sleep(0.02)
        got: dict[str, str] = json.loads(path.read_text())
        return got

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "tether", "-f", str(self.runbook), *args], env=self.env(),
                              capture_output=True, text=True, timeout=30, cwd=self.root)

    def events(self, kind: str) -> list[dict[str, Any]]:
        with contextlib.closing(sqlite3.connect(self.state / "tether.db", timeout=10)) as db:
            rows = db.execute("SELECT agent, data FROM events WHERE kind = ? ORDER BY id", (kind,)).fetchall()
        return [{"agent": agent, **json.loads(data)} for agent, data in rows]

    def wait_events(self, kind: str, pred: Any, timeout: float = 10) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while True:
            got = [e for e in self.events(kind) if pred(e)]
            if got:
                return got
            assert time.monotonic() < deadline, f"no {kind} event as expected: {self.events(kind)}"
            time.sleep(0.05)

    def down(self) -> None:
        subprocess.run([sys.executable, "-m", "tether", "-f", str(self.runbook), "down"], env=self.env(),
                       capture_output=True, timeout=30, cwd=self.root)
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)


@pytest.fixture(scope="module")
def host(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Daemon, int, int, int]]:
    root = tmp_path_factory.mktemp("proxy")
    cert = _cert(root / "cert")
    with _server("127.0.0.2") as inside, _server("127.0.0.3") as outside, _server("127.0.0.2", cert) as tls:
        d = Daemon(root, inside, tls)
        try:
            yield d, inside, outside, tls
        finally:
            d.down()


def test_agent_env_points_at_its_proxy_and_spares_the_daemon(host: tuple[Daemon, int, int, int]) -> None:
    d, *_ = host
    env = d.agent_env("a")
    port = int((d.state / "agents" / "a" / "run" / "proxy-port").read_text())
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy"):
        assert env[name] == f"http://127.0.0.1:{port}"
    daemon_port = env["TETHER_URL"].rsplit(":", 1)[1]
    assert f"127.0.0.1:{daemon_port}" in env["NO_PROXY"].split(",")
    assert "HTTP_PROXY" not in d.agent_env("free")  # network: open
    assert not (d.state / "agents" / "free" / "run" / "proxy-port").exists()


def test_in_scope_goes_through_https_and_http(host: tuple[Daemon, int, int, int]) -> None:
    d, inside, _, tls = host
    env = {k: v for k, v in d.agent_env("a").items() if k.lower() in PROXY_VARS}
    got = _curl(f"https://127.0.0.2:{tls}/big", env, "-k", "-o", str(d.root / "big.out"))
    assert got.returncode == 0, got.stderr
    assert (d.root / "big.out").read_bytes() == BODY
    plain = _curl(f"http://127.0.0.2:{inside}/", env)
    assert plain.returncode == 0 and plain.stdout == "hello from 127.0.0.2\n", plain.stderr
    events = d.wait_events("network.connection", lambda e: e["agent"] == "a" and e["port"] == tls)
    assert events[-1]["method"] == "CONNECT" and events[-1]["verdict"] == "allow"
    assert events[-1]["bytes_down"] > len(BODY) and events[-1]["bytes_up"] > 0
    d.wait_events("accounts.touched", lambda e: e["agent"] == "a" and e["accounts"] == ["host:127.0.0.2"])


def test_outside_refused_at_once_then_through_after_approve(host: tuple[Daemon, int, int, int]) -> None:
    d, _, outside, _ = host
    env = d.agent_env("a")
    port = int(env["HTTPS_PROXY"].rsplit(":", 1)[1])
    connect = f"CONNECT 127.0.0.3:{outside} HTTP/1.1\r\nHost: 127.0.0.3:{outside}\r\n\r\n".encode()
    started = time.monotonic()
    answer = _raw(port, connect).decode()
    assert time.monotonic() - started < 5  # refused at once, not held until a package manager times out
    status = answer.split("\r\n", 1)[0]
    assert status.startswith("HTTP/1.1 403 ") and "held for approval" in status, answer
    approval = int(status.split("held for approval ", 1)[1].split(":", 1)[0])
    assert f"`tether approve {approval}`" in status
    assert f"x-tether-approval: {approval}" in answer
    # plain HTTP to the same host:port: refused too, as the same approval (a retry adds none)
    curl = _curl(f"http://127.0.0.3:{outside}/", {k: v for k, v in env.items() if k.lower() in PROXY_VARS},
                 "-o", "/dev/null", "-w", "%{http_code}")
    assert curl.stdout == "403", curl
    again = _raw(port, connect).decode()
    assert f"held for approval {approval}:" in again.split("\r\n", 1)[0], again
    ok = d.cli("approve", str(approval))
    assert ok.returncode == 0, ok.stderr
    answer = _raw(port, connect + f"GET / HTTP/1.0\r\nHost: 127.0.0.3:{outside}\r\n\r\n".encode()).decode()
    assert answer.startswith("HTTP/1.1 200 Connection established\r\n\r\nHTTP/1.0 200"), answer
    assert answer.endswith("hello from 127.0.0.3\n")
    d.wait_events("network.connection", lambda e: e["port"] == outside and e.get("approval") == approval
                  and e["verdict"] == "pending")
    d.wait_events("network.connection", lambda e: e["port"] == outside and e["verdict"] == "allow")


def test_port_not_listed_refused(host: tuple[Daemon, int, int, int]) -> None:
    """Pairs, not hosts: 127.0.0.2 is in scope on two ports only, so port 22 (or any other) is held."""
    d, inside, _, _ = host
    port = int(d.agent_env("a")["HTTPS_PROXY"].rsplit(":", 1)[1])
    for target in ("127.0.0.2:22", "127.0.0.1:22", f"127.0.0.1:{inside}"):
        answer = _raw(port, f"CONNECT {target} HTTP/1.1\r\n\r\n".encode()).decode()
        assert answer.startswith("HTTP/1.1 403 ") and target in answer.split("\r\n")[0], answer


def test_network_none_refuses_everything(host: tuple[Daemon, int, int, int]) -> None:
    d, inside, _, _ = host
    env = d.agent_env("shut")
    port = int(env["HTTPS_PROXY"].rsplit(":", 1)[1])
    answer = _raw(port, f"CONNECT 127.0.0.2:{inside} HTTP/1.1\r\n\r\n".encode()).decode()
    assert answer.startswith("HTTP/1.1 403 ") and "network: none" in answer.split("\r\n")[0], answer
    assert not any(e["agent"] == "shut" for e in d.events("approval.requested"))


def test_unix_sockets_for_the_wall(host: tuple[Daemon, int, int, int]) -> None:
    """``proxy.sock`` is the same proxy (what the wall binds in); ``api.sock`` carries the daemon's API."""
    d, inside, _, _ = host
    d.agent_env("a")
    run = d.state / "agents" / "a" / "run" / "net"
    answer = _raw(0, f"GET http://127.0.0.2:{inside}/ HTTP/1.1\r\nHost: x\r\n\r\n".encode(), run / "proxy.sock")
    assert answer.startswith(b"HTTP/1.0 200") and answer.endswith(b"hello from 127.0.0.2\n"), answer
    health = _raw(0, b"GET /v1/health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n", run / "api.sock")
    assert health.startswith(b"HTTP/1.1 200"), health
    assert (run / "proxy.sock").stat().st_mode & 0o777 == 0o600
    argv = bridge_argv("/run/tether-proxy.sock")
    assert argv[0] == "socat" and argv[-1] == "UNIX-CONNECT:/run/tether-proxy.sock"


# -- the proxy alone ------------------------------------------------------------------------------------------


def _never(agent: str, host: str, port: int) -> Any:
    raise AssertionError(f"the boundary was asked about {host}:{port}, which is in scope")


@pytest.fixture
def proxy(tmp_path: Path) -> Iterator[tuple[EgressProxy, int, int, list[tuple[str, dict[str, Any]]]]]:
    with _server("127.0.0.2") as inside:
        egress = Egress({"p": ("scoped", (f"127.0.0.2:{inside}",))}, _never, lambda agent: None)
        recorded: list[tuple[str, dict[str, Any]]] = []
        px = EgressProxy(lambda: egress, recorded.extend, limits=Limits(head_bytes=2048, head_timeout=0.5,
                                                                         per_agent=3, idle_timeout=1.0),
                         flush_every=0.05)
        px.start()
        try:
            yield px, px.open("p", tmp_path / "run"), inside, recorded
        finally:
            px.stop()


def test_bad_requests_get_one_status_line(proxy: tuple[EgressProxy, int, int, list[Any]]) -> None:
    _px, port, _inside, _recorded = proxy
    cases = {
        b"GET /relative HTTP/1.1\r\n\r\n": b"HTTP/1.1 400 ",
        b"BREW http://127.0.0.2/ HTTP/1.1\r\n\r\n": b"HTTP/1.1 405 ",
        b"CONNECT 127.0.0.2 HTTP/1.1\r\n\r\n": b"HTTP/1.1 400 ",
        b"CONNECT [::1 HTTP/1.1\r\n\r\n": b"HTTP/1.1 400 ",
        b"CONNECT 127.0.0.2:99999 HTTP/1.1\r\n\r\n": b"HTTP/1.1 400 ",
        b"GET https://127.0.0.2/ HTTP/1.1\r\n\r\n": b"HTTP/1.1 400 ",
        b"nonsense\r\n\r\n": b"HTTP/1.1 400 ",
        b"GET http://127.0.0.2/ HTTP/1.1\r\nX: " + b"a" * 3000 + b"\r\n\r\n": b"HTTP/1.1 431 ",
    }
    for request, status in cases.items():
        assert _raw(port, request).startswith(status), request[:60]
    started = time.monotonic()
    assert _raw(port, b"GET http://127.0.0.2/ HTTP/1.1\r\n").startswith(b"HTTP/1.1 408 ")  # never finished
    assert time.monotonic() - started < 5


def test_plain_http_is_rewritten_and_closed(proxy: tuple[EgressProxy, int, int, list[Any]]) -> None:
    _px, port, inside, _recorded = proxy
    answer = _raw(port, f"GET http://user:pw@127.0.0.2:{inside}/big HTTP/1.1\r\nHost: 127.0.0.2\r\n"
                        "Proxy-Authorization: Basic eA==\r\nConnection: keep-alive\r\n\r\n".encode(), timeout=10)
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.0 200") and body == BODY[: len(body)] and len(body) == 65536 - len(head) - 4
    method, host, port_, first = parse_head(b"GET http://h:81/x?y HTTP/1.1\r\nProxy-Authorization: a\r\n"
                                            b"Connection: keep-alive\r\nAccept: */*\r\n\r\n")
    assert (method, host, port_) == ("GET", "h", 81)
    assert first == b"GET /x?y HTTP/1.1\r\nAccept: */*\r\nconnection: close\r\n\r\n"


def test_limits_per_agent_and_idle(proxy: tuple[EgressProxy, int, int, list[Any]]) -> None:
    """At most 3 open connections for the agent: a 4th is refused (503); a silent tunnel is closed once idle."""
    _px, port, inside, recorded = proxy
    held = []
    for _ in range(3):
        s = socket.create_connection(("127.0.0.1", port), timeout=10)
        s.sendall(f"CONNECT 127.0.0.2:{inside} HTTP/1.1\r\n\r\n".encode())
        assert s.recv(1024).startswith(b"HTTP/1.1 200")
        held.append(s)
    try:
        assert _raw(port, f"CONNECT 127.0.0.2:{inside} HTTP/1.1\r\n\r\n".encode()).startswith(b"HTTP/1.1 503 ")
        started = time.monotonic()
        assert held[0].recv(1024) == b""  # idle for 1 s: closed by the proxy
        assert time.monotonic() - started < 5
    finally:
        for s in held:
            s.close()
    deadline = time.monotonic() + 5
    while not any(e["verdict"] == "refused" and "too many" in e.get("reason", "") for _, e in recorded):
        assert time.monotonic() < deadline, recorded
        time.sleep(0.02)


def test_half_close_carries_the_answer(proxy: tuple[EgressProxy, int, int, list[Any]]) -> None:
    """The agent sends its request and shuts its side; the answer still comes back whole."""
    _px, port, inside, _recorded = proxy
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(f"CONNECT 127.0.0.2:{inside} HTTP/1.1\r\n\r\nGET /big HTTP/1.0\r\n\r\n".encode())
        s.shutdown(socket.SHUT_WR)
        got = b""
        while chunk := s.recv(1 << 20):
            got += chunk
    assert got.startswith(b"HTTP/1.1 200 Connection established\r\n\r\nHTTP/1.0 200") and got.endswith(BODY)


def test_host_port_pairs() -> None:
    assert parse_entry("api.github.com") == ("api.github.com", frozenset({80, 443}))
    assert parse_entry("127.0.0.2:8080") == ("127.0.0.2", frozenset({8080}))
    assert parse_entry("[::1]:5432") == ("::1", frozenset({5432}))
    assert parse_entry("https://pypi.org") == ("pypi.org", frozenset({443}))
    hp = HostPorts(("*.example.com", "db.local:*", "127.0.0.2:8080"))
    assert hp.allows("a.example.com", 443) and hp.allows("example.com", 80) and hp.allows("EXAMPLE.com.", 443)
    assert not hp.allows("a.example.com", 22) and not hp.allows("badexample.com", 443)
    assert hp.allows("db.local", 5432) and not hp.allows("127.0.0.2", 22) and not hp.allows("127.0.0.1", 8080)
    killed = Egress({"k": ("scoped", ("h",))}, _never, lambda agent: "killed by test")
    assert killed.quick("k", "h", 443) is not None and not killed.judge("k", "h", 443).allowed


def test_an_agent_kind_reaches_its_model_api_and_the_base_url_its_runbook_sets() -> None:
    from tether.runbook.model import Agent
    from tether.wall.egress import HostPorts, allowed_entries

    person = {"name": "A", "contact": "json://127.0.0.1/a"}
    claude = Agent.model_validate({"name": "c", "owner": person, "backup": person, "kind": "claude-code",
                                   "prompt": "x", "env": {"ANTHROPIC_BASE_URL": "http://127.0.0.1:5599"},
                                   "scope": {"hosts": ["pypi.org"]}})
    rules = HostPorts(allowed_entries(claude))
    assert rules.allows("api.anthropic.com", 443) and rules.allows("127.0.0.1", 5599)
    assert rules.allows("pypi.org", 443)
    assert not rules.allows("127.0.0.1", 22) and not rules.allows("api.openai.com", 443)
    plain = Agent.model_validate({"name": "p", "owner": person, "backup": person, "command": ["true"]})
    assert allowed_entries(plain) == ()
