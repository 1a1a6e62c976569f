"""Wall violations (issue 16, "Seen and shown"): a connection the egress proxy refuses is a ``wall.violation``
event with the agent, the host and the verdict; repeated ones open one incident for the owner, resolved once
a window passes quiet; the count shows in ``tether status``, ``agent-status.json``, ``/metrics`` and the
dashboard's agent page.

A real daemon and a real agent inside the wall (its own user) connecting to a 127.0.0.x listener outside its
``scope.hosts`` through its proxy; then the watch alone (windows, the retry of one held ask counting once)
and the dashboard in process."""

from __future__ import annotations

import contextlib
import json
import socket
import subprocess
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from test_daemon_kit import PY, Host, agent, wait_until
from test_wall import host_folder, needs_wall
from tether.store.base import NewEvent
from tether.wall import violations

USER = "tether-test-agent"

#: The agent: N CONNECTs to 127.0.0.2:PORT through its proxy (as curl or pip would), then it idles.
CONNECTS = r"""
import os, socket, sys, time
n, port = int(sys.argv[1]), int(sys.argv[2])
proxy = os.environ.get("https_proxy", "")
hostport = proxy[len("http://"):].split("/")[0]
host, _, pport = hostport.rpartition(":")
for i in range(n):
    try:
        s = socket.create_connection((host, int(pport)), timeout=10)
        s.sendall(b"CONNECT 127.0.0.2:%d HTTP/1.1\r\nHost: 127.0.0.2:%d\r\n\r\n" % (port, port))
        line = s.recv(300).split(b"\r\n")[0].decode("latin-1")
        s.close()
    except OSError as e:
        line = "error %s" % e
    print("attempt %d: %s" % (i + 1, line), flush=True)
print("done", flush=True)
time.sleep(3600)
"""


def _python_for(user: str) -> str:
    """A Python the agent's user may run (this suite's may live under /root)."""
    for python in ("/usr/bin/python3", PY):
        got = subprocess.run(
            ["setpriv", "--reuid", user, "--regid", user, "--init-groups", python, "-c", "pass"],
            capture_output=True,
            timeout=30,
            cwd="/",
        )
        if got.returncode == 0:
            return python
    pytest.skip(f"no Python that {user} may run")


@pytest.fixture
def root(test_user: str) -> Iterator[Path]:
    needs_wall()
    yield from host_folder("tether-violations-")


@contextlib.contextmanager
def _listener() -> Iterator[tuple[int, list[bytes]]]:
    """A listener on 127.0.0.2 outside every scope: what reaches it."""
    sock = socket.socket()
    sock.bind(("127.0.0.2", 0))
    sock.listen(8)
    reached: list[bytes] = []

    def accept() -> None:
        while True:
            try:
                conn, _ = sock.accept()
            except OSError:
                return
            with conn:
                reached.append(conn.recv(100))

    t = threading.Thread(target=accept, daemon=True)
    t.start()
    try:
        yield int(sock.getsockname()[1]), reached
    finally:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
        sock.close()
        t.join(timeout=5)


def _metrics(h: Host) -> str:
    req = urllib.request.Request(h.url + "/metrics", headers={"Authorization": f"Bearer {h.admin_token()}"})
    with urllib.request.urlopen(req, timeout=30) as resp:
        return str(resp.read().decode())


pytestmark = pytest.mark.wall


def test_refused_connections_are_violations_and_repeats_open_one_incident(root: Path) -> None:
    python = _python_for(USER)
    with _listener() as (port, reached):
        h = Host(root, {})
        ws = root / "ws"
        for name in ("blocked", "asking"):
            (ws / name).mkdir(parents=True)
        script = ws / "blocked" / "connects.py"
        script.write_text(CONNECTS)
        (ws / "asking" / "connects.py").write_text(CONNECTS)
        h.write(
            {
                # every connection outside scope.hosts blocked outright: five violations, an incident at three
                "blocked": agent(
                    [python, str(script), "5", str(port)],
                    run_as=USER,
                    approvals={"verdicts": {"network.egress": "block"}},
                    violations={"limit": 3, "window": "3s"},
                ),
                # the default ask: every retry names the one approval, so three attempts count once
                "asking": agent(
                    [python, str(ws / "asking" / "connects.py"), "3", str(port)],
                    run_as=USER,
                    violations={"limit": 2, "window": "1m"},
                ),
            }
        )
        try:
            daemon = h.up()
            wait_until(
                lambda: "done" in h.log("blocked") and "done" in h.log("asking"),
                30,
                f"the attempts: {h.log('blocked', 'stderr')}{h.log('asking', 'stderr')}",
            )
            assert h.log("blocked").count(" 403 ") == 5, h.log("blocked")
            assert reached == [], "nothing reached the listener"
            got = wait_until(
                lambda: len(h.events("wall.violation", "blocked")) == 5 and h.events("wall.violation", "blocked"),
                10,
                "five violations recorded",
            )
            for e in got:
                d = e["data"]
                assert (d["kind"], d["host"], d["port"], d["verdict"], d["source"]) == (
                    "connect",
                    "127.0.0.2",
                    port,
                    "deny",
                    "proxy",
                ), d
                assert d["reason"].startswith(f"127.0.0.2:{port} refused: connect 127.0.0.2:{port}"), d
            conns = [e for e in h.events("network.connection", "blocked") if e["data"]["port"] == port]
            assert len(conns) == 5 and {c["data"]["verdict"] for c in conns} == {"deny"}

            # one incident for the owner, however many more violations came after the third
            incidents = wait_until(lambda: h.incidents("wall.violation", "blocked"), 10, "the incident")
            assert len(incidents) == 1 and "wall violations in 3s" in incidents[0]["summary"], incidents
            assert "deny connection to 127.0.0.2" in incidents[0]["summary"]
            wait_until(
                lambda: [
                    e
                    for e in h.events("notify.queued", "blocked")
                    if e["data"].get("thread") == f"incident:{incidents[0]['id']}"
                ],
                10,
                "the owner's notification",
            )
            # ... resolved once a whole window (3 s) went by without one
            wait_until(
                lambda: h.incidents("wall.violation", "blocked")[0]["state"] == "resolved",
                15,
                "the incident resolved after a quiet window",
            )
            resolved = h.events("incident.resolved", "blocked")
            assert resolved and "no wall violation for 3s" in resolved[-1]["data"]["why"], resolved

            # the held ask: three violations (pending, one approval), no incident at a limit of two
            asked = wait_until(
                lambda: len(h.events("wall.violation", "asking")) == 3 and h.events("wall.violation", "asking"),
                10,
                "three violations of the asking agent",
            )
            assert {e["data"]["verdict"] for e in asked} == {"pending"}
            assert len({e["data"]["approval"] for e in asked}) == 1
            assert h.incidents("wall.violation", "asking") == []

            # shown: tether status (table and JSON), agent-status.json, /metrics
            status = h.cli("status", "--json")
            docs = {d["agent"]: d for d in json.loads(status.stdout)["agents"]}
            assert docs["blocked"]["violations"] == {"connect": 5, "write": 0}
            assert docs["asking"]["violations"] == {"connect": 3, "write": 0}
            table = h.cli("status").stdout
            assert "VIOLATIONS" in table
            head = next(line for line in table.splitlines() if "VIOLATIONS" in line)
            row = next(line for line in table.splitlines() if line.split()[:1] == ["blocked"])
            assert row[head.index("VIOLATIONS") :].split()[0] == "5", table
            on_disk = json.loads((h.state / "agents" / "blocked" / "agent-status.json").read_text())
            assert on_disk["violations"]["connect"] == 5
            text = _metrics(h)
            assert 'tether_agent_wall_violations_total{agent="blocked",kind="connect"} 5.0' in text, text
            assert 'tether_agent_wall_violations_total{agent="blocked",kind="write"} 0.0' in text
            assert 'tether_agent_wall_violations_total{agent="asking",kind="connect"} 3.0' in text
            h.down(daemon)
        finally:
            h.cleanup()


# -- the watch alone -------------------------------------------------------------------------------------------


class Calls:
    def __init__(self) -> None:
        self.opened: list[tuple[str, str, dict[str, Any]]] = []
        self.resolved: list[tuple[str, str]] = []
        self.open: set[str] = set()

    def open_incident(self, agent: str, summary: str, data: dict[str, Any]) -> bool:
        if agent in self.open:  # the daemon's dedup: one open incident per agent and kind
            return False
        self.open.add(agent)
        self.opened.append((agent, summary, data))
        return True

    def resolve(self, agent: str, why: str) -> None:
        self.open.discard(agent)
        self.resolved.append((agent, why))


def test_the_watch_counts_a_window_and_one_ask_once() -> None:
    calls = Calls()
    watch = violations.Watch(lambda a: (3, 60.0), calls.open_incident, calls.resolve)
    try:
        assert not watch.saw("a", 100.0, "approval:7", "x")
        assert not watch.saw("a", 101.0, "approval:7", "x")  # a retry of the same held ask: still one
        assert not watch.saw("a", 102.0, "event:1", "x")  # two
        assert not watch.saw("b", 103.0, "event:2", "x")  # another agent's
        assert not watch.saw("a", 170.0, "event:3", "x")  # the first two fell out of the window: one
        assert not watch.saw("a", 171.0, "event:4", "x")  # two
        assert calls.opened == []
        assert watch.saw("a", 172.0, "event:5", "x")  # three in 60 s: the incident
        assert calls.opened == [("a", "a: 3 wall violations in 1m: x", {"count": 3, "window_s": 60.0, "limit": 3})]
        assert not watch.saw("a", 173.0, "event:6", "x"), "open already: the daemon deduplicates"
        assert len(calls.opened) == 1
    finally:
        watch.stop()


def test_the_watch_resolves_after_a_quiet_window_and_picks_up_open_ones() -> None:
    calls = Calls()
    calls.open.add("left")
    watch = violations.Watch(lambda a: (2, 1.0), calls.open_incident, calls.resolve, open_now=lambda: ["left"])
    watch.start()
    try:
        now = time.time()
        watch.saw("a", now, "event:1", "x")
        watch.saw("a", now, "event:2", "x")
        assert [o[0] for o in calls.opened] == ["a"]
        wait_until(lambda: {a for a, _ in calls.resolved} == {"a", "left"}, 10, "both resolved")
        assert {why for _, why in calls.resolved} == {"no wall violation for 1s"}
        watch.saw("a", time.time(), "event:3", "x")
        watch.saw("a", time.time(), "event:4", "x")
        assert [o[0] for o in calls.opened] == ["a", "a"], "a new burst opens a new incident"
    finally:
        watch.stop()


def test_only_refusals_are_violations() -> None:
    base = {"host": "h", "port": 1, "method": "CONNECT", "bytes_up": 0, "bytes_down": 0, "seconds": 0.0}
    assert violations.from_connection({**base, "verdict": "allow"}) is None
    assert violations.from_connection({**base, "verdict": "refused", "reason": "too many"}) is None
    assert violations.from_connection({**base, "verdict": "failed", "reason": "cannot reach"}) is None
    got = violations.from_connection({**base, "verdict": "pending", "reason": "held", "approval": 4})
    assert got == {
        "kind": "connect",
        "host": "h",
        "port": 1,
        "verdict": "pending",
        "reason": "held",
        "source": "proxy",
        "approval": 4,
    }
    assert violations.key(9, got) == "approval:4" and violations.key(9, {"kind": "write"}) == "event:9"


# -- the dashboard's agent page (in process) ----------------------------------------------------------------


def test_the_agent_page_and_timeline_show_violations(tmp_path: Path) -> None:
    from test_dashboard import signed_in
    from test_dashboard_kit import InProcess

    h = InProcess(tmp_path)
    try:
        events = []
        audit = {**violations.write("/etc/", "EROFS", "audit"), "call": "mkdir", "command": "mkdir /etc/planted"}
        for kind in ("connect", "connect", "write", "audit"):
            data = (
                violations.write("/etc/x", "EROFS", "drill")
                if kind == "write"
                else audit
                if kind == "audit"
                else violations.from_connection(
                    {"host": "127.0.0.9", "port": 22, "verdict": "deny", "reason": "blocked"}
                )
            )
            events.append(NewEvent(violations.EVENT, "a", data))
        h.store.append(events)
        counts = {(r["agent"], r["kind"], r["count"]) for r in h.store.signal_counts("agent_violations")}
        assert counts == {("a", "connect", 2), ("a", "write", 2)}
        c = signed_in(h, "approver")
        page = c.get("/agents/a").text
        assert "Wall violations" in page and "2 connections refused, 2 writes denied" in page, page
        assert "wall violation: deny connection to 127.0.0.9:22" in page
        assert "wall violation: write to /etc/x denied (EROFS, seen by drill)" in page
        assert "wall violation: mkdir of /etc/ denied (EROFS, seen by audit): mkdir /etc/planted" in page
        other = c.get("/agents/b").text
        assert '<dd id="violations">0</dd>' in other
    finally:
        h.close()
