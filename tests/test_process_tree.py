"""kill_tree / kill_run: whole trees (setsid, double fork), with and without a cgroup, a SIGTERM-ignoring
agent, a SIGSTOPped daemon, and a caller inside the tree. Real processes; verified gone through psutil."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import psutil
import pytest

from tether.process import (
    ProcessId,
    RunIdentities,
    SpawnSpec,
    find_tree,
    kill_run,
    kill_tree,
    spawn,
)
from tether.process import cgroup as cgroups
from tether.process.rundir import RUN_JSON

SRC = str(Path(__file__).resolve().parents[1] / "src")

# agent -> child (setsid) ; agent -> intermediate -> grandchild (double fork + setsid). Each notes its pid.
TREE_AGENT = r"""
import os, signal, sys, time
d, ignore_term = sys.argv[1], sys.argv[2] == "1"
if ignore_term:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
def note(name):
    tmp = os.path.join(d, name + ".tmp")
    with open(tmp, "w") as f:
        f.write(str(os.getpid()))
    os.rename(tmp, os.path.join(d, name))
def stay():
    end = time.monotonic() + 60
    while time.monotonic() < end:
        time.sleep(0.05)
    os._exit(0)
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        if os.fork() == 0:
            os.setsid()
            note("grandchild")
            stay()
        os._exit(0)
    note("child")
    stay()
note("agent")
stay()
"""

NAMES = ("agent", "child", "grandchild")


def wait_for(pred: Callable[[], bool], timeout: float = 5.0, interval: float = 0.01) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(interval)
    return pred()


def gone(ident: ProcessId) -> bool:
    """Verified through psutil: no such process, a zombie, or the PID now belongs to someone else."""
    try:
        proc = psutil.Process(ident.pid)
        if proc.status() == psutil.STATUS_ZOMBIE:
            return True
    except psutil.NoSuchProcess:
        return True
    return not ident.alive()


def tree_pids(d: Path) -> dict[str, ProcessId]:
    assert wait_for(lambda: all((d / n).exists() for n in NAMES)), f"tree did not start: {os.listdir(d)}"
    out = {}
    for n in NAMES:
        ident = ProcessId.of(int((d / n).read_text()))
        assert ident is not None
        out[n] = ident
    return out


@pytest.fixture
def tree(tmp_path: Path) -> Iterator[Callable[..., tuple[SpawnSpec, dict[str, ProcessId]]]]:
    specs: list[SpawnSpec] = []

    def start(cgroup: cgroups.Preference = "auto", ignore_term: bool = False, name: str = "tree"):  # type: ignore[no-untyped-def]
        notes = tmp_path / f"{name}-pids"
        notes.mkdir()
        spec = SpawnSpec(
            agent=name,
            argv=[sys.executable, "-c", TREE_AGENT, str(notes), "1" if ignore_term else "0"],
            run_dir=tmp_path / name / "run",
            log_dir=tmp_path / name / "logs",
            cgroup=cgroup,
        )
        specs.append(spec)
        spawn(spec)
        return spec, tree_pids(notes)

    yield start
    for spec in specs:
        if (spec.run_dir / RUN_JSON).exists():
            kill_run(spec.run_dir, "KILL", grace=1.0)


def assert_all_gone(pids: dict[str, ProcessId]) -> None:
    assert wait_for(lambda: all(gone(p) for p in pids.values()), timeout=3), {
        n: p.pid for n, p in pids.items() if not gone(p)
    }


def test_escaped_descendants_are_found_and_killed(tree) -> None:  # type: ignore[no-untyped-def]
    spec, pids = tree()
    assert os.getsid(pids["child"].pid) != os.getsid(pids["agent"].pid)  # escaped its session
    report = kill_run(spec.run_dir, "TERM", grace=5)
    assert report.ok, report
    assert {pids[n].pid for n in NAMES} <= set(report.signalled), report
    assert not report.escalated
    assert_all_gone(pids)
    info = json.loads((spec.run_dir / RUN_JSON).read_text())
    if info["cgroup"] is not None:
        assert report.froze and report.cgroup_removed
        assert not Path(info["cgroup"]["path"]).exists()
    assert wait_for(lambda: (spec.run_dir / "exit").exists())
    assert (spec.run_dir / "exit").read_text().strip() == "143"
    assert (spec.run_dir / "killed").read_text().split()[0] == "SIGTERM"


@pytest.mark.parametrize("version", ["v2", "v1"])
def test_cgroup_versions(tree, version: cgroups.Preference) -> None:  # type: ignore[no-untyped-def]
    if not any(h.version == version for h in cgroups.hierarchies()) or os.geteuid() != 0:
        pytest.skip(f"no writable cgroup {version}")
    spec, pids = tree(cgroup=version, name=f"cg{version}")
    info = json.loads((spec.run_dir / RUN_JSON).read_text())
    if info["cgroup"] is None:
        pytest.skip(f"cgroup {version} not writable here")
    group = cgroups.AgentCgroup.from_dict(info["cgroup"])
    assert {p.pid for p in pids.values()} <= group.pids()
    keeper_pid = int((spec.run_dir / "keeper.pid").read_text().split()[0])
    assert keeper_pid not in group.pids()  # the keeper stays out: it must outlive a cgroup kill
    found = find_tree(RunIdentities(None, None), "no-such-instance", group, scan_env=False)
    assert {f.source for f in found.values()} == {"cgroup"}
    can_freeze = group.can_freeze
    report = kill_run(spec.run_dir, "TERM", grace=5)
    assert report.ok and report.froze == can_freeze
    assert_all_gone(pids)
    assert not group.exists()


def test_env_scan_only(tree) -> None:  # type: ignore[no-untyped-def]
    spec, pids = tree(cgroup="none", name="envonly")
    info = json.loads((spec.run_dir / RUN_JSON).read_text())
    assert info["cgroup"] is None
    report = kill_run(spec.run_dir, "TERM", grace=5, use_cgroup=False)
    assert report.ok, report
    sources = {n: report.signalled.get(p.pid) for n, p in pids.items()}
    assert sources == {"agent": "agent", "child": "env", "grandchild": "env"}, report
    assert_all_gone(pids)


def test_sigterm_ignored_gets_sigkill_after_grace(tree) -> None:  # type: ignore[no-untyped-def]
    spec, pids = tree(ignore_term=True, cgroup="none", name="stubborn")
    t0 = time.monotonic()
    report = kill_run(spec.run_dir, "TERM", grace=0.5, use_cgroup=False)
    assert 0.5 <= time.monotonic() - t0 < 4
    assert report.ok, report
    assert {pids[n].pid for n in NAMES} <= set(report.escalated)
    assert_all_gone(pids)
    assert wait_for(lambda: (spec.run_dir / "exit").exists())
    assert (spec.run_dir / "exit").read_text().strip() == "137"


def test_sigterm_ignored_with_cgroup_kill(tree) -> None:  # type: ignore[no-untyped-def]
    spec, pids = tree(ignore_term=True, name="stubborncg")
    report = kill_tree(spec.run_dir, "TERM", 0.3)  # the run-folder form the daemon uses
    assert report.ok, report
    assert report.escalated
    assert_all_gone(pids)


SPAWNER = """
import sys, time
from pathlib import Path
from tether.process import SpawnSpec, spawn
h = spawn(SpawnSpec(agent="a", argv=sys.argv[3:], run_dir=Path(sys.argv[1]), log_dir=Path(sys.argv[2])))
print(h.agent_pid(), flush=True)
time.sleep(60)
"""


def test_kill_while_the_daemon_is_sigstopped(tmp_path: Path) -> None:
    notes = tmp_path / "pids"
    notes.mkdir()
    run_dir = tmp_path / "run"
    env = dict(os.environ, PYTHONPATH=SRC + os.pathsep + os.environ.get("PYTHONPATH", ""))
    agent = [sys.executable, "-c", TREE_AGENT, str(notes), "0"]
    daemon = subprocess.Popen(
        [sys.executable, "-c", SPAWNER, str(run_dir), str(tmp_path / "logs"), *agent],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert daemon.stdout is not None
        assert daemon.stdout.readline().strip().isdigit()
        pids = tree_pids(notes)
        daemon.send_signal(signal.SIGSTOP)
        assert wait_for(lambda: psutil.Process(daemon.pid).status() == psutil.STATUS_STOPPED)
        report = kill_run(run_dir, "TERM", grace=5)  # only the run folder: no daemon, no store
        assert report.ok, report
        assert_all_gone(pids)
        assert wait_for(lambda: (run_dir / "exit").exists())
    finally:
        daemon.kill()
        daemon.wait(5)


CALLER = """
import sys
from pathlib import Path
from tether.process import kill_run
report = kill_run(Path(sys.argv[1]), "TERM", grace=2)
Path(sys.argv[2]).write_text(repr((report.ok, sorted(report.signalled), report.group)))
"""


def test_caller_inside_the_tree_is_spared(tmp_path: Path) -> None:
    """`tether kill` run by the agent itself: in the cgroup, with the env, in the agent's group."""
    run_dir, out = tmp_path / "run", tmp_path / "out"
    env = dict(os.environ, PYTHONPATH=SRC + os.pathsep + os.environ.get("PYTHONPATH", ""))
    script = 'sleep 0.2; "$0" -c "$1" "$2" "$3"; sleep 30'
    h = spawn(
        SpawnSpec(
            agent="self",
            argv=["/bin/sh", "-c", script, sys.executable, CALLER, str(run_dir), str(out)],
            run_dir=run_dir,
            log_dir=tmp_path / "logs",
            env=env,
        )
    )
    agent = h.agent_id()
    assert agent is not None
    try:
        assert wait_for(out.exists, timeout=8), (tmp_path / "logs" / "stderr.log").read_text()
        ok, signalled, group = eval(out.read_text())
        assert ok and agent.pid in signalled and group is None  # no killpg: the caller is in that group
        assert h.wait_ended(5)
        assert h.exit_status() == 143
    finally:
        kill_run(run_dir, "KILL", grace=1)


def test_never_signals_protected_or_unverified(tmp_path: Path) -> None:
    me = ProcessId.me()
    stale_agent = ProcessId(me.boot_id, me.pid, int(me.start_time) + 1)  # our PID, someone else's start
    report = kill_tree(RunIdentities(keeper=None, agent=stale_agent), "no-such-instance", "KILL", grace=0.1)
    assert report.ok and not report.signalled and report.group is None
    other_boot = ProcessId("another-boot", 1, 1)
    report = kill_tree(RunIdentities(keeper=None, agent=other_boot), None, "KILL", grace=0.1)
    assert report.ok and not report.signalled
    # a run folder with no run in it: nothing to do, and it says so
    report = kill_run(tmp_path)
    assert report.ok and not report.signalled and report.note is not None


def test_a_stopped_agent_still_gets_its_sigterm(tmp_path: Path) -> None:
    """SIGTERM stays pending on a SIGSTOPped process: kill_tree follows it with SIGCONT (no SIGKILL needed)."""
    run_dir = tmp_path / "run"
    h = spawn(SpawnSpec(agent="stopped", argv=["sleep", "30"], run_dir=run_dir, log_dir=tmp_path / "logs"))
    agent = h.agent_id()
    assert agent is not None
    try:
        os.kill(agent.pid, signal.SIGSTOP)
        assert wait_for(lambda: psutil.Process(agent.pid).status() == psutil.STATUS_STOPPED)
        report = kill_tree(run_dir, "TERM", 5)
        assert report.ok and not report.escalated
        assert h.wait_exit(5) == 128 + signal.SIGTERM
    finally:
        kill_run(run_dir, "KILL", grace=1)
