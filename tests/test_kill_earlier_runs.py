"""What earlier runs left behind: a run's setsid descendants outlive it, and the agent is restarted. The kill
finds them through the run folder's ``runs`` history (each run's cgroup and TETHER_INSTANCE), and `tether
kill` and `tether down` leave no process and no cgroup behind, even for a crash-looping agent."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from test_daemon_kit import Host, agent, make_host, wait_until  # noqa: F401
from tether.process import SpawnSpec, kill_run, spawn
from tether.process.rundir import read_runs

# each run leaves a grandchild in a session of its own (ignoring SIGTERM), then crashes
LEAKY = """
setsid sh -c "trap '' TERM; while :; do sleep 0.05; done" &
sleep 0.05
exit 1
"""


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _sid(pid: int) -> int | None:
    try:
        return os.getsid(pid)
    except OSError:
        return None


def _env_pids(key: str, values: set[str]) -> set[int]:
    found = set()
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/environ", "rb") as f:
                env = f.read().split(b"\0")
        except OSError:
            continue
        if any(f"{key}={v}".encode() in env for v in values) and _alive(int(name)):
            found.add(int(name))
    return found


@pytest.mark.parametrize("cgroup", ["auto", "none"])
def test_kill_run_finds_every_earlier_run(tmp_path: Path, cgroup: str) -> None:
    run_dir = tmp_path / "run"
    instances = []
    for i in range(3):  # three runs in one run folder; each leaves its grandchild
        spec = SpawnSpec(agent="leaky", argv=["sh", "-c", LEAKY], run_dir=run_dir, log_dir=tmp_path / "logs",
                         instance=f"run{i}x{os.getpid()}", cgroup=cgroup)  # type: ignore[arg-type]
        h = spawn(spec)
        assert h.wait_exit(5) == 1
        instances.append(spec.instance)
    def leaders() -> set[int]:  # the grandchildren's loops (each leads its session; their sleeps come and go)
        return {p for p in _env_pids("TETHER_INSTANCE", set(instances)) if _sid(p) == p}

    leftovers = wait_until(lambda: len(leaders()) == 3 and leaders(), 5, "the three leftovers")
    assert len({r.instance for r in read_runs(run_dir)}) == 3
    groups = [r.cgroup for r in read_runs(run_dir) if r.cgroup is not None]
    try:
        report = kill_run(run_dir, "TERM", grace=0.5)
        assert report.ok, report
        assert set(leftovers) <= set(report.signalled), report
        assert sorted(report.runs) == sorted(instances), report
        assert not report.expected  # the last run ended: nothing was recorded as running
        assert not any(_alive(p) for p in leftovers)
        assert report.cgroups_left == [] and not any(g.exists() for g in groups)
        assert [r.instance for r in read_runs(run_dir)] == [instances[-1]], "the dead runs are forgotten"
    finally:
        kill_run(run_dir, "KILL", grace=0.5)


def test_crash_loop_leaves_nothing_after_kill_and_down(make_host) -> None:  # noqa: F811
    h: Host = make_host({})
    leaky = h.script("leaky.sh", LEAKY)
    fast = {"policy": "on-failure", "backoff": {"base": "0s", "jitter": 0}}
    restart = {**fast, "crashloop": {"limit": 1000, "window": "10m"}}
    held = {**fast, "crashloop": {"limit": 3, "window": "10m"}}
    h.write({"looping": agent(["sh", leaky], restart=restart), "held": agent(["sh", leaky], restart=held)})
    daemon = h.up()
    wait_until(lambda: len(h.events("agent.started", "looping")) >= 8, 60, "8 runs of the crash loop")
    wait_until(lambda: h.state_of("held") == "crashloop", 30, "held in its crash loop")
    wait_until(lambda: len(h.instances("held")) >= 3, 10, "the held agent's three leftovers")

    got = h.cli("kill", "looping")
    assert got.returncode == 0, got.stderr
    assert "looping: killed" in got.stdout and " runs signalled" in got.stdout, got.stdout
    assert h.instances("looping") == set(), "every run's leftovers are gone"
    runs = len(h.events("agent.started", "looping"))
    killed = h.events("agent.killed", "looping")[-1]["data"]
    assert killed["runs"] >= 8 and not killed["survivors"], killed
    assert killed["runs"] <= runs

    assert h.down(daemon) == 0  # the held agent has no live run, only leftovers: down ends them too
    assert h.marked() == [], "no process of any run is left"
    instances = {e["data"]["instance"] for e in h.events("agent.started")}
    left = [p for pattern in ("tether/*", "*/tether/*") for p in Path("/sys/fs/cgroup").glob(pattern)
            if any(p.name.endswith(i) for i in instances)]
    assert left == [], left


def test_a_run_recorded_as_running_with_nothing_found_is_a_failure(make_host) -> None:  # noqa: F811
    """Its keeper and agent SIGKILLed behind tether's back (no exit status): `tether kill` says it found
    nothing of a run the folder calls running, and exits 1."""
    h: Host = make_host({"w": agent(["sleep", "600"])})
    daemon = h.up()
    wait_until(lambda: h.agent_pids("w"), 10, "w to run")
    h.kill9(daemon)
    run = h.state / "agents" / "w" / "run"
    for name in ("keeper.pid", "agent.pid"):
        os.kill(int((run / name).read_text().split()[0]), 9)
    wait_until(lambda: not h.agent_pids("w"), 5, "w gone")
    time.sleep(0.05)
    got = h.cli("kill", "w")
    assert got.returncode == 1, got
    assert "NOTHING WAS FOUND" in got.stdout and "recorded as running" in got.stdout, got.stdout
    assert got.stderr.count("\n") == 1 and "recorded as running but no process of it was found" in got.stderr
    assert (h.state / "agents" / "w" / "KILL").exists(), "the kill switch holds it all the same"
