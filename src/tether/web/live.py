"""Server-sent events: new events from the store (all, or one agent's) and new lines of an agent's log,
as they are written. Each stream polls the store every ``POLL`` seconds with one indexed query
(``id > last``), ends on its own after ``LIFETIME`` (the browser reconnects, resuming from
``Last-Event-ID``), when the client goes away, and at once when the daemon stops."""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request

from tether.redact import redact, redact_obj
from tether.store import Store
from tether.web.views import event_view

POLL = 0.1
LIFETIME = 300.0
PING = 15.0
BATCH = 200
MAX_LINE = 4000


class LogFollower:
    """New complete lines of an agent's ``stdout.log``/``stderr.log`` since the last ``poll`` (never
    blocks; survives rotation and a restart's fresh file by reopening when the inode changes)."""

    def __init__(self, log_dir: Path, streams: tuple[str, ...] = ("stdout", "stderr")) -> None:
        self.log_dir = log_dir
        self._files: dict[str, tuple[Any, int]] = {}
        self._pending: dict[str, bytes] = {}
        for stream in streams:
            self._open(stream, at_end=True)

    def _open(self, stream: str, at_end: bool) -> None:
        path = self.log_dir / f"{stream}.log"
        try:
            f = open(path, "rb")  # noqa: SIM115 - kept open while following; closed in close()
        except OSError:
            self._files.pop(stream, None)
            self._pending[stream] = b""
            return
        st = os.fstat(f.fileno())
        if at_end:
            f.seek(st.st_size)
        self._files[stream] = (f, st.st_ino)
        self._pending[stream] = b""

    def poll(self) -> list[tuple[str, str]]:
        out: list[tuple[str, str]] = []
        for stream in ("stdout", "stderr"):
            entry = self._files.get(stream)
            if entry is not None:
                f, _ = entry
                data = f.read(256 * 1024)
                if data:
                    buf = self._pending.get(stream, b"") + data
                    *lines, rest = buf.split(b"\n")
                    self._pending[stream] = rest[-MAX_LINE:]
                    out += [(stream, redact(line.decode("utf-8", "replace")[:MAX_LINE])) for line in lines]
            try:
                ino = (self.log_dir / f"{stream}.log").stat().st_ino
            except OSError:
                continue
            if entry is None or entry[1] != ino:  # a new file (restart) or rotated: read the new one from its start
                if entry is not None:
                    entry[0].close()
                self._open(stream, at_end=False)
        return out

    def close(self) -> None:
        for f, _ in self._files.values():
            f.close()
        self._files.clear()


def _frame(kind: str, data: Any, event_id: int | None = None) -> str:
    head = f"id: {event_id}\n" if event_id is not None else ""
    return f"{head}event: {kind}\ndata: {json.dumps(data, separators=(',', ':'), default=str)}\n\n"


async def stream(
    request: Request,
    store: Store,
    *,
    agent: str | None = None,
    after: int | None = None,
    log_dir: Path | None = None,
    stopping: Callable[[], bool] = lambda: False,
    lifetime: float = LIFETIME,
    poll: float = POLL,
) -> AsyncIterator[str]:
    """The SSE body: ``tether`` frames (one event each, as the pages show it), ``log`` frames (lines),
    ``: ping`` comments to keep proxies from closing an idle stream, and ``bye`` before it ends."""
    if after is None:
        newest = await run_in_threadpool(store.last_events, agent, 1)
        after = newest[0].id if newest else 0
    follower = LogFollower(log_dir) if log_dir is not None else None
    yield f"retry: 1000\n: tether stream from event {after}\n\n"
    started = last_ping = time.monotonic()
    try:
        while True:
            now = time.monotonic()
            if stopping():
                yield _frame("bye", {"why": "the daemon is stopping"})
                return
            if now - started > lifetime:
                yield _frame("bye", {"why": "stream lifetime reached; reconnect"})
                return
            if await request.is_disconnected():
                return
            events = await run_in_threadpool(store.events, agent, after, BATCH)
            for e in events:
                view = event_view(e)
                yield _frame("tether", redact_obj({**view, "data": e.data}), e.id)
                after = e.id
            if follower is not None:
                lines = follower.poll()
                if lines:
                    yield _frame("log", [{"stream": s, "line": line} for s, line in lines])
            if now - last_ping > PING:
                last_ping = now
                yield ": ping\n\n"
            if len(events) < BATCH:
                await asyncio.sleep(poll)
    finally:
        if follower is not None:
            follower.close()
