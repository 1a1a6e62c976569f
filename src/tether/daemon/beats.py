"""Heartbeat ingest: beats that arrive together go to the store together, one transaction (one row
update per agent) for all of them, and each is answered once it is written.

- From the HTTP API (the event loop), on a SQLite store: the beats of one turn of the loop are written
  on the loop itself, after every ready request was read; beats need no fsync of their own (the
  database stays intact on power loss; only the last beats may be gone), so the write is short and no
  thread is woken. If a durable commit holds the store at that moment, the writer thread takes them.
- Elsewhere (the CLI's and hooks' synchronous calls, a PostgreSQL store): the writer thread writes
  whatever queued while its last write ran, and wakes each event loop's waiters with one call.

200 agents beating every second cost the daemon about 10 % of a core (``./scripts/bench --only
heartbeats``)."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from concurrent.futures import Future
from typing import Any

Beat = tuple[str, float, "str | None", "str | None"]


class BeatWriter:
    def __init__(self, store: Any) -> None:
        self.store = store
        self._lock = threading.Lock()
        self._ready = threading.Condition(self._lock)
        self._pending: list[tuple[Beat, Future[None] | asyncio.Future[None]]] = []
        self._thread: threading.Thread | None = None
        self._closed = False
        self._turn: list[tuple[Beat, asyncio.Future[None]]] = []  # this turn of the event loop's beats
        self._inline = bool(getattr(store, "local", False))
        self.batches = 0

    def submit(self, agent: str, at: float, task: str | None, progress: str | None) -> Future[None]:
        """Queue a beat; the future resolves when it is committed (or carries the store's error)."""
        fut: Future[None] = Future()
        self._queue((agent, at, task, progress), fut)
        return fut

    def submit_async(self, agent: str, at: float, task: str | None, progress: str | None) -> asyncio.Future[None]:
        """As ``submit``, from the event loop. On a local (SQLite) store the beats of one turn of the loop
        are written together on the loop itself once every ready request has been read: a commit
        without fsync, no thread hand-off. When another writer holds the store (a commit with fsync), or
        the store is remote (PostgreSQL: a network round trip), the writer thread takes them instead, so
        the loop never waits on a disk or a network."""
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[None] = loop.create_future()
        if not self._inline:
            self._queue((agent, at, task, progress), fut)
            return fut
        if self._closed:
            fut.set_exception(RuntimeError("the daemon is stopping"))
            return fut
        if not self._turn:
            loop.call_soon(self._flush_turn)
        self._turn.append(((agent, at, task, progress), fut))
        return fut

    def _flush_turn(self) -> None:
        batch, self._turn = self._turn, []
        self.batches += 1
        try:
            written = self.store.beats([beat for beat, _ in batch], block=False)
        except Exception as err:  # every waiter hears it (the store's one-line error)
            _settle([fut for _, fut in batch], err)
            return
        if written:
            _settle([fut for _, fut in batch], None)
            return
        for beat, fut in batch:  # a durable commit holds the store: the thread waits for it, not the loop
            self._queue(beat, fut)

    def _queue(self, beat: Beat, fut: Future[None] | asyncio.Future[None]) -> None:
        with self._lock:
            if self._closed:
                fut.set_exception(RuntimeError("the daemon is stopping"))
                return
            self._pending.append((beat, fut))
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="tether-beats", daemon=True)
                self._thread.start()
            self._ready.notify()

    def _run(self) -> None:
        while True:
            with self._lock:
                while not self._pending and not self._closed:
                    self._ready.wait()
                batch, self._pending = self._pending, []
                if not batch and self._closed:
                    return
            self._write(batch)

    def _write(self, batch: list[tuple[Beat, Future[None] | asyncio.Future[None]]]) -> None:
        self.batches += 1
        error: Exception | None = None
        try:
            self.store.beats([beat for beat, _ in batch])
        except Exception as err:  # every waiter hears it (the store's one-line error)
            error = err
        loops: dict[asyncio.AbstractEventLoop, list[asyncio.Future[None]]] = {}
        for _, fut in batch:
            if isinstance(fut, asyncio.Future):
                loops.setdefault(fut.get_loop(), []).append(fut)
            else:
                _settle([fut], error)
        for loop, futs in loops.items():  # from the writer thread: each loop wakes its waiters itself
            with contextlib.suppress(RuntimeError):  # that loop is closed: nobody waits any more
                loop.call_soon_threadsafe(_settle, futs, error)

    def close(self, timeout: float = 5.0) -> None:
        """Write what is queued, then stop."""
        with self._lock:
            self._closed = True
            self._ready.notify()
            thread = self._thread
        if thread is not None:
            thread.join(timeout)


def _settle(futs: list[Future[None]] | list[asyncio.Future[None]], error: Exception | None) -> None:
    for fut in futs:
        if fut.done():  # cancelled: its request went away
            continue
        with contextlib.suppress(Exception):
            if error is None:
                fut.set_result(None)
            else:
                fut.set_exception(error)
