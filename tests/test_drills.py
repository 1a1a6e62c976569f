"""``tether drill`` against the demo host (``tether demo``'s runbook, git repo and four scripted SDK agents,
under a real daemon started once for this module): every drill passes (but the sandbox drill: this demo runs
without the wall), each cleans up after itself, and each fails (or says ``degraded``) when what it checks is
broken."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from helpers import cli_env, run_cli
from tether import process
from tether.drills import break_test, kill, network, protected_file, runner
from tether.drills.base import Host
from tether.drills.status import drill_summary
from tether.runbook import LoadedRunbook, load

PY = sys.executable
pytestmark = pytest.mark.skipif(shutil.which("git") is None or sys.platform != "linux",
                                reason="the demo host needs git; the drills need Linux")


def _mentions(pid: int, needle: bytes) -> bool:
    for name in ("cmdline", "environ"):
        try:
            with open(f"/proc/{pid}/{name}", "rb") as f:
                if needle in f.read():
                    return True
        except OSError:
            continue
    return False


def kill_leftovers(root: Path) -> None:
    """SIGKILL every process whose command line or environment names the demo's folder."""
    needle = str(root).encode()
    for _ in range(3):
        left = [int(d) for d in os.listdir("/proc") if d.isdigit() and int(d) != os.getpid()
                and _mentions(int(d), needle)]
        if not left:
            return
        for pid in left:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.1)


def tether(runbook: Path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return run_cli("-f", str(runbook), *args, timeout=timeout)


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    from tether.demo.host import write_host
    from tether.demo.receiver import Receiver

    root = tmp_path_factory.mktemp("drill-demo")
    phone = Receiver(root / "notifications.jsonl")  # the owner's: a drill passes when its notification arrives
    runbook = write_host(root, sandbox=False, notify_port=phone.port)  # before the per-test TETHER_SANDBOX=off
    env = cli_env()
    try:
        up = subprocess.run([PY, "-m", "tether", "-f", str(runbook), "up"], env=env, capture_output=True, text=True,
                            timeout=60)
        assert up.returncode == 0, up.stderr
        host = Host(load(runbook))
        try:
            deadline = time.monotonic() + 20
            while not all(host.events(0, a, ["agent.started"]) for a in host.agents):
                assert time.monotonic() < deadline, "the demo agents did not start"
                time.sleep(0.1)
        finally:
            host.close()
        yield runbook
    finally:
        # the demo's repo-maintainer holds a check open until its merge is decided, and a daemon with a check
        # held does not stop (`tether down` gives up after 60s): decide it first
        with contextlib.suppress(Exception):
            host = Host(load(runbook))
            for a in host.store.approvals("pending"):
                host.api("POST", f"/v1/approvals/{a['id']}/deny", {"reason": "the test is over"})
            host.close()
        subprocess.run([PY, "-m", "tether", "-f", str(runbook), "down"], env=env, capture_output=True, timeout=120)
        kill_leftovers(root)
        phone.close()


@pytest.fixture
def host(demo: Path) -> Iterator[Host]:
    h = Host(load(demo))
    yield h
    h.close()


def live(h: Host, agent: str) -> process.KeeperHandle | None:
    handle = process.adopt(h.run_dir(agent))
    return handle if handle is not None and handle.agent_alive() else None


def wait_live(h: Host, agent: str, timeout: float = 20) -> process.KeeperHandle:
    deadline = time.monotonic() + timeout
    while (handle := live(h, agent)) is None:
        assert time.monotonic() < deadline, f"{agent} is not running"
        time.sleep(0.1)
    return handle


def test_every_drill_passes_against_the_demo_host(demo: Path, host: Host) -> None:
    repo = host.cwd("repo-maintainer")
    started = time.monotonic()
    got = tether(demo, "drill", "--json")
    took = time.monotonic() - started
    assert got.returncode == 1, got.stdout + got.stderr  # the sandbox drill fails: this demo runs without the wall
    doc = json.loads(got.stdout)
    assert doc["host"] == "demo-host" and doc["sandbox"] is None
    rows = {(r["agent"], r["drill"]): r for r in doc["drills"]}
    agents = ["repo-maintainer", "flaky-worker", "stuck-agent", "data-deleter"]
    assert set(rows) == {(a, d) for a in agents for d in runner.DRILLS}
    for (agent, drill), r in rows.items():
        if drill == "sandbox":
            assert r["status"] == "fail" and r["detail"].startswith("sandbox: off: "), r
        elif drill == "break-test" and agent != "repo-maintainer":
            assert r["status"] == "skipped" and "no git repository" in r["detail"], r  # nothing to open a PR from
        else:
            assert r["status"] == "pass", r
            if drill == "network":  # told, and delivered: the demo's receiver has it
                assert f"owner notified (owner:{agent})" in r["detail"], r
            assert r["evidence"], f"{agent} {drill}: no evidence"
    print(f"\nall drills on the demo host: {took:.1f}s")
    for r in doc["drills"]:
        print(f"  {r['drill']:<15} {r['agent']:<16} {r['status']:<8} {r['seconds']:>6.2f}s  {r['timings']}")

    # what the drills left: results, evidence; no branch, worktree, approval, incident or task of theirs
    results = host.events(0, None, ["drill.result"])
    assert len(results) == 24 and {e.data["run"] for e in results} == {doc["run"]}
    assert all(e.data["runbook_hash"] == host.runbook_hash(str(e.agent)) for e in results)
    kill_row = rows[("flaky-worker", "kill")]
    kinds = {e.id: e.kind for e in host.events(0, "flaky-worker", ["agent.exited", "agent.started"])}
    assert sorted(kinds[i] for i in kill_row["evidence"]) == ["agent.exited", "agent.started"]
    assert kill_row["timings"]["restarted_s"] < 10
    listed = subprocess.run(["git", "-C", str(repo), "worktree", "list"], capture_output=True, text=True).stdout
    assert len(listed.splitlines()) == 1, listed
    branches = subprocess.run(["git", "-C", str(repo), "branch", "--list", "tether-drill/*"], capture_output=True,
                              text=True).stdout
    assert branches == ""
    pending = host.store.approvals("pending")
    assert [a["action"] for a in pending] == ["pr.merge"], [(a["action"], a["detail"][:80]) for a in pending]
    drilled = [a for a in host.store.approvals("denied") if a["note"] == "drill"]
    assert len(drilled) == 5, "four protected-file approvals and the reboot's, each denied by the drill"
    assert not [i for i in host.store.incidents("open") if i["kind"] == "network"]
    assert len([i for i in host.store.incidents("resolved") if i["kind"] == "network"]) == 4
    assert [t.state for t in host.store.tasks() if t.text.startswith("tether drill")] == ["cancelled"]
    assert tether(demo, "audit", "verify").returncode == 0
    for agent in agents:
        summary = drill_summary(host.store, agent, runbook_hash=host.runbook_hash(agent))
        assert summary["drill_overdue"] is False and summary["last_drill"]["failed"] == ["sandbox"]
        assert summary["drill_runbook_changed"] is False
        wait_live(host, agent)


def test_kill_drill_fails_when_restarts_are_disabled(demo: Path, host: Host) -> None:
    agent = "stuck-agent"
    before = wait_live(host, agent)
    kill_file = host.state.agent_kill_file(agent)
    kill_file.write_text(json.dumps({"reason": "restarts disabled for the test"}))
    try:
        got = kill.run(host, agent)
        assert got.status == "fail", got
        assert "not restarted" in got.detail and "killed" in got.detail and "on-failure" in got.detail
        assert live(host, agent) is None, "the drill crashed it and nothing restarted it"
        # with the kill switch engaged the protected write is blocked outright: safe, but no approval asked
        assert protected_file.run(host, agent).status == "degraded"
    finally:
        kill_file.unlink(missing_ok=True)
        assert tether(demo, "resume", agent).returncode == 0
    assert wait_live(host, agent).instance != before.instance


def test_kill_drill_skips_an_agent_an_operator_stopped(demo: Path, host: Host) -> None:
    assert tether(demo, "stop", "data-deleter").returncode == 0
    try:
        got = kill.run(host, "data-deleter")
        assert got.status == "skipped" and "stopped by an operator" in got.detail
    finally:
        assert tether(demo, "start", "data-deleter").returncode == 0
    wait_live(host, "data-deleter")


def test_kill_drill_fails_when_no_daemon_watches(demo: Path, host: Host, tmp_path: Path) -> None:
    from tether.paths import StateDir

    moved = dataclasses.replace(host.loaded, state=StateDir(tmp_path / "elsewhere"))
    got = kill.run(Host(moved), "stuck-agent")
    assert got.status == "fail" and "no daemon" in got.detail


def _with_gate(loaded: LoadedRunbook, agent: str, gates: dict[str, object], verdict: str = "allow") -> LoadedRunbook:
    agents = dict(loaded.runbook.agents)
    spec = agents[agent]
    approvals = spec.approvals.model_copy(update={"verdicts": {"pr.open": verdict}})
    agents[agent] = spec.model_copy(update={"gates": gates, "approvals": approvals})
    return dataclasses.replace(loaded, runbook=loaded.runbook.model_copy(update={"agents": agents}))


def test_break_test_drill_fails_when_the_gate_would_let_a_broken_test_through(host: Host) -> None:
    from tether.runbook.model import Gate

    agent = "repo-maintainer"
    assert break_test.run(host, agent).status == "pass"
    no_gate = Host(_with_gate(host.loaded, agent, {}))
    got = break_test.run(no_gate, agent)
    assert got.status == "fail" and "no pr.open gate" in got.detail
    no_tests = Host(_with_gate(host.loaded, agent, {"pr.open": Gate(command=("true",))}))
    got = break_test.run(no_tests, agent)
    assert got.status == "fail" and "would open as a false success" in got.detail
    quiet = f"{PY} -m unittest -q >/dev/null 2>&1"  # fails on a broken test, but says nothing
    silent = Host(_with_gate(host.loaded, agent, {"pr.open": Gate(command=("sh", "-c", quiet))}))
    got = break_test.run(silent, agent)
    assert got.status == "degraded" and "does not name the failing test" in got.detail
    for h in (no_gate, no_tests, silent):
        h.close()


def test_network_drill_fails_when_the_namespace_does_not_cut_the_network(
    host: Host, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "unshare").write_text('#!/bin/sh\nwhile [ "$1" != "--" ]; do shift; done\nshift\nexec "$@"\n')
    (fake / "unshare").chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake}:{os.environ['PATH']}")
    got = network.run(host, "flaky-worker")
    assert got.status == "fail" and "still answered" in got.detail and "never cut off" in got.detail


def test_network_drill_is_degraded_where_no_namespace_can_be_made(
    host: Host, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "unshare").write_text("#!/bin/sh\necho 'unshare: unshare failed: Operation not permitted' >&2\nexit 1\n")
    (fake / "unshare").chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake}:{os.environ['PATH']}")
    cursor = host.cursor()
    got = network.run(host, "data-deleter")
    assert got.status == "degraded", got
    assert "no network namespace could be made" in got.detail and "Operation not permitted" in got.detail
    assert "dead address" in got.detail
    recorded = host.events(cursor, "data-deleter", ["probe.failed", "incident.opened", "incident.resolved"])
    assert [e.kind for e in recorded] == ["probe.failed", "incident.opened", "incident.resolved"]


def test_network_drill_fails_when_the_daemon_does_not_report_the_incident(
    host: Host, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = host.api

    def hide_incidents(method: str, path: str, body: object = None, timeout: float = 15) -> object:
        if path.startswith("/v1/incidents"):
            return {"incidents": []}
        return real(method, path, body, timeout)  # type: ignore[arg-type]

    monkeypatch.setattr(host, "api", hide_incidents)
    got = network.run(host, "stuck-agent")
    assert got.status == "fail" and "does not report incident" in got.detail


def test_sandbox_drills_copies_and_leaves_the_live_agents_alone(demo: Path, host: Host) -> None:
    agent = "repo-maintainer"
    before = wait_live(host, agent)
    workspace = host.cwd(agent)
    head = subprocess.run(["git", "-C", str(workspace), "rev-parse", "HEAD"], capture_output=True, text=True).stdout
    cursor = host.cursor()
    report = runner.run_host(load(demo), [agent], ["kill", "break-test", "protected-file"], sandbox=True)
    assert [(r.drill, r.status) for r in report.results] == [("kill", "pass"), ("break-test", "pass"),
                                                             ("protected-file", "pass")], report.results
    assert report.sandbox is not None and Path(report.sandbox).is_dir()
    assert str(workspace) not in report.results[2].detail and report.sandbox in report.results[2].detail
    after = live(host, agent)
    assert after is not None and after.instance == before.instance, "the live agent was not touched"
    assert subprocess.run(["git", "-C", str(workspace), "rev-parse", "HEAD"], capture_output=True,
                          text=True).stdout == head
    recorded = host.events(cursor, agent, ["drill.result"])
    assert len(recorded) == 3 and all(e.data.get("sandbox") == report.sandbox for e in recorded)
    assert all(e.data["runbook_hash"] == host.runbook_hash(agent) for e in recorded), "the real entry's hash"
    assert not host.events(cursor, agent, ["agent.exited", "approval.requested"]), "nothing happened to the live one"
    info = json.loads((Path(report.sandbox) / "state" / "daemon.json").read_text()) if (
        Path(report.sandbox) / "state" / "daemon.json").exists() else None
    assert info is None, "the sandbox daemon was stopped"
