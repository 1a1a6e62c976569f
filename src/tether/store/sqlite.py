"""The SQLite store: WAL, one write connection with group commit, reads on a bounded pool of connections.

Durability: ``synchronous=FULL`` in WAL mode fsyncs the log on every commit, so an event is on disk
before ``append`` returns. Group commit: callers in several threads queue their writes; whichever
holds the write lock commits everything queued in one transaction (one fsync) and answers them all.

Reads take one of at most ``READERS`` connections for the length of one query. A connection per thread
(as before) grew with the request threads (28 under bench_fuzz, up to anyio's 40), each with its own page
cache of up to 2 MB, schema and statement cache, and none of them closed by ``close()`` (issue 14).
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import threading
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

from tether.errors import StoreError
from tether.redact import redact_json
from tether.store import projections, schema
from tether.store.base import BUSY, NewEvent, Slot, Store, coalesce_beats
from tether.store.reads import SqlReads
from tether.store.writes import SqlWrites

if TYPE_CHECKING:  # pathlib and re stay out of `tether status`'s start-up
    from pathlib import Path

Job = Callable[[sqlite3.Connection], tuple[Any, set[str]]]
MAX_BATCH = 512
READERS = 4  # read connections at most: a query holds one for milliseconds; SQLite lets go of the GIL meanwhile
_ENCODE = json.JSONEncoder(default=str).encode
_INSERT = "INSERT INTO events (ts, node, agent, kind, data) VALUES (?, ?, ?, ?, ?)"


def _explain(path: str | os.PathLike[str], err: BaseException) -> StoreError:
    """One line: what is wrong with the store file and what to do."""
    text = str(err).lower()
    if "disk is full" in text or "disk full" in text:
        hint = "the disk is full; free space and try again (nothing was written)"
    elif "readonly" in text or "read-only" in text or "permission" in text or "unable to open" in text:
        hint = f"cannot write there; check that {os.path.dirname(path)} exists and is writable by this user"
    elif "not a database" in text or "malformed" in text or "corrupt" in text or "no such table" in text:
        hint = "the file is corrupt or not a tether store; move it aside and restore a backup (`tether backup`)"
    elif "locked" in text or "busy" in text:
        hint = "another process holds the write lock too long; is a daemon hung? (`tether status`)"
    else:
        hint = str(err)
    return StoreError(f"{path}: {hint}")


class SQLiteStore(SqlReads, SqlWrites, Store):
    local = True

    def __init__(self, path: str | os.PathLike[str], *, node: str | None = None, readonly: bool = False) -> None:
        super().__init__()
        self.file = os.fspath(path)
        self.url = f"sqlite:///{self.file}"
        self.node = node
        self.readonly = readonly
        self._idle: list[sqlite3.Connection] = []  # read connections not in use
        self._readers = 0  # read connections open (idle or in use), at most READERS
        self._pool = threading.Condition(threading.Lock())
        self._pending: deque[tuple[Job, Slot]] = deque()
        self._write_lock = threading.Lock()
        self._wconn: sqlite3.Connection | None = None
        self._synchronous = "FULL"
        self._closed = False
        if not readonly:
            try:
                os.makedirs(os.path.dirname(self.file) or ".", exist_ok=True)
            except OSError as err:
                raise StoreError(
                    f"{os.path.dirname(self.file)}: cannot create the state directory ({err.strerror})"
                ) from None
            self._migrate()
        else:
            try:
                os.stat(self.file)
            except FileNotFoundError:
                raise StoreError(
                    f"{self.file}: no store here yet; start the daemon (`tether up`) or run `tether demo`"
                ) from None
            except OSError as err:
                raise StoreError(
                    f"{self.file}: cannot read it ({err.strerror}); check the state directory's owner and mode"
                ) from None

    @property
    def path(self) -> Path:
        from pathlib import Path  # not at the top: `tether status` starts without pathlib (~3 ms)

        return Path(self.file)

    # -- connections -----------------------------------------------------------------------------
    def _connect(self, write: bool) -> sqlite3.Connection:
        try:
            if write:
                conn = sqlite3.connect(self.file, isolation_level=None, check_same_thread=False, timeout=30)
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute("PRAGMA synchronous=FULL")
            else:
                uri = f"file:{self.file}?mode={'ro' if self.readonly else 'rw'}"
                conn = sqlite3.connect(uri, uri=True, isolation_level=None, check_same_thread=False, timeout=30)
                conn.execute("PRAGMA query_only=1")
                conn.row_factory = _dict_row
            conn.execute("PRAGMA busy_timeout=30000")
            return conn
        except sqlite3.Error as err:
            raise _explain(self.file, err) from None

    @contextlib.contextmanager
    def _reader(self) -> Iterator[sqlite3.Connection]:
        """One of the pool's read connections, for the caller alone until the block ends; waits while all
        ``READERS`` are in use."""
        with self._pool:
            if self._closed:  # a closed store opens nothing again: its readers get the one-line error
                raise StoreError(f"{self.file}: the store is closed")
            while not self._idle and self._readers >= READERS:
                self._pool.wait()
            conn = self._idle.pop() if self._idle else None
            if conn is None:
                self._readers += 1
        if conn is None:
            try:
                conn = self._connect(write=False)
            except BaseException:
                with self._pool:
                    self._readers -= 1
                    self._pool.notify()
                raise
        try:
            yield conn
        finally:
            with self._pool:
                if self._closed:
                    self._readers -= 1
                    conn.close()
                else:
                    self._idle.append(conn)
                self._pool.notify()

    def _read(self, sql: str, params: tuple[Any, ...] = ()) -> list[Any]:
        try:
            with self._reader() as conn:
                return conn.execute(sql, params).fetchall()
        except sqlite3.Error as err:
            raise _explain(self.file, err) from None

    def _migrate(self) -> None:
        conn = self._connect(write=True)
        try:
            conn.execute("BEGIN IMMEDIATE")
            schema.migrate(conn, "sqlite")
            conn.execute("COMMIT")
        except sqlite3.Error as err:
            if conn.in_transaction:
                conn.rollback()
            raise _explain(self.file, err) from None
        finally:
            conn.close()

    # -- the writer ------------------------------------------------------------------------------
    # Leader-based group commit: a caller queues its job and takes the write lock; whoever holds it
    # commits everything queued in one transaction (one fsync) and answers each caller. Callers that
    # queued while a commit was running find their answer when they get the lock, or lead the next.
    def _submit(self, job: Job, durable: bool = True, block: bool = True) -> Any:
        """``durable=False``: the job's commit may skip the fsync (heartbeats: the database stays intact
        on power loss, only that last commit may be gone) unless it shares a batch with a durable job.
        ``block=False``: when another writer holds the store, return ``BUSY`` at once instead of waiting."""
        if self.readonly:
            raise StoreError(f"{self.file}: opened read-only")
        if self._closed:
            raise StoreError(f"{self.file}: the store is closed")
        slot = Slot(durable)
        if block:
            self._pending.append((job, slot))  # queued first: the writer now may take it in its batch
            self._write_lock.acquire()
        elif self._write_lock.acquire(blocking=False):
            self._pending.append((job, slot))
        else:
            return BUSY
        try:
            while not slot.done:  # our job may sit behind more than one batch
                batch: list[tuple[Job, Slot]] = []
                while self._pending and len(batch) < MAX_BATCH:
                    batch.append(self._pending.popleft())
                self._commit(self._writer_conn(), batch)
        finally:
            self._write_lock.release()
        if slot.error is not None:
            raise slot.error
        return slot.value

    def _writer_conn(self) -> sqlite3.Connection:
        if self._wconn is None:
            self._wconn = self._connect(write=True)
            self._synchronous = "FULL"
        return self._wconn

    def _sync_for(self, conn: sqlite3.Connection, batch: list[tuple[Job, Slot]]) -> None:
        """FULL (fsync the log at commit) for a batch with any durable job, else NORMAL. In WAL mode a
        FULL commit also makes every NORMAL commit before it durable."""
        want = "FULL" if any(slot.durable for _, slot in batch) else "NORMAL"
        if want != self._synchronous:
            conn.execute(f"PRAGMA synchronous={want}")
            self._synchronous = want

    def _commit(self, conn: sqlite3.Connection, batch: list[tuple[Job, Slot]]) -> None:
        """Commit the batch in one transaction; if a job fails, retry each job alone so one bad job
        fails alone."""
        try:
            self._sync_for(conn, batch)
            conn.execute("BEGIN IMMEDIATE")
            results = [job(conn) for job, _ in batch]
            conn.execute("COMMIT")
        except sqlite3.Error as err:
            self._rollback(conn)
            if len(batch) > 1 and isinstance(err, sqlite3.IntegrityError):
                for item in batch:
                    self._commit(conn, [item])
                return
            error = _explain(self.file, err)
            for _, slot in batch:
                slot.fail(error)
            return
        except Exception as err:
            self._rollback(conn)
            self._one_by_one(batch, lambda one: self._commit(conn, one), err)
            return
        self._answer(batch, results)

    @staticmethod
    def _rollback(conn: sqlite3.Connection) -> None:
        try:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
        except sqlite3.Error:
            pass

    # -- Store API -------------------------------------------------------------------------------
    def append(self, events: Sequence[NewEvent]) -> list[int]:
        enc, node, red = _ENCODE, self.node, redact_json
        rows = [(e.ts, node, e.agent, e.kind, red(enc(e.data))) for e in events]

        def job(conn: sqlite3.Connection) -> tuple[list[int], set[str]]:
            if len(rows) == 1:
                last = int(conn.execute(_INSERT, rows[0]).lastrowid or 0)
            else:  # one statement under the write lock: AUTOINCREMENT ids are consecutive
                conn.executemany(_INSERT, rows)
                last = int(conn.execute("SELECT last_insert_rowid()").fetchone()[0])
            ids = list(range(last - len(rows) + 1, last + 1))
            return ids, projections.apply_appended(conn, events, [r[4] for r in rows], ids)

        result: list[int] = self._submit(job)
        return result

    def append_raw(self, rows: Sequence[tuple[float, str | None, str, str]]) -> None:
        """Bulk-load pre-serialised ``(ts, agent, kind, data_json)`` rows with no projection (demo, bench)."""

        def job(conn: sqlite3.Connection) -> tuple[None, set[str]]:
            node, red = self.node, redact_json
            conn.executemany(_INSERT, [(ts, node, agent, kind, red(data)) for ts, agent, kind, data in rows])
            return None, set()

        self._submit(job)

    def beat(self, agent: str, at: float, task: str | None = None, progress: str | None = None) -> None:
        self.beats([(agent, at, task, progress)])

    def beats(self, beats: Sequence[tuple[str, float, str | None, str | None]], block: bool = True) -> bool:
        rows = [(at, task, moved, progress_at, progress, progress, progress_at, progress, agent)
                for at, task, progress, progress_at, moved, agent in coalesce_beats(beats)]

        def job(conn: sqlite3.Connection) -> tuple[None, set[str]]:
            conn.executemany(
                "UPDATE agents SET last_heartbeat = ?, task = COALESCE(?, task), "
                "last_progress = CASE WHEN ? THEN ? WHEN ? IS NOT NULL AND ? IS NOT progress THEN ? "
                "ELSE last_progress END, "
                "progress = COALESCE(?, progress) WHERE name = ?",
                rows,
            )
            return None, set()

        # beats are no events: no fsync of their own
        return self._submit(job, durable=False, block=block) is not BUSY

    def run(self, fn: Callable[[sqlite3.Connection], Any]) -> Any:
        """Run ``fn(conn)`` inside the writer's transaction (for other modules of the store package)."""
        return self._submit(lambda conn: (fn(conn), set()))

    def _insert_event(self, tx: Any, ts: float, agent: str | None, kind: str, data: dict[str, Any]) -> int:
        return int(tx.execute(_INSERT, (ts, self.node, agent, kind, redact_json(_ENCODE(data)))).lastrowid or 0)

    def prune(self, events_before: float) -> int:
        def job(conn: sqlite3.Connection) -> tuple[int, set[str]]:
            return conn.execute("DELETE FROM events WHERE ts < ?", (events_before,)).rowcount, set()

        count: int = self._submit(job)
        return count

    # -- reading: reads.py; claiming a task, using an approval, row writes: writes.py (shared with PostgreSQL)
    # -- housekeeping ----------------------------------------------------------------------------
    def backup(self, path: str) -> None:
        from pathlib import Path  # not at the top: `tether status` starts without pathlib (~3 ms)

        target = Path(path)
        if target.exists():
            raise StoreError(f"{target}: already exists; choose a new file name")
        try:
            dest = sqlite3.connect(target)
        except sqlite3.Error as err:
            raise _explain(target, err) from None
        try:
            with self._reader() as conn:
                conn.backup(dest)
        except sqlite3.Error as err:
            dest.close()
            target.unlink(missing_ok=True)
            raise _explain(target, err) from None
        dest.close()

    def integrity_check(self) -> str:
        return str(next(iter(self._read("PRAGMA integrity_check")[0].values())))

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        with self._write_lock:
            if self._wconn is not None:
                self._wconn.close()
        with self._pool:  # the idle ones now; one in use when its query ends
            for conn in self._idle:
                conn.close()
            self._readers -= len(self._idle)
            self._idle.clear()



def _dict_row(cursor: sqlite3.Cursor, values: tuple[Any, ...]) -> dict[str, Any]:
    return dict(zip([c[0] for c in cursor.description], values, strict=True))
