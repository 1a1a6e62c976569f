"""``tether reload --node NAME`` / ``--all-nodes``: each node keeps its own runbook; any host may ask a
node's daemon to re-read it. Sent as a ``reload`` NOTIFY (payload: the node, or empty for all); the node
records ``runbook.reloaded`` or ``runbook.reload_failed``, which the asker waits for. A node that is not
up is not asked: its daemon reads its runbook when it starts."""

from __future__ import annotations

import time
from typing import Any

from tether.errors import NotFound
from tether.fleet import nodes

WAIT = 30.0


def ask(store: Any, node: str | None, wait: float = WAIT) -> list[dict[str, Any]]:
    """Ask ``node`` (None: every node) to reload; one outcome per node."""
    rows = nodes.nodes(store)
    if node is not None:
        rows = [r for r in rows if r["name"] == node]
        if not rows:
            known = ", ".join(r["name"] for r in nodes.nodes(store)) or "none"
            raise NotFound(f"no node named {node!r} in this fleet (nodes: {known})")
    up = [r["name"] for r in rows if r["state"] == "up"]
    out = {r["name"]: {"node": r["name"], "status": "skipped", "node_state": r["state"], "restarted": [],
                       "error": None} for r in rows}
    if not up:
        return list(out.values())
    last = store.emit("runbook.reload_requested", None, nodes=up)
    store.notify("reload", "" if node is None else node)
    waiting = set(up)
    deadline = time.monotonic() + wait
    while waiting and time.monotonic() < deadline:
        for e in store.events(after=last, kinds=("runbook.reloaded", "runbook.reload_failed")):
            last = e.id
            if e.node in waiting:
                ok = e.kind == "runbook.reloaded"
                out[e.node].update(status="done" if ok else "failed", restarted=e.data.get("restarted", []),
                                   error=None if ok else e.data.get("error"))
                waiting.discard(e.node)
        if waiting:
            time.sleep(0.05)
    for name in waiting:
        out[name].update(status="no answer", waited_s=wait)
    return list(out.values())


def message(got: dict[str, Any]) -> str:
    node, status = got["node"], got["status"]
    if status == "done":
        return f"node {node}: reloaded; restarted: {', '.join(got['restarted']) or 'none'}"
    if status == "failed":
        first = str(got["error"] or "").splitlines()[:1]
        return f"node {node}: reload rejected, its old runbook stays: {first[0] if first else 'invalid runbook'}"
    if status == "skipped":
        return f"node {node}: not asked (node {got['node_state']}); its daemon reads its runbook when it starts"
    return f"node {node}: no answer within {got.get('waited_s', WAIT):.0f}s; see its daemon's log"
