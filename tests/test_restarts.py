"""Restart decisions as pure functions of a set clock: policy, backoff with jitter and cap, reset after
stable uptime, the crash-loop window."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tether.daemon.restarts import RestartTracker, should_restart
from tether.runbook.model import Backoff, Crashloop, Restart

T = 1_700_000_000.0


def tracker(base: float = 1.0, factor: float = 2.0, cap: float = 30.0, jitter: float = 0.0, limit: int = 5,
            window: float = 60.0, stable_after: float = 10.0, seed: int = 1) -> RestartTracker:
    policy = Restart(backoff=Backoff(base=base, factor=factor, cap=cap, jitter=jitter),
                     crashloop=Crashloop(limit=limit, window=window), stable_after=stable_after)
    return RestartTracker(policy, rng=random.Random(seed))


@pytest.mark.parametrize(("policy", "code", "expected"), [
    ("always", 0, True), ("always", 3, True), ("always", None, True),
    ("on-failure", 0, False), ("on-failure", 3, True), ("on-failure", 143, True), ("on-failure", None, True),
    ("never", 0, False), ("never", 3, False), ("never", None, False),
])
def test_policy(policy: str, code: int | None, expected: bool) -> None:
    assert should_restart(policy, code) is expected


def test_backoff_doubles_up_to_the_cap() -> None:
    t = tracker(base=1, factor=2, cap=30)
    assert [t.delay() for _ in range(8)] == [1, 2, 4, 8, 16, 30, 30, 30]


def test_backoff_after_thousands_of_attempts() -> None:
    """An agent flapping for days never overflows the arithmetic: it waits the cap (or nothing)."""
    t = tracker(base=1, factor=2, cap=30)
    t.attempt = 100_000
    assert t.delay() == 30
    zero = tracker(base=0, factor=2)
    zero.attempt = 5_000
    assert zero.delay() == 0


def test_backoff_base_zero_restarts_at_once() -> None:
    t = tracker(base=0, jitter=0.5)
    assert [t.delay() for _ in range(5)] == [0, 0, 0, 0, 0]


def test_jitter_stays_within_its_fraction_and_under_the_cap() -> None:
    t = tracker(base=1, factor=2, cap=8, jitter=0.25, seed=7)
    delays = [t.delay() for _ in range(200)]
    for i, d in enumerate(delays[:3]):
        nominal = 2.0**i
        assert nominal * 0.75 <= d <= nominal * 1.25
    assert all(d <= 8 for d in delays)
    assert len({round(d, 6) for d in delays[5:]}) > 10, "jitter spreads restarts"


@given(base=st.floats(0, 100), factor=st.floats(1, 10), cap=st.floats(0, 1000), jitter=st.floats(0, 1),
       n=st.integers(1, 40), seed=st.integers(0, 2**32))
def test_delay_is_never_negative_nor_over_the_cap(base: float, factor: float, cap: float, jitter: float, n: int,
                                                  seed: int) -> None:
    t = tracker(base=base, factor=factor, cap=cap, jitter=jitter, seed=seed)
    for _ in range(n):
        assert 0 <= t.delay() <= cap


def test_stable_uptime_resets_the_backoff() -> None:
    t = tracker(base=1, stable_after=10)
    assert [t.delay() for _ in range(3)] == [1, 2, 4]
    t.stable(9.9)  # not long enough
    assert t.delay() == 8
    t.stable(10.0)
    assert t.delay() == 1


def test_crashloop_at_more_than_limit_starts_in_the_window() -> None:
    t = tracker(limit=3, window=60)
    for i in range(3):
        t.record_start(T + i)
        assert not t.crashlooping(T + i), f"start {i + 1} of 3 is allowed"
    t.record_start(T + 3)
    assert t.crashlooping(T + 3), "the 4th start within 60s is refused"


def test_crashloop_window_slides() -> None:
    t = tracker(limit=3, window=60)
    for i in range(3):
        t.record_start(T + i * 25)  # T, T+25, T+50
    t.record_start(T + 61)  # T has left the window: 3 starts in it
    assert not t.crashlooping(T + 61)
    assert list(t.recent) == [T + 25, T + 50, T + 61]
    t.record_start(T + 70)
    assert t.crashlooping(T + 70)
    assert not t.crashlooping(T + 70 + 61), "judged later, every start has left the window"


def test_a_fresh_budget() -> None:
    t = tracker(limit=2, window=60)
    for i in range(3):
        t.record_start(T + i)
    assert t.crashlooping(T + 2)
    t.recent.clear()  # what `tether start` does
    t.attempt = 0
    t.record_start(T + 3)
    assert not t.crashlooping(T + 3)
    assert t.delay() == 1
