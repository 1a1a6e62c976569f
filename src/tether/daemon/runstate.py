"""One agent's run state as an explicit machine: what its supervisor does next, and what an ended run
leads to, each said once as a pure function of the facts (the clock passed in, as in ``restarts.py``).

The supervisor owns one ``RunState`` (under its lock) and one thread; other threads only change what is
wanted (``desired``, ``restart_now``, ``stopping``) and wake it. Each turn of its loop asks ``step()``
what to do, and each run that ends is judged by ``after_exit()``: the first of ``EXIT_RULES`` that holds
says what to record and whether, and when, the agent starts again.

    step():  a run is up ──────────────────────────────▶ WATCH (until it ends or a request comes)
             stopping ─────────────────────────────────▶ END
             blocked (stopped, killed, held, waiting) ─▶ WAIT (until a request comes)
             backoff not over, no restart asked ───────▶ BACKOFF (until it is)
             otherwise ────────────────────────────────▶ START
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from tether.daemon.restarts import should_restart


class Step(enum.Enum):
    WATCH = "watch"  # a run is up: wait for it to end or for a request
    END = "end"  # supervision ends (the daemon stops)
    WAIT = "wait"  # no start may happen now: wait for a request
    BACKOFF = "backoff"  # a start is due later: wait until then
    START = "start"  # start a run now


@dataclass
class RunState:
    """What the supervisor knows and wants of its agent's runs. ``due`` is monotonic."""

    desired: str = "running"  # what a human asked for: running | stopped | killed (also in the store)
    held: str | None = None  # crashloop | exited: no start until a human starts it
    due: float = 0.0  # no start before this (backoff)
    restart_now: bool = False  # an operator's restart, or a changed definition: start at once
    idle: bool = False  # claude-code/codex: the last start found nothing to do (look again next turn)
    stopping: bool = False  # the daemon stops supervising
    stop_agent: bool = False  # ... and stops the agent too (else a next daemon adopts it)
    stop_reason: str = "the daemon stopped"

    def release(self) -> None:
        """A human starts or restarts the agent: no hold, no backoff."""
        self.held = None
        self.due = 0.0

    def blocked(self, killed: bool, waiting: Callable[[], str | None] | None) -> str | None:
        """Why no start may happen now, or None. ``waiting`` (claude-code/codex only) says what its
        next run waits on: a human's decision, its queue."""
        if self.desired != "running":
            return self.desired
        if self.held is not None and not self.restart_now:
            return self.held
        if killed:
            return "killed"
        if waiting is not None:
            why = waiting()
            if why is not None:
                return why
            if self.idle:
                self.idle = False  # look at the queue again on the next turn
                return "idle"
        return None

    def terminate(self, killed: bool) -> bool:
        """Whether the run that is up must be stopped now."""
        if self.stopping:
            return self.stop_agent
        return self.desired != "running" or self.restart_now or killed

    def step(self, running: bool, blocked: Callable[[], str | None], now: float) -> tuple[Step, float]:
        """What the loop does next, and for BACKOFF how long it waits."""
        if running:
            return Step.WATCH, 0.0
        if self.stopping:
            return Step.END, 0.0
        if blocked() is not None:
            return Step.WAIT, 0.0
        if self.due > now and not self.restart_now:
            return Step.BACKOFF, self.due - now
        return Step.START, 0.0


@dataclass(frozen=True)
class Exit:
    """The facts about one ended run that decide what comes next."""

    agent: str
    code: int | None
    recorded: bool  # its exit was recorded before (a daemon restart saw it end): record nothing again
    kill: str | None  # the kill switch is engaged: why (None: it is not)
    killed_recorded: bool  # ... and the agent's row says killed already
    rebooted: bool  # its run was lost with the host (a previous boot's)
    outcome: str | None  # claude-code/codex: "deferred" (a human decides), "done", "failed"; else None
    prompt: bool  # claude-code/codex: it has a prompt of its own (not queue-driven)
    policy: str  # its restart policy


@dataclass(frozen=True)
class AfterExit:
    """What an ended run leads to."""

    rule: str = ""  # the rule that decided (its name in EXIT_RULES: tests and the docs name it)
    state: tuple[str, str] | None = None  # the agent's state to record (with the reason)
    restart: str | None = None  # "now": at once, not counted as a crash; "backoff": after the backoff
    hold: bool = False  # no restart until a human starts it ("exited")
    incident: bool = False  # a human must know: it failed and nothing brings it back


@dataclass(frozen=True)
class Rule:
    name: str
    when: Callable[[RunState, Exit], bool]
    then: Callable[[RunState, Exit], AfterExit]


def _policy_says_no(run: RunState, e: Exit) -> AfterExit:
    if e.outcome == "done":  # claude-code/codex: its prompt ran to the end; nothing is wrong
        return AfterExit(state=("idle", f"done: its prompt ran to the end; `tether start {e.agent}` runs it again"),
                         hold=True)
    return AfterExit(state=("stopped", f"exited {e.code}; restart policy {e.policy}"), hold=True,
                     incident=e.code != 0)


#: The first rule that holds decides. Those that leave ``restart`` None leave the next start to
#: ``RunState.step`` (a stop, a kill, a hold or an asked restart is what the state already says).
EXIT_RULES: tuple[Rule, ...] = (
    Rule("daemon-stops-agents", lambda r, e: r.stopping and r.stop_agent,
         lambda r, e: AfterExit(state=("stopped", r.stop_reason))),
    Rule("kill-switch", lambda r, e: e.kill is not None,
         lambda r, e: AfterExit(state=None if e.killed_recorded else ("killed", e.kill or ""))),
    Rule("stopped-by-human", lambda r, e: r.desired != "running",
         lambda r, e: AfterExit(state=(r.desired, f"exited {e.code}"))),
    Rule("restart-asked-or-held", lambda r, e: r.restart_now or r.held is not None,
         lambda r, e: AfterExit()),
    Rule("host-rebooted", lambda r, e: e.rebooted,  # the host went down under it: start it again, whatever its policy
         lambda r, e: AfterExit()),
    # held for a human (resumed once decided), or a queue-driven agent ready for its next task: neither is
    # a crash, so no backoff and no crash-loop count
    Rule("waits-or-next-task", lambda r, e: e.outcome == "deferred" or (e.outcome == "done" and not e.prompt),
         lambda r, e: AfterExit(restart="now")),
    Rule("policy", lambda r, e: not should_restart(e.policy, e.code), _policy_says_no),
    Rule("crash", lambda r, e: True, lambda r, e: AfterExit(restart="backoff")),
)


def after_exit(run: RunState, e: Exit) -> AfterExit:
    """What the ended run leads to: the first of ``EXIT_RULES`` that holds. A run whose exit was recorded
    before records no state again."""
    for rule in EXIT_RULES:
        if rule.when(run, e):
            out = rule.then(run, e)
            return replace(out, rule=rule.name, state=None if e.recorded else out.state)
    raise AssertionError("the last rule always holds")  # pragma: no cover


def exit_data(code: int | None, uptime: float, instance: str | None, adopted: bool,
              killed_by: str | None) -> dict[str, Any]:
    """The ``agent.exited`` event's data."""
    data: dict[str, Any] = {"code": code, "uptime_s": round(uptime, 3), "instance": instance}
    if adopted:
        data["adopted"] = True
    if code is None:
        data["lost"] = True  # its keeper was killed, or the host rebooted
    if killed_by:
        data["killed_by"] = killed_by
    return data
