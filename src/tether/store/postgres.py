"""The PostgreSQL store: the same contract as SQLite, for a fleet of hosts sharing one database.

URL and connection errors: ``pgconnect.py``; LISTEN/NOTIFY: ``pgsignals.py``; backups and the
integrity check: ``pgbackup.py``; the reads and writes written once for both backends: ``reads.py``,
``writes.py``. This module is the store itself: its connections and its writer.

Writes: one write connection, leader-based group commit as in SQLite (callers queue a job; one of them
leads: it commits everything queued in one transaction and answers every caller), with
``synchronous_commit=on``: ``append`` returns after the commit is durable on the server. Every write
transaction first takes a transaction-level advisory lock for the schema, so writers on several hosts
commit one at a time: event ids increase in commit order across the fleet (a reader following
``events(after=...)`` never misses an event committed late with a smaller id) and the audit hash chain
never forks. Reads: a small ``psycopg_pool`` of autocommit connections.
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import psycopg
from psycopg import sql as pgsql
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool, PoolTimeout

from tether.errors import StoreError
from tether.redact import redact_json
from tether.store import projections, schema
from tether.store.base import NewEvent, Slot, Store, coalesce_beats
from tether.store.pgbackup import PgHousekeeping, read_backup
from tether.store.pgconnect import POOL_SIZE, POOL_TIMEOUT, Target, explain, explain_connect
from tether.store.pgsignals import PgSignals
from tether.store.reads import SqlReads
from tether.store.writes import SqlWrites

__all__ = ["PostgresStore", "read_backup", "translate"]

MAX_BATCH = 512
GATHER = 0.0005  # seconds a leader may wait for callers it just answered (see _gather)
_ENCODE = json.JSONEncoder(default=str).encode
_INSERT1 = "INSERT INTO events (ts, node, agent, kind, data) VALUES (%s, %s, %s, %s, %s) RETURNING id"
_INSERTN = (
    "INSERT INTO events (ts, node, agent, kind, data) "
    "SELECT * FROM unnest(%s::float8[], %s::text[], %s::text[], %s::text[], %s::text[]) RETURNING id"
)
_SQL_TOKEN = re.compile(r"'(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"|--[^\n]*|[?%]")
#: the write connection: durable commits, no endless wait on another host's lock, no lock kept by a hung client
_WRITER_OPTIONS = ("-csynchronous_commit=on", "-clock_timeout=30s", "-cidle_in_transaction_session_timeout=60s")


@functools.lru_cache(maxsize=2048)
def translate(query: str) -> str:
    """Backend-neutral SQL (``?`` placeholders) → psycopg's (``%s``), with every literal ``%`` doubled.
    A ``?`` inside a string literal, a quoted identifier or a comment stays as it is."""

    def one(m: re.Match[str]) -> str:
        tok = m.group(0)
        if tok == "?":
            return "%s"
        return tok.replace("%", "%%")

    return _SQL_TOKEN.sub(one, query)


def _lock_key(kind: str, space: str) -> int:
    """A stable signed 64-bit key for pg_advisory_xact_lock (Python's hash() is salted per process)."""
    return int.from_bytes(hashlib.sha256(f"tether:{kind}:{space}".encode()).digest()[:8], "big", signed=True)


class _Tx:
    """What a job and the projections get: ``execute`` takes backend-neutral SQL (``?``), ``pg`` takes
    psycopg's (``%s``). Both return the cursor (``fetchone``, ``fetchall``, ``rowcount``)."""

    __slots__ = ("conn",)

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self.conn = conn

    def execute(self, sql: str, params: Sequence[Any] = ()) -> psycopg.Cursor[Any]:
        return self.conn.execute(translate(sql), params)

    def pg(self, sql: str, params: Sequence[Any] = ()) -> psycopg.Cursor[Any]:
        return self.conn.execute(sql, params)


Job = Callable[[_Tx], tuple[Any, set[str]]]


class PostgresStore(SqlReads, SqlWrites, PgSignals, PgHousekeeping, Store):
    PH = "%s"
    _SKIP_HELD = " FOR UPDATE SKIP LOCKED"  # a task another host is claiming is skipped, not waited for

    fleet = True

    def _in(self, column: str, values: Iterable[Any], params: list[Any], kind: str = "text") -> str:
        params.append(list(values))
        return f"{column} = ANY(%s::{kind}[])"

    def _order(self, *columns: str) -> str:
        """Byte order, as SQLite sorts, whatever the database's locale."""
        return ", ".join(f'{c} COLLATE "C"' for c in columns)

    def __init__(self, url: str, *, node: str | None = None, readonly: bool = False) -> None:
        super().__init__()
        self.target = t = Target(url)
        self.url = t.url  # the password is masked: safe to print
        self.node = node
        self.readonly = readonly
        self._pending: deque[tuple[Job, Slot]] = deque()
        self._write_lock = threading.Lock()  # held by the leader while it uses the write connection
        mutex = threading.Lock()  # guards _pending, _leading and _last_batch
        self._cond = threading.Condition(mutex)  # a commit answered its callers, or the leader left
        self._arrived = threading.Condition(mutex)  # a job was queued
        self._leading = False
        self._last_batch = 1
        self._wconn: psycopg.Connection[Any] | None = None
        self._closed = False
        self._stopping = threading.Event()  # set by close(): listeners end
        self.schema: str = t.schema or ""
        first = self._connect(*_WRITER_OPTIONS, application_name=self._app("read" if readonly else "write"))
        try:
            space = first.execute("SELECT current_schema()").fetchone()
            self.schema = t.schema or str(space[0] if space and space[0] else "public")
            self._begin = f"BEGIN; SELECT pg_advisory_xact_lock({_lock_key('write', self.schema)})"
            if readonly:
                self._check_exists(first)
                first.close()
            else:
                self._migrate(first)
                self._wconn = first
        except BaseException:
            first.close()
            raise
        self._pool: ConnectionPool[psycopg.Connection[Any]] = ConnectionPool(
            t.conninfo(application_name=self._app("read")),
            kwargs={"autocommit": True}, min_size=1, max_size=POOL_SIZE, open=True, timeout=POOL_TIMEOUT,
            name=f"tether-read-{self.schema}",
        )

    # -- connections -----------------------------------------------------------------------------
    def _app(self, role: str) -> str:
        """application_name, so an operator (and a test) can tell the store's connections apart."""
        return f"tether-{role} {self.schema}".strip()[:63]

    def _connect(self, *options: str, **extra: Any) -> psycopg.Connection[Any]:
        try:
            return psycopg.connect(self.target.conninfo(*options, **extra), autocommit=True)
        except psycopg.Error as err:
            raise explain_connect(self.target, err) from None

    def _check_exists(self, conn: psycopg.Connection[Any]) -> None:
        try:
            row = conn.execute("SELECT to_regclass('migrations') IS NOT NULL").fetchone()
        except psycopg.Error as err:
            raise explain(self.target, err) from None
        if not (row and row[0]):
            raise StoreError(
                f"{self.target.where}: no store here yet; start the daemon (`tether up`) or run `tether demo`"
            )

    def _migrate(self, conn: psycopg.Connection[Any]) -> None:
        """Apply the shared migrations in one transaction, under an advisory lock so two daemons starting
        at once do not both apply them."""
        try:
            conn.execute(f"BEGIN; SELECT pg_advisory_xact_lock({_lock_key('migrate', self.schema)})")
            if self.target.schema is not None and conn.execute(
                "SELECT 1 FROM pg_namespace WHERE nspname = %s", (self.schema,)
            ).fetchone() is None:
                conn.execute(pgsql.SQL("CREATE SCHEMA {}").format(pgsql.Identifier(self.schema)))
            schema.migrate(_Tx(conn), "postgresql")
            conn.execute("COMMIT")
        except psycopg.Error as err:
            self._rollback(conn)
            raise explain(self.target, err) from None

    def _read(self, query: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        if self._closed:
            raise StoreError(f"{self.target.where}: the store is closed")
        for attempt in range(POOL_SIZE + 1):  # pooled connections may have died with a server restart
            try:
                with self._pool.connection() as conn:
                    try:
                        cur = conn.cursor(row_factory=dict_row)
                        cur.execute(query, params)
                        return cur.fetchall()
                    except psycopg.OperationalError as err:
                        if not conn.broken or attempt == POOL_SIZE:
                            raise explain(self.target, err, writing=False) from None
            except PoolTimeout:
                raise StoreError(
                    f"{self.target.where}: no database connection within {POOL_TIMEOUT:g}s; "
                    "is the server overloaded or out of connection slots?"
                ) from None
            except psycopg.Error as err:
                raise explain(self.target, err, writing=False) from None
        raise AssertionError("unreachable")  # pragma: no cover

    # -- the writer ------------------------------------------------------------------------------
    # Leader-based group commit, as SQLite's: a caller queues its job; if no one is committing, it leads:
    # it commits everything queued in one transaction and answers each caller, until its own job is done.
    # Unlike a plain lock, callers wait on a condition, so one whose job a leader committed returns at once
    # instead of queueing for the write lock behind the next commit.
    def _submit(self, job: Job) -> Any:
        if self.readonly:
            raise StoreError(f"{self.target.where}: opened read-only")
        if self._closed:
            raise StoreError(f"{self.target.where}: the store is closed")
        slot = Slot()
        with self._cond:
            self._pending.append((job, slot))
            self._arrived.notify()
            while self._leading and not slot.done:
                self._cond.wait()
            lead = not slot.done
            if lead:
                self._leading = True
        if lead:
            try:
                with self._write_lock:
                    while not slot.done:  # our job may sit behind more than one batch
                        with self._cond:
                            self._gather()
                            batch = [self._pending.popleft() for _ in range(min(len(self._pending), MAX_BATCH))]
                            self._last_batch = len(batch)
                        try:
                            self._commit(batch)
                        except BaseException as err:  # never leave a caller waiting for ever
                            for _, s in batch:
                                if not s.done:
                                    s.fail(err)
                            raise
                        finally:
                            with self._cond:
                                self._cond.notify_all()
            finally:
                with self._cond:
                    self._leading = False
                    self._cond.notify_all()
        if slot.error is not None:
            raise slot.error
        return slot.value

    def _gather(self) -> None:
        """If the last commit served several callers and fewer have queued yet, wait a moment (at most
        GATHER seconds) for the rest: callers answered by the last commit are about to queue again, and
        waiting for them costs less than a commit of its own. A lone caller never waits. Holds ``_cond``."""
        want = min(self._last_batch, MAX_BATCH)
        if want > 1 and len(self._pending) < want:
            deadline = time.monotonic() + GATHER
            while len(self._pending) < want and (left := deadline - time.monotonic()) > 0:
                self._arrived.wait(left)

    def _writer_conn(self) -> psycopg.Connection[Any]:
        if self._wconn is None or self._wconn.closed:
            if self._closed:
                raise StoreError(f"{self.target.where}: the store is closed")
            self._wconn = self._connect(*_WRITER_OPTIONS, application_name=self._app("write"))
        return self._wconn

    def _drop_writer(self, conn: psycopg.Connection[Any]) -> None:
        conn.close()
        if self._wconn is conn:
            self._wconn = None

    def _commit(self, batch: list[tuple[Job, Slot]], reconnect: bool = True) -> None:
        """Commit the batch in one transaction; if a job fails, retry each job alone so one bad job fails
        alone. A connection found dead at BEGIN (the server restarted, a firewall dropped it while idle) is
        reopened once, since nothing was sent; one lost later fails the batch: the commit is unconfirmed."""
        try:
            conn = self._writer_conn()
        except StoreError as err:
            for _, slot in batch:
                slot.fail(err)
            return
        tx = _Tx(conn)
        try:
            try:
                conn.execute(self._begin)
            except psycopg.OperationalError:
                if reconnect and (conn.broken or conn.closed):
                    self._drop_writer(conn)
                    self._commit(batch, reconnect=False)
                    return
                raise
            results = [job(tx) for job, _ in batch]
            conn.execute("COMMIT")
        except psycopg.OperationalError as err:
            self._rollback(conn)
            if conn.broken or conn.closed:
                self._drop_writer(conn)
            error = explain(self.target, err)
            for _, slot in batch:
                slot.fail(error)
            return
        except Exception as err:
            self._rollback(conn)
            self._one_by_one(batch, self._commit, explain(self.target, err) if isinstance(err, psycopg.Error) else err)
            return
        self._answer(batch, results)

    @staticmethod
    def _rollback(conn: psycopg.Connection[Any]) -> None:
        try:
            if conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE and not conn.closed:
                conn.execute("ROLLBACK")
        except psycopg.Error:
            pass

    def run(self, fn: Callable[[_Tx], Any]) -> Any:
        """Run ``fn(tx)`` inside the writer's transaction (for other modules of the store package)."""
        return self._submit(lambda tx: (fn(tx), set()))

    # -- Store API: writing ----------------------------------------------------------------------
    def append(self, events: Sequence[NewEvent]) -> list[int]:
        if not events:
            return []
        enc, node, red = _ENCODE, self.node, redact_json
        rows = [(e.ts, node, e.agent, e.kind, red(enc(e.data))) for e in events]

        def job(tx: _Tx) -> tuple[list[int], set[str]]:
            ids = _insert(tx, rows)
            return ids, projections.apply_appended(tx, events, [r[4] for r in rows], ids)

        result: list[int] = self._submit(job)
        return result

    def append_raw(self, rows: Sequence[tuple[float, str | None, str, str]]) -> None:
        """Bulk-load pre-serialised ``(ts, agent, kind, data_json)`` rows with no projection (demo, bench)."""
        node, red = self.node, redact_json
        full = [(ts, node, agent, kind, red(data)) for ts, agent, kind, data in rows]
        self._submit(lambda tx: (_insert(tx, full), set()))

    def beat(self, agent: str, at: float, task: str | None = None, progress: str | None = None) -> None:
        self.beats([(agent, at, task, progress)])

    def beats(self, beats: Sequence[tuple[str, float, str | None, str | None]], block: bool = True) -> bool:
        rows = [(at, task, moved, progress_at, progress, progress, progress_at, progress, agent)
                for at, task, progress, progress_at, moved, agent in coalesce_beats(beats)]

        def job(tx: _Tx) -> tuple[None, set[str]]:
            with tx.conn.cursor() as cur:  # executemany: psycopg pipelines the rows, one round trip
                cur.executemany(
                    "UPDATE agents SET last_heartbeat = %s, task = COALESCE(%s, task), "
                    "last_progress = CASE WHEN %s THEN %s WHEN %s::text IS NOT NULL "
                    "AND %s::text IS DISTINCT FROM progress "
                    "THEN %s ELSE last_progress END, progress = COALESCE(%s, progress) WHERE name = %s",
                    rows,
                )
            return None, set()

        self._submit(job)  # a remote store: the caller waits (block is for local stores)
        return True

    def _insert_event(self, tx: Any, ts: float, agent: str | None, kind: str, data: dict[str, Any]) -> int:
        return _insert(tx, [(ts, self.node, agent, kind, redact_json(_ENCODE(data)))])[0]

    def prune(self, events_before: float) -> int:
        def job(tx: _Tx) -> tuple[int, set[str]]:
            return tx.pg("DELETE FROM events WHERE ts < %s", (events_before,)).rowcount, set()

        count: int = self._submit(job)
        return count

    # -- reading: reads.py; claiming a task, using an approval, row writes: writes.py (shared with SQLite);
    # -- signals across hosts: pgsignals.py; backup and integrity check: pgbackup.py
    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._stopping.set()
        with self._write_lock:
            if self._wconn is not None:
                self._wconn.close()
                self._wconn = None
        self._pool.close(timeout=5)



def _insert(tx: _Tx, rows: Sequence[tuple[Any, ...]]) -> list[int]:
    """Insert event rows; their ids, in the rows' order."""
    if len(rows) == 1:
        got = tx.pg(_INSERT1, rows[0]).fetchone()
        assert got is not None
        return [int(got[0])]
    ids: list[int] = []
    for start in range(0, len(rows), 5000):
        chunk = rows[start:start + 5000]
        cols = [list(c) for c in zip(*chunk, strict=True)]
        # unnest yields the rows in order and each takes the next sequence value as it is inserted, so the
        # sorted ids are the rows' ids in order (RETURNING's own order is not promised)
        ids += sorted(int(r[0]) for r in tx.pg(_INSERTN, cols).fetchall())
    return ids
