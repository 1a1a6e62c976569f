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
