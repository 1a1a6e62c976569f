"""The node registry: each daemon on a fleet store registers its node (``node.registered``) and beats
(the row's ``last_beat``, no event, like agent beats). Any daemon that sees another node silent for
``LOST_AFTER`` records ``node.lost`` with a ``node.lost`` incident; the node's next daemon records
``node.back`` and resolves it. A clean ``tether down`` records ``node.stopped`` (no incident)."""

from __future__ import annotations

import os
from typing import Any

from tether.store import NewEvent

#: Silence after which another node counts as lost (``TETHER_FLEET_LOST_AFTER`` overrides, in seconds).
LOST_AFTER = float(os.environ.get("TETHER_FLEET_LOST_AFTER", "10"))
#: How often a daemon beats for its node (the monitor wakes at least this often on a fleet store).
BEAT_EVERY = max(0.2, min(2.0, LOST_AFTER / 5))
INCIDENT = "node.lost"


def nodes(store: Any) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = store.nodes()
    return rows


def node(store: Any, name: str) -> dict[str, Any] | None:
    return next((r for r in nodes(store) if r["name"] == name), None)


def _open_incidents(store: Any, name: str) -> list[dict[str, Any]]:
    return [i for i in store.incidents("open") if i["kind"] == INCIDENT and i["data"].get("node") == name]


def register(store: Any, name: str, *, pid: int, url: str, agents: list[str], now: float) -> bool:
    """Record this node's daemon; returns True when the node was lost and is back."""
    row = node(store, name)
    events = [NewEvent("node.registered", None, {"node": name, "pid": pid, "url": url,
                                                 "info": {"agents": agents}}, ts=now)]
    back = row is not None and row["state"] == "lost"
    if back:
        events.append(NewEvent("node.back", None, {"node": name}, ts=now))
    events += [
        NewEvent("incident.resolved", None, {"incident_id": i["id"], "kind": INCIDENT, "node": name,
                                             "why": f"node {name}'s daemon is back"}, ts=now)
        for i in _open_incidents(store, name)
    ]
    store.append(events)
    return back


def beat(store: Any, name: str, now: float) -> None:
    store.beat_node(name, now)


def stopped(store: Any, name: str, now: float) -> None:
    store.append([NewEvent("node.stopped", None, {"node": name}, ts=now)])


def check_lost(store: Any, me: str, now: float, lost_after: float | None = None) -> list[str]:
    """Mark every other node silent for ``lost_after`` as lost, with one incident each; return their names."""
    limit = LOST_AFTER if lost_after is None else lost_after
    lost = []
    for row in nodes(store):
        if row["name"] == me or row["state"] != "up" or (row["last_beat"] or 0) > now - limit:
            continue
        silent = now - (row["last_beat"] or 0)
        events = [NewEvent("node.lost", None, {"node": row["name"], "silent_s": round(silent, 3), "seen_by": me},
                           ts=now)]
        if not _open_incidents(store, row["name"]):
            events.append(NewEvent("incident.opened", None, {
                "kind": INCIDENT, "node": row["name"], "seen_by": me,
                "summary": f"node {row['name']}'s daemon has not beaten for {silent:.0f}s (unreachable or dead)",
            }, ts=now))
        store.append(events)
        lost.append(row["name"])
    return lost
