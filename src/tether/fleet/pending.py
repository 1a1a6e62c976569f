"""Kills across the fleet. ``tether kill AGENT`` on a host that does not run AGENT records
``kill.requested`` (with the owning ``node``) and NOTIFYs; it stays pending on that node until the node's
daemon applies it (kill file, tree kill, ``agent.killed``) and records ``kill.applied``: at once on the
NOTIFY, or when the daemon next reads the store (at boot, on every monitor wake)."""

from __future__ import annotations

import json
import threading
import uuid
from typing import Any, Protocol

from tether.fleet import read
from tether.store import NewEvent

CHANNEL = "kill"


class Killer(Protocol):
    node: str

    def local_agents(self) -> list[str]: ...

    def kill(self, agent: str, reason: str | None) -> None: ...


def request(store: Any, agent: str, node: str, reason: str | None, now: float | None = None) -> str:
    """Record a kill for ``agent`` on ``node`` and tell that node now; returns the record id."""
    record_id = uuid.uuid4().hex
    store.append([NewEvent("kill.requested", agent, {"node": node, "reason": reason, "record_id": record_id},
                           **({} if now is None else {"ts": now}))])
    try:
        store.notify(CHANNEL, json.dumps({"node": node, "agent": agent, "record_id": record_id}))
    except Exception:  # recorded: the node applies it on its next read
        pass
    return record_id


def pending(store: Any, node: str | None = None) -> list[dict[str, Any]]:
    """Kills recorded but not yet applied (on ``node``, or on every node)."""
    if node is None:
        return read(store, "SELECT * FROM kill_requests WHERE applied IS NULL ORDER BY requested")
    return read(store, "SELECT * FROM kill_requests WHERE applied IS NULL AND node = %s ORDER BY requested",
                (node,))


_applying = threading.Lock()


def apply_pending(store: Any, daemon: Killer) -> list[str]:
    """Apply every pending kill for this node's agents; return the agents killed. One pass at a time."""
    done = []
    with _applying:
        local = set(daemon.local_agents())
        for req in pending(store, daemon.node):
            agent = req["agent"]
            if agent in local:
                daemon.kill(agent, req["reason"] or f"kill requested from another node ({req['record_id'][:8]})")
            store.append([NewEvent("kill.applied", agent, {"record_id": req["record_id"], "node": daemon.node,
                                                           "found": agent in local})])
            done.append(agent)
    return done
