"""``waiting_for_approval`` for agents that wait inside a call (the SDK's ``check(wait=...)``, ``ask``,
``@gated``, ``tether ask``): the boundary records the state when the wait begins and ``running`` again
when a human decides. A wait that runs out leaves it (the agent usually asks again); the daemon's
monitor lifts it once the agent has no pending approval left (``lift_settled``). While waiting, an agent
is neither stale nor stuck: it waits on a human, not on itself. claude-code and codex runs record this
state themselves (their process ends while held) and are left alone here."""

from __future__ import annotations

from typing import Any

STATE = "waiting_for_approval"
#: The states a wait may start from (a blocked, stale, stuck or killed agent keeps its state).
FROM = frozenset({"starting", "running", "idle"})
#: Agent kinds whose runs record the state themselves (``tether.integrations.agents``).
SELF_RECORDED = frozenset({"claude-code", "codex"})


def done(store: Any, agent: str, why: str) -> None:
    """The wait ended with a decision: ``running`` again, if nothing else changed the state meanwhile."""
    row = store.agent(agent)
    if row is not None and row["state"] == STATE and (row.get("info") or {}).get("kind") not in SELF_RECORDED:
        store.emit("agent.state", agent, state="running", reason=why)


def lift_settled(store: Any, rows: list[dict[str, Any]]) -> None:
    """For each waiting agent (of ``rows``) with no pending approval left: ``running`` again."""
    for row in rows:
        if row["state"] != STATE or (row.get("info") or {}).get("kind") in SELF_RECORDED:
            continue
        if not store.approvals("pending", agent=row["name"]):
            store.emit("agent.state", row["name"], state="running", reason="no approval pending any more")
