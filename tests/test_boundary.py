"""The gatekeeper in process, on a real SQLite store and a real workspace: gates (a real git repo and a
``python -c`` test command), fingerprints and grants, pushed waits, expiry and escalation; and
``tether explain`` as a real process."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from helpers import one_line_error, run_cli
from test_policy import RUNBOOK, write_runbook
from tether.approvals import Approvals, fingerprint
from tether.boundary import Boundary, Gatekeeper, Outcome, Request
from tether.errors import UsageError
from tether.runbook import LoadedRunbook
from tether.store import Store, open_store

GATED = RUNBOOK + """\
  gated:
PEOPLE
    approvals: {timeout: 1h, escalate_after: 1h}
    gates:
      pr.open: {command: [PYTHON, -c, "import check; check.main()"], timeout: 20s}
  windowed:
PEOPLE
    approvals: {retry_window: 400ms}
  hasty:
PEOPLE
    approvals: {timeout: 300ms, escalate_after: 100ms}
  slow-gate:
PEOPLE
    gates:
      pr.open: {command: [PYTHON, -c, "import time; time.sleep(30)"], timeout: 300ms}
  missing-gate:
PEOPLE
    gates:
      pr.open: {command: [/nonexistent/run-tests], timeout: 5s}
""".replace("PYTHON", json.dumps(sys.executable))

CHECK_PY = """\
import sys

def main():
    import calc
    print("collected 2 items")
    if calc.add(2, 2) != 4:
        print("FAILED test_add: assert calc.add(2, 2) == 4, got", calc.add(2, 2))
        sys.exit(1)
    print("2 passed")
"""


def git(cwd: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.invalid", *args],
        cwd=cwd, check=True, capture_output=True,
    )


@pytest.fixture
def host(tmp_path: Path) -> Iterator[tuple[LoadedRunbook, Store, Gatekeeper]]:
    loaded = write_runbook(tmp_path / "host", GATED)
    store = open_store(loaded.store_url)
    gk = Gatekeeper(Boundary(loaded), Approvals(store))
    try:
        yield loaded, store, gk
    finally:
        store.close()


def kinds(store: Store, agent: str | None = None) -> list[str]:
    return [e.kind for e in store.events(agent, limit=10_000)]


# --- gates ------------------------------------------------------------------------------------


def make_repo(cwd: Path, add_result: str) -> None:
    (cwd / "check.py").write_text(CHECK_PY)
    (cwd / "calc.py").write_text(f"def add(a, b):\n    return {add_result}\n")
    git(cwd, "init", "-q", "-b", "feature")
    git(cwd, "add", ".")
    git(cwd, "commit", "-q", "-m", "calc")


def test_failing_gate_denies_with_the_output_tail(host: tuple[LoadedRunbook, Store, Gatekeeper]) -> None:
    loaded, store, gk = host
    make_repo(loaded.agent_cwd("gated"), "a - b")
    got = gk.check("gated", Request(command="gh pr create --fill"))
    assert got.decision == "deny"
    assert "gate for pr.open failed" in got.reason and "exited 1" in got.reason
    assert "FAILED test_add" in got.reason  # the tail of the test output
    assert store.approvals(agent="gated") == []  # nobody is asked to approve a PR whose tests fail
    ran = [e for e in store.events("gated", limit=100) if e.kind == "gate.ran"]
    assert ran and ran[-1].data["exit_code"] == 1
    verdicts = [e for e in store.events("gated", limit=100) if e.kind == "verdict"]
    assert verdicts[-1].data["decision"] == "deny" and "FAILED test_add" in verdicts[-1].data["reason"]


def test_passing_gate_proceeds_to_the_verdict(host: tuple[LoadedRunbook, Store, Gatekeeper]) -> None:
    loaded, store, gk = host
    make_repo(loaded.agent_cwd("gated"), "a + b")
    got = gk.check("gated", Request(command="gh pr create --fill"))
    assert (got.decision, got.verdict) == ("pending", "ask")
    assert got.approval_id is not None
    [row] = store.approvals("pending", "gated")
    assert row["action"] == "pr.open"
    assert [e.data["exit_code"] for e in store.events("gated", limit=100) if e.kind == "gate.ran"] == [0]
    # an action without a gate is not gated by it
    assert gk.check("gated", Request(command="git status")).decision == "allow"


def test_gate_timeout_and_missing_command_deny(host: tuple[LoadedRunbook, Store, Gatekeeper]) -> None:
    _, _, gk = host
    started = time.monotonic()
    got = gk.check("slow-gate", Request(command="gh pr create --fill"))
    assert got.decision == "deny" and "timed out after 0.3s" in got.reason
    assert time.monotonic() - started < 10
    got = gk.check("missing-gate", Request(command="gh pr create --fill"))
    assert got.decision == "deny" and "could not run" in got.reason


# --- fingerprints and grants ------------------------------------------------------------------


def test_fingerprint_covers_action_resources_cwd_and_script(tmp_path: Path) -> None:
    script = tmp_path / "deploy.sh"
    script.write_text("echo v1\n")
    from tether.classify import Resource

    res = (Resource("script", str(script), "exec"),)
    base = fingerprint("a", ["unknown"], res, str(tmp_path), "bash deploy.sh")
    assert base == fingerprint("a", ["unknown"], res, str(tmp_path), "bash deploy.sh")
    assert base != fingerprint("b", ["unknown"], res, str(tmp_path), "bash deploy.sh")
    assert base != fingerprint("a", ["unknown"], res, "/elsewhere", "bash deploy.sh")
    assert base != fingerprint("a", ["unknown"], (), str(tmp_path), "bash deploy.sh")
    assert base != fingerprint("a", ["unknown"], res, str(tmp_path), "bash deploy.sh --now")
    script.write_text("echo v2\n")
    assert base != fingerprint("a", ["unknown"], res, str(tmp_path), "bash deploy.sh")


def test_identical_retry_goes_through_once(host: tuple[LoadedRunbook, Store, Gatekeeper]) -> None:
    _, store, gk = host
    push = Request(command="git push --force origin main")
    first = gk.check("gated", push)
    assert first.decision == "pending"
    again = gk.check("gated", push)  # asking again while pending makes no second approval
    assert (again.decision, again.approval_id) == ("pending", first.approval_id)
    assert first.approval_id is not None
    gk.approvals.decide(first.approval_id, True, "approver:test")
    retry = gk.check("gated", push)
    assert (retry.decision, retry.approval_id) == ("allow", first.approval_id)
    assert "approved by approver:test" in retry.reason
    # an approval is for once: the grant was used, the next identical action asks again
    later = gk.check("gated", push)
    assert later.decision == "pending" and later.approval_id != first.approval_id
    # and a different action never rode on the grant
    other = gk.check("gated", Request(command="git push --force origin release"))
    assert other.decision == "pending" and other.approval_id not in (first.approval_id, later.approval_id)
    assert store.approval(first.approval_id)["uses"] == 1  # type: ignore[index]


def test_an_unused_grant_lapses_after_the_retry_window(host: tuple[LoadedRunbook, Store, Gatekeeper]) -> None:
    """retry_window (400 ms here) is how long an approved grant waits for its use; then the action asks again."""
    _, _, gk = host
    push = Request(command="git push --force origin main")
    first = gk.check("windowed", push)
    assert first.approval_id is not None
    decided = gk.approvals.decide(first.approval_id, True, "approver:test")
    assert decided["grant_until"] == pytest.approx(decided["decided"] + 0.4)
    wait_for(lambda: time.time() > decided["grant_until"])  # the clock passes the grant's end, unused
    late = gk.check("windowed", push)
    assert late.decision == "pending" and late.approval_id != first.approval_id


def test_grant_window_by_the_clock(host: tuple[LoadedRunbook, Store, Gatekeeper]) -> None:
    _, _, gk = host

    def ask(fp: str, session: str = "session:s1") -> int:
        return int(gk.approvals.request("a", "git.push", fp, classes=["git.push"], detail="x", rule="r", reason="r",
                                        timeout=60, escalate_after=60, session=session, window=10)["id"])

    once = gk.approvals.decide(ask("fp-1"), True, "approver:t")
    t = once["decided"]
    assert gk.approvals.grant_for("a", "fp-2", "session:s1") is None  # another action
    assert gk.approvals.grant_for("b", "fp-1", "session:s1") is None  # another agent
    assert gk.approvals.grant_for("a", "fp-1", "session:s2") is None  # another session
    assert gk.approvals.grant_for("a", "fp-1", "session:s1", now=t + 11) is None  # unused past its window
    assert gk.approvals.grant_for("a", "fp-1", "session:s1", now=t + 9) is not None  # once
    assert gk.approvals.grant_for("a", "fp-1", "session:s1", now=t + 9) is None  # used
    task = gk.approvals.decide(ask("fp-3"), True, "approver:t", scope="task")
    t = task["decided"]
    for later in (t + 9, t + 18, t + 27):  # each use keeps it alive another window
        assert gk.approvals.grant_for("a", "fp-3", "session:s1", now=later) is not None
    assert gk.approvals.grant_for("a", "fp-3", "session:s1", now=t + 38) is None  # idle past the window
    hour = gk.approvals.decide(ask("fp-4"), True, "approver:t", scope="1h")
    t = hour["decided"]
    assert gk.approvals.grant_for("a", "fp-4", "session:s1", now=t + 3599) is not None
    assert gk.approvals.grant_for("a", "fp-4", "session:s1", now=t + 3599) is not None
    assert gk.approvals.grant_for("a", "fp-4", "session:s2", now=t + 10) is None  # still this session's only
    assert gk.approvals.grant_for("a", "fp-4", "session:s1", now=t + 3601) is None


def test_script_edit_asks_again(host: tuple[LoadedRunbook, Store, Gatekeeper]) -> None:
    loaded, _, gk = host
    script = loaded.agent_cwd("a") / "deploy.sh"
    script.write_text("#!/bin/sh\nterraform apply -auto-approve\n")
    run = Request(command="bash deploy.sh")
    first = gk.check("a", run)
    assert first.decision == "pending" and first.approval_id is not None
    gk.approvals.decide(first.approval_id, True, "approver:test", scope="task")  # every identical call
    assert gk.check("a", run).decision == "allow"
    assert gk.check("a", run).decision == "allow"
    script.write_text("#!/bin/sh\nterraform apply -auto-approve\nterraform apply -auto-approve -var env=prod\n")
    edited = gk.check("a", run)
    assert edited.decision == "pending" and edited.approval_id != first.approval_id
    script.write_text("#!/bin/sh\nterraform apply -auto-approve\n")  # put back: the approved content again
    assert gk.check("a", run).decision == "allow"


def test_other_working_directory_asks_again(host: tuple[LoadedRunbook, Store, Gatekeeper]) -> None:
    loaded, _, gk = host
    first = gk.check("a", Request(command="terraform apply"))
    assert first.approval_id is not None
    gk.approvals.decide(first.approval_id, True, "approver:test")
    assert gk.check("a", Request(command="terraform apply")).decision == "allow"
    sub = loaded.agent_cwd("a") / "prod"
    sub.mkdir()
    assert gk.check("a", Request(command="terraform apply", cwd=str(sub))).decision == "pending"


# --- deciding, waiting, expiry, escalation ----------------------------------------------------


def test_denial_needs_a_reason_and_reaches_the_agent(host: tuple[LoadedRunbook, Store, Gatekeeper]) -> None:
    _, store, gk = host
    req = Request(command="terraform apply")
    got = gk.check("gated", req)
    assert got.approval_id is not None
    for empty in (None, "", "   "):
        with pytest.raises(UsageError, match="needs a reason"):
            gk.approvals.decide(got.approval_id, False, "approver:test", empty)
    assert store.approval(got.approval_id)["state"] == "pending"  # type: ignore[index]
    gk.approvals.decide(got.approval_id, False, "approver:test", "not during the freeze")
    with pytest.raises(UsageError, match="already denied"):
        gk.approvals.decide(got.approval_id, True, "approver:test")
    # the agent waiting on it (or asking again) hears the denial; asking again makes a new request
    waited = gk.approvals.wait(got.approval_id, 1)
    assert (waited["state"], waited["note"]) == ("denied", "not during the freeze")


def test_waiting_check_is_woken_by_the_decision(host: tuple[LoadedRunbook, Store, Gatekeeper]) -> None:
    _, _, gk = host
    result: list[Outcome] = []
    returned: list[float] = []

    def agent() -> None:
        result.append(gk.check("gated", Request(command="helm upgrade api ./chart"), wait=30))
        returned.append(time.monotonic())

    t = threading.Thread(target=agent)
    t.start()
    pending = wait_for(lambda: gk.store.approvals("pending", "gated"))
    decided = time.monotonic()
    gk.approvals.decide(pending[0]["id"], True, "approver:test")
    t.join(10)
    assert result and result[0].decision == "allow"
    assert returned[0] - decided < 1.0  # pushed, not found by a poll


def test_expiry_denies_the_waiter_with_a_reason(host: tuple[LoadedRunbook, Store, Gatekeeper]) -> None:
    """Nothing ticks the approvals here (no daemon monitor): the waiter expires its own approval on time."""
    _, store, gk = host
    started = time.monotonic()
    got = gk.check("hasty", Request(command="terraform apply"), wait=20)
    assert time.monotonic() - started < 3
    assert got.decision == "deny"
    assert got.reason.startswith("expired: no decision within the approval timeout")
    assert "approval.expired" in kinds(store, "hasty")
    assert "approval.escalated" in kinds(store, "hasty")  # escalate_after (100 ms) fell first
    assert store.approval(got.approval_id)["state"] == "expired"  # type: ignore[arg-type,index]
    with pytest.raises(UsageError, match="already expired"):
        gk.approvals.decide(got.approval_id, True, "approver:late")  # type: ignore[arg-type]


def test_tick_expires_and_escalates_once(host: tuple[LoadedRunbook, Store, Gatekeeper]) -> None:
    _, store, gk = host
    now = time.time()
    row = gk.approvals.request(
        "a", "git.push", "fp", classes=["git.push"], detail="d", rule="r", reason="r", timeout=100,
        escalate_after=10,
    )
    assert gk.approvals.tick(now) == pytest.approx(now + 10, abs=1)
    assert gk.approvals.tick(now + 11) == pytest.approx(now + 100, abs=1)
    assert gk.approvals.tick(now + 12) == pytest.approx(now + 100, abs=1)
    assert kinds(store, "a").count("approval.escalated") == 1
    threads = [threading.Thread(target=gk.approvals.tick, args=(now + 101,)) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert kinds(store, "a").count("approval.expired") == 1
    assert store.approval(row["id"])["state"] == "expired"  # type: ignore[index]
    assert gk.approvals.tick(now + 200) is None


def test_escalated_waiter_keeps_waiting(host: tuple[LoadedRunbook, Store, Gatekeeper]) -> None:
    _, store, gk = host
    row = gk.approvals.request(
        "a", "git.push", "fp", classes=["git.push"], detail="d", rule="r", reason="r", timeout=60,
        escalate_after=0.1,
    )
    got = gk.approvals.wait(row["id"], 0.5)
    assert got["state"] == "pending" and got["escalated"] is not None
    assert kinds(store, "a").count("approval.escalated") == 1


def wait_for(fn, timeout: float = 10.0):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while True:
        got = fn()
        if got:
            return got
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


# --- tether explain ---------------------------------------------------------------------------


@pytest.fixture
def runbook_file(tmp_path: Path) -> Path:
    loaded = write_runbook(tmp_path / "host", GATED)
    return loaded.path


def explain(runbook: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return run_cli("-f", str(runbook), "explain", *args, cwd=runbook.parent, timeout=30)


def test_explain_a_command(runbook_file: Path) -> None:
    proc = explain(runbook_file, "--", "git", "push", "--force", "origin", "main")
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "agent     a" in out
    assert "action    git push --force origin main" in out
    assert "class     git.push" in out
    assert "touches   branch: main (write)" in out
    assert "verdict   ask: held for a human, by default table: git.push: ask" in out
    assert "escalates to Bob Backup after 15m" in out
    # nothing was recorded: explain runs without a daemon and writes no store
    assert not (runbook_file.parent / "state" / "tether.db").exists()


def test_explain_json_and_agent(runbook_file: Path) -> None:
    proc = explain(runbook_file, "--agent", "gated", "--json", "--", "gh", "pr", "create", "--fill")
    assert proc.returncode == 0, proc.stderr
    got = json.loads(proc.stdout)
    assert got["agent"] == "gated" and got["verdict"] == "ask" and got["classes"] == ["pr.open"]
    assert got["rule"] == "default table: pr.open: ask" and got["gates"] == ["pr.open"] and got["parsed"] is True
    proc = explain(runbook_file, "--agent", "b", "--json", "--", "git push --force origin main")
    assert json.loads(proc.stdout)["rule"] == "agents.b.approvals.verdicts.git.push: allow"


def test_explain_tool_path_and_url(runbook_file: Path) -> None:
    settings = {"file_path": ".claude/settings.local.json", "content": json.dumps({"disableAllHooks": True})}
    proc = explain(runbook_file, "--json", "--tool", "Write", "--input", json.dumps(settings))
    got = json.loads(proc.stdout)
    assert got["verdict"] == "block" and "tether.control" in got["classes"]
    assert any(r["protected"] and r["value"].endswith(".claude/settings.local.json") for r in got["resources"])

    proc = explain(runbook_file, "--path", "../other/file", "--op", "write")
    assert proc.returncode == 0, proc.stderr
    assert "scope     scope.outside" in proc.stdout
    assert "verdict   block: blocked, by default table: scope.outside: block" in proc.stdout

    proc = explain(runbook_file, "--url", "https://pastebin.com/x", "--method", "POST")
    assert "network.egress" in proc.stdout and "touches   url: https://pastebin.com/x" in proc.stdout
    assert "verdict   ask" in proc.stdout


def test_explain_unparseable(runbook_file: Path) -> None:
    proc = explain(runbook_file, "--", "echo $(")
    assert proc.returncode == 0, proc.stderr
    assert "class     unknown" in proc.stdout
    assert "parsed    no" in proc.stdout and "verdict   ask" in proc.stdout


def test_explain_bad_input_is_one_line_exit_2(runbook_file: Path) -> None:
    proc = explain(runbook_file, "--tool", "Write", "--input", "{not json")
    assert proc.returncode == 2
    assert one_line_error(proc).startswith("tether: error: --input: not valid JSON")
    proc = explain(runbook_file, "--agent", "nobody", "--", "ls")
    assert proc.returncode == 2 and "no agent named 'nobody'" in one_line_error(proc)


def test_close_releases_waiters(host: tuple[LoadedRunbook, Store, Gatekeeper]) -> None:
    """A stopping daemon closes the approvals: a held check returns at once, still pending."""
    _, _, gk = host
    t0 = time.monotonic()
    threads = [threading.Thread(target=gk.check, args=("a", Request(command="terraform apply"), 30)) for _ in range(3)]
    for t in threads:
        t.start()
    wait_for(lambda: gk.store.approvals("pending", "a"))
    gk.approvals.close()
    for t in threads:
        t.join(5)
    assert not any(t.is_alive() for t in threads) and time.monotonic() - t0 < 5
    assert gk.check("a", Request(command="terraform apply"), wait=30).decision == "pending"
