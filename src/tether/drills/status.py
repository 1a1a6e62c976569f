"""When an agent was last drilled, for ``tether status`` and the dashboard: read from its ``drill.result``
events (pure: a store and a ``now`` in, a dict out).

Fields (added to the agent's status document):

``last_drill``     the newest result of each drill the agent went through: ``{"status": the worst of them
                   (pass | degraded | fail), "drills": {drill: status}, "failed": [drills], "run": the newest
                   run's id, "runbook_hash": the agent's runbook entry it ran against, "sandbox": bool}``,
                   or None when it was never drilled (skipped drills do not count). A passing ``--only
                   kill`` today does not hide a reboot drill that failed last week.
``last_drill_at``  when the newest of those drills finished (ISO 8601, UTC), or None
``drill_overdue``  True when the agent was not drilled in the last 30 days (or never)
``drill_runbook_changed``  only when the caller passes the agent's current ``runbook_hash``: True when the
                   newest drill ran against another version of the agent's runbook entry
"""

from __future__ import annotations

import time
from typing import Any

from tether.drills import RESULT_EVENT
from tether.status_file import iso
from tether.store import Event, Store

MAX_AGE = 30 * 86400.0
RANK = {"pass": 0, "degraded": 1, "fail": 2}


def _results(store: Store, agent: str) -> list[Event]:
    out: list[Event] = []
    after = 0
    while True:
        got = store.events(agent, after=after, limit=1000, kinds=[RESULT_EVENT])
        out += got
        if len(got) < 1000:
            return out
        after = got[-1].id


def drill_summary(
    store: Store, agent: str, now: float | None = None, *, runbook_hash: str | None = None,
    max_age: float = MAX_AGE,
) -> dict[str, Any]:
    now = time.time() if now is None else now
    counted = [e for e in _results(store, agent) if e.data.get("status") in RANK]
    if not counted:
        out: dict[str, Any] = {"last_drill": None, "last_drill_at": None, "drill_overdue": True}
        if runbook_hash is not None:
            out["drill_runbook_changed"] = False
        return out
    newest: dict[str, Event] = {}
    for e in counted:
        newest[str(e.data.get("drill"))] = e
    drills = {d: str(e.data["status"]) for d, e in newest.items()}
    worst = max(drills.values(), key=lambda s: RANK[s])
    last = counted[-1]
    runbook = last.data.get("runbook_hash")
    out = {
        "last_drill": {
            "status": worst, "drills": drills, "failed": [d for d, s in drills.items() if s == "fail"],
            "run": last.data.get("run"), "runbook_hash": runbook, "sandbox": "sandbox" in last.data,
        },
        "last_drill_at": iso(last.ts),
        "drill_overdue": now - last.ts > max_age,
    }
    if runbook_hash is not None:
        out["drill_runbook_changed"] = runbook is not None and runbook != runbook_hash
    return out
