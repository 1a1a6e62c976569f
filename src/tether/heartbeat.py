"""An agent's state as a pure function of its recorded facts and one ``now``.

Test it by setting the clock, never by sleeping. ``stale``: no beat for longer than ``stale_after``.
``stuck``: beats keep coming but progress has not changed for longer than ``stuck_after``.
"""

from __future__ import annotations

from typing import Any

from tether.durations import format_duration

LIVE_STATES = frozenset({"starting", "running", "idle"})


def effective_state(row: dict[str, Any], now: float) -> tuple[str, str | None]:
    """``(state, reason)`` for an agent row as of ``now``."""
    state = str(row["state"])
    reason = row.get("reason")
    if state not in LIVE_STATES:
        return state, reason
    hb = (row.get("info") or {}).get("heartbeat") or {}
    last = row.get("last_heartbeat") or row.get("started_at")
    stale_after = hb.get("stale_after")
    if stale_after and last is not None and now - last > stale_after:
        return "stale", f"no heartbeat for {format_duration(now - last)} (stale_after {format_duration(stale_after)})"
    stuck_after = hb.get("stuck_after")
    progress = row.get("last_progress") or last
    if stuck_after and progress is not None and now - progress > stuck_after:
        return "stuck", (
            f"no progress for {format_duration(now - progress)} (stuck_after {format_duration(stuck_after)})"
        )
    return state, reason


def next_deadline(row: dict[str, Any]) -> float | None:
    """When this agent's state would next change on its own (for an event-driven monitor)."""
    if row["state"] not in LIVE_STATES:
        return None
    hb = (row.get("info") or {}).get("heartbeat") or {}
    last = row.get("last_heartbeat") or row.get("started_at")
    times = []
    if hb.get("stale_after") and last is not None:
        times.append(last + hb["stale_after"])
    progress = row.get("last_progress") or last
    if hb.get("stuck_after") and progress is not None:
        times.append(progress + hb["stuck_after"])
    return min(times) if times else None


#: Recorded states the monitor itself sets and lifts again when the facts change.
FLAGGED_STATES = frozenset({"stale", "stuck"})


def judge(row: dict[str, Any], now: float) -> tuple[str, str | None]:
    """``effective_state``, with a recorded ``stale`` or ``stuck`` judged again from the facts: an agent
    that beats again (or made progress) is ``running`` again. Still a pure function of the row and ``now``;
    the monitor compares it with the recorded state to know what changed."""
    state = str(row["state"])
    if state in ("starting", "idle") and "pid" in row and row["pid"] is None:
        return state, row.get("reason")  # waiting out a backoff, or done: no process that could beat
    if state not in FLAGGED_STATES:
        return effective_state(row, now)
    got, reason = effective_state({**row, "state": "running", "reason": None}, now)
    if got == "running":
        return "running", f"recovered from {state}"
    return got, reason


def next_change(row: dict[str, Any], now: float) -> float | None:
    """The first moment after ``now`` at which ``judge(row, t)`` may differ from ``judge(row, now)``
    (a deadline at exactly ``now`` counts, since the states flip strictly after it)."""
    if row["state"] not in LIVE_STATES and row["state"] not in FLAGGED_STATES:
        return None
    if row["state"] in ("starting", "idle") and "pid" in row and row["pid"] is None:
        return None
    hb = (row.get("info") or {}).get("heartbeat") or {}
    last = row.get("last_heartbeat") or row.get("started_at")
    if last is None:
        return None
    times = []
    if hb.get("stale_after"):
        times.append(last + hb["stale_after"])
    progress = row.get("last_progress") or last
    if hb.get("stuck_after"):
        times.append(progress + hb["stuck_after"])
    later = [t for t in times if t >= now]
    return min(later) if later else None
