"""The PostgreSQL store: the same contract as SQLite, for a fleet of hosts sharing one database.

URL: ``postgresql://USER[:PASSWORD]@HOST[:PORT]/DB[?schema=NAME&other-libpq-params]``. ``schema`` is
ours (libpq has no such parameter): the store's tables live in that schema (created if missing) and
every connection runs with ``search_path`` set to it, so several stores can share one database.

Writes: one write connection, leader-based group commit as in SQLite (callers queue a job; one of them
leads: it commits everything queued in one transaction and answers every caller), with
``synchronous_commit=on``: ``append`` returns after the commit is durable on the server. Every write
transaction first takes a transaction-level advisory lock for the schema, so writers on several hosts
commit one at a time: event ids increase in commit order across the fleet (a reader following
``events(after=...)`` never misses an event committed late with a smaller id) and the audit hash chain
never forks. Reads: a small ``psycopg_pool`` of autocommit connections.

Backups (``backup(path)``): JSON lines, taken in one REPEATABLE READ snapshot while writers continue:
a header line ``{"tether": "backup", "format": 1, ...}``; for each table a line
``{"table": NAME, "columns": [...]}`` followed by one JSON array per row; a last line
``{"end": true, "tables": N, "rows": M}`` (a file without it is truncated). It needs no ``pg_dump``
(whose version must match the server's) and reads back with ``read_backup`` on any host.

Cross-host signals: ``notify(channel, payload)`` and ``listen(...)`` / ``start_listener(...)`` wrap
LISTEN/NOTIFY, namespaced by schema so stores sharing a database do not hear each other.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import re
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import psycopg
from psycopg import sql as pgsql
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool, PoolTimeout

from tether.errors import StoreError
from tether.store import projections, schema
from tether.store.base import Event, Listener, NewEvent, Slot, Store, Task, coalesce_beats
from tether.store.reads import SqlReads

MAX_BATCH = 512
CONNECT_TIMEOUT = 10  # seconds, unless the URL says otherwise
POOL_TIMEOUT = 15.0
GATHER = 0.0005  # seconds a leader may wait for callers it just answered (see _gather)
POOL_SIZE = 8  # read connections per store, at most
MAX_PAYLOAD = 7999  # NOTIFY payloads must be shorter than 8000 bytes
_ENCODE = json.JSONEncoder(default=str).encode
_INSERT1 = "INSERT INTO events (ts, node, agent, kind, data) VALUES (%s, %s, %s, %s, %s) RETURNING id"
_INSERTN = (
    "INSERT INTO events (ts, node, agent, kind, data) "
    "SELECT * FROM unnest(%s::float8[], %s::text[], %s::text[], %s::text[], %s::text[]) RETURNING id"
)
_SCHEMA_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")  # lower case: search_path folds unquoted names
_SQL_TOKEN = re.compile(r"'(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"|--[^\n]*|[?%]")
#: the write connection: durable commits, no endless wait on another host's lock, no lock kept by a hung client
_WRITER_OPTIONS = ("-csynchronous_commit=on", "-clock_timeout=30s", "-cidle_in_transaction_session_timeout=60s")
TABLES = ("events", "agents", "tasks", "tokens", "incidents", "approvals", "audit")


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


class Target:
    """What a ``postgresql://`` URL names: the libpq connection string (without our ``schema``),
    the schema, and a password-free description for messages."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        query = parse_qsl(parts.query, keep_blank_values=True)
        schemas = [v for k, v in query if k == "schema"]
        rest = [(k, v) for k, v in query if k != "schema"]
        self.schema = schemas[-1] if schemas else None
        try:
            params = conninfo_to_dict(urlunsplit(parts._replace(query=urlencode(rest))))
        except psycopg.Error as err:
            raise StoreError(f"{_mask(url)}: not a valid PostgreSQL URL ({_first_line(err)})") from None
        self.password = str(params.get("password") or "")
        self.user = str(params.get("user") or os.environ.get("PGUSER") or _login())
        host = str(params.get("host") or os.environ.get("PGHOST") or "localhost")
        port = str(params.get("port") or os.environ.get("PGPORT") or "5432")
        self.dbname = str(params.get("dbname") or os.environ.get("PGDATABASE") or self.user)
        self.host, self.port = host, port
        self.where = f"{host}:{port}/{self.dbname}" + (f"?schema={self.schema}" if self.schema else "")
        self.url = _mask(url)
        if self.schema is not None and not _SCHEMA_NAME.fullmatch(self.schema):
            raise StoreError(
                f"{self.where}: schema {self.schema!r} is not a plain identifier; "
                "use lower-case letters, digits and underscores (at most 63), not starting with a digit"
            )
        params.setdefault("connect_timeout", CONNECT_TIMEOUT)
        options = str(params.get("options") or "")
        if self.schema is not None:
            options = f"{options} -csearch_path={self.schema}".strip()
        if options:
            params["options"] = options
        self.params = params

    def conninfo(self, *extra_options: str, **extra: Any) -> str:
        params = dict(self.params, **extra)
        options = " ".join([str(params.get("options") or ""), *extra_options]).strip()
        if options:
            params["options"] = options
        return make_conninfo("", **params)

    def scrub(self, text: str) -> str:
        return text.replace(self.password, "***") if len(self.password) >= 3 else text


def _login() -> str:
    import getpass

    try:
        return getpass.getuser()
    except Exception:
        return "postgres"


def _mask(url: str) -> str:
    """The URL with its password (if any) replaced by ***."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.netloc.rsplit("@", 1)[-1]
    return urlunsplit(parts._replace(netloc=f"{parts.username or ''}:***@{host}"))


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    for prefix in ("connection failed: ",):
        text = text.removeprefix(prefix)
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    return lines[0] if lines else type(err).__name__


def _explain_connect(t: Target, err: BaseException) -> StoreError:
    """One line for a connection that could not be opened: what is wrong and what to do."""
    text = t.scrub(str(err))
    low = text.lower()
    if "connection refused" in low:
        hint = ("connection refused; is PostgreSQL running there and accepting TCP connections? "
                "check the host and port in the store URL (host.store or TETHER_STORE)")
    elif "password authentication failed" in low or "no password supplied" in low or (
        "role" in low and "does not exist" in low
    ) or "authentication failed" in low or "pg_hba.conf" in low:
        hint = (f"authentication failed for user {t.user!r}; check the user and password in the store URL "
                "(or PGPASSWORD / ~/.pgpass) and the server's pg_hba.conf")
    elif "database" in low and "does not exist" in low:
        hint = (f"database {t.dbname!r} does not exist; create it "
                f"(`createdb -h {t.host} -p {t.port} -U {t.user} {t.dbname}`) or fix the store URL")
    elif "resolve host" in low or "translate host name" in low or "name or service not known" in low:
        hint = f"cannot resolve host {t.host!r}; check the host in the store URL"
    elif "timeout expired" in low or "timed out" in low:
        hint = "no answer in time; check the host, the port and any firewall between"
    elif "too many" in low and "connection" in low:
        hint = "the server has no connection slots left; close idle clients or raise max_connections"
    else:
        hint = f"cannot connect: {_first_line(psycopg.OperationalError(text))}"
    return StoreError(f"{t.where}: {hint}")


def _explain(t: Target, err: BaseException, writing: bool = True) -> StoreError:
    """One line for a failure on an open connection."""
    state = getattr(err, "sqlstate", None) or ""
    if state == "53100":
        hint = "the database server's disk is full; free space there and try again (nothing was written)"
    elif state == "55P03":
        hint = "another tether process held the write lock too long; is a daemon hung? (`tether status`)"
    elif state in ("42P01", "3F000"):
        hint = "no tether store in this database/schema yet; start the daemon (`tether up`) to create it"
    elif state == "25006":
        hint = "the server is read-only (a standby?); point the store URL at the primary"
    elif state == "53300":
        hint = "the server has no connection slots left; close idle clients or raise max_connections"
    elif state.startswith("08") or state.startswith("57P") or isinstance(err, psycopg.OperationalError):
        hint = (f"lost the connection to PostgreSQL ({t.scrub(_first_line(err))}); "
                + ("the write was not confirmed; " if writing else "")
                + "check the server and try again")
    else:
        hint = t.scrub(_first_line(err))
    return StoreError(f"{t.where}: {hint}")


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


class PostgresStore(SqlReads, Store):
    PH = "%s"

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
            raise _explain_connect(self.target, err) from None

    def _check_exists(self, conn: psycopg.Connection[Any]) -> None:
        try:
            row = conn.execute("SELECT to_regclass('migrations') IS NOT NULL").fetchone()
        except psycopg.Error as err:
            raise _explain(self.target, err) from None
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
            conn.execute("CREATE TABLE IF NOT EXISTS migrations (name TEXT PRIMARY KEY, applied DOUBLE PRECISION "
                         "NOT NULL)")
            done = {r[0] for r in conn.execute("SELECT name FROM migrations")}
            for name, stmts in schema.MIGRATIONS:
                if name not in done:
                    for statement in schema.statements("postgresql", stmts):
                        conn.execute(statement)
                    conn.execute("INSERT INTO migrations VALUES (%s, %s)", (name, time.time()))
            conn.execute("COMMIT")
        except psycopg.Error as err:
            self._rollback(conn)
            raise _explain(self.target, err) from None

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
                            raise _explain(self.target, err, writing=False) from None
            except PoolTimeout:
                raise StoreError(
                    f"{self.target.where}: no database connection within {POOL_TIMEOUT:g}s; "
                    "is the server overloaded or out of connection slots?"
                ) from None
            except psycopg.Error as err:
                raise _explain(self.target, err, writing=False) from None
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
            error = _explain(self.target, err)
            for _, slot in batch:
                slot.fail(error)
            return
        except Exception as err:
            self._rollback(conn)
            if len(batch) > 1:
                for item in batch:
                    self._commit([item])
                return
            batch[0][1].fail(_explain(self.target, err) if isinstance(err, psycopg.Error) else err)
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
        from tether.redact import redact_json as red

        enc, node = _ENCODE, self.node
        rows = [(e.ts, node, e.agent, e.kind, red(enc(e.data))) for e in events]

        def job(tx: _Tx) -> tuple[list[int], set[str]]:
            ids = _insert(tx, rows)
            return ids, projections.apply_appended(tx, events, [r[4] for r in rows], ids)

        result: list[int] = self._submit(job)
        return result

    def append_raw(self, rows: Sequence[tuple[float, str | None, str, str]]) -> None:
        """Bulk-load pre-serialised ``(ts, agent, kind, data_json)`` rows with no projection (demo, bench)."""
        from tether.redact import redact_json as red

        node = self.node
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
        from tether.redact import redact_json  # like every event: never a secret in the store

        return _insert(tx, [(ts, self.node, agent, kind, redact_json(_ENCODE(data)))])[0]

    def prune(self, events_before: float) -> int:
        def job(tx: _Tx) -> tuple[int, set[str]]:
            return tx.pg("DELETE FROM events WHERE ts < %s", (events_before,)).rowcount, set()

        count: int = self._submit(job)
        return count

    def claim_task(self, agent: str) -> Task | None:
        """Take the agent's oldest queued task and mark it started: a compare-and-set that skips a row
        another transaction holds, so two hosts never claim the same task."""

        def job(tx: _Tx) -> tuple[int | None, set[str]]:
            row = tx.pg(
                "SELECT id, text FROM tasks WHERE agent = %s AND state = 'queued' ORDER BY id LIMIT 1 "
                "FOR UPDATE SKIP LOCKED",
                (agent,),
            ).fetchone()
            if row is None:
                return None, set()
            data = {"task_id": row[0], "text": row[1]}
            now = time.time()
            (eid,) = _insert(tx, [(now, self.node, agent, "task.started", json.dumps(data))])
            projections.apply(tx, Event(eid, now, "task.started", agent, data))
            return int(row[0]), {agent}

        task_id: int | None = self._submit(job)
        return None if task_id is None else self.task(task_id)

    # -- Store API: reading is tether.store.reads (shared with SQLite) -------------------------------
    # -- signals across hosts (LISTEN/NOTIFY) ------------------------------------------------------
    def _channel(self, channel: str) -> str:
        full = f"{self.schema}.{channel}"
        if not channel or len(full.encode()) > 63:
            raise StoreError(
                f"{self.target.where}: channel {channel!r} must be non-empty and, with the schema, "
                "at most 63 bytes"
            )
        return full

    def notify(self, channel: str, payload: str = "") -> None:
        """Send ``payload`` to every ``listen``er on ``channel`` (any host on this database and schema).
        Delivered at once (autocommit); a listener that is not connected at that moment misses it."""
        full = self._channel(channel)
        if len(payload.encode()) > MAX_PAYLOAD:
            raise StoreError(f"{self.target.where}: a notification payload must be under 8000 bytes")
        if self._closed:
            raise StoreError(f"{self.target.where}: the store is closed")
        try:
            with self._pool.connection() as conn:
                conn.execute("SELECT pg_notify(%s, %s)", (full, payload))
        except PoolTimeout:
            raise StoreError(f"{self.target.where}: no database connection within {POOL_TIMEOUT:g}s") from None
        except psycopg.Error as err:
            raise _explain(self.target, err) from None

    def listen(
        self,
        channels: Iterable[str],
        callback: Listener,
        stop_event: threading.Event,
        *,
        ready: threading.Event | None = None,
        on_reconnect: Callable[[], None] | None = None,
        poll: float = 0.1,
    ) -> None:
        """Block until ``stop_event`` is set (or the store is closed), calling ``callback(channel, payload)``
        for each notification on ``channels``, on a connection of its own. ``ready`` is set once LISTEN is
        in effect. The first connection failing raises ``StoreError``; a connection lost later is reopened
        (backing off up to 5 s) and ``on_reconnect()`` is called: notifications sent meanwhile are lost, so
        the caller re-reads what it watches. A callback that raises is ignored (the listener keeps going)."""
        names = {self._channel(c): c for c in channels}
        delay, first = 0.2, True
        while not (stop_event.is_set() or self._stopping.is_set()):
            try:
                conn = psycopg.connect(self.target.conninfo(application_name=self._app("listen")), autocommit=True)
                try:
                    for full in names:
                        conn.execute(pgsql.SQL("LISTEN {}").format(pgsql.Identifier(full)))
                except BaseException:
                    conn.close()
                    raise
            except psycopg.Error as err:
                if first:
                    raise _explain_connect(self.target, err) from None
                stop_event.wait(delay)
                delay = min(delay * 2, 5.0)
                continue
            try:
                if not first and on_reconnect is not None:
                    try:
                        on_reconnect()
                    except Exception:
                        pass
                first, delay = False, 0.2
                if ready is not None:
                    ready.set()
                while not (stop_event.is_set() or self._stopping.is_set()):
                    for n in conn.notifies(timeout=poll):
                        original = names.get(n.channel)
                        if original is not None:
                            try:
                                callback(original, n.payload)
                            except Exception:
                                pass
            except psycopg.Error:
                stop_event.wait(delay)
                delay = min(delay * 2, 5.0)
            finally:
                conn.close()

    def start_listener(
        self,
        channels: Iterable[str],
        callback: Listener,
        stop_event: threading.Event,
        *,
        on_reconnect: Callable[[], None] | None = None,
        timeout: float = 10.0,
    ) -> threading.Thread:
        """``listen`` in a daemon thread; returns once LISTEN is in effect, or raises ``StoreError``."""
        chans = list(channels)
        for c in chans:
            self._channel(c)  # a bad name fails here, in the caller
        ready = threading.Event()
        failure: list[BaseException] = []

        def run() -> None:
            try:
                self.listen(chans, callback, stop_event, ready=ready, on_reconnect=on_reconnect)
            except BaseException as err:
                failure.append(err)

        thread = threading.Thread(target=run, name="tether-listen", daemon=True)
        thread.start()
        deadline = time.monotonic() + timeout
        while not ready.wait(0.02):
            if time.monotonic() > deadline or not thread.is_alive():
                if failure:
                    raise failure[0]
                stop_event.set()
                raise StoreError(f"{self.target.where}: could not start listening within {timeout:g}s")
        return thread

    # -- housekeeping ----------------------------------------------------------------------------
    def backup(self, path: str) -> None:
        """Write every table, in one consistent snapshot, as JSON lines (format in the module docstring)."""
        if os.path.exists(path):
            raise StoreError(f"{path}: already exists; choose a new file name")
        try:
            out = open(path, "x", encoding="utf-8")  # noqa: SIM115 - closed below, unlinked on failure
        except OSError as err:
            raise StoreError(f"{path}: cannot write the backup ({err.strerror})") from None
        ok = False
        try:
            with out, self._pool.connection() as conn:
                conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
                try:
                    self._dump(conn, out)
                finally:
                    conn.execute("ROLLBACK")
                out.flush()
                os.fsync(out.fileno())
            ok = True
        except PoolTimeout:
            raise StoreError(f"{self.target.where}: no database connection within {POOL_TIMEOUT:g}s") from None
        except psycopg.Error as err:
            raise _explain(self.target, err) from None
        except OSError as err:
            raise StoreError(f"{path}: cannot write the backup ({err.strerror})") from None
        finally:
            if not ok:
                try:
                    os.unlink(path)
                except OSError:
                    pass

    def _dump(self, conn: psycopg.Connection[Any], out: Any) -> None:
        tables = [r[0] for r in conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema() "
            "AND table_type = 'BASE TABLE' ORDER BY table_name COLLATE \"C\""
        )]
        migrations = [r[0] for r in conn.execute("SELECT name FROM migrations ORDER BY name")]
        enc = json.JSONEncoder(default=str, ensure_ascii=False, separators=(",", ":")).encode
        out.write(enc({"tether": "backup", "format": 1, "backend": "postgresql", "created": time.time(),
                       "source": self.target.where, "migrations": migrations, "tables": tables}) + "\n")
        total = 0
        for table in tables:
            cur = conn.cursor(name=f"tether_backup_{table}")
            cur.itersize = 2000
            order = pgsql.SQL(" ORDER BY id") if table in ("events", "tasks", "incidents", "approvals",
                                                            "audit") else pgsql.SQL("")
            cur.execute(pgsql.SQL("SELECT * FROM {}").format(pgsql.Identifier(table)) + order)
            columns = [d.name for d in cur.description or ()]
            out.write(enc({"table": table, "columns": columns}) + "\n")
            for row in cur:
                out.write(enc(list(row)) + "\n")
                total += 1
            cur.close()
        out.write(enc({"end": True, "tables": len(tables), "rows": total}) + "\n")

    def integrity_check(self) -> str:
        """'ok', or what is wrong: missing migrations or tables, an id sequence behind its table (the next
        event would reuse an id), or a break in the audit hash chain's links."""
        problems: list[str] = []
        try:
            done = {r["name"] for r in self._read("SELECT name FROM migrations")}
        except StoreError as err:
            return f"cannot read the migrations table: {err}"
        missing = [name for name, _ in schema.MIGRATIONS if name not in done]
        if missing:
            problems.append(f"migrations not applied: {', '.join(missing)}")
        present = {r["t"] for r in self._read(
            "SELECT table_name AS t FROM information_schema.tables WHERE table_schema = current_schema()")}
        lost = [t for t in TABLES if t not in present]
        if lost:
            problems.append(f"tables missing: {', '.join(lost)}")
        if "events" in present:
            row = self._read(
                "SELECT (SELECT coalesce(max(id), 0) FROM events) AS top, "
                "pg_sequence_last_value(pg_get_serial_sequence('events', 'id')::regclass) AS last"
            )[0]
            if row["top"] > (row["last"] or 0):
                problems.append(f"the events id sequence ({row['last']}) is behind the largest id ({row['top']}): "
                                "new events would reuse ids")
        if "audit" in present:
            broken = self._read(
                "SELECT count(*) AS n FROM (SELECT prev, lag(hash) OVER (ORDER BY id) AS before FROM audit) x "
                "WHERE before IS NOT NULL AND prev <> before"
            )[0]["n"]
            if broken:
                problems.append(f"audit chain: {broken} row(s) do not link to the row before")
        return "; ".join(problems) or "ok"

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


def read_backup(path: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """The rows of a ``backup`` file as ``(table, {column: value})``, in file order. Raises ``StoreError``
    if the file is not a tether backup or was cut short (no end line)."""
    with open(path, encoding="utf-8") as f:
        head = json.loads(f.readline() or "null")
        if not (isinstance(head, dict) and head.get("tether") == "backup" and head.get("format") == 1):
            raise StoreError(f"{path}: not a tether backup (format 1)")
        table, columns, ended = "", list[str](), False
        for line in f:
            item = json.loads(line)
            if isinstance(item, list):
                yield table, dict(zip(columns, item, strict=True))
            elif item.get("end"):
                ended = True
            else:
                table, columns = item["table"], item["columns"]
        if not ended:
            raise StoreError(f"{path}: the backup is incomplete (no end line); take it again")


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
