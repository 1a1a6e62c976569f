"""The exporter: forwards the event log, from a cursor kept in the store, to where operators already look.

Events are on disk before they go anywhere else. Each sink (a JSON-lines webhook, an OTLP collector)
has its own cursor and its own backoff: a receiver that is down delays its own delivery and nothing
else; when it is back it gets every event it missed, in order, each with its event id (delivery is at
least once, so a receiver dedupes on the id). The exporter runs on its own thread and never touches
supervision.
"""

from __future__ import annotations

import contextlib
import fnmatch
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from tether import redact
from tether.export.otlp import OtlpSink
from tether.export.sink import ExportError, Sink
from tether.export.webhook import WebhookSink
from tether.store.base import Store

if TYPE_CHECKING:
    from tether.runbook.model import Export

__all__ = ["ExportError", "Exporter", "Sink", "sinks_from_config"]

#: How often an idle exporter looks for new events (``wake()`` makes it look at once).
POLL = 1.0


def sinks_from_config(config: Export, host: str | None = None, timeout: float = 10.0) -> list[Sink]:
    sinks: list[Sink] = []
    if config.webhook:
        sinks.append(WebhookSink(config.webhook, config.headers, timeout, host))
    if config.otlp:
        sinks.append(OtlpSink(config.otlp, config.headers, timeout, host, config.otlp_protocol))
    return sinks


@dataclass
class _Lane:
    """One sink's progress: its cursor, its batch size, its failures and when it may try again."""

    sink: Sink
    limit: int
    cursor: int | None = None
    failures: int = 0
    retry_at: float = 0.0
    failing_since: float | None = None
    last_error: str | None = None
    sent: int = 0
    more: bool = field(default=False)


class Exporter:
    def __init__(
        self,
        store: Store,
        config: Export | None = None,
        *,
        sinks: Sequence[Sink] | None = None,
        host: str | None = None,
        clock: Callable[[], float] = time.time,
        poll: float = POLL,
        backoff_base: float = 1.0,
        backoff_cap: float = 60.0,
        timeout: float = 10.0,
    ) -> None:
        if sinks is None:
            sinks = sinks_from_config(config, host, timeout) if config is not None else []
        batch = config.batch if config is not None else 500
        self.kinds: tuple[str, ...] = config.kinds if config is not None else ()
        self.store = store
        self.clock = clock
        self.poll = poll
        self.backoff_base = backoff_base
        self.backoff_cap = backoff_cap
        self.lanes = [_Lane(sink, batch) for sink in sinks]
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @staticmethod
    def cursor_name(sink: Sink) -> str:
        return f"export.{sink.name}"

    def wanted(self, kind: str) -> bool:
        return not self.kinds or any(fnmatch.fnmatchcase(kind, pattern) for pattern in self.kinds)

    # -- one step ------------------------------------------------------------------------------------
    def run_once(self, max_batch: int | None = None) -> int:
        """Send each sink that is not backing off its next batch; return how many events were delivered."""
        total = 0
        for lane in self.lanes:
            if lane.retry_at <= self.clock():
                total += self._step(lane, max_batch)
        return total

    def _step(self, lane: _Lane, max_batch: int | None) -> int:
        lane.more = False
        if lane.cursor is None:
            lane.cursor = self.store.cursor(self.cursor_name(lane.sink)) or 0
        limit = min(lane.limit, max_batch) if max_batch else lane.limit
        events = self.store.events(after=lane.cursor, limit=limit)
        if not events:
            return 0
        chosen = [e for e in events if self.wanted(e.kind)]
        try:
            if chosen:
                lane.sink.send(chosen)
        except Exception as err:  # a receiver down, refusing, or a secret reference that does not resolve
            self._failed(lane, err, len(events))
            return 0
        self.store.set_cursor(self.cursor_name(lane.sink), events[-1].id, self.clock())
        lane.cursor = events[-1].id
        lane.sent += len(chosen)
        lane.more = len(events) == limit
        if lane.failures:
            self._recovered(lane)
        return len(chosen)

    def _failed(self, lane: _Lane, err: Exception, size: int) -> None:
        now = self.clock()
        message = redact.redact(str(err) if isinstance(err, ExportError) else f"{type(err).__name__}: {err}")
        if isinstance(err, ExportError) and err.too_large and size > 1:
            lane.limit = max(1, size // 2)  # try again at once with half as many
            lane.last_error = message
            return
        lane.failures += 1
        lane.last_error = message
        lane.retry_at = now + min(self.backoff_cap, self.backoff_base * 2 ** (lane.failures - 1))
        if lane.failures == 1:
            lane.failing_since = now
            with contextlib.suppress(Exception):  # the store may be what is failing
                self.store.emit("export.failing", None, sink=lane.sink.name, error=message, cursor=lane.cursor)

    def _recovered(self, lane: _Lane) -> None:
        since = lane.failing_since or self.clock()
        with contextlib.suppress(Exception):
            self.store.emit("export.recovered", None, sink=lane.sink.name, failures=lane.failures,
                            down_s=round(self.clock() - since, 3), last_error=lane.last_error)
        lane.failures, lane.retry_at, lane.failing_since = 0, 0.0, None

    def status(self) -> list[dict[str, Any]]:
        return [
            {"sink": lane.sink.name, "cursor": lane.cursor, "sent": lane.sent, "failures": lane.failures,
             "retry_at": lane.retry_at or None, "last_error": lane.last_error}
            for lane in self.lanes
        ]

    # -- the thread ----------------------------------------------------------------------------------
    def start(self) -> None:
        if self._thread is None and self.lanes:
            self._thread = threading.Thread(target=self._loop, name="tether-export", daemon=True)
            self._thread.start()

    def wake(self) -> None:
        """New events were written: look now instead of at the next poll."""
        self._wake.set()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
        for lane in self.lanes:
            with contextlib.suppress(Exception):
                lane.sink.close()

    def _loop(self) -> None:
        while not self._stop.is_set():
            self._wake.clear()
            try:
                self.run_once()
                wait = self._next_wait()
            except Exception as err:  # the store briefly unreadable: try again soon
                with contextlib.suppress(Exception):
                    print(f"tether: export: {redact.redact(repr(err))}", file=sys.stderr, flush=True)
                wait = 1.0
            if wait > 0:
                self._wake.wait(wait)

    def _next_wait(self) -> float:
        """0 while a sink has more to send now; else until the next poll or the next retry, if sooner."""
        now = self.clock()
        if any(lane.more and lane.retry_at <= now for lane in self.lanes):
            return 0.0
        return min([self.poll] + [lane.retry_at - now for lane in self.lanes if lane.retry_at > now])
