"""The egress proxy's record (``wall/proxy.py``): one ``network.connection`` event per connection (agent,
host, port, method, bytes each way, seconds, verdict, and why or which approval when not allowed), noted on
the proxy's event loop and handed to the daemon's ``record`` off it, in batches at most every
``flush_every`` seconds. Recording never takes the proxy down."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

Batch = list[tuple[str, dict[str, Any]]]  # (agent, the event's data)


@dataclass
class Conn:
    """One connection as it is recorded."""

    agent: str
    started: float
    host: str = ""
    port: int = 0
    method: str = ""
    up: int = 0
    down: int = 0
    verdict: str = ""
    reason: str = ""
    approval: int | None = None

    def event(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "host": self.host,
            "port": self.port,
            "method": self.method,
            "verdict": self.verdict,
            "bytes_up": self.up,
            "bytes_down": self.down,
            "seconds": round(time.time() - self.started, 3),
        }
        if self.reason and self.verdict != "allow":
            data["reason"] = self.reason[:300]
        if self.approval is not None:
            data["approval"] = self.approval
        return data


class Recorder:
    """``note`` on the loop; the batch is stored on the loop's executor ``flush_every`` seconds after its
    first connection; ``flush_now`` stores what is left once the loop has stopped."""

    def __init__(self, loop: asyncio.AbstractEventLoop, record: Callable[[Batch], None], flush_every: float) -> None:
        self.loop = loop
        self.record = record
        self.flush_every = flush_every
        self._pending: Batch = []
        self._flushing = False

    def note(self, conn: Conn) -> None:
        self._pending.append((conn.agent, conn.event()))
        if not self._flushing:
            self._flushing = True
            self.loop.call_later(self.flush_every, self._flush)

    def _flush(self) -> None:
        batch, self._pending = self._pending, []
        self._flushing = False
        if batch:
            self.loop.run_in_executor(None, self._store, batch)

    def flush_now(self) -> None:
        batch, self._pending = self._pending, []
        if batch:
            self._store(batch)

    def _store(self, batch: Batch) -> None:
        try:
            self.record(batch)
        except Exception as err:  # recording must never take the proxy down
            print(f"tether: proxy: {len(batch)} connection event(s) not recorded: {err!r}", flush=True)
