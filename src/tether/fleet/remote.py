"""Acting on an agent of another node, from the CLI or any node's API and dashboard: the request is
recorded in the store and NOTIFYed to the agent's node (``pending``); when that node is up its daemon
applies it at once and the caller waits for the outcome, else it stays pending on that node."""

from __future__ import annotations

from typing import Any

from tether.errors import NotFound, TetherError
from tether.fleet import nodes, pending

#: How long a caller waits for an up node's daemon to apply a request (a stop waits for the agent's grace).
WAIT = 20.0


def node_of(store: Any, agent: str, here: str) -> str | None:
    """The node ``agent`` is pinned to, when that is another node than ``here`` on a fleet store."""
    if not store.fleet:
        return None
    row = store.agent(agent)
    node = row.get("node") if row is not None else None
    return str(node) if node and node != here else None


def send(store: Any, agent: str, node: str, verb: str, reason: str | None = None,
         wait: float | None = WAIT) -> dict[str, Any]:
    """Ask ``node`` to apply ``verb`` to ``agent``; wait for it when the node is up (and ``wait``)."""
    row = nodes.node(store, node)
    state = row["state"] if row is not None else "unknown"
    record_id = pending.request(store, agent, node, reason, verb=verb)
    out: dict[str, Any] = {"status": "pending", "agent": agent, "action": verb, "node": node, "node_state": state,
                           "node_url": row["url"] if row is not None else None, "record_id": record_id}
    if state == "up" and wait:
        done = pending.wait_applied(store, record_id, wait)
        if done is not None:
            out["status"] = "failed" if done.get("result") else "done"
            out["error"] = done.get("result")
    return out


def message(got: dict[str, Any]) -> str:
    """One line for the CLI."""
    agent, verb, node, state = got["agent"], got["action"], got["node"], got["node_state"]
    if got["status"] == "done":
        return f"{agent}: {verb} done on node {node}"
    if got["status"] == "failed":
        return f"{agent}: {verb} refused on node {node}: {got['error']}"
    if verb == "kill":
        return (f"{agent}: kill pending on node {node} (node {state}); its daemon applies it at once, "
                "or when it next reads the store")
    return f"{agent}: {verb} pending on node {node} (node {state}); its daemon applies it when it next reads the store"


def check(got: dict[str, Any]) -> dict[str, Any]:
    """Raise the refusal of a failed request (a one-line error, non-zero exit)."""
    if got["status"] == "failed":
        raise TetherError(message(got))
    return got


def route(control: Any, verb: str, agent: str, reason: str | None = None) -> dict[str, Any] | None:
    """For the API: None when ``agent`` is this daemon's (or the store is no fleet store), else the
    request sent to its node. An agent known nowhere is a 404."""
    if not control.place.listening or agent in control.agent_names():
        return None
    node = node_of(control.store, agent, control.node)
    if node is None:
        raise NotFound(f"no agent named {agent!r}")
    return send(control.store, agent, node, verb, reason)
