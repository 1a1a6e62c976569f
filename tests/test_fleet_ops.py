"""The fleet (issue 10), acting on the whole fleet: pinning enforced (an agent never runs on two nodes at
once; `tether fleet move` and a runbook dropping it move the pin), the merged view (`tether status` on any
node, fast path and --json, `tether fleet`), and every verb of one node's CLI or API on another node's agent
(approve, kill, resume, start, stop, restart, reload --node), two real daemons sharing one PostgreSQL schema."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

from helpers import run_cli
from test_daemon_kit import Host, agent, make_host, wait_until  # noqa: F401 - make_host is a fixture
from test_fleet import SLEEP, _pg, schema, two_hosts  # noqa: F401 - fixtures
from test_store_postgres import _url

pytest.importorskip("psycopg")

FAST = {"TETHER_FLEET_LOST_AFTER": "2"}


def _status(host: Host, fast: bool = True) -> dict[str, Any]:
    """`tether status --json` on ``host``: the fast path (--home) or the click one (-f RUNBOOK)."""
    proc = run_cli("status", "--json", home=host.state) if fast else host.cli("status", "--json")
    assert proc.returncode == 0, proc.stderr
    got: dict[str, Any] = json.loads(proc.stdout)
    return got


def _ok(proc: Any) -> str:
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return str(proc.stdout)


def _error(proc: Any) -> str:
    assert proc.returncode != 0, proc.stdout
    assert "Traceback" not in proc.stderr, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    return lines[0]


def test_pinning_refuses_a_second_node_and_moves_deliberately(schema: str,  # noqa: F811
                                                              make_host: Callable[..., Host]) -> None:  # noqa: F811
    url = _url(schema)
    a = make_host({"shared": agent(SLEEP), "a1": agent(SLEEP)}, {"store": url, "name": "host-a"})
    b = make_host({"shared": agent(SLEEP)}, {"store": url, "name": "host-b"})
    a.up(env=FAST)
    wait_until(lambda: a.instances("shared"), 15, "shared to run on host A")
    b.up(env=FAST)

    def refusal() -> list[dict[str, Any]]:
        return [i for i in _pg(schema, "SELECT * FROM incidents WHERE state = 'open'")
                if i["kind"] == "agent.pinned_elsewhere"]

    opened = wait_until(refusal, 10, "host B to refuse shared")
    data = json.loads(opened[0]["data"])
    assert data["node"] == "host-b" and data["pinned_to"] == "host-a"
    assert "pinned to node host-a" in opened[0]["summary"]
    time.sleep(1.0)
    assert not b.instances("shared")  # never started on B
    assert _pg(schema, "SELECT node FROM agents WHERE name = 'shared'")[0]["node"] == "host-a"
    assert _pg(schema, "SELECT count(*) AS n FROM events WHERE kind = 'agent.pin_refused'")[0]["n"] >= 1

    # `tether status` on B (fast path and click) marks it: pinned to A, refused on B
    for fast in (True, False):
        doc = {d["agent"]: d for d in _status(b, fast)["agents"]}["shared"]
        assert doc["node"] == "host-a" and doc["refused_by"] == ["host-b"]
    table = _ok(b.cli("status"))
    assert "REFUSED on host-b: pinned to host-a" in table

    # a user error is one line: moving to an unknown node, unpinning from a node that is up
    assert "no node named 'nowhere'" in _error(a.cli("fleet", "move", "shared", "--to", "nowhere"))
    assert "which is up" in _error(a.cli("fleet", "unpin", "shared"))

    # a deliberate move: A stops it, then B starts it; never both at once
    both: list[bool] = []
    stop = threading.Event()

    def watch() -> None:
        while not stop.is_set():
            both.append(bool(a.instances("shared")) and bool(b.instances("shared")))
            time.sleep(0.02)

    t = threading.Thread(target=watch, daemon=True)
    t.start()
    out = _ok(a.cli("fleet", "move", "shared", "--to", "host-b"))
    assert "shared: pinned to node host-b (was host-a)" in out
    try:
        wait_until(lambda: b.instances("shared"), 15, "shared to start on host B")
    finally:
        stop.set()
        t.join()
    assert not a.instances("shared") and not any(both)
    assert _pg(schema, "SELECT node FROM agents WHERE name = 'shared'")[0]["node"] == "host-b"
    wait_until(lambda: not refusal(), 10, "the refusal to resolve")
    assert a.instances("a1")  # A's own agent is untouched

    # B's runbook drops it and B reloads (asked from A): the pin is released; A, whose runbook names it, takes it
    b.write({}, {"store": url, "name": "host-b"})
    out = _ok(a.cli("reload", "--node", "host-b"))
    assert "node host-b: reloaded" in out
    wait_until(lambda: a.instances("shared"), 15, "shared back on host A")
    assert not b.instances("shared")
    assert _pg(schema, "SELECT node FROM agents WHERE name = 'shared'")[0]["node"] == "host-a"


def test_a_returning_node_stops_an_agent_moved_away_while_it_was_lost(schema: str,  # noqa: F811
                                                                      make_host: Callable[..., Host]) -> None:  # noqa: F811
    url = _url(schema)
    a = make_host({"a1": agent(SLEEP)}, {"store": url, "name": "host-a"})
    b = make_host({"roamer": agent(SLEEP)}, {"store": url, "name": "host-b"})
    a.up(env=FAST)
    proc_b = b.up(env=FAST)
    wait_until(lambda: b.instances("roamer"), 15, "roamer to run on B")
    b.kill9(proc_b)  # B's daemon dies; its agent lives on (a keeper without its daemon)
    wait_until(lambda: _pg(schema, "SELECT state FROM nodes WHERE name = 'host-b'")[0]["state"] == "lost", 15,
               "host A to see B lost")
    a.write({"a1": agent(SLEEP), "roamer": agent(SLEEP)}, {"store": url, "name": "host-a"})
    _ok(a.cli("reload"))
    wait_until(lambda: _pg(schema, "SELECT 1 FROM events WHERE kind = 'agent.pin_refused' AND agent = 'roamer' "
                                   "AND data LIKE '%%host-a%%'"), 10, "host A to refuse roamer")
    assert not a.instances("roamer")  # pinned to B, lost but not released
    out = _ok(a.cli("fleet", "move", "roamer", "--to", "host-a"))
    assert "pinned to node host-a" in out
    wait_until(lambda: a.instances("roamer"), 15, "roamer to start on A (its old node is lost)")
    b.up(env=FAST)  # B returns: roamer is pinned to A now, so B stops its leftover run
    wait_until(lambda: not b.instances("roamer"), 10, "B to stop its leftover run")
    assert a.instances("roamer")
    assert _pg(schema, "SELECT state FROM nodes WHERE name = 'host-b'")[0]["state"] == "up"


def test_the_fleet_seen_and_acted_on_from_any_node(two_hosts: tuple[Host, Host], schema: str) -> None:  # noqa: F811
    a, b = two_hosts
    a.up(env=FAST)
    proc_b = b.up(env=FAST)
    wait_until(lambda: a.instances("a1") and b.instances("b1") and b.instances("b2"), 15, "every agent to run")

    # the merged view from A: every agent with its node, the nodes with their last beat
    for fast in (True, False):
        got = _status(a, fast)
        assert {d["agent"]: d["node"] for d in got["agents"]} == {"a1": "host-a", "b1": "host-b", "b2": "host-b"}
        assert {n["node"]: n["state"] for n in got["nodes"]} == {"host-a": "up", "host-b": "up"}
        assert all(n["last_beat_age_s"] is not None and n["last_beat_age_s"] < 10 for n in got["nodes"])
        assert got["pending"] == []
    table = _ok(a.cli("status"))
    assert "NODE" in table and "host-b" in table and "LAST BEAT" in table
    nodes_out = _ok(a.cli("fleet"))
    assert "host-a" in nodes_out and "host-b" in nodes_out and "b1, b2" in nodes_out
    listed = json.loads(_ok(a.cli("fleet", "--json")))
    assert {n["node"]: n["agents"] for n in listed["nodes"]} == {"host-a": ["a1"], "host-b": ["b1", "b2"]}

    # `tether approve` on A releases the agent waiting on B
    from tether.sdk import Agent

    waiter = Agent("b1", b.url, b.agent_token("b1"))
    out: dict[str, Any] = {}
    t = threading.Thread(target=lambda: out.update(got=waiter.check(command="git push --force origin main",
                                                                    wait=20)), daemon=True)
    t.start()
    pending = wait_until(lambda: a.api("GET", "/v1/approvals?state=pending")[1]["approvals"], 10,
                         "the approval to show on A")
    _ok(a.cli("approve", str(pending[0]["id"]), "--note", "from A's CLI"))
    t.join(10)
    assert out["got"]["decision"] == "allow"

    # stop, start and restart on A for B's agent: asked of B's daemon over the store, done there
    before = b.instances("b1")
    assert "b1: stop done on node host-b" in _ok(a.cli("stop", "b1"))
    assert not b.instances("b1")
    assert "b1: start done on node host-b" in _ok(a.cli("start", "b1"))
    wait_until(lambda: b.instances("b1"), 10, "b1 to start again")
    running = b.instances("b1")
    assert running and running != before
    assert "b1: restart done on node host-b" in _ok(a.cli("restart", "b1"))
    wait_until(lambda: b.instances("b1") and b.instances("b1") != running, 10, "b1 to restart")

    # the kill button of A's API on B's agent, then `tether resume` on A
    victims = b.instances("b2")
    status, body = a.api("POST", "/v1/agents/b2/kill", {"reason": "from A's API"})
    assert status == 200, body
    assert body["node"] == "host-b" and body["status"] == "done"
    wait_until(lambda: not b.instances("b2"), 10, "b2 to be killed on B")
    assert victims
    assert _pg(schema, "SELECT desired FROM agents WHERE name = 'b2'")[0]["desired"] == "killed"
    start_refused = _error(a.cli("start", "b2"))  # a killed agent is started by resume only: B says so
    assert "start refused on node host-b" in start_refused and "tether resume b2" in start_refused
    assert "b2: resume done on node host-b" in _ok(a.cli("resume", "b2"))
    wait_until(lambda: b.instances("b2"), 10, "b2 to run again")
    status, body = a.api("POST", "/v1/agents/nobody/stop")
    assert status == 404

    # reload asked from A: B re-reads its own runbook (a new agent b3 starts there)
    host_b = {"store": _url(schema), "name": "host-b"}
    b.write({"b1": agent(SLEEP), "b2": agent(SLEEP), "b3": agent(SLEEP)}, host_b)
    got = _ok(a.cli("reload", "--node", "host-b"))
    assert "node host-b: reloaded; restarted: b3" in got
    wait_until(lambda: b.instances("b3"), 10, "b3 to start on B")
    assert "no node named 'host-z'" in _error(a.cli("reload", "--node", "host-z"))
    b.write({"b1": agent(SLEEP), "b2": agent(SLEEP), "b3": agent(SLEEP), "bad": {"command": 5}}, host_b)
    rejected = a.cli("reload", "--all-nodes")
    assert rejected.returncode == 1
    assert "node host-b: reload rejected" in rejected.stdout and "node host-a: reloaded" in rejected.stdout
    assert b.instances("b3")  # the old runbook stays

    # B's daemon stops cleanly: a kill for b1 is pending on B, and shown so on A
    b.down(proc_b)
    assert _pg(schema, "SELECT state FROM nodes WHERE name = 'host-b'")[0]["state"] == "stopped"
    assert "b1: kill pending on node host-b (node stopped)" in _ok(a.cli("kill", "b1"))
    assert "b1: stop pending on node host-b (node stopped)" in _ok(a.cli("stop", "b1"))
    got = _status(a)
    assert {n["node"]: n["state"] for n in got["nodes"]}["host-b"] == "stopped"
    assert {(p["agent"], p["node"], p["action"]) for p in got["pending"]} == {("b1", "host-b", "kill"),
                                                                               ("b1", "host-b", "stop")}
    doc = {d["agent"]: d for d in got["agents"]}["b1"]
    assert doc["pending"] == ["kill pending on host-b", "stop pending on host-b"]
    assert "kill pending on host-b" in _ok(a.cli("status"))
    assert "kill b1" in _ok(a.cli("fleet"))


def test_sqlite_status_has_no_fleet(make_host: Callable[..., Host]) -> None:  # noqa: F811
    h = make_host({"solo": agent(SLEEP)})
    h.up()
    wait_until(lambda: h.instances("solo"), 15, "solo to run")
    for fast in (True, False):
        got = _status(h, fast)
        assert set(got) == {"state_dir", "agents", "daemon", "channels"} and "node" not in got["agents"][0]
    assert "NODE" not in _ok(h.cli("status"))
    assert "no fleet here" in _error(h.cli("fleet"))
    assert "need a fleet" in _error(h.cli("reload", "--node", "x"))


def test_the_dashboard_of_one_node_shows_and_kills_another_nodes_agent(two_hosts: tuple[Host, Host],  # noqa: F811
                                                                       schema: str) -> None:  # noqa: F811
    import httpx

    from test_dashboard_kit import csrf_of

    a, b = two_hosts
    a.up(env=FAST)
    b.up(env=FAST)
    wait_until(lambda: b.instances("b1") and b.instances("b2"), 15, "B's agents to run")
    with httpx.Client(base_url=a.url, follow_redirects=False, timeout=30) as web:
        page = web.get("/login")
        signed = web.post("/login", data={"csrf": csrf_of(page.text), "next": "/", "token": a.admin_token()})
        assert signed.status_code == 303, signed.text
        home = web.get("/")
        assert home.status_code == 200
        html = home.text
        assert '<th>Node</th>' in html and 'data-label="Node" class="node">host-b' in html
        assert 'data-node="host-a"' in html and 'data-node="host-b"' in html
        got = web.get("/v1/overview", headers={"Authorization": f"Bearer {a.admin_token()}"}).json()
        assert {n["node"]: n["state"] for n in got["fleet"]["nodes"]} == {"host-a": "up", "host-b": "up"}
        assert {r["name"]: r["node"] for r in got["agents"]}["b2"] == "host-b"

        # the kill button on A for B's agent: confirmed by name, applied by B's daemon
        confirm = web.get("/agents/b2/kill")
        assert confirm.status_code == 200
        done = web.post("/agents/b2/kill", data={"csrf": csrf_of(confirm.text), "confirm": "b2", "reason": "dash"})
        assert done.status_code == 303, done.text
        wait_until(lambda: not b.instances("b2"), 10, "b2 to be killed on B")
        assert _pg(schema, "SELECT desired FROM agents WHERE name = 'b2'")[0]["desired"] == "killed"
        assert b.instances("b1")
