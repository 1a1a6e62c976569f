"""The run-state machine of one supervised agent (daemon/runstate.py): the loop's next step and what an
ended run leads to, as pure functions (the supervisor's own behaviour with real processes is in
test_supervisor_restarts.py, test_daemon_kill.py and test_integrations_supervised.py)."""

from __future__ import annotations

import pytest

from tether.daemon.runstate import EXIT_RULES, Exit, RunState, Step, after_exit


def _exit(**kw: object) -> Exit:
    facts: dict[str, object] = dict(agent="a", code=1, recorded=False, kill=None, killed_recorded=False,
                                    rebooted=False, outcome=None, prompt=False, policy="always")
    facts.update(kw)
    return Exit(**facts)  # type: ignore[arg-type]


def test_step_follows_the_state_in_order() -> None:
    run = RunState()
    assert run.step(True, lambda: "stopped", 0.0) == (Step.WATCH, 0.0)  # a run that is up is watched first
    assert run.step(False, lambda: None, 0.0) == (Step.START, 0.0)
    assert run.step(False, lambda: "killed", 0.0) == (Step.WAIT, 0.0)
    run.due = 5.0
    assert run.step(False, lambda: None, 2.0) == (Step.BACKOFF, 3.0)
    run.restart_now = True  # an operator's restart does not wait for the backoff
    assert run.step(False, lambda: None, 2.0) == (Step.START, 0.0)
    run.stopping = True
    assert run.step(False, lambda: None, 2.0) == (Step.END, 0.0)


def test_blocked_reasons_in_order() -> None:
    run = RunState(desired="stopped", held="crashloop")
    assert run.blocked(True, lambda: "approval") == "stopped"
    run.desired = "running"
    assert run.blocked(True, lambda: "approval") == "crashloop"
    run.restart_now = True  # a restart lifts a hold, not a kill
    assert run.blocked(True, None) == "killed"
    assert run.blocked(False, lambda: "waiting for approval") == "waiting for approval"
    assert run.blocked(False, None) is None
    run.idle = True  # a claude-code/codex start that found nothing to do: idle once, then look again
    assert run.blocked(False, lambda: None) == "idle"
    assert run.blocked(False, lambda: None) is None


def test_terminate() -> None:
    run = RunState()
    assert not run.terminate(False)
    assert run.terminate(True)  # the kill file
    run.restart_now = True
    assert run.terminate(False)
    run = RunState(desired="stopped")
    assert run.terminate(False)
    run = RunState(stopping=True)
    assert not run.terminate(True)  # the daemon stops and leaves its agent for the next daemon
    run.stop_agent = True
    assert run.terminate(False)


@pytest.mark.parametrize(
    ("run", "facts", "rule", "state", "restart", "hold", "incident"),
    [
        (RunState(stopping=True, stop_agent=True, stop_reason="bye"), {}, "daemon-stops-agents",
         ("stopped", "bye"), None, False, False),
        (RunState(), {"kill": "kill switch: x"}, "kill-switch", ("killed", "kill switch: x"), None, False, False),
        (RunState(), {"kill": "k", "killed_recorded": True}, "kill-switch", None, None, False, False),
        (RunState(desired="stopped"), {"code": 0}, "stopped-by-human", ("stopped", "exited 0"), None, False,
         False),
        (RunState(restart_now=True), {}, "restart-asked-or-held", None, None, False, False),
        (RunState(held="crashloop"), {}, "restart-asked-or-held", None, None, False, False),
        (RunState(), {"code": None, "rebooted": True, "policy": "never"}, "host-rebooted", None, None, False,
         False),
        (RunState(), {"outcome": "deferred", "policy": "never"}, "waits-or-next-task", None, "now", False, False),
        (RunState(), {"outcome": "done", "code": 0}, "waits-or-next-task", None, "now", False, False),
        (RunState(), {"outcome": "done", "prompt": True, "code": 0, "policy": "on-failure"}, "policy",
         ("idle", "done: its prompt ran to the end; `tether start a` runs it again"), None, True, False),
        (RunState(), {"code": 3, "policy": "never"}, "policy", ("stopped", "exited 3; restart policy never"),
         None, True, True),
        (RunState(), {"code": 0, "policy": "on-failure"}, "policy", ("stopped", "exited 0; restart policy on-failure"),
         None, True, False),
        (RunState(), {"code": 1, "policy": "on-failure"}, "crash", None, "backoff", False, False),
    ],
)
def test_each_exit_rule(run: RunState, facts: dict[str, object], rule: str, state: tuple[str, str] | None,
                        restart: str | None, hold: bool, incident: bool) -> None:
    out = after_exit(run, _exit(**facts))
    assert (out.rule, out.state, out.restart, out.hold, out.incident) == (rule, state, restart, hold, incident)


def test_the_rules_are_tried_in_order_and_every_one_is_reachable() -> None:
    # the daemon stopping with its agents wins over a kill file, which wins over a human's stop
    run = RunState(desired="stopped", stopping=True, stop_agent=True)
    assert after_exit(run, _exit(kill="k")).rule == "daemon-stops-agents"
    assert after_exit(RunState(desired="stopped"), _exit(kill="k")).rule == "kill-switch"
    # a reboot restarts even a never-restart agent; a policy refusal is not reached
    assert after_exit(RunState(), _exit(rebooted=True, policy="never")).rule == "host-rebooted"
    names = [r.name for r in EXIT_RULES]
    assert len(names) == len(set(names)) and names[-1] == "crash"


def test_an_exit_recorded_before_records_no_state_again() -> None:
    out = after_exit(RunState(), _exit(recorded=True, code=3, policy="never"))
    assert out.rule == "policy" and out.state is None and out.hold and out.incident
