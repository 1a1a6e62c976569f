"""The fleet (issue 10) on a real PostgreSQL: the node registry and pending kills at the store level, then
two daemons with separate state directories (two "hosts") sharing one database: an approval decided on A
releases the agent waiting on B; `tether kill` on A stops an agent on B; SIGKILL of B's daemon is seen
from A as a node incident, and B's agents are re-adopted when it returns.

Each test gets its own schema (``?schema=t_<random>``), dropped afterwards (see test_store_postgres)."""

from __future__ import annotations

import json
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from test_daemon_kit import Host, agent, make_host, wait_until  # noqa: F401 - make_host is a fixture
from test_store_postgres import SERVER, _admin, _url
from tether.sdk import Agent
from tether.store import NewEvent, Store, open_store

psycopg = pytest.importorskip("psycopg")

from tether.fleet import nodes, pending  # noqa: E402

SLEEP = ["python3", "-c", "import time\nwhile True: time.sleep(1)"]


@pytest.fixture
def schema() -> Iterator[str]:
    """A fresh schema name (the store creates it), dropped with everything in it afterwards."""
    admin = _admin()
    name = f"t_{secrets.token_hex(6)}"
    yield name
    admin.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')
    admin.close()


@pytest.fixture
def store(schema: str) -> Iterator[Store]:
    s = open_store(_url(schema), node="n1")
    yield s
    s.close()


class FakeDaemon:
    def __init__(self, node: str, agents: list[str]) -> None:
        self.node = node
        self.agents = agents
        self.killed: list[tuple[str, str | None]] = []

    def local_agents(self) -> list[str]:
        return self.agents

    def kill(self, agent: str, reason: str | None, by: str | None = None) -> None:
        self.killed.append((agent, reason))


# -- the store level ---------------------------------------------------------------------------------


def test_sqlite_store_is_no_fleet(tmp_path: Any) -> None:
    lite = open_store(f"sqlite:///{tmp_path / 'tether.db'}")
    try:
        assert not lite.fleet
    finally:
        lite.close()


def test_node_registry_lost_and_back(store: Store) -> None:
    assert store.fleet
    assert nodes.register(store, "a", pid=1, url="http://a", agents=["x"], now=100.0) is False
    nodes.register(store, "b", pid=2, url="http://b", agents=["y"], now=100.0)
    nodes.beat(store, "a", 120.0)
    assert nodes.node(store, "a")["last_beat"] == 120.0
    assert not [e for e in store.last_events(None, 50) if e.kind == "node.beat"]  # beats are no events
    assert nodes.check_lost(store, "a", 105.0, lost_after=10) == []
    assert nodes.check_lost(store, "a", 120.0, lost_after=10) == ["b"]
    assert nodes.check_lost(store, "a", 121.0, lost_after=10) == []  # once
    row = nodes.node(store, "b")
    assert row is not None and row["state"] == "lost"
    open_ = [i for i in store.incidents("open") if i["kind"] == "node.lost"]
    assert len(open_) == 1 and open_[0]["data"]["node"] == "b" and "b's daemon" in open_[0]["summary"]
    assert nodes.register(store, "b", pid=3, url="http://b", agents=["y"], now=130.0) is True
    row = nodes.node(store, "b")
    assert row is not None and row["state"] == "up" and row["pid"] == 3
    assert not [i for i in store.incidents("open") if i["kind"] == "node.lost"]
    assert [e.kind for e in store.last_events(None, 50)].count("node.back") == 1
    nodes.stopped(store, "b", 140.0)
    assert nodes.check_lost(store, "a", 1000.0, lost_after=10) == []  # a clean stop is no lost node


def test_pending_kill_applied_once_by_its_node(store: Store) -> None:
    store.append([NewEvent("agent.registered", "y", {"info": {}, "node": "b"})])
    assert store.agent("y")["node"] == "b"
    rid = pending.request(store, "y", "b", "runaway")
    rows = pending.pending(store, "b")
    assert [(r["agent"], r["record_id"], r["reason"]) for r in rows] == [("y", rid, "runaway")]
    assert pending.pending(store, "a") == []
    other = FakeDaemon("a", ["x"])
    assert pending.apply_pending(store, other) == []  # not a's to apply
    b = FakeDaemon("b", ["y"])
    assert pending.apply_pending(store, b) == ["y"]
    assert b.killed == [("y", "runaway")]
    assert pending.pending(store) == []
    assert pending.apply_pending(store, b) == [] and len(b.killed) == 1


def test_bus_carries_approvals_and_kills(store: Store, schema: str) -> None:
    from tether.fleet.bus import Bus

    other = open_store(_url(schema), node="b")
    woke = threading.Event()

    class D(FakeDaemon):
        def __init__(self) -> None:
            super().__init__("b", ["y"])
            self.store = other

        def wake_approvals(self) -> None:
            woke.set()

        def reload(self) -> list[str]:
            return []

        def poke(self) -> None:
            pass

    d = D()
    bus = Bus(d)
    bus.start()
    try:
        store.notify("approvals", "1")
        assert woke.wait(2)
        pending.request(store, "y", "b", "stop it")
        wait_until(lambda: d.killed, 3, "the kill to reach node b")
        assert d.killed == [("y", "stop it")]
    finally:
        bus.close()
        other.close()


# -- two hosts, one database ---------------------------------------------------------------------------


def _pg(schema: str, query: str, params: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
    from psycopg.rows import dict_row

    with psycopg.connect(SERVER, autocommit=True, row_factory=dict_row) as conn:
        conn.execute(f'SET search_path TO "{schema}"')
        return list(conn.execute(query, params).fetchall())


@pytest.fixture
def two_hosts(schema: str, make_host: Callable[..., Host]) -> Iterator[tuple[Host, Host]]:  # noqa: F811
    url = _url(schema)
    a = make_host({"a1": agent(SLEEP)}, {"store": url, "name": "host-a"})
    b = make_host({"b1": agent(SLEEP), "b2": agent(SLEEP)}, {"store": url, "name": "host-b"})
    yield a, b


def test_two_hosts_share_one_fleet(two_hosts: tuple[Host, Host], schema: str) -> None:
    a, b = two_hosts
    fast = {"TETHER_FLEET_LOST_AFTER": "2"}
    a.up(env=fast)
    proc_b = b.up(env=fast)
    wait_until(lambda: b.agent_pids("b1") and a.agent_pids("a1"), 15, "both agents to run")
    rows = {r["name"]: r for r in _pg(schema, "SELECT name, node FROM agents")}
    assert rows["a1"]["node"] == "host-a" and rows["b1"]["node"] == "host-b"
    assert {r["name"]: r["state"] for r in _pg(schema, "SELECT * FROM nodes")} == {"host-a": "up", "host-b": "up"}

    # an approval decided on host A releases the agent waiting on host B
    waiter = Agent("b1", b.url, b.agent_token("b1"))
    out: dict[str, Any] = {}

    def ask() -> None:
        out["got"] = waiter.check(command="git push --force origin main", wait=20)
        out["at"] = time.monotonic()

    t = threading.Thread(target=ask, daemon=True)
    t.start()
    status, listed = wait_until(
        lambda: (lambda r: r if r[1]["approvals"] else None)(a.api("GET", "/v1/approvals?state=pending")),
        10, "the approval to show on host A")
    approval = listed["approvals"][0]
    assert approval["agent"] == "b1"
    decided_at = time.monotonic()
    status, _ = a.api("POST", f"/v1/approvals/{approval['id']}/approve", {"note": "from A"})
    assert status == 200
    t.join(10)
    assert out["got"]["decision"] == "allow", out
    assert out["at"] - decided_at < 2.0  # pushed over NOTIFY, not found by B's 5 s re-read

    # `tether kill` on A stops the agent on B
    victims = b.agent_pids("b1")
    proc = a.cli("kill", "b1", "--reason", "fleet test")
    assert proc.returncode == 0, proc.stderr
    assert "b1: kill pending on node host-b" in proc.stdout
    wait_until(lambda: not b.agent_pids("b1"), 10, "b1 to be killed by host B's daemon")
    assert all(not _alive(p) for p in victims)
    wait_until(lambda: _pg(schema, "SELECT applied FROM kill_requests WHERE agent = 'b1'")[0]["applied"], 5,
               "the kill to be recorded as applied")
    assert _pg(schema, "SELECT desired FROM agents WHERE name = 'b1'")[0]["desired"] == "killed"
    assert a.agent_pids("a1")  # A's own agent is untouched

    # SIGKILL of B's daemon: A sees a node incident; B's agents are re-adopted when it returns
    b.cli("resume", "b1")
    wait_until(lambda: b.instances("b1"), 10, "b1 to run again")
    time.sleep(0.3)
    before = b.instances("b1")
    assert len(before) == 1
    b.kill9(proc_b)

    def incident() -> list[dict[str, Any]]:
        return [i for i in _pg(schema, "SELECT * FROM incidents WHERE state = 'open'") if i["kind"] == "node.lost"]

    opened = wait_until(incident, 15, "host A to see host B lost")
    assert json.loads(opened[0]["data"])["node"] == "host-b"
    assert json.loads(opened[0]["data"])["seen_by"] == "host-a"
    assert _pg(schema, "SELECT state FROM nodes WHERE name = 'host-b'")[0]["state"] == "lost"
    assert b.instances("b1") == before  # the agent outlives its daemon
    seen = json.loads(a.cli("status", "--json").stdout)["agents"]
    assert {d["agent"]: d.get("node_state") for d in seen}["b1"] == "lost"
    table = a.cli("status", env={"COLUMNS": "250"}).stdout
    row = next((line for line in table.splitlines() if line.split()[:1] == ["b1"]), table)
    assert "node host-b is lost: running is its last known state" in row, table

    # a kill for an agent on the unreachable node is recorded, pending there, applied when B returns
    b2 = b.instances("b2")
    assert b2
    proc = a.cli("kill", "b2", "--reason", "while away")
    assert proc.returncode == 0, proc.stderr
    assert "b2: kill pending on node host-b (node lost)" in proc.stdout
    assert [r["agent"] for r in _pg(schema, "SELECT agent FROM kill_requests WHERE applied IS NULL")] == ["b2"]
    assert b.instances("b2") == b2  # nobody can reach it until B's daemon returns

    b.up(env=fast)
    wait_until(lambda: not b.instances("b2"), 10, "b2 to be killed by the returning daemon")
    assert not _pg(schema, "SELECT agent FROM kill_requests WHERE applied IS NULL")
    wait_until(lambda: not incident(), 10, "the node incident to resolve")
    assert _pg(schema, "SELECT state FROM nodes WHERE name = 'host-b'")[0]["state"] == "up"
    time.sleep(0.5)
    assert b.instances("b1") == before  # re-adopted, not restarted
    assert _pg(schema, "SELECT count(*) AS n FROM events WHERE kind = 'node.back'")[0]["n"] == 1


def _alive(pid: int) -> bool:
    from test_daemon_kit import is_zombie

    return not is_zombie(pid)
