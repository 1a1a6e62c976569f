"""Calls that may wait for a human (a check with ``wait``, ``/v1/approvals/{id}/wait``, a hook's
``X-Tether-Wait``, OpenClaw's exec approvals) wait on threads of their own, never on the worker pool every other
call shares (anyio's 40). One agent holding many waits, each up to 600 s, would otherwise starve every other
agent's checks, and their hooks fail closed: measured before this module, 60 waiting checks of one agent held
another agent's `ls` check 13 s. At most ``PER_AGENT`` waits per agent (or per token) and ``TOTAL`` in all; a
call past either is answered at once, as with no wait (a held action answers ``pending``: the agent asks again
or waits on the approval)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import anyio
import anyio.to_thread
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request

T = TypeVar("T")
PER_AGENT = 8
TOTAL = 128


class Waits:
    """One per app, used from its event loop only (so its counts need no lock)."""

    def __init__(self, per_agent: int = PER_AGENT, total: int = TOTAL) -> None:
        self.per_agent = per_agent
        self.total = total
        self.waiting: dict[str, int] = {}
        self.refused = 0  # calls answered at once because the limits were reached
        self._limiter: anyio.CapacityLimiter | None = None  # made in the loop that uses it

    async def run(self, who: str, wait: float, fn: Callable[[float], T]) -> T:
        """``fn(wait)`` on a waiting thread, or ``fn(0.0)`` on the shared pool when ``wait`` is 0 or ``who``
        (an agent, a token) or everyone is at the limit."""
        if wait > 0:
            if self._limiter is None:
                self._limiter = anyio.CapacityLimiter(self.total)
            if self.waiting.get(who, 0) < self.per_agent and self._limiter.borrowed_tokens < self.total:
                self.waiting[who] = self.waiting.get(who, 0) + 1
                try:
                    return await anyio.to_thread.run_sync(fn, wait, limiter=self._limiter)
                finally:
                    left = self.waiting[who] - 1
                    if left:
                        self.waiting[who] = left
                    else:
                        del self.waiting[who]
            self.refused += 1
        return await run_in_threadpool(fn, 0.0)


def of(request: Request) -> Waits:
    """The app's waiting threads, made on first use."""
    got: Waits | None = getattr(request.app.state, "waits", None)
    if got is None:
        got = request.app.state.waits = Waits()
    return got
