"""``waiting_for_approval`` for agents that wait inside a call (the SDK's ``check(wait=...)``, ``ask``,
``@gated``, ``tether ask``): the boundary records the state when the wait begins and ``running`` again
when a human decides. A wait that runs out leaves it (the agent usually asks again); the daemon's
monitor lifts it once the agent has no pending approval left (``lift_settled``). While waiting, an agent
is neither stale nor stuck: it waits on a human, not on itself. claude-code and codex runs record this
state themselves (their process ends while held) and are left alone here."""

from __future__ import annotations

import time
from typing import Any

from tether.heartbeat import LIVE_STATES
from tether.lifecycle import change

STATE = "waiting_for_approval"
#: Agent kinds whose runs record the state themselves (``tether.integrations.agents``).
SELF_RECORDED = frozenset({"claude-code", "codex"})


def _ours(row: dict[str, Any]) -> bool:
    return (row.get("info") or {}).get("kind") not in SELF_RECORDED


def begin(store: Any, agent: str, approval: dict[str, Any]) -> None:
    """A wait on ``approval`` begins: from a live state only (a blocked, stale, stuck or killed agent keeps
    its state)."""
    row = store.agent(agent)
    if row is not None and _ours(row) and row["state"] in LIVE_STATES:
        store.emit("agent.state", agent, **change(
            STATE, f"waiting for approval {approval['id']}: {approval['detail'] or approval['action']}"))


def done(store: Any, agent: str, why: str) -> None:
    """The wait ended with a decision: ``running`` again, if nothing else changed the state meanwhile."""
    row = store.agent(agent)
    if row is not None and _ours(row) and row["state"] == STATE:
        _resume(store, agent, why)


def _resume(store: Any, agent: str, why: str) -> None:
    """``running`` again, its heartbeat counted from now: the time it waited on a human is no silence."""
    store.beat(agent, time.time())
    store.emit("agent.state", agent, **change("running", None, note=why))  # WHY: nothing holds it now


def lift_settled(store: Any, rows: list[dict[str, Any]]) -> list[str]:
    """For each waiting agent (of ``rows``) with no pending approval left: ``running`` again. Returns the
    agents lifted (their rows in ``rows`` are out of date)."""
    waiting = [row for row in rows if row["state"] == STATE and _ours(row)]
    if not waiting:
        return []
    pending = {a["agent"] for a in store.approvals("pending")}
    lifted = [row["name"] for row in waiting if row["name"] not in pending]
    for name in lifted:
        _resume(store, name, "no approval pending any more")
    return lifted
