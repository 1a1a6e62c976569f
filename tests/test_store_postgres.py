"""The PostgreSQL store: the whole ``StoreContract`` on a real server, then what only PostgreSQL is asked
(several stores on one database, advisory-locked migrations, LISTEN/NOTIFY, connection errors, backups).

Each test gets its own schema (``?schema=t_<random>`` in the URL), dropped afterwards, so parallel runs
and other people's runs on the same database never meet. The server: ``$TETHER_TEST_PG`` or
``postgresql://postgres@127.0.0.1:5432/test``. Unreachable, the tests skip, except in CI (``CI`` set),
where they fail."""

from __future__ import annotations

import itertools
import json
import os
import secrets
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from helpers import cli_env
from test_store import SECRETS, T0, StoreContract, backup_while_appending, ev
from tether.errors import StoreError
from tether.store import NewEvent, Store, open_store

psycopg = pytest.importorskip("psycopg")

from tether.store import projections  # noqa: E402
from tether.store.postgres import PostgresStore, read_backup, translate  # noqa: E402
from tether.store.projections import audit_hash  # noqa: E402

SERVER = os.environ.get("TETHER_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")


def _admin() -> Any:
    try:
        return psycopg.connect(SERVER, autocommit=True, connect_timeout=5)
    except psycopg.Error as err:
        if os.environ.get("CI"):
            raise
        pytest.skip(f"no PostgreSQL at {SERVER.split('@')[-1]}: {str(err).strip().splitlines()[0]}")


@pytest.fixture(scope="module")
def admin() -> Iterator[Any]:
    conn = _admin()
    yield conn
    conn.close()


def _url(name: str) -> str:
    return f"{SERVER}{'&' if '?' in SERVER else '?'}schema={name}"


@pytest.fixture
def schema(admin: Any) -> Iterator[str]:
    """A fresh schema name (the store creates the schema), dropped with everything in it afterwards."""
    name = f"t_{secrets.token_hex(6)}"
    yield name
    admin.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')


class TestPostgresStore(StoreContract):
    @pytest.fixture
    def store_url(self, schema: str) -> str:
        return _url(schema)

    # -- opening ---------------------------------------------------------------------------------
    def test_open_store_url(self, store_url: str, schema: str) -> None:
        s = open_store(store_url, node="host-a")
        try:
            assert isinstance(s, PostgresStore) and s.schema == schema
            s.emit("log", "w")
            assert s.events()[0].node == "host-a"
        finally:
            s.close()

    def test_readonly_without_a_store(self, schema: str) -> None:
        with pytest.raises(StoreError, match="no store here yet"):
            open_store(_url(schema + "_none"), readonly=True)

    def test_secrets_never_reach_the_database(self, store: Store, admin: Any, schema: str) -> None:
        marker = "marker-0123456789"
        for kind, value in SECRETS.items():
            store.emit("log", "w", **{kind: f"{marker} {value}"}, text=f"{kind}={value}")
        store.emit("agent.registered", "w", info={"k": SECRETS["openai"]})
        store.emit("task.added", "w", text=SECRETS["anthropic"])
        blob = ""
        for table in ("events", "agents", "tasks"):
            rows = admin.execute(f'SELECT t::text FROM "{schema}".{table} t').fetchall()
            blob += "\n".join(r[0] for r in rows)
        assert marker in blob, "the events are in these tables"
        for value in SECRETS.values():
            for piece in value.split("\n"):
                assert piece not in blob
        assert "[REDACTED:private-key]" in blob

    # -- housekeeping ----------------------------------------------------------------------------
    def test_integrity_check(self, store: Store, admin: Any, schema: str) -> None:
        store.emit("log")
        assert store.integrity_check() == "ok"
        admin.execute(f"DELETE FROM \"{schema}\".migrations WHERE name = '0002_tokens_incidents'")
        assert store.integrity_check() == "migrations not applied: 0002_tokens_incidents"
        admin.execute(f"INSERT INTO \"{schema}\".migrations VALUES ('0002_tokens_incidents', 0)")
        admin.execute(f"SELECT setval('\"{schema}\".events_id_seq', 1, false)")
        assert "behind the largest id" in store.integrity_check()

    def test_backup_while_appending(self, store: Store, tmp_path: Path) -> None:
        acknowledged = store.append([ev("agent.registered", "w", info={"k": 1}), ev("task.added", "w", text="t")])
        target = tmp_path / "backup.jsonl"
        before, acknowledged = backup_while_appending(store, target, 100, acknowledged)
        rows = list(read_backup(str(target)))
        ids = [r["id"] for table, r in rows if table == "events"]
        assert set(before) <= set(ids), "every event acknowledged before the backup is in it"
        assert set(ids) <= set(acknowledged), "and nothing that was never written"
        assert {table for table, _ in rows} >= {"events", "agents", "tasks", "migrations"}
        (agent,) = [r for table, r in rows if table == "agents"]
        assert agent["name"] == "w" and json.loads(agent["info"]) == {"k": 1}
        head = json.loads(target.read_text().splitlines()[0])
        assert head["tether"] == "backup" and "password" not in json.dumps(head)

    def test_backup_refuses_to_overwrite_and_detects_truncation(self, store: Store, tmp_path: Path) -> None:
        store.emit("log")
        target = tmp_path / "b.jsonl"
        store.backup(str(target))
        text = target.read_text()
        with pytest.raises(StoreError, match="already exists"):
            store.backup(str(target))
        assert target.read_text() == text
        cut = tmp_path / "cut.jsonl"
        cut.write_text("\n".join(text.splitlines()[:-1]) + "\n")
        with pytest.raises(StoreError, match="incomplete"):
            list(read_backup(str(cut)))
        with pytest.raises(StoreError, match="cannot write"):
            store.backup(str(tmp_path / "no-such-dir" / "b.jsonl"))

    # -- what several stores on one database must get right --------------------------------------
    def test_two_stores_commit_in_id_order(self, store_url: str) -> None:
        """Two daemons writing to one database: ids increase in commit order (a reader that follows
        ``events(after=last)`` misses nothing) and the audit chain stays one chain."""
        a, b = open_store(store_url, node="a"), open_store(store_url, node="b")
        seen: list[int] = []
        stop = threading.Event()
        errors: list[BaseException] = []

        def follower() -> None:
            last = 0
            while not stop.is_set():
                got = a.events(after=last, limit=10_000)
                seen.extend(e.id for e in got)
                if got:
                    last = got[-1].id

        def writer(s: Store, n: int) -> None:
            try:
                for i in range(60):
                    s.append([ev("log", f"w{n}", i=i), ev("verdict", f"w{n}", i=i)])
            except BaseException as err:  # pragma: no cover
                errors.append(err)

        f = threading.Thread(target=follower)
        f.start()
        pool = [threading.Thread(target=writer, args=(s, n)) for n, s in enumerate((a, b, a, b))]
        try:
            for t in pool:
                t.start()
            for t in pool:
                t.join(60)
            time.sleep(0.05)
        finally:
            stop.set()
            f.join(30)
        try:
            assert not errors, errors
            every = [e.id for e in b.events(limit=10_000)]
            assert len(every) == 4 * 60 * 2
            assert sorted(set(seen)) == every, "a follower saw every event exactly once"
            assert len(seen) == len(every)
            chain = a.audit_rows()
            assert len(chain) == 4 * 60
            assert all(r["prev"] == p["hash"] for p, r in itertools.pairwise(chain))
            assert all(r["hash"] == audit_hash(r["prev"], r["event_id"], r["ts"], r["agent"], r["kind"], r["data"])
                       for r in chain)
            assert {e.node for e in b.events(limit=10_000)} == {"a", "b"}
            assert a.integrity_check() == "ok"
        finally:
            a.close()
            b.close()

    def test_concurrent_first_start_migrates_once(self, store_url: str, admin: Any, schema: str) -> None:
        got: list[Store] = []
        errors: list[BaseException] = []
        start = threading.Barrier(4)

        def opener() -> None:
            try:
                start.wait()
                got.append(open_store(store_url))
            except BaseException as err:
                errors.append(err)

        pool = [threading.Thread(target=opener) for _ in range(4)]
        for t in pool:
            t.start()
        for t in pool:
            t.join(60)
        try:
            assert not errors, errors
            names = [r[0] for r in admin.execute(f'SELECT name FROM "{schema}".migrations ORDER BY name')]
            assert names == sorted(name for name, _ in _migrations())
            ids = [s.emit("log") for s in got]
            assert ids == sorted(ids)
        finally:
            for s in got:
                s.close()

    def test_claim_task_across_stores_takes_each_task_once(self, store_url: str) -> None:
        a, b = open_store(store_url), open_store(store_url)
        try:
            a.emit("agent.registered", "w", info={})
            queued = a.append([ev("task.added", "w", text=f"job {i}") for i in range(40)])
            claimed: list[int] = []
            lock = threading.Lock()

            def worker(s: Store) -> None:
                while (task := s.claim_task("w")) is not None:
                    assert task.state == "started"
                    with lock:
                        claimed.append(task.id)

            pool = [threading.Thread(target=worker, args=(s,)) for s in (a, b, a, b)]
            for t in pool:
                t.start()
            for t in pool:
                t.join(60)
            assert sorted(claimed) == queued, "every task claimed exactly once"
            assert a.claim_task("w") is None
            assert len(a.events(kinds=["task.started"])) == 40
            assert {t.state for t in b.tasks(agent="w")} == {"started"}
        finally:
            a.close()
            b.close()

    def test_claim_task_in_order(self, store: Store) -> None:
        store.emit("agent.registered", "w", info={})
        t1, t2 = store.append([ev("task.added", "w", text="first"), ev("task.added", "w", text="second")])
        assert store.claim_task("nobody") is None
        got = store.claim_task("w")
        assert got is not None and (got.id, got.text, got.state) == (t1, "first", "started")
        row = store.agent("w")
        assert row is not None and row["task"] == "first"
        (started,) = store.events(kinds=["task.started"])
        assert started.data == {"task_id": t1, "text": "first"}
        got = store.claim_task("w")
        assert got is not None and got.id == t2
        assert store.claim_task("w") is None

    # -- LISTEN/NOTIFY ---------------------------------------------------------------------------
    def test_notify_reaches_another_instance_within_200ms(self, store_url: str, schema: str) -> None:
        sender, receiver = open_store(store_url), open_store(store_url)
        other = open_store(_url(schema + "_x"))  # another schema on the same database hears nothing
        assert isinstance(sender, PostgresStore) and isinstance(receiver, PostgresStore)
        assert isinstance(other, PostgresStore)
        got: list[tuple[str, str, float]] = []
        arrived = threading.Event()
        stop = threading.Event()

        def heard(channel: str, payload: str) -> None:
            got.append((channel, payload, time.perf_counter()))
            arrived.set()

        try:
            thread = receiver.start_listener(["approvals", "killswitch"], heard, stop)
            other.notify("approvals", "not for you")
            for i in range(5):
                arrived.clear()
                sent = time.perf_counter()
                sender.notify("approvals", json.dumps({"id": i}))
                assert arrived.wait(0.2), "a notification took more than 200 ms"
                channel, payload, at = got[-1]
                assert (channel, json.loads(payload)) == ("approvals", {"id": i})
                assert at - sent < 0.2
            sender.notify("killswitch", "w")
            assert arrived.wait(1)
            time.sleep(0.05)
            assert [(c, p) for c, p, _ in got][-1] == ("killswitch", "w")
            assert len(got) == 6, "nothing from the other schema, nothing twice"
        finally:
            stop.set()
            sender.close()
            receiver.close()
            other.close()
            _drop(schema + "_x")
        thread.join(5)
        assert not thread.is_alive(), "the listener stops when asked"

    def test_listener_survives_a_failing_callback_and_a_lost_connection(self, store_url: str) -> None:
        s = open_store(store_url)
        assert isinstance(s, PostgresStore)
        got: list[str] = []
        reconnected = threading.Event()
        stop = threading.Event()

        def heard(channel: str, payload: str) -> None:
            got.append(payload)
            if payload == "boom":
                raise RuntimeError("callback bug")

        try:
            thread = s.start_listener(["reload"], heard, stop, on_reconnect=reconnected.set)
            s.notify("reload", "boom")
            s.notify("reload", "after")
            _wait(lambda: got == ["boom", "after"])
            assert _terminate(f"tether-listen {s.schema}") == 1  # the server drops the listener's connection
            assert reconnected.wait(10), "the listener reconnects and says so"
            s.notify("reload", "again")
            _wait(lambda: got[-1:] == ["again"])
        finally:
            stop.set()
            s.close()
        thread.join(5)

    # -- a server that drops connections ---------------------------------------------------------
    def test_dropped_connections_are_reopened(self, store: Store, schema: str) -> None:
        first = store.emit("log", "w", n=1)
        assert store.events()[0].id == first
        # idle connections killed (a server restart, a firewall): the next write and read just work
        assert _terminate(f"tether-write {schema}") == 1
        assert _terminate(f"tether-read {schema}") >= 1
        second = store.emit("log", "w", n=2)
        assert [e.id for e in store.events()] == [first, second]
        # killed in the middle of a transaction: that write fails with one line, the next one works
        def job(tx: Any) -> None:
            _terminate(f"tether-write {schema}")
            tx.execute("SELECT 1")

        assert isinstance(store, PostgresStore)
        with pytest.raises(StoreError, match=r"lost the connection to PostgreSQL .*not confirmed") as info:
            store.run(job)
        assert "\n" not in str(info.value)
        third = store.emit("log", "w", n=3)
        assert [e.id for e in store.events()] == [first, second, third]

    def test_writer_commits_durably(self, store: Store) -> None:
        assert isinstance(store, PostgresStore)
        assert store.run(lambda tx: tx.execute("SHOW synchronous_commit").fetchone()[0]) == "on"

    def test_channel_names(self, store: Store) -> None:
        assert isinstance(store, PostgresStore)
        with pytest.raises(StoreError, match="63 bytes"):
            store.notify("x" * 80)
        with pytest.raises(StoreError, match="8000 bytes"):
            store.notify("big", "p" * 9000)

    # -- the same events give the same rows on both backends -------------------------------------
    def test_every_projection_matches_sqlite(self, store: Store, tmp_path: Path) -> None:
        lite = open_store(f"sqlite:///{tmp_path / 'tether.db'}")
        try:
            for s in (store, lite):
                _script(s)
            got = _snapshot(store)
            assert got == _snapshot(lite)
            assert all(got.values()), "every read has rows to compare"
        finally:
            lite.close()


# -- errors a user can hit, each one line ----------------------------------------------------------


def _host() -> tuple[str, str]:
    from psycopg.conninfo import conninfo_to_dict

    d = conninfo_to_dict(SERVER)
    return str(d.get("host") or "127.0.0.1"), str(d.get("port") or 5432)


@pytest.mark.parametrize(
    ("case", "expect"),
    [
        ("refused", "127.0.0.1:1/test: connection refused; is PostgreSQL running there"),
        ("auth", "authentication failed for user 'no_such_role_x'"),
        ("nodb", "database 'no_such_db_x' does not exist; create it (`createdb"),
        ("schema", "schema 'bad-name;' is not a plain identifier"),
    ],
)
def test_connection_errors_are_one_line(admin: Any, case: str, expect: str) -> None:
    host, port = _host()
    url = {
        "refused": "postgresql://u:hunter2secret@127.0.0.1:1/test",
        "auth": f"postgresql://no_such_role_x:hunter2secret@{host}:{port}/test",
        "nodb": f"postgresql://postgres:hunter2secret@{host}:{port}/no_such_db_x",
        "schema": f"postgresql://postgres:hunter2secret@{host}:{port}/test?schema=bad-name;",
    }[case]
    started = time.monotonic()
    with pytest.raises(StoreError) as info:
        open_store(url)
    message = str(info.value)
    assert expect in message
    assert "\n" not in message and "hunter2secret" not in message
    assert message.startswith(f"{'127.0.0.1:1' if case == 'refused' else f'{host}:{port}'}/")
    assert time.monotonic() - started < 5


def test_missing_driver_says_what_to_install() -> None:
    code = (
        "import sys; sys.modules['psycopg'] = None\n"
        "from tether.store import open_store\nfrom tether.errors import StoreError\n"
        "try:\n    open_store('postgresql://postgres@127.0.0.1:5432/test')\n"
        "except StoreError as err:\n    print(err)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=cli_env(), timeout=60)
    assert proc.stdout == "the PostgreSQL store needs psycopg: pip install 'tether[postgres]'\n", proc.stderr


def test_translate_placeholders() -> None:
    assert translate("SELECT * FROM t WHERE a = ? AND b = ?") == "SELECT * FROM t WHERE a = %s AND b = %s"
    assert translate("SELECT '?', \"col?\", x FROM t WHERE y LIKE 'a%' AND z = ? -- why?\n") == (
        "SELECT '?', \"col?\", x FROM t WHERE y LIKE 'a%%' AND z = %s -- why?\n"
    )
    assert translate("SELECT 'it''s ?', 5 % ?") == "SELECT 'it''s ?', 5 %% %s"


def test_url_password_is_masked(admin: Any, schema: str) -> None:
    host, port = _host()
    s = PostgresStore(f"postgresql://postgres:pw-not-checked@{host}:{port}/test?schema={schema}")
    try:
        assert "pw-not-checked" not in s.url and ":***@" in s.url
    finally:
        s.close()


# -- helpers -----------------------------------------------------------------------------------------


def _drop(name: str) -> None:
    with _admin() as admin:
        admin.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')


def _terminate(application_name: str) -> int:
    """Have the server drop every connection with this application_name; how many it dropped."""
    with _admin() as admin:
        rows = admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = %s",
                             (application_name,)).fetchall()
    return len(rows)


def _wait(cond: Any, timeout: float = 5) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def _migrations() -> list[tuple[str, list[str]]]:
    from tether.store import schema as sch

    return sch.MIGRATIONS


def _script(s: Store) -> None:
    """Every projection the store has today, with fixed timestamps, so both backends get the same ids."""
    s.append([ev("agent.registered", n, T0, info={"n": n}, node="h1") for n in ("b-2", "a_1", "B", "a-1")])
    s.append([ev("agent.desired", "b-2", T0 + 1, desired="stopped"),
              ev("agent.started", "a_1", T0 + 2, pid=10), ev("agent.started", "a_1", T0 + 3, pid=11, restart=True),
              ev("agent.exited", "a_1", T0 + 4, code=1), ev("agent.state", "B", T0 + 5, state="idle", reason="r")])
    t1, t2, t3 = s.append([ev("task.added", "a_1", T0 + 6, text="one 100%", meta={"m": 1}),
                           ev("task.added", "a_1", T0 + 7, text="two ?"), ev("task.added", "B", T0 + 8, text="3")])
    s.append([ev("task.started", "a_1", T0 + 9, task_id=t1, text="one 100%"),
              ev("task.done", "a_1", T0 + 10, task_id=t1, text="one 100%"),
              ev("task.failed", "a_1", T0 + 11, task_id=t2, text="two ?"),
              ev("task.cancelled", "B", T0 + 12, task_id=t3, text="3"),
              ev("rollback.base", None, T0 + 13, task_id=t1, commit="abc"),
              ev("rollback.end", None, T0 + 14, task_id=t1, commit="def"),
              ev("rollback.done", None, T0 + 15, tasks=[t1], id="rb1", to="abc")])
    s.append([ev("files.changed", "a_1", T0 + 16, paths=["x", "y"]), ev("command.run", "a_1", T0 + 17),
              ev("tests.reported", "a_1", T0 + 18, passed=3, failed=0),
              ev("heartbeat.rebased", "a_1", T0 + 19)])
    s.append([ev("token.created", None, T0 + 20, token_id="tk1", hash="h1", role="agent", for_agent="a_1"),
              ev("token.created", None, T0 + 21, token_id="tk2", hash="h2", role="admin"),
              ev("token.revoked", None, T0 + 22, token_id="tk2")])
    (inc,) = s.append([NewEvent("incident.opened", "a_1", {"kind": "stale", "summary": "no beat"}, T0 + 23)])
    s.append([ev("incident.acked", "a_1", T0 + 24, incident_id=inc),
              ev("incident.resolved", "a_1", T0 + 25, incident_id=inc)])
    s.append([NewEvent("incident.opened", "B", {"kind": "stuck"}, T0 + 26)])
    a1, a2 = s.append([
        ev("approval.requested", "a_1", T0 + 27, action="rm -rf /data", classes=["data.delete"], detail="d",
           fingerprint="fp1", rule="r", reason="why", expires=T0 + 99, extra={"x": 1}),
        ev("approval.requested", "B", T0 + 28, action="git push", fingerprint="fp2"),
    ])
    s.append([ev("approval.escalated", "a_1", T0 + 29, approval_id=a1),
              ev("approval.decided", "a_1", T0 + 30, approval_id=a1, state="approved", by="ops", note="ok"),
              ev("approval.used", "a_1", T0 + 31, approval_id=a1),
              ev("approval.expired", "B", T0 + 32, approval_id=a2),
              ev("verdict", "a_1", T0 + 33, verdict="allow"), ev("agent.killed", "B", T0 + 34),
              ev("agent.resumed", "B", T0 + 35), ev("runbook.reloaded", None, T0 + 36)])
    if "usage" in projections.PROJECTIONS:  # the agents' own signals (issue 6)
        s.append([ev("usage", "a_1", T0 + 37, model="m", input_tokens=10, output_tokens=5, cost_usd=0.25),
                  ev("usage", "a_1", T0 + 38, model="m", input_tokens=1, cache_read_tokens=7, cost_usd=0.5),
                  ev("usage", "B", T0 + 38, model="x"),
                  NewEvent("error", "a_1", {"kind": "rate_limit"}, T0 + 39),
                  NewEvent("error", "a_1", {"kind": "rate_limit"}, T0 + 39.5), ev("retry", "a_1", T0 + 39.6),
                  ev("accounts.touched", "a_1", T0 + 39.7, accounts=["aws:1", "gh:x"]),
                  ev("accounts.touched", "a_1", T0 + 39.8, accounts=["aws:1"]),
                  NewEvent("wall.violation", "a_1", {"kind": "connect", "host": "h", "port": 22}, T0 + 39.85),
                  NewEvent("wall.violation", "a_1", {"kind": "write", "path": "/etc/x"}, T0 + 39.9)])
    s.beat("a_1", T0 + 40, task="t", progress="p")
    s.append([ev("agent.removed", "b-2", T0 + 41)])


def _snapshot(s: Store) -> dict[str, Any]:
    return {
        "events": [tuple(e) for e in s.events(limit=100_000)],
        "last": [tuple(e) for e in s.last_events(limit=5)],
        "agents": s.agents(),
        "tasks": [tuple(t) for t in s.tasks()],
        "tasks_filtered": [t.id for t in s.tasks(agent="a_1", states=["done", "failed"])],
        "tokens": [s.token("h1"), s.token("h2")],
        "incidents": [s.incidents(), s.incidents("open"), s.incidents(agent="a_1")],
        "approvals": [s.approvals(), s.approvals("approved"), s.approvals(fingerprint="fp2")],
        "approval": s.approval(s.approvals()[0]["id"]),
        "audit": s.audit_rows(),
        "signals": [s.usage(), s.usage("a_1", "2023-11-14"), s.signal_counts("agent_errors"),
                    s.signal_counts("agent_accounts"), s.signal_counts("agent_violations")]
        if "usage" in projections.PROJECTIONS else None,
    }
