"""The SQLite store: WAL, one writer thread with group commit, reads on their own connections.

Durability: ``synchronous=FULL`` in WAL mode fsyncs the log on every commit, so an event is on disk
before ``append`` returns. Group commit: callers in several threads queue their writes; the writer
takes everything queued and commits it in one transaction (one fsync), then answers every caller.
"""

from __future__ import annotations

import json
import os
import queue
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future
from pathlib import Path
from typing import Any

from tether import redact
from tether.errors import StoreError
from tether.store import projections, schema
from tether.store.base import Event, NewEvent, Store, Task

Job = Callable[[sqlite3.Connection], tuple[Any, set[str]]]
MAX_BATCH = 512


def _explain(path: Path, err: BaseException) -> StoreError:
    """One line: what is wrong with the store file and what to do."""
    text = str(err).lower()
    if "disk is full" in text or "disk full" in text:
        hint = "the disk is full; free space and try again (nothing was written)"
    elif "readonly" in text or "read-only" in text or "permission" in text or "unable to open" in text:
        hint = f"cannot write there; check that {path.parent} exists and is writable by this user"
    elif "not a database" in text or "malformed" in text or "corrupt" in text:
        hint = "the file is corrupt or not a tether store; move it aside and restore a backup (`tether backup`)"
    elif "locked" in text or "busy" in text:
        hint = "another process holds the write lock too long; is a daemon hung? (`tether status`)"
    else:
        hint = str(err)
    return StoreError(f"{path}: {hint}")


class SQLiteStore(Store):
    def __init__(self, path: str | os.PathLike[str], *, node: str | None = None, readonly: bool = False) -> None:
        super().__init__()
        self.path = Path(path)
        self.url = f"sqlite:///{self.path}"
        self.node = node
        self.readonly = readonly
        self._local = threading.local()
        self._queue: queue.SimpleQueue[tuple[Job, Future[Any]] | None] = queue.SimpleQueue()
        self._writer: threading.Thread | None = None
        self._writer_lock = threading.Lock()
        self._closed = False
        if not readonly:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as err:
                raise StoreError(f"{self.path.parent}: cannot create the state directory ({err.strerror})") from None
            self._migrate()
        elif not self.path.exists():
            raise StoreError(f"{self.path}: no store here yet; start the daemon (`tether up`) or run `tether demo`")

    # -- connections -----------------------------------------------------------------------------
    def _connect(self, write: bool) -> sqlite3.Connection:
        try:
            if write:
                conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=30)
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute("PRAGMA synchronous=FULL")
            else:
                uri = f"file:{self.path}?mode={'ro' if self.readonly else 'rw'}"
                conn = sqlite3.connect(uri, uri=True, isolation_level=None, check_same_thread=False, timeout=30)
                conn.execute("PRAGMA query_only=1")
            conn.execute("PRAGMA busy_timeout=30000")
            conn.row_factory = sqlite3.Row
            return conn
        except sqlite3.Error as err:
            raise _explain(self.path, err) from None

    def _reader(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._connect(write=False)
            self._local.conn = conn
        return conn

    def _read(self, sql: str, params: tuple[Any, ...] = ()) -> list[sqlite3.Row]:
        try:
            return self._reader().execute(sql, params).fetchall()
        except sqlite3.Error as err:
            raise _explain(self.path, err) from None

    def _migrate(self) -> None:
        conn = self._connect(write=True)
        try:
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("CREATE TABLE IF NOT EXISTS migrations (name TEXT PRIMARY KEY, applied REAL NOT NULL)")
            done = {r[0] for r in conn.execute("SELECT name FROM migrations")}
            for name, stmts in schema.MIGRATIONS:
                if name not in done:
                    for sql in schema.statements("sqlite", stmts):
                        conn.execute(sql)
                    conn.execute("INSERT INTO migrations VALUES (?, ?)", (name, time.time()))
            conn.execute("COMMIT")
        except sqlite3.Error as err:
            if conn.in_transaction:
                conn.rollback()
            raise _explain(self.path, err) from None
        finally:
            conn.close()

    # -- the writer ------------------------------------------------------------------------------
    def _submit(self, job: Job) -> Any:
        if self.readonly:
            raise StoreError(f"{self.path}: opened read-only")
        if self._closed:
            raise StoreError(f"{self.path}: the store is closed")
        self._ensure_writer()
        fut: Future[Any] = Future()
        self._queue.put((job, fut))
        return fut.result()

    def _ensure_writer(self) -> None:
        if self._writer is None:
            with self._writer_lock:
                if self._writer is None:
                    conn = self._connect(write=True)
                    self._writer = threading.Thread(target=self._write_loop, args=(conn,), daemon=True,
                                                    name="tether-store-writer")
                    self._writer.start()

    def _write_loop(self, conn: sqlite3.Connection) -> None:
        stop = False
        while not stop:
            item = self._queue.get()
            if item is None:
                break
            batch = [item]
            while len(batch) < MAX_BATCH:
                try:
                    nxt = self._queue.get_nowait()
                except queue.Empty:
                    break
                if nxt is None:
                    stop = True
                    break
                batch.append(nxt)
            self._commit(conn, batch)
        conn.close()

    def _commit(self, conn: sqlite3.Connection, batch: list[tuple[Job, Future[Any]]]) -> None:
        results: list[tuple[Future[Any], Any]] = []
        changed: set[str] = set()
        try:
            conn.execute("BEGIN IMMEDIATE")
            for job, fut in batch:
                conn.execute("SAVEPOINT job")
                try:
                    value, agents = job(conn)
                except sqlite3.Error as err:
                    if not isinstance(err, sqlite3.IntegrityError):
                        raise
                    conn.execute("ROLLBACK TO job")
                    conn.execute("RELEASE job")
                    fut.set_exception(StoreError(f"{self.path}: rejected write: {err}"))
                    continue
                except Exception as err:  # a bad job fails alone; the batch goes on
                    conn.execute("ROLLBACK TO job")
                    conn.execute("RELEASE job")
                    fut.set_exception(err)
                    continue
                conn.execute("RELEASE job")
                results.append((fut, value))
                changed |= agents
            conn.execute("COMMIT")
        except sqlite3.Error as err:
            try:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
            except sqlite3.Error:
                pass
            error = _explain(self.path, err)
            for _, fut in batch:
                if not fut.done():
                    fut.set_exception(error)
            return
        for fut, value in results:
            fut.set_result(value)
        try:
            self._notify(changed)
        except Exception:  # a listener must never break the writer
            pass

    # -- Store API -------------------------------------------------------------------------------
    def append(self, events: Sequence[NewEvent]) -> list[int]:
        rows = [(e.ts, self.node, e.agent, e.kind, redact.redact(json.dumps(e.data, default=str))) for e in events]

        def job(conn: sqlite3.Connection) -> tuple[list[int], set[str]]:
            ids: list[int] = []
            changed: set[str] = set()
            for ev, row in zip(events, rows, strict=True):
                cur = conn.execute("INSERT INTO events (ts, node, agent, kind, data) VALUES (?, ?, ?, ?, ?)", row)
                eid = int(cur.lastrowid or 0)
                ids.append(eid)
                if ev.kind in projections.PROJECTIONS:
                    stored = Event(eid, ev.ts, ev.kind, ev.agent, json.loads(row[4]), self.node)
                    agent = projections.apply(conn, stored)
                    if agent:
                        changed.add(agent)
            return ids, changed

        result: list[int] = self._submit(job)
        return result

    def append_raw(self, rows: Sequence[tuple[float, str | None, str, str]]) -> None:
        """Bulk-load pre-serialised ``(ts, agent, kind, data_json)`` rows with no projection (demo, bench)."""

        def job(conn: sqlite3.Connection) -> tuple[None, set[str]]:
            conn.executemany(
                "INSERT INTO events (ts, node, agent, kind, data) VALUES (?, ?, ?, ?, ?)",
                [(ts, self.node, agent, kind, redact.redact(data)) for ts, agent, kind, data in rows],
            )
            return None, set()

        self._submit(job)

    def beat(self, agent: str, at: float, task: str | None = None, progress: str | None = None) -> None:
        def job(conn: sqlite3.Connection) -> tuple[None, set[str]]:
            conn.execute(
                "UPDATE agents SET last_heartbeat = ?, task = COALESCE(?, task), "
                "last_progress = CASE WHEN ? IS NOT NULL AND ? IS NOT progress THEN ? ELSE last_progress END, "
                "progress = COALESCE(?, progress) WHERE name = ?",
                (at, task, progress, progress, at, progress, agent),
            )
            return None, set()

        self._submit(job)

    def run(self, fn: Callable[[sqlite3.Connection], Any]) -> Any:
        """Run ``fn(conn)`` inside the writer's transaction (for other modules of the store package)."""
        return self._submit(lambda conn: (fn(conn), set()))

    def prune(self, events_before: float) -> int:
        def job(conn: sqlite3.Connection) -> tuple[int, set[str]]:
            return conn.execute("DELETE FROM events WHERE ts < ?", (events_before,)).rowcount, set()

        count: int = self._submit(job)
        return count

    # -- reading ---------------------------------------------------------------------------------
    @staticmethod
    def _event(row: sqlite3.Row) -> Event:
        return Event(row["id"], row["ts"], row["kind"], row["agent"], json.loads(row["data"]), row["node"])

    def events(
        self, agent: str | None = None, after: int = 0, limit: int = 1000, kinds: Iterable[str] | None = None
    ) -> list[Event]:
        sql = "SELECT * FROM events WHERE id > ?"
        params: list[Any] = [after]
        if agent is not None:
            sql += " AND agent = ?"
            params.append(agent)
        if kinds is not None:
            kinds = list(kinds)
            sql += f" AND kind IN ({','.join('?' * len(kinds))})"
            params += kinds
        sql += " ORDER BY id LIMIT ?"
        params.append(limit)
        return [self._event(r) for r in self._read(sql, tuple(params))]

    def last_events(self, agent: str | None = None, limit: int = 50) -> list[Event]:
        if agent is None:
            rows = self._read("SELECT * FROM events ORDER BY id DESC LIMIT ?", (limit,))
        else:
            rows = self._read("SELECT * FROM events WHERE agent = ? ORDER BY id DESC LIMIT ?", (agent, limit))
        return [self._event(r) for r in rows]

    def agents(self) -> list[dict[str, Any]]:
        return [_agent_row(r) for r in self._read("SELECT * FROM agents ORDER BY name")]

    def agent(self, name: str) -> dict[str, Any] | None:
        rows = self._read("SELECT * FROM agents WHERE name = ?", (name,))
        return _agent_row(rows[0]) if rows else None

    def tasks(self, agent: str | None = None, states: Iterable[str] | None = None) -> list[Task]:
        sql, params = "SELECT * FROM tasks WHERE 1=1", []
        if agent is not None:
            sql += " AND agent = ?"
            params.append(agent)
        if states is not None:
            st = list(states)
            sql += f" AND state IN ({','.join('?' * len(st))})"
            params += st
        return [_task(r) for r in self._read(sql + " ORDER BY id", tuple(params))]

    def task(self, task_id: int) -> Task | None:
        rows = self._read("SELECT * FROM tasks WHERE id = ?", (task_id,))
        return _task(rows[0]) if rows else None

    def count_events(self) -> int:
        return int(self._read("SELECT count(*) FROM events")[0][0])

    # -- housekeeping ----------------------------------------------------------------------------
    def backup(self, path: str) -> None:
        target = Path(path)
        if target.exists():
            raise StoreError(f"{target}: already exists; choose a new file name")
        try:
            dest = sqlite3.connect(target)
        except sqlite3.Error as err:
            raise _explain(target, err) from None
        try:
            self._reader().backup(dest)
        except sqlite3.Error as err:
            dest.close()
            target.unlink(missing_ok=True)
            raise _explain(target, err) from None
        dest.close()

    def integrity_check(self) -> str:
        return str(self._read("PRAGMA integrity_check")[0][0])

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._writer is not None:
            self._queue.put(None)
            self._writer.join(timeout=30)
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()


def _agent_row(row: sqlite3.Row) -> dict[str, Any]:
    out = dict(row)
    out["info"] = json.loads(out.get("info") or "{}")
    out["tests"] = json.loads(out["tests"]) if out.get("tests") else None
    return out


def _task(row: sqlite3.Row) -> Task:
    return Task(row["id"], row["agent"], row["text"], row["state"], row["created"], row["started"],
                row["finished"], json.loads(row["meta"] or "{}"))
