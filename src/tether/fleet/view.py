"""The merged fleet view: every agent of every node (each with its node), the nodes (up, lost, stopped,
last beat age) and what is pending on them: ``tether status`` (fast path and ``--json``), ``tether fleet``
and the dashboard. On a SQLite store there is no fleet and nothing here is shown."""

from __future__ import annotations

import json
import os
import time
from typing import TYPE_CHECKING, Any

from tether.atomic import write_private
from tether.fleet import nodes, pending, pins
from tether.fleet.seam import MARKER

if TYPE_CHECKING:
    from pathlib import Path

#: Written by a node's daemon in its state directory: ``tether --home DIR status`` finds the store there.


def store_url(state_root: str) -> str | None:
    """The fleet store a node's state directory names (None: not a fleet node)."""
    try:
        with open(os.path.join(state_root, MARKER)) as f:
            got = json.load(f).get("store")
    except (OSError, ValueError, AttributeError):
        return None
    return str(got) if got else None


def overview(store: Any, now: float | None = None) -> dict[str, Any] | None:
    """Nodes, pending requests and refused pins; None on a store that is no fleet store."""
    if not store.fleet:
        return None
    now = time.time() if now is None else now
    agents: dict[str, list[str]] = {}
    for row in store.agents():
        if row.get("node"):
            agents.setdefault(str(row["node"]), []).append(row["name"])
    out_nodes = [
        {
            "node": r["name"],
            "state": r["state"],
            "url": r["url"],
            "pid": r["pid"],
            "last_beat_age_s": round(max(0.0, now - r["last_beat"]), 3) if r["last_beat"] else None,
            "state_since": r["state_since"],
            "agents": sorted(agents.get(r["name"], [])),
        }
        for r in nodes.nodes(store)
    ]
    out_pending = [
        {
            "agent": p["agent"],
            "node": p["node"],
            "action": p.get("verb") or "kill",
            "reason": p["reason"],
            "record_id": p["record_id"],
            "age_s": round(max(0.0, now - p["requested"]), 3),
        }
        for p in pending.pending(store)
    ]
    return {"nodes": out_nodes, "pending": out_pending, "refused": pins.refused(store)}


def annotate(docs: list[dict[str, Any]], fleet: dict[str, Any] | None, key: str = "agent") -> list[dict[str, Any]]:
    """Each agent's document (its name under ``key``) gets what is pending for it and the nodes that
    refused it."""
    if fleet is None:
        return docs
    node_state = {n["node"]: n["state"] for n in fleet["nodes"]}
    for d in docs:
        name = d[key]
        d["pending"] = [f"{p['action']} pending on {p['node']}" for p in fleet["pending"] if p["agent"] == name]
        d["refused_by"] = [r["node"] for r in fleet["refused"].get(name, [])]
        if d.get("node"):
            d["node_state"] = node_state.get(d["node"], "unknown")
    return docs


def why(d: dict[str, Any]) -> str:
    """The fleet notes of an agent's row in ``tether status``: its state is only what its node last
    recorded when that node is not up."""
    notes = []
    if d.get("node_state") not in (None, "up"):
        notes.append(f"node {d['node']} is {d['node_state']}: {d['state']} is its last known state")
    notes += list(d.get("pending") or [])
    notes += [f"REFUSED on {n}: pinned to {d.get('node')}" for n in d.get("refused_by") or []]
    return "; ".join(notes)


def mark(state_root: Path, url: str, node: str) -> None:
    """Name the fleet store in a node's state directory (0600: the URL may carry a password)."""
    write_private(state_root / MARKER, json.dumps({"store": url, "node": node}) + "\n")
