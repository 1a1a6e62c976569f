"""An agent's recorded state and the changes between them: which change is legal, said once.

Every ``agent.state`` event is made by ``change`` (a state tether knows, or ``ValueError``: a bug), from
whichever module decides it (the supervisor, the monitor, the kill switch, a wait on a human...), and the
store applies one to the agent's row only when ``legal`` allows it from the row's state
(``tether.store.projections``): a change that is not legal stays in the event log as what was asked, and
the row keeps its state. That closes the races between writers that read the row, decide, then write:
the monitor judging a row stale after the supervisor stopped it, a run ending ``waiting_for_approval``
after the kill switch. Stdlib only (the kill switch uses it).

The states (``vocabulary.AGENT_STATES``):
- live: ``starting``, ``running``, ``idle``, ``waiting_for_approval``: a run that goes on, or may;
- flagged: ``stale``, ``stuck``: set and lifted by the monitor from the heartbeat facts;
- ended: ``blocked``, ``crashloop``, ``stopped``, ``killed``: no run until the supervisor starts one
  (``agent.started``, not an ``agent.state`` change, makes an agent ``running`` again).
"""

from __future__ import annotations

from typing import Any

from tether.vocabulary import AGENT_STATES

STATES = frozenset(AGENT_STATES)
LIVE = frozenset({"starting", "running", "idle", "waiting_for_approval"})
FLAGGED = frozenset({"stale", "stuck"})
ENDED = frozenset({"blocked", "crashloop", "stopped", "killed"})

#: For each state, the states an ``agent.state`` event may change an agent from (a state may always be
#: recorded again, with a new reason).
SOURCES: dict[str, frozenset[str]] = {
    # the monitor's flags: only a run that goes on can fall silent or stop making progress
    "stale": frozenset({"starting", "running", "idle", "stuck"}),
    "stuck": frozenset({"starting", "running", "idle", "stale"}),
    # running again without a new start: the monitor lifting a flag, or a wait on a human that ended
    "running": FLAGGED | {"waiting_for_approval"},
    # a run waits on a human (held by its hook, or asking through the SDK): a run that goes on
    "waiting_for_approval": (LIVE | FLAGGED) - {"waiting_for_approval"},
    # what the supervisor and the operators decide: from anything
    "starting": STATES,
    "idle": STATES,
    "blocked": STATES,
    "crashloop": STATES,
    "stopped": STATES,
    "killed": STATES,
}
#: While an agent's desired state is ``killed``, its state changes only to these: only a human lifts a
#: kill (``tether resume`` records ``desired: running`` first).
WHILE_KILLED = frozenset({"killed", "stopped"})


def change(state: str, reason: str | None = None, **extra: Any) -> dict[str, Any]:
    """The data of an ``agent.state`` event: ``state`` (one of ``STATES``), why, and any more fields
    (``note``, ``record_id``)."""
    if state not in STATES:
        raise ValueError(f"agent state {state!r} is not one of {', '.join(AGENT_STATES)}")
    return {"state": state, "reason": reason, **extra}


def legal(current: str | None, state: str, desired: str | None = None) -> bool:
    """Whether an agent whose row says ``current`` (None: no row yet) and ``desired`` may change to
    ``state``."""
    if state not in STATES:
        return False
    if current is None or current == state:
        return True
    if desired == "killed" and state not in WHILE_KILLED:
        return False
    return current in SOURCES[state] or current not in STATES  # a state from before these rules: any change
