"""Pinning: an agent belongs to the node that registered it first (``agents.node``), and only that node's
daemon supervises it: an agent never runs on two hosts at once.

- A daemon whose runbook names an agent pinned to another node refuses it: no supervisor, no process
  (a run left over from before is stopped), an ``agent.pin_refused`` event and an ``agent.pinned_elsewhere``
  incident, which ``tether status`` shows on the agent.
- ``tether fleet move AGENT --to NODE`` (admin) re-pins it: the old node stops and drops it, the new node
  starts it once the old run has ended (at once when the old node is lost or stopped).
- ``tether fleet unpin AGENT`` (admin; its node must be lost or stopped) releases it to whichever node
  registers it next; a node whose runbook no longer names an agent pinned to it releases the pin itself.
"""

from __future__ import annotations

import contextlib
import sys
import threading
from typing import Any, Protocol

from tether import process
from tether.fleet import nodes
from tether.lifecycle import change
from tether.store import NewEvent

INCIDENT = "agent.pinned_elsewhere"
#: An agent in one of these states has no run anywhere: a move may start it on its new node.
ENDED = frozenset({"stopped", "killed", "crashloop"})


class PinDaemon(Protocol):
    node: str
    store: Any
    loaded: Any
    supervisors: dict[str, Any]
    _lock: Any
    _reload_lock: Any

    def _add(self, name: str, spec: Any, fresh: bool = False) -> None: ...


def _open(store: Any, agent: str, me: str) -> list[dict[str, Any]]:
    return [i for i in store.incidents("open", agent)
            if i["kind"] == INCIDENT and i["agent"] == agent and i["data"].get("node") == me]


def refused(store: Any) -> dict[str, list[dict[str, Any]]]:
    """Open refusals by agent: ``[{node, pinned_to}, ...]`` (what ``tether status`` marks)."""
    out: dict[str, list[dict[str, Any]]] = {}
    for i in store.incidents("open"):
        if i["kind"] == INCIDENT and i["agent"]:
            out.setdefault(i["agent"], []).append({"node": i["data"].get("node"),
                                                  "pinned_to": i["data"].get("pinned_to")})
    return out


def refuse(store: Any, agent: str, me: str, pinned_to: str, incident: bool = True) -> None:
    """Record that ``me`` will not supervise ``agent`` (pinned to ``pinned_to``), once per incident."""
    row = nodes.node(store, pinned_to)
    state = row["state"] if row is not None else "unknown"
    data = {"node": me, "pinned_to": pinned_to, "pinned_node_state": state}
    events = [NewEvent("agent.pin_refused", agent, data)]
    if incident and not _open(store, agent, me):
        events.append(NewEvent("incident.opened", agent, {
            "kind": INCIDENT, **data,
            "summary": f"{agent} is pinned to node {pinned_to} ({state}); node {me} will not run it too "
                       f"(`tether fleet move {agent} --to {me}` moves it)",
        }))
    store.append(events)


def _resolve(store: Any, agent: str, me: str, why: str) -> None:
    events = [NewEvent("incident.resolved", agent, {"incident_id": i["id"], "kind": INCIDENT, "why": why})
              for i in _open(store, agent, me)]
    if events:
        store.append(events)


def pin(store: Any, agent: str, to: str | None, by: str, why: str) -> None:
    """Move ``agent``'s pin to node ``to`` (None: release it)."""
    row = store.agent(agent)
    store.append([NewEvent("agent.pinned", agent, {"node": to, "from": row.get("node") if row else None,
                                                    "by": by, "why": why})])
    with contextlib.suppress(Exception):
        store.notify("pins", to or "")


def previous(store: Any, agent: str) -> str | None:
    """The node a moved agent was pinned to before its last move."""
    for e in reversed(store.last_events(agent, 50)):
        if e.kind == "agent.pinned":
            got = e.data.get("from")
            return str(got) if got else None
    return None


def stop_leftover(daemon: Any, name: str, spec: Any) -> bool:
    """A run of a refused agent left by this node's previous daemon (it was moved away meanwhile): stop it."""
    run_dir = daemon.state.agent_dir(name) / "run"
    handle = process.adopt(run_dir)
    if handle is None or not handle.running():
        return False
    process.kill_tree(run_dir, spec.kill.signal, spec.kill.grace)
    daemon.store.append([NewEvent("agent.state", name, change(
        "stopped", f"stopped on node {daemon.node}: pinned to another node"))])
    return True


def reconcile(d: PinDaemon) -> None:
    """From the monitor (fleet store only): follow moves and releases. A supervisor whose agent was moved
    away is stopped and dropped; an agent pinned here that the runbook no longer names is released; an
    agent the runbook names that is now free, or moved here (and its old run ended), is taken up."""
    if not d._reload_lock.acquire(blocking=False):  # a reload is adding and removing agents: next time
        return
    try:
        rows = {r["name"]: r for r in d.store.agents()}
        runbook = d.loaded.runbook.agents
        with d._lock:
            local = set(d.supervisors)
        for name in sorted(local):
            node = rows.get(name, {}).get("node")
            if node and node != d.node:
                _drop(d, name, str(node))
        for name, row in rows.items():
            if row.get("node") == d.node and name not in runbook and name not in local:
                pin(d.store, name, None, f"node:{d.node}", f"node {d.node}'s runbook no longer names it")
        for name, spec in runbook.items():
            if name in local:
                continue
            row = rows.get(name)
            node = row.get("node") if row is not None else None
            if node is None or (node == d.node and _free(d.store, name, row)):
                _resolve(d.store, name, d.node, f"now supervised by node {d.node}")
                d._add(name, spec)
        for i in d.store.incidents("open"):
            if i["kind"] == INCIDENT and i["data"].get("node") == d.node and i["agent"] not in runbook:
                _resolve(d.store, i["agent"], d.node, f"node {d.node}'s runbook no longer names it")
    finally:
        d._reload_lock.release()


def _free(store: Any, name: str, row: dict[str, Any] | None) -> bool:
    """Moved here: free to start once its old node no longer runs it (or that node is down)."""
    if row is None or row["state"] in ENDED:
        return True
    old = previous(store, name)
    node = nodes.node(store, old) if old else None
    return node is None or node["state"] != "up"


def _drop(d: PinDaemon, name: str, to: str) -> None:
    with d._lock:
        sup = d.supervisors.pop(name, None)
    if sup is None:
        return
    d.store.append([NewEvent("agent.moved", name, {"from": d.node, "to": to})])
    sup.shutdown(stop_agent=True, reason=f"moved to node {to}")

    def join() -> None:
        try:
            sup.join()
            with contextlib.suppress(Exception):
                d.store.notify("pins", to)  # its new node may start it now
        except Exception as err:
            print(f"tether: fleet: moving {name}: {err!r}", file=sys.stderr, flush=True)

    threading.Thread(target=join, name=f"tether-fleet-move-{name}", daemon=True).start()
