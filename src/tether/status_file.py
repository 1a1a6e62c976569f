"""``agent-status.json``: one file per agent, rewritten atomically whenever its row changes.

Path: ``<state_dir>/agents/<agent>/agent-status.json``. Written by ``tether.atomic`` (temp file, fsync,
rename, fsync of the folder), so a reader never sees half a file and a crash never leaves one.
"""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Any

from tether.atomic import write_atomic as write_atomic  # the one way files are replaced (re-exported)

if TYPE_CHECKING:  # pathlib and re stay out of `tether status`'s start-up
    from pathlib import Path

    from tether.paths import StateDir

SCHEMA = 1
DRILL_MAX_AGE = 30 * 86400.0  # an agent not drilled for this long is flagged


def iso(ts: float | None) -> str | None:
    """UTC, to the second: ``2026-11-26T11:09:22+00:00``."""
    return time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(ts)) if ts else None


def age(now: float, ts: float | None) -> float | None:
    """Seconds from ``ts`` to ``now``, never negative: ``now`` is often read before the store, so a beat
    recorded in between would be "-0.7 s ago"."""
    return round(max(0.0, now - ts), 3) if ts else None


def document(row: dict[str, Any], now: float | None = None) -> dict[str, Any]:
    """The status document for one agent row (the fields are documented in docs/FILES.md)."""
    now = time.time() if now is None else now
    beat = row.get("last_heartbeat")
    doc = {
        "schema": SCHEMA,
        "agent": row["name"],
        "state": row["state"],
        "reason": row.get("reason"),
        "task": row.get("task"),
        "progress": row.get("progress"),
        "last_heartbeat": iso(beat),
        "heartbeat_age_s": age(now, beat),
        "last_completed_task": row.get("last_task"),
        "last_completed_at": iso(row.get("last_task_at")),
        "files_changed": row.get("files_changed", 0),
        "commands_run": row.get("commands_run", 0),
        "tests": row.get("tests"),
        "approval_required": bool(row.get("approval_required")),
        "restarts": row.get("restarts", 0),
        "pid": row.get("pid"),
        "desired": row.get("desired"),
        "updated": iso(now),
    }
    if "retries" in row:
        doc["retries"] = row["retries"]
    if "drills" in row:  # the last drill of each kind; never drilled or over 30 days ago is flagged
        drills = json.loads(row["drills"] or "{}")
        last = row.get("last_drill_at")
        order = {"pass": 0, "degraded": 1, "fail": 2}
        doc["last_drill"] = (
            {
                "status": max((d["status"] for d in drills.values()), key=order.__getitem__),
                "drills": {k: d["status"] for k, d in sorted(drills.items())},
            }
            if drills
            else None
        )
        doc["last_drill_at"] = iso(last)
        doc["drill_overdue"] = last is None or now - last > DRILL_MAX_AGE
    if "signals" in row:  # filled in from ``signals.status_signals`` (the daemon, `tether status`, the API)
        sig = row["signals"] or {}
        doc["blocked"] = sig.get("blocked") or (
            row.get("reason") if row["state"] not in ("running", "idle", "starting") else None
        )
        doc["approvals_pending"] = sig.get("approvals_pending", 0)
        doc["errors"] = sig.get("errors", {})
        doc["tokens_today"] = sig.get("tokens_today", {"input": 0, "output": 0, "cache_read": 0, "cache_write": 0})
        doc["spend_today_usd"] = sig.get("spend_today_usd", 0.0)
        unpriced = sig.get("unpriced") or []  # models whose tokens have no cost: the spend is not all of it
        doc["spend_note"] = "unpriced model " + ", ".join(unpriced) if unpriced else None
        doc["usage_by_model"] = sig.get("usage_by_model", {})
        doc["accounts_touched"] = sig.get("accounts_touched", [])
        doc["accounts_touched_count"] = sig.get("accounts_touched_count", len(doc["accounts_touched"]))
        doc["violations"] = sig.get("violations", {"connect": 0, "write": 0})  # vocabulary.VIOLATION_KINDS
    if "queue_depth" in row:  # filled in by whoever knows the task queue (the daemon, `tether status`)
        oldest = row.get("oldest_queued")
        doc["queue_depth"] = row["queue_depth"]
        doc["queue_age_s"] = age(now, oldest)
    return doc


def write(state: StateDir, row: dict[str, Any], now: float | None = None) -> Path:
    from tether.redact import redact  # +2 ms to tether down, task add

    path = state.status_file(row["name"])
    write_atomic(path, redact(json.dumps(document(row, now), indent=2)) + "\n")
    return path
