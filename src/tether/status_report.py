"""The status of every agent as of one ``now``: what ``tether status`` prints and the API serves.

Light on purpose (no click, no pydantic): ``tether status --json`` must answer fast even on a host
with a million events, and it must work when the daemon is down.
"""

from __future__ import annotations

import json
import time
from typing import Any

from tether.errors import NotFound
from tether.heartbeat import judge
from tether.status_file import document
from tether.store import Store


def report(store: Store, agent: str | None = None, now: float | None = None) -> list[dict[str, Any]]:
    now = time.time() if now is None else now
    rows = store.agents() if agent is None else [r for r in [store.agent(agent)] if r is not None]
    if agent is not None and not rows:
        raise NotFound(f"no agent named {agent!r}; `tether status` lists them")
    queued: dict[str, list[float]] = {}
    for task in store.tasks(agent, states=("queued",)):
        queued.setdefault(task.agent, []).append(task.created)
    from tether.signals import status_signals

    signals = status_signals(store, now, agent)
    docs = []
    for row in rows:
        row["state"], row["reason"] = judge(row, now)
        mine = queued.get(row["name"], [])
        row["queue_depth"], row["oldest_queued"] = len(mine), min(mine, default=None)
        row["signals"] = signals.get(row["name"])
        doc = document(row, now)
        if row.get("node"):  # fleet: the node the agent is pinned to (never on SQLite)
            doc["node"] = row["node"]
        docs.append(doc)
    return docs


def as_json(state_dir: str, docs: list[dict[str, Any]], fleet: dict[str, Any] | None = None) -> str:
    """``fleet`` (``tether.fleet.view.overview``): the nodes and pending requests, on a fleet store only."""
    out: dict[str, Any] = {"state_dir": state_dir, "agents": docs}
    if fleet is not None:
        out["nodes"], out["pending"] = fleet["nodes"], fleet["pending"]
    return json.dumps(out, separators=(",", ":")) + "\n"
