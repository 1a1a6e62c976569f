"""The store contract, run against real databases. ``StoreContract`` holds what every backend must do;
``TestSQLiteStore`` runs it on SQLite files and adds what only SQLite can be asked (its raw file, its backup).
A PostgreSQL backend gets the same contract by subclassing with its own ``store`` fixture."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from helpers import raw_bytes, sqlite_ids
from tether.errors import StoreError
from tether.store import NewEvent, Store, open_store
from tether.store.sqlite import SQLiteStore

T0 = 1_700_000_000.0

# Fake credentials in each format the redactor knows (built by concatenation so no scanner flags this file).
SECRETS = {
    "aws-key": "AKIA" + "IOSFODNN7EXAMPLE",
    "github": "ghp_" + "aBcDeFgHiJkLmNoPqRsTuVwXyZ0123456789",
    "anthropic": "sk-ant-" + "api03-abcdefghijklmnopqrstuvwxyz012345",
    "openai": "sk-proj-" + "abcdefghijklmnopqrstuvwxyz0123456789",
    "slack": "xoxb-" + "123456789012-abcdefghijkl",
    "private-key": "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA7Vh2secretbody\n-----END RSA PRIVATE KEY-----",
}


def ev(kind: str, agent: str | None = None, ts: float = T0, **data: Any) -> NewEvent:
    return NewEvent(kind, agent, data, ts)


def backup_while_appending(store: Store, target: Path, at_least: int,
                           acknowledged: list[int] | None = None) -> tuple[list[int], list[int]]:
    """Back the store up to ``target`` while a thread appends: returns (the ids acknowledged before the
    backup began, every id acknowledged by the end)."""
    acknowledged = [] if acknowledged is None else acknowledged
    stop = threading.Event()
    errors: list[BaseException] = []

    def writer() -> None:
        try:
            i = 0
            while not stop.is_set():
                acknowledged.extend(store.append([ev("log", "w", n=i, pad="p" * 200)]))
                i += 1
        except BaseException as err:  # pragma: no cover
            errors.append(err)

    t = threading.Thread(target=writer)
    t.start()
    try:
        deadline = time.monotonic() + 20
        while len(acknowledged) < at_least and time.monotonic() < deadline:
            time.sleep(0.01)
        before = list(acknowledged)
        assert len(before) >= at_least
        store.backup(str(target))
    finally:
        stop.set()
        t.join(30)
    assert not errors, errors
    return before, acknowledged


class StoreContract:
    """What every backend must do. A backend's subclass provides ``store_url`` (a fresh, empty store each
    time); it may parametrize it to run the contract on several configurations."""

    @pytest.fixture
    def store_url(self) -> str:
        raise NotImplementedError

    @pytest.fixture
    def store(self, store_url: str) -> Iterator[Store]:
        s = open_store(store_url)
        try:
            yield s
        finally:
            s.close()

    # -- appending and reading -------------------------------------------------------------------
    def test_append_returns_increasing_ids(self, store: Store) -> None:
        first = store.append([ev("log", "a", n=1), ev("log", "b", n=2), ev("log", "a", n=3)])
        second = store.append([ev("log", "a", n=4)])
        third = store.emit("log", "b", n=5)
        ids = [*first, *second, third]
        assert len(first) == 3 and len(second) == 1
        assert ids == sorted(ids) and len(set(ids)) == 5

    def test_append_nothing(self, store: Store) -> None:
        assert store.append([]) == []
        assert store.events() == []

    def test_events_read_back_in_order(self, store: Store) -> None:
        sent = [ev("log", f"agent-{i % 3}", T0 + i, n=i, text=f"line {i}", nested={"k": [i, None, True]})
                for i in range(20)]
        ids = store.append(sent[:7]) + store.append(sent[7:])
        got = store.events()
        assert [e.id for e in got] == ids
        for e, s in zip(got, sent, strict=True):
            assert (e.kind, e.agent, e.ts, e.data) == (s.kind, s.agent, s.ts, s.data)

    def test_event_without_agent(self, store: Store) -> None:
        eid = store.emit("host.started", None, version="1")
        (e,) = store.events()
        assert (e.id, e.agent, e.data) == (eid, None, {"version": "1"})

    def test_non_json_values_are_stored_as_text(self, store: Store) -> None:
        store.emit("log", "a", path=Path("/x/y"))
        assert store.events()[0].data == {"path": "/x/y"}

    def test_filters(self, store: Store) -> None:
        ids = store.append([ev("log", "a"), ev("note", "b"), ev("log", "b"), ev("note", "a"), ev("log", "a")])
        assert [e.id for e in store.events(agent="a")] == [ids[0], ids[3], ids[4]]
        assert [e.id for e in store.events(kinds=["note"])] == [ids[1], ids[3]]
        assert [e.id for e in store.events(kinds=("log", "note"), agent="b")] == [ids[1], ids[2]]
        assert [e.id for e in store.events(after=ids[2])] == ids[3:]
        assert [e.id for e in store.events(after=ids[0], limit=2)] == ids[1:3]
        assert store.events(agent="nobody") == []
        assert store.events(after=ids[-1]) == []

    def test_last_events_newest_first(self, store: Store) -> None:
        ids = store.append([ev("log", "a" if i % 2 else "b", n=i) for i in range(10)])
        assert [e.id for e in store.last_events(limit=3)] == ids[::-1][:3]
        assert [e.id for e in store.last_events(agent="a", limit=2)] == [ids[9], ids[7]]
        assert len(store.last_events()) == 10

    # -- projections -----------------------------------------------------------------------------
    def test_agent_lifecycle_projections(self, store: Store) -> None:
        assert store.agent("w") is None
        store.append([ev("agent.registered", "w", T0, info={"kind": "command", "heartbeat": {"stale_after": 5}})])
        row = store.agent("w")
        assert row is not None
        assert (row["name"], row["state"], row["desired"]) == ("w", "stopped", "running")
        assert row["info"] == {"kind": "command", "heartbeat": {"stale_after": 5}}
        assert (row["files_changed"], row["commands_run"], row["restarts"], row["tests"]) == (0, 0, 0, None)

        store.append([ev("agent.started", "w", T0 + 1, pid=4242)])
        row = store.agent("w")
        assert row is not None
        assert (row["state"], row["pid"], row["started_at"], row["last_heartbeat"]) == ("running", 4242, T0 + 1, T0 + 1)
        assert (row["restarts"], row["exit_code"], row["state_since"]) == (0, None, T0 + 1)

        store.append([ev("agent.exited", "w", T0 + 2, code=3)])
        row = store.agent("w")
        assert row is not None
        assert (row["pid"], row["exit_code"]) == (None, 3)

        store.append([ev("agent.started", "w", T0 + 3, pid=4343, restart=True)])
        store.append([ev("agent.started", "w", T0 + 4, pid=4444, restart=True)])
        row = store.agent("w")
        assert row is not None
        assert (row["pid"], row["restarts"], row["exit_code"], row["started_at"]) == (4444, 2, None, T0 + 4)

        store.append([ev("agent.state", "w", T0 + 5, state="blocked", reason="data.delete is blocked")])
        row = store.agent("w")
        assert row is not None
        assert (row["state"], row["reason"], row["state_since"]) == ("blocked", "data.delete is blocked", T0 + 5)

        store.append([ev("agent.desired", "w", T0 + 6, desired="stopped")])
        row = store.agent("w")
        assert row is not None
        assert row["desired"] == "stopped"
        assert [r["name"] for r in store.agents()] == ["w"]

        store.append([ev("agent.removed", "w", T0 + 7)])
        assert store.agent("w") is None
        assert store.agents() == []

    def test_agents_listed_by_name(self, store: Store) -> None:
        store.append([ev("agent.registered", n, info={}) for n in ("zeta", "alpha", "mid")])
        assert [r["name"] for r in store.agents()] == ["alpha", "mid", "zeta"]

    def test_task_projections(self, store: Store) -> None:
        store.emit("agent.registered", "w", info={})
        t1 = store.append([ev("task.added", "w", T0 + 1, text="fix the bug", meta={"from": "ops"})])[0]
        t2 = store.append([ev("task.added", "w", T0 + 2, text="write docs")])[0]
        task = store.task(t1)
        assert task is not None, "a task's id is the id of the event that added it"
        assert (task.id, task.agent, task.text, task.state, task.created) == (t1, "w", "fix the bug", "queued", T0 + 1)
        assert (task.started, task.finished, task.meta) == (None, None, {"from": "ops"})

        store.append([ev("task.started", "w", T0 + 3, task_id=t1, text="fix the bug")])
        task, row = store.task(t1), store.agent("w")
        assert task is not None and row is not None
        assert (task.state, task.started) == ("started", T0 + 3)
        assert (row["task"], row["last_progress"]) == ("fix the bug", T0 + 3)

        store.append([ev("task.done", "w", T0 + 4, task_id=t1, text="fix the bug")])
        task, row = store.task(t1), store.agent("w")
        assert task is not None and row is not None
        assert (task.state, task.finished) == ("done", T0 + 4)
        assert (row["task"], row["last_task"], row["last_task_at"]) == (None, "fix the bug", T0 + 4)

        store.append([ev("task.started", "w", T0 + 5, task_id=t2, text="write docs")])
        store.append([ev("task.failed", "w", T0 + 6, task_id=t2, text="write docs")])
        task, row = store.task(t2), store.agent("w")
        assert task is not None and row is not None
        assert (task.state, task.finished) == ("failed", T0 + 6)
        assert row["task"] is None
        assert row["last_task"] == "fix the bug", "a failed task is not the last completed one"

        assert [t.id for t in store.tasks()] == [t1, t2]
        assert [t.id for t in store.tasks(agent="w", states=["failed"])] == [t2]
        assert [t.id for t in store.tasks(states=("done", "failed"))] == [t1, t2]
        assert store.tasks(agent="other") == []
        assert store.task(t2 + 1000) is None

    def test_counters_and_tests_projections(self, store: Store) -> None:
        store.emit("agent.registered", "w", info={})
        store.append([
            ev("files.changed", "w", paths=["a.py", "b.py", "c.py"]),
            ev("files.changed", "w", count=4),
            ev("command.run", "w", command="make"),
            ev("command.run", "w", command="make test"),
            ev("tests.reported", "w", passed=41, failed=1),
        ])
        row = store.agent("w")
        assert row is not None
        assert (row["files_changed"], row["commands_run"]) == (7, 2)
        assert row["tests"] == {"passed": 41, "failed": 1}
        store.emit("tests.reported", "w", passed=42, failed=0)
        row = store.agent("w")
        assert row is not None and row["tests"] == {"passed": 42, "failed": 0}

    def test_events_without_projection_leave_rows_alone(self, store: Store) -> None:
        store.emit("agent.registered", "w", info={})
        before = store.agent("w")
        store.emit("log", "w", line="hello")
        assert store.agent("w") == before

    def test_a_failing_append_is_rolled_back_whole(self, store: Store) -> None:
        store.emit("agent.registered", "w", info={})
        with pytest.raises((KeyError, StoreError)):  # a task.added without text cannot be projected
            store.append([ev("log", "w", n=1), ev("task.added", "w")])
        assert store.events(kinds=["log"]) == [], "the whole append is rolled back"
        assert store.tasks() == []
        good = store.emit("log", "w", n=2)
        assert [e.id for e in store.events(kinds=["log"])] == [good]

    # -- beats and pruning -----------------------------------------------------------------------
    def test_beat_updates_the_row_without_an_event(self, store: Store) -> None:
        store.append([ev("agent.registered", "w", T0, info={}), ev("agent.started", "w", T0, pid=1)])
        count = len(store.events())
        store.beat("w", T0 + 10, task="reindex", progress="step 1/3")
        row = store.agent("w")
        assert row is not None
        assert (row["last_heartbeat"], row["task"], row["progress"], row["last_progress"]) == (
            T0 + 10, "reindex", "step 1/3", T0 + 10)
        store.beat("w", T0 + 20, progress="step 1/3")  # same progress: not progress
        row = store.agent("w")
        assert row is not None
        assert (row["last_heartbeat"], row["last_progress"], row["task"]) == (T0 + 20, T0 + 10, "reindex")
        store.beat("w", T0 + 30, progress="step 2/3")
        row = store.agent("w")
        assert row is not None
        assert (row["last_heartbeat"], row["last_progress"], row["progress"]) == (T0 + 30, T0 + 30, "step 2/3")
        store.beat("w", T0 + 40)
        row = store.agent("w")
        assert row is not None
        assert (row["last_heartbeat"], row["last_progress"], row["progress"]) == (T0 + 40, T0 + 30, "step 2/3")
        assert len(store.events()) == count, "beats are not events"

    def test_beats_in_one_write_apply_in_order(self, store: Store) -> None:
        """The daemon writes the beats that arrive together in one call: each agent's row ends as its
        last beat left it, progress counted only where it changed."""
        store.append([ev("agent.registered", n, T0, info={}) for n in ("a", "b")])
        store.beats([("a", T0 + 1, "t1", "p1"), ("b", T0 + 1, None, None), ("a", T0 + 2, None, "p1"),
                     ("ghost", T0 + 2, None, None), ("b", T0 + 3, "t2", "q1")])
        a, b = store.agent("a"), store.agent("b")
        assert a is not None and b is not None
        assert (a["last_heartbeat"], a["task"], a["progress"], a["last_progress"]) == (T0 + 2, "t1", "p1", T0 + 1)
        assert (b["last_heartbeat"], b["task"], b["progress"], b["last_progress"]) == (T0 + 3, "t2", "q1", T0 + 3)
        assert store.agent("ghost") is None
        store.beats([])

    def test_beat_for_unknown_agent_creates_nothing(self, store: Store) -> None:
        store.beat("ghost", T0)
        assert store.agent("ghost") is None
        assert store.events() == []

    def test_prune_deletes_old_events_only(self, store: Store) -> None:
        store.append([ev("agent.registered", "w", T0, info={})])
        old = store.append([ev("log", "w", T0 + i) for i in range(1, 5)])
        new = store.append([ev("log", "w", T0 + 100 + i) for i in range(3)])
        assert store.prune(T0 + 100) == 5
        assert [e.id for e in store.events()] == new
        assert store.agent("w") is not None, "pruning events keeps the rows they built"
        assert store.prune(T0 + 100) == 0
        assert old[0] not in [e.id for e in store.events()]
        later = store.emit("log", "w")
        assert later > new[-1], "ids are never reused after a prune"

    # -- change notifications --------------------------------------------------------------------
    def test_on_change_receives_changed_agents(self, store: Store) -> None:
        seen: list[set[str]] = []
        store.on_change(seen.append)
        store.append([ev("agent.registered", "a", info={}), ev("agent.registered", "b", info={})])
        assert set().union(*seen) == {"a", "b"}
        seen.clear()
        store.emit("agent.state", "b", state="idle")
        assert seen == [{"b"}]
        seen.clear()
        store.emit("log", "a", line="no projection, no change")
        assert seen == []

    def test_a_failing_listener_does_not_break_appends(self, store: Store) -> None:
        calls: list[set[str]] = []

        def bad(names: set[str]) -> None:
            calls.append(names)
            raise RuntimeError("listener bug")

        store.on_change(bad)
        eid = store.emit("agent.registered", "a", info={})
        assert calls == [{"a"}]
        assert [e.id for e in store.events()] == [eid]
        assert store.emit("agent.state", "a", state="idle") > eid

    # -- secrets ---------------------------------------------------------------------------------
    def test_events_are_stored_redacted(self, store: Store) -> None:
        data: dict[str, Any] = {kind: f"here it is: {value} (keep this)" for kind, value in SECRETS.items()}
        data["nested"] = {"list": [SECRETS["github"], "plain"]}
        store.emit("log", "w", **data)
        (got,) = store.events()
        text = repr(got.data)
        for kind, value in SECRETS.items():
            assert value not in text
            assert got.data[kind] == f"here it is: [REDACTED:{kind}] (keep this)"
        assert got.data["nested"] == {"list": ["[REDACTED:github]", "plain"]}

    def test_projected_rows_are_redacted_too(self, store: Store) -> None:
        token = SECRETS["github"]
        store.emit("agent.registered", "w", info={"note": f"token {token}"})
        t = store.emit("task.added", "w", text=f"use {token}")
        row, task = store.agent("w"), store.task(t)
        assert row is not None and task is not None
        assert row["info"] == {"note": "token [REDACTED:github]"}
        assert task.text == "use [REDACTED:github]"

    # -- concurrency -----------------------------------------------------------------------------
    def test_concurrent_appends_all_land(self, store: Store) -> None:
        threads, per = 8, 40
        got: dict[int, list[int]] = {}
        errors: list[BaseException] = []
        start = threading.Barrier(threads)

        def worker(n: int) -> None:
            try:
                start.wait()
                mine: list[int] = []
                for i in range(per):
                    mine += store.append([ev("log", f"t{n}", T0 + i, n=n, i=i)])
                got[n] = mine
            except BaseException as err:  # pragma: no cover - reported below
                errors.append(err)

        pool = [threading.Thread(target=worker, args=(n,)) for n in range(threads)]
        for t in pool:
            t.start()
        for t in pool:
            t.join(60)
        assert not errors, errors
        everyone = [i for ids in got.values() for i in ids]
        assert len(everyone) == threads * per
        assert len(set(everyone)) == threads * per, "every append got its own id"
        stored = {e.id: e for e in store.events(limit=10_000)}
        assert set(stored) == set(everyone)
        for n, ids in got.items():
            assert ids == sorted(ids), "one thread's appends keep their order"
            assert [stored[i].data for i in ids] == [{"n": n, "i": i} for i in range(per)]
            assert all(stored[i].agent == f"t{n}" for i in ids)

    def test_a_bad_append_fails_alone_among_concurrent_ones(self, store: Store) -> None:
        """Group commit puts several callers in one transaction; one caller's bad event must not fail
        (or lose) the others."""
        good: list[int] = []
        bad_failed = 0
        errors: list[BaseException] = []
        start = threading.Barrier(6)

        def worker(n: int) -> None:
            nonlocal bad_failed
            start.wait()
            for i in range(40):
                try:
                    if n == 0:
                        store.append([ev("log", "bad", i=i), ev("task.added", "bad")])  # no text: fails
                    else:
                        good.extend(store.append([ev("log", f"t{n}", i=i)]))
                except (KeyError, StoreError):
                    bad_failed += 1
                except BaseException as err:  # pragma: no cover
                    errors.append(err)

        pool = [threading.Thread(target=worker, args=(n,)) for n in range(6)]
        for t in pool:
            t.start()
        for t in pool:
            t.join(60)
        assert not errors, errors
        assert bad_failed == 40
        stored = store.events(limit=10_000)
        assert sorted(e.id for e in stored) == sorted(good)
        assert len(good) == 5 * 40
        assert all(e.agent != "bad" for e in stored)

    # -- bookkeeping and the fleet's rows: every query is a method of the store ----------------------
    def test_cursors(self, store: Store) -> None:
        assert store.cursor("export.a") is None and store.cursors() == {}
        store.set_cursor("export.a", 7, T0)
        store.set_cursor("export.b", 3, T0)
        store.set_cursor("export.a", 9, T0 + 1)  # saved again: the newest wins, no second row
        assert store.cursor("export.a") == 9
        assert store.cursors() == {"export.a": 9, "export.b": 3}
        assert store.events() == []  # bookkeeping: no event

    def test_notification_reads(self, store: Store) -> None:
        def queued(thread: str, subject: int, topic: str, recipient: str, ts: float) -> NewEvent:
            return ev("notify.queued", "w", ts, thread=thread, subject=subject, topic=topic, recipient=recipient)

        def opened(agent: str | None, kind: str, ts: float, **data: Any) -> NewEvent:
            return NewEvent("incident.opened", agent, {"kind": kind, **data}, ts)

        a, b, c, _ = store.append([
            opened("w", "stale", T0, summary="w is stale"),
            opened(None, "disk", T0),
            opened("w", "stale", T0 + 1),
            opened("v", "stale", T0 + 1),
        ])
        n1, n2, n3, n4 = store.append([
            queued(f"incident:{a}", a, "incident.opened", "ann", T0 + 10),
            queued(f"incident:{a}", a, "incident.resolved", "ann", T0 + 30),
            queued(f"incident:{c}", c, "incident.opened", "ann", T0 + 20),
            queued(f"incident:{c}", c, "incident.opened", "bob", T0 + 5),
        ])
        store.emit("notify.sent", "w", notification_id=n4, attempts=1)
        assert [r["id"] for r in store.notifications()] == [n1, n2, n3, n4]
        assert [r["id"] for r in store.notifications(f"incident:{c}")] == [n3, n4]
        assert [r["id"] for r in store.notifications(state="pending", limit=2)] == [n1, n2]
        assert store.notifications(f"incident:{c}", state="sent")[0]["recipient"] == "bob"
        assert [r["id"] for r in store.due_notifications(T0 + 25)] == [n1, n3]
        assert [r["id"] for r in store.due_notifications(T0 + 25, limit=1)] == [n1]
        assert store.next_notification_due() == T0 + 10
        assert store.announced_resolutions([a, b, c]) == {a} and store.announced_resolutions([]) == set()
        assert store.unfinished_threads() == [c]
        got = store.incident(a)
        assert got is not None and got["kind"] == "stale" and got["summary"] == "w is stale"
        assert got["data"]["summary"] == "w is stale" and store.incident(n1) is None
        assert [i["id"] for i in store.recent_incidents("w", "stale")] == [c, a]
        assert [i["id"] for i in store.recent_incidents("w", "stale", limit=1)] == [c]
        assert [i["id"] for i in store.recent_incidents(None, "disk")] == [b]
        assert store.recent_incidents(None, "stale") == []

    def test_fleet_rows(self, store: Store) -> None:
        store.append([
            ev("node.registered", None, T0, node="b", pid=2, url="http://b", info={"agents": ["y"]}),
            ev("node.registered", None, T0, node="a", pid=1, url="http://a"),
            ev("kill.requested", "y", T0 + 1, node="b", reason="r", record_id="k1"),
            ev("control.requested", "x", T0 + 2, node="a", reason=None, record_id="k2", verb="stop"),
            ev("kill.requested", "y", T0 + 3, node="b", reason=None, record_id="k3"),
        ])
        assert [(n["name"], n["state"], n["info"]) for n in store.nodes()] == [("a", "up", {}),
                                                                               ("b", "up", {"agents": ["y"]})]
        store.beat_node("a", T0 + 50)
        assert store.nodes()[0]["last_beat"] == T0 + 50
        assert [r["record_id"] for r in store.pending_requests()] == ["k1", "k2", "k3"]
        assert [r["record_id"] for r in store.pending_requests("b")] == ["k1", "k3"]
        store.emit("kill.applied", "y", record_id="k1", node="b", found=True)
        assert [r["record_id"] for r in store.pending_requests("b")] == ["k3"]
        done = store.fleet_request("k1")
        assert done is not None and done["applied"] is not None and done["reason"] == "r"
        assert store.fleet_request("k2")["verb"] == "stop"  # type: ignore[index]
        assert store.fleet_request("nope") is None

    def test_closed_store_refuses_writes(self, store: Store) -> None:
        store.emit("log")
        store.close()
        with pytest.raises(StoreError, match="closed"):
            store.emit("log")

    # -- reopening ---------------------------------------------------------------------------------
    def test_reopen_keeps_everything(self, store: Store, store_url: str) -> None:
        ids = store.append([ev("agent.registered", "w", info={"k": 1}), ev("log", "w", n=1)])
        store.close()
        again = open_store(store_url)  # migrations run again and change nothing
        try:
            assert [e.id for e in again.events()] == ids
            assert again.agent("w") is not None
            assert again.emit("log") > ids[-1]
        finally:
            again.close()

    def test_readonly(self, store: Store, store_url: str) -> None:
        eid = store.emit("log", "w")
        ro = open_store(store_url, readonly=True)
        try:
            assert [e.id for e in ro.events()] == [eid]
            with pytest.raises(StoreError, match="read-only"):
                ro.emit("log")
        finally:
            ro.close()


class TestSQLiteStore(StoreContract):
    @pytest.fixture
    def db(self, tmp_path: Path) -> Path:
        return tmp_path / "state" / "tether.db"

    @pytest.fixture
    def store_url(self, db: Path) -> str:
        return f"sqlite:///{db}"

    def test_open_store_url(self, db: Path) -> None:
        s = open_store(f"sqlite:///{db}")
        assert isinstance(s, SQLiteStore) and s.path == db
        s.close()
        with pytest.raises(StoreError, match="unknown store URL"):
            open_store("mysql://x/y")

    def test_no_signals_between_hosts(self, store: Store) -> None:
        """A SQLite store is no fleet's: nobody to tell (notify does nothing), nothing to hear (listen
        refuses in one line that says what a fleet needs)."""
        assert store.fleet is False
        store.notify("approvals", "1")
        with pytest.raises(StoreError, match="no signals between hosts; a fleet needs a shared PostgreSQL"):
            store.start_listener(["approvals"], lambda c, p: None, threading.Event())
        with pytest.raises(StoreError, match="no signals between hosts"):
            store.listen(["approvals"], lambda c, p: None, threading.Event())

    def test_beats_need_not_wait_for_another_writer(self, store: Store) -> None:
        """The event loop writes beats inline only when nobody else holds the store; else it hears False
        at once (the writer thread takes them) instead of waiting for another writer's fsync."""
        store.append([ev("agent.registered", "w", T0, info={})])
        assert store.local
        held = threading.Event()
        release = threading.Event()

        def writer() -> None:
            def job(conn: object) -> tuple[None, set[str]]:
                held.set()
                release.wait(10)
                return None, set()

            store._submit(job)  # type: ignore[attr-defined]

        t = threading.Thread(target=writer)
        t.start()
        try:
            assert held.wait(10)
            assert store.beats([("w", T0 + 1, None, None)], block=False) is False
            assert (store.agent("w") or {})["last_heartbeat"] is None
        finally:
            release.set()
            t.join(10)
        assert store.beats([("w", T0 + 2, None, None)], block=False) is True
        assert (store.agent("w") or {})["last_heartbeat"] == T0 + 2

    def test_readonly_without_a_store(self, tmp_path: Path) -> None:
        with pytest.raises(StoreError, match="no store here yet"):
            SQLiteStore(tmp_path / "nothing" / "tether.db", readonly=True)

    def test_secrets_never_reach_the_file(self, store: Store, db: Path) -> None:
        marker = "marker-0123456789"
        for kind, value in SECRETS.items():
            store.emit("log", "w", **{kind: f"{marker} {value}"}, text=f"{kind}={value}")
        store.emit("agent.registered", "w", info={"k": SECRETS["openai"]})
        store.emit("task.added", "w", text=SECRETS["anthropic"])
        blob = raw_bytes(db)
        assert marker.encode() in blob, "the events are in these files"
        for value in SECRETS.values():
            for piece in value.split("\n"):
                assert piece.encode() not in blob
        assert b"[REDACTED:private-key]" in blob

    def test_integrity_check(self, store: Store) -> None:
        store.emit("log")
        assert store.integrity_check() == "ok"

    def test_backup_while_appending(self, store: Store, tmp_path: Path) -> None:
        target = tmp_path / "backup.db"
        before, acknowledged = backup_while_appending(store, target, 300)
        check, ids = sqlite_ids(target)
        assert check == "ok"
        assert set(before) <= set(ids), "every event acknowledged before the backup is in it"
        assert set(ids) <= set(acknowledged), "and nothing that was never written"

    def test_backup_refuses_to_overwrite(self, store: Store, tmp_path: Path) -> None:
        store.emit("log")
        target = tmp_path / "b.db"
        store.backup(str(target))
        size = target.stat().st_size
        with pytest.raises(StoreError, match="already exists"):
            store.backup(str(target))
        assert target.stat().st_size == size
        assert sqlite_ids(target)[0] == "ok"
