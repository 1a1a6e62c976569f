"""Requests across the fleet. ``tether kill AGENT`` (or ``resume``, ``start``, ``stop``, ``restart``) on a
host that does not run AGENT records the request (``kill.requested`` / ``control.requested``, with the owning
``node``) and NOTIFYs; it stays pending on that node until the node's daemon applies it (for a kill: kill
file, tree kill, ``agent.killed``) and records ``kill.applied`` / ``control.applied``: at once on the
NOTIFY, or when the daemon next reads the store (at boot, on every monitor wake)."""

from __future__ import annotations

import json
import threading
import time
import uuid
from typing import Any, Protocol

from tether.store import NewEvent

CHANNEL = "kill"
#: What one node may ask of another's daemon for one of its agents.
VERBS = ("kill", "resume", "start", "stop", "restart")


class Killer(Protocol):
    node: str

    def local_agents(self) -> list[str]: ...

    def kill(self, agent: str, reason: str | None) -> object: ...


def request(store: Any, agent: str, node: str, reason: str | None, now: float | None = None,
            verb: str = "kill") -> str:
    """Record ``verb`` for ``agent`` on ``node`` and tell that node now; returns the record id."""
    if verb not in VERBS:
        raise ValueError(f"unknown verb {verb!r}")
    record_id = uuid.uuid4().hex
    kind = "kill.requested" if verb == "kill" else "control.requested"
    data: dict[str, Any] = {"node": node, "reason": reason, "record_id": record_id}
    if verb != "kill":
        data["verb"] = verb
    store.append([NewEvent(kind, agent, data, **({} if now is None else {"ts": now}))])
    try:
        store.notify(CHANNEL, json.dumps({"node": node, "agent": agent, "record_id": record_id, "verb": verb}))
    except Exception:  # recorded: the node applies it on its next read
        pass
    return record_id


def pending(store: Any, node: str | None = None) -> list[dict[str, Any]]:
    """Requests recorded but not yet applied (on ``node``, or on every node)."""
    rows: list[dict[str, Any]] = store.pending_requests(node)
    return rows


def get(store: Any, record_id: str) -> dict[str, Any] | None:
    row: dict[str, Any] | None = store.fleet_request(record_id)
    return row


def wait_applied(store: Any, record_id: str, timeout: float) -> dict[str, Any] | None:
    """The request's row once its node applied it, or None after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        row = get(store, record_id)
        if row is not None and row["applied"] is not None:
            return row
        if time.monotonic() >= deadline:
            return None
        time.sleep(0.05)


_applying = threading.Lock()


def apply_pending(store: Any, daemon: Killer, blocking: bool = True) -> list[str]:
    """Apply every pending request for this node's agents; return their agents. One pass at a time
    (``blocking`` False: none when another pass is under way)."""
    done: list[str] = []
    if not _applying.acquire(blocking=blocking):
        return done
    try:
        local = set(daemon.local_agents())
        for req in pending(store, daemon.node):
            agent, verb = req["agent"], req.get("verb") or "kill"
            error = None
            if agent in local:
                try:
                    if verb == "kill":
                        why = req["reason"] or f"kill requested from another node ({req['record_id'][:8]})"
                        daemon.kill(agent, why)
                    else:
                        getattr(daemon, verb)(agent)
                except Exception as err:  # a start refused (killed agent, ...): recorded, not retried
                    error = str(err) or type(err).__name__
            data: dict[str, Any] = {"record_id": req["record_id"], "node": daemon.node, "found": agent in local}
            if verb != "kill":
                data["verb"] = verb
            if error is not None:
                data["error"] = error
            elif agent not in local:
                data["error"] = f"node {daemon.node} does not run {agent}"
            store.append([NewEvent("kill.applied" if verb == "kill" else "control.applied", agent, data)])
            done.append(agent)
    finally:
        _applying.release()
    return done


def apply_soon(store: Any, daemon: Killer) -> bool:
    """From the monitor: apply what is pending here on a thread of its own (a stop waits for its agent's
    grace, the monitor must not); True when something was pending."""
    if _applying.locked() or not pending(store, daemon.node):
        return False
    threading.Thread(target=apply_pending, args=(store, daemon, False), name="tether-fleet-apply",
                     daemon=True).start()
    return True
