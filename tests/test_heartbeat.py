"""effective_state and next_deadline are pure functions of a row and ``now``: tested by setting the clock."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from tether.heartbeat import LIVE_STATES, effective_state, next_deadline
from tether.vocabulary import AGENT_STATES

T = 1_700_000_000.0
HB = {"heartbeat": {"interval": 30.0, "stale_after": 120.0, "stuck_after": 1800.0}}


def row(state: str = "running", beat: float | None = T, progress: float | None = T, **extra: Any) -> dict[str, Any]:
    return {"name": "w", "state": state, "reason": None, "last_heartbeat": beat, "last_progress": progress,
            "started_at": T - 10, "info": HB, **extra}


def test_running_while_beats_are_fresh() -> None:
    assert effective_state(row(), T + 119) == ("running", None)
    assert effective_state(row(), T + 120) == ("running", None), "stale only past stale_after"


def test_stale_past_stale_after() -> None:
    assert effective_state(row(), T + 121) == ("stale", "no heartbeat for 2m1s (stale_after 2m)")


def test_stuck_when_beats_are_fresh_but_progress_is_old() -> None:
    r = row(beat=T + 1795, progress=T)
    assert effective_state(r, T + 1800) == ("running", None)
    assert effective_state(r, T + 1801) == ("stuck", "no progress for 30m1s (stuck_after 30m)")


def test_stale_wins_over_stuck() -> None:
    state, reason = effective_state(row(beat=T, progress=T), T + 5000)
    assert state == "stale"
    assert reason is not None and reason.startswith("no heartbeat for 1h23m20s")


@pytest.mark.parametrize("state", ["starting", "idle"])
def test_other_live_states_go_stale_too(state: str) -> None:
    assert effective_state(row(state), T + 60) == (state, None)
    assert effective_state(row(state), T + 500)[0] == "stale"


@pytest.mark.parametrize("state", sorted(set(AGENT_STATES) - LIVE_STATES))
def test_non_live_states_unchanged(state: str) -> None:
    r = row(state, beat=T, progress=T, reason="why")
    assert effective_state(r, T + 1_000_000) == (state, "why")
    assert next_deadline(r) is None


def test_no_beat_yet_counts_from_start() -> None:
    r = row(beat=None, progress=None)
    assert effective_state(r, T + 100) == ("running", None)
    assert effective_state(r, T + 111)[0] == "stale"  # started_at is T - 10
    assert next_deadline(r) == T - 10 + 120


def test_no_heartbeat_settings_means_never_stale() -> None:
    r = row(info={})
    assert effective_state(r, T + 10**9) == ("running", None)
    assert next_deadline(r) is None


def test_only_stale_after_configured() -> None:
    r = row(info={"heartbeat": {"stale_after": 60.0}}, progress=T - 10**6)
    assert effective_state(r, T + 59) == ("running", None)
    assert next_deadline(r) == T + 60


def test_next_deadline_is_the_earlier_one() -> None:
    assert next_deadline(row(beat=T, progress=T)) == T + 120
    assert next_deadline(row(beat=T + 1790, progress=T)) == T + 1800


times = st.floats(min_value=0, max_value=10_000, allow_nan=False)


@given(
    state=st.sampled_from(sorted(LIVE_STATES)),
    beat=times, progress=st.one_of(st.none(), times),
    stale=st.floats(min_value=1, max_value=5_000), stuck=st.floats(min_value=1, max_value=5_000),
    delta=st.floats(min_value=0.01, max_value=5_000),
)
def test_deadline_is_when_the_state_changes(
    state: str, beat: float, progress: float | None, stale: float, stuck: float, delta: float
) -> None:
    """A monitor that sleeps until next_deadline misses nothing: before it the state is as recorded,
    just after it the state has changed."""
    r = row(state, beat=T + beat, progress=None if progress is None else T + progress,
            info={"heartbeat": {"stale_after": stale, "stuck_after": stuck}})
    deadline = next_deadline(r)
    assert deadline is not None
    assume(deadline - delta > max(beat, progress or 0) + T)  # `now` after the facts it is judged on
    assert effective_state(r, deadline - delta) == (state, None)
    assert effective_state(r, deadline + 0.01)[0] in ("stale", "stuck")
