"""Restart decisions: policy, exponential backoff with jitter and a cap, and the crash-loop breaker.

Pure: every decision takes the clock as an argument, so tests set it instead of sleeping.
"""

from __future__ import annotations

import random
from collections import deque
from dataclasses import dataclass, field

from tether.runbook.model import Restart


def should_restart(policy: str, exit_code: int | None) -> bool:
    if policy == "always":
        return True
    if policy == "on-failure":
        return exit_code != 0
    return False


@dataclass
class RestartTracker:
    """Remembers recent restarts of one agent; says how long to wait and when to stop."""

    policy: Restart
    rng: random.Random = field(default_factory=random.Random)
    recent: deque[float] = field(default_factory=deque)
    attempt: int = 0

    def record_start(self, now: float) -> None:
        self.recent.append(now)
        window = self.policy.crashloop.window
        while self.recent and self.recent[0] < now - window:
            self.recent.popleft()

    def stable(self, uptime: float) -> None:
        """An agent that ran longer than ``stable_after`` earns a fresh backoff."""
        if uptime >= self.policy.stable_after:
            self.attempt = 0

    def crashlooping(self, now: float) -> bool:
        """More than ``limit`` starts within ``window`` seconds (the first start included)."""
        window = self.policy.crashloop.window
        return sum(1 for t in self.recent if t >= now - window) > self.policy.crashloop.limit

    def delay(self) -> float:
        b = self.policy.backoff
        try:
            base = 0.0 if b.base <= 0 else min(b.cap, b.base * (b.factor**self.attempt))
        except OverflowError:  # a long-flapping agent: factor ** attempt outgrew a float long ago
            base = b.cap
        self.attempt += 1
        if b.jitter and base > 0:
            base *= 1 + self.rng.uniform(-b.jitter, b.jitter)
        return max(0.0, min(base, b.cap))
