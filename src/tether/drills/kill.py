"""The kill drill: SIGKILL the agent's own process, as a crash would (nothing else of its run is touched,
and nothing marks it as a kill by tether). Pass when the daemon records the exit and either restarts the
agent within its backoff (policy ``always``/``on-failure``) or, with policy ``never``, reports it stopped
and tells its owner (an incident, and a notification where the notifier runs). A notification that was
queued but not delivered (its ``notify.failed``, or no attempt ended in time) is said as such, and the drill
is ``degraded``: "owner notified" means its ``notify.sent``."""

from __future__ import annotations

import signal
import time

from tether import process
from tether.daemon.restarts import should_restart
from tether.drills.base import Host, Result, Trace, expected_restart_delay, wait_until
from tether.errors import TetherError
from tether.killswitch import engaged
from tether.process import platform
from tether.store import Event

#: How long the daemon may take to notice the crash and to act on it, beyond the backoff.
MARGIN = 10.0
#: Never wait longer than this for a restart (a backoff of hours is reported, not waited for).
MAX_WAIT = 120.0
#: States that mean no restart is coming.
HALTS = ("crashloop", "killed", "stopped", "blocked")
SIGKILL_STATUS = 128 + signal.SIGKILL


def run(host: Host, agent: str) -> Result:
    t = Trace(agent, "kill")
    spec = host.spec(agent)
    if host.daemon() is None:
        return t.failed(f"no daemon runs for {host.state.root}: nothing would restart {agent} (`tether up`)")
    if _running(host, agent, 0) is None:
        row = host.store.agent(agent) or {}
        if row.get("desired") in ("stopped", "killed"):
            return t.skipped(f"{agent} is {row['desired']} by an operator: nothing to crash (`tether start {agent}`)")
        first_wait = min(expected_restart_delay(host.state.agent_dir(agent), spec, None) + MARGIN, 30.0)
        if _running(host, agent, first_wait) is None:  # it may be between two runs
            row = host.store.agent(agent) or row
            return t.failed(f"{agent} should run but does not (state {row.get('state')}: {row.get('reason') or '-'})")

    crashed = _crash(host, agent)
    if isinstance(crashed, str):
        return t.failed(crashed)
    exited, pid, killed_at, expected = crashed
    t.cite(exited.id)
    t.mark("exit_recorded_s", exited.ts - killed_at)
    code = exited.data.get("code")
    policy = spec.restart.policy
    if should_restart(policy, code):
        return _restarted(host, t, agent, policy, exited, pid, killed_at, expected)
    return _stopped(host, t, agent, policy, exited, pid)


def _running(host: Host, agent: str, timeout: float) -> process.KeeperHandle | None:
    """The agent's live run, waiting up to ``timeout`` s for one (it may be between restarts)."""

    def live() -> process.KeeperHandle | None:
        handle = process.adopt(host.run_dir(agent))
        if handle is not None and handle.agent_alive():
            return handle
        return None

    return wait_until(live, timeout, 0.1)


def _crash(host: Host, agent: str) -> tuple[Event, int, float, float] | str:
    """SIGKILL the agent's process and wait for its exit to be recorded: (the ``agent.exited`` event, the
    pid, when, the longest backoff to expect), or why not. A run that ends on its own just before the
    signal lands (a flaky agent) is let go and the next one crashed instead."""
    spec = host.spec(agent)
    for _ in range(3):
        handle = _running(host, agent, 30.0)
        ident = None if handle is None else handle.agent_id(2.0)
        if handle is None or ident is None:
            return f"{agent} stopped running before the drill could crash it"
        info = handle.info
        uptime = None if info is None else max(0.0, time.time() - info.started_at)
        expected = expected_restart_delay(host.state.agent_dir(agent), spec, uptime)
        instance = handle.instance
        cursor = host.cursor()
        killed_at = time.time()
        if not platform.send_signal(ident.pid, signal.SIGKILL, ident.alive):
            time.sleep(0.1)
            continue

        def same_run(e: Event, i: str | None = instance) -> bool:
            return e.data.get("instance") == i

        exited = host.wait_event(cursor, agent, ["agent.exited"], MARGIN, match=same_run)
        if exited is None:
            return (f"SIGKILLed pid {ident.pid}; no exit was recorded within {MARGIN:g}s: the daemon did not "
                    "notice the crash")
        if exited.data.get("code") == SIGKILL_STATUS:
            return exited, ident.pid, killed_at, expected
        time.sleep(0.1)  # it ended by itself first: crash its next run
    return f"could not crash {agent}: three runs in a row ended on their own before the signal landed"


def _restarted(
    host: Host, t: Trace, agent: str, policy: str, exited: Event, pid: int, killed_at: float, expected: float
) -> Result:
    budget = min(expected + MARGIN, MAX_WAIT)
    left = budget - max(0.0, time.time() - exited.ts)
    got = host.wait_event(
        exited.id, agent, ["agent.started", "agent.state"], left,
        match=lambda e: e.kind == "agent.started" or e.data.get("state") in HALTS,
    )
    if got is None:
        return t.failed(
            f"SIGKILLed pid {pid}; the crash was recorded (exit {exited.data.get('code')}) but {agent} was not "
            f"restarted within {budget:.1f}s although its restart policy ({policy}) says it should"
            f"{_why_not(host, agent)}"
        )
    t.cite(got.id)
    if got.kind == "agent.state":
        return t.failed(
            f"SIGKILLed pid {pid}; {agent} was not restarted but went {got.data.get('state')} "
            f"({got.data.get('reason')}) although its restart policy ({policy}) says restart"
        )
    restarted = t.mark("restarted_s", got.ts - killed_at)
    handle = _running(host, agent, 5.0)
    if handle is None or handle.instance == exited.data.get("instance"):
        return t.failed(f"SIGKILLed pid {pid}; a restart was recorded but no new run of {agent} is alive")
    new_pid = got.data.get("pid") or handle.agent_pid(1.0)
    return t.passed(
        f"SIGKILLed pid {pid}; the crash was recorded in {t.timings['exit_recorded_s']:.2f}s (exit "
        f"{exited.data.get('code')}) and {agent} restarted as pid {new_pid} {restarted:.2f}s after the kill "
        f"(policy {policy}, backoff up to {expected:.2f}s)"
    )


def _stopped(host: Host, t: Trace, agent: str, policy: str, exited: Event, pid: int) -> Result:
    """Policy ``never``: the agent stays down, so it must be reported stopped and its owner told."""
    cursor = exited.id - 1
    problems = []
    stopped = host.wait_event(cursor, agent, ["agent.state"], MARGIN, match=lambda e: e.data.get("state") == "stopped")
    if stopped is None:
        problems.append("it was not reported stopped")
    else:
        t.cite(stopped.id)
    incident = host.wait_event(cursor, agent, ["incident.opened"], MARGIN)
    told, reached = "", True  # reached: no notification of the owner's went undelivered
    if incident is None:
        problems.append("no incident was opened for it, so its owner is not told")
    else:
        t.cite(incident.id)
        if host.notifier_runs():
            note = host.owner_told(agent, str(incident.data.get("kind")), cursor, MARGIN)
            if note is None:
                problems.append(f"incident {incident.id} was opened but no notification was queued for its owner")
            else:
                t.cite(note.id)
                reached, words = host.tell_owner(t, note, MARGIN)
                told = f"; {words}"
        else:
            told = f"; incident {incident.id} opened (no notifier records notify.* events on this host)"
    _clean_up(host, agent, cursor)
    if problems:
        return t.failed(f"SIGKILLed pid {pid} (policy {policy}: stays down); " + "; ".join(problems))
    what = f"SIGKILLed pid {pid}; {agent} reported stopped (policy {policy}){told}; started again after"
    return t.passed(what) if reached else t.degraded(what)


def _clean_up(host: Host, agent: str, cursor: int) -> None:
    """Undo what the drill caused: start the agent the drill left stopped, resolve the incidents it opened."""
    try:
        host.api("POST", f"/v1/agents/{agent}/start")
    except TetherError:
        pass
    opened = {e.id for e in host.events(cursor, agent, ["incident.opened"])}
    for inc in host.store.incidents("open", agent):
        if inc["id"] in opened:
            host.emit("incident.resolved", agent, incident_id=inc["id"], kind=inc["kind"],
                      why="tether drill: the agent was crashed on purpose and started again")


def _why_not(host: Host, agent: str) -> str:
    kill = engaged(host.state, agent)
    if kill is not None:
        return f" (the kill switch is engaged: {kill})"
    row = host.store.agent(agent) or {}
    if row.get("desired") not in (None, "running"):
        return f" (it is {row['desired']} by an operator)"
    if row.get("state"):
        return f" (it is {row['state']}: {row.get('reason') or '-'})"
    return ""
