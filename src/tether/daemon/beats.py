"""Heartbeat ingest: every beat that arrives while one write is in flight goes to the store in the next
write, one transaction for all of them. A beat is acknowledged once it is on disk (its future resolves),
but no thread waits for it: the HTTP handler awaits the future on the event loop, so 200 agents beating
every second cost one short transaction per batch instead of a thread hop and a commit each."""

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
        self.batches = 0

    def submit(self, agent: str, at: float, task: str | None, progress: str | None) -> Future[None]:
        """Queue a beat; the future resolves when it is committed (or carries the store's error)."""
        fut: Future[None] = Future()
        self._queue((agent, at, task, progress), fut)
        return fut

    def submit_async(self, agent: str, at: float, task: str | None, progress: str | None) -> asyncio.Future[None]:
        """As ``submit``, from the event loop: a batch's waiters on one loop are woken with one call."""
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._queue((agent, at, task, progress), fut)
        return fut

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
        for loop, futs in loops.items():
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
