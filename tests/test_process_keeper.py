"""The keeper: spawn, logs, exit codes, surviving the daemon, adopt, never twice, run_as. Real processes."""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from tether.process import (
    AlreadyRunning,
    KeeperHandle,
    ProcessId,
    SpawnError,
    SpawnSpec,
    adopt,
    kill_run,
    read_logs,
    spawn,
)
from tether.process.rundir import RUN_JSON

IS_ROOT = os.geteuid() == 0
SRC = str(Path(__file__).resolve().parents[1] / "src")


def wait_for(pred: Callable[[], bool], timeout: float = 5.0, interval: float = 0.01) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(interval)
    return pred()


@pytest.fixture
def run(tmp_path: Path) -> Iterator[Callable[..., SpawnSpec]]:
    """Make specs with their own run/log folders; kill whatever is left at teardown."""
    made: list[Path] = []

    def make(argv: list[str], name: str = "agent", **kw: Any) -> SpawnSpec:
        base = tmp_path / name
        made.append(base / "run")
        return SpawnSpec(agent=name, argv=argv, run_dir=base / "run", log_dir=base / "logs", **kw)

    yield make
    for run_dir in made:
        if (run_dir / RUN_JSON).exists():
            kill_run(run_dir, "KILL", grace=1.0)


TICKER = 'i=0; while [ ! -e "$1" ]; do echo "tick $i"; i=$((i+1)); sleep 0.02; done; echo done; exit "$2"'


def test_exit_status_and_both_logs(run: Callable[..., SpawnSpec]) -> None:
    spec = run(["/bin/sh", "-c", "echo out; echo err >&2; exit 3"])
    h = spawn(spec)
    assert h.wait_exit(5) == 3
    assert h.exit_status() == 3
    assert h.exit_signal() is None
    assert not h.running()
    assert read_logs(spec.log_dir, "stdout") == ["out"]
    assert read_logs(spec.log_dir, "stderr") == ["err"]
    # the keeper removed the (now empty) cgroup itself
    assert h.cgroup is None or not h.cgroup.exists()


def test_layout_of_the_process_tree(run: Callable[..., SpawnSpec]) -> None:
    spec = run(["sleep", "30"])
    h = spawn(spec)
    keeper, agent = h.keeper_id, h.agent_id()
    assert keeper is not None and agent is not None
    assert keeper.alive() and agent.alive()
    assert os.getsid(keeper.pid) == keeper.pid != os.getsid(0)  # keeper: own session
    assert os.getpgid(agent.pid) == agent.pid  # agent: own process group
    assert psutil.Process(agent.pid).ppid() == keeper.pid
    # (an environment read in the middle of the launcher's exec comes back empty: wait for it)
    assert wait_for(lambda: psutil.Process(agent.pid).environ().get("TETHER_INSTANCE") == spec.instance)
    assert "TETHER_INSTANCE" not in psutil.Process(keeper.pid).environ()
    # no pipe between us and the keeper: its stdin is /dev/null, its output goes to keeper.log
    assert os.readlink(f"/proc/{keeper.pid}/fd/0") == "/dev/null"
    assert os.readlink(f"/proc/{keeper.pid}/fd/1") == str(spec.run_dir / "keeper.log")
    # the agent's stdout/stderr are the log files themselves, opened O_APPEND
    assert os.readlink(f"/proc/{agent.pid}/fd/1") == str(spec.log_dir / "stdout.log")
    flags = int(Path(f"/proc/{agent.pid}/fdinfo/1").read_text().split("flags:")[1].split()[0], 8)
    assert flags & os.O_APPEND
    # signals for the agent's group, and TERM/HUP/INT for the keeper, leave the keeper alive
    for sig in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
        os.kill(keeper.pid, sig)
    time.sleep(0.05)
    assert keeper.alive() and agent.alive()
    os.killpg(agent.pid, signal.SIGTERM)
    assert h.wait_ended(5)
    assert h.exit_status() == 128 + signal.SIGTERM
    assert h.exit_signal() == signal.SIGTERM


def test_agent_signals_are_reset(run: Callable[..., SpawnSpec]) -> None:
    # background jobs of a shell ignore INT/QUIT and Python ignores PIPE; the launcher resets them
    spec = run(["/bin/sh", "-c", "grep -E 'SigIgn|SigBlk' /proc/self/status"])
    h = spawn(spec)
    assert h.wait_ended(5) and h.exit_status() == 0
    lines = dict(line.split(":\t") for line in read_logs(spec.log_dir, "stdout"))
    assert int(lines["SigIgn"], 16) == 0
    assert int(lines["SigBlk"], 16) == 0


def test_killed_by_signal_and_missing_command(run: Callable[..., SpawnSpec]) -> None:
    h = spawn(run(["/bin/sh", "-c", "kill -9 $$"], name="selfkill"))
    assert h.wait_ended(5)
    assert (h.exit_status(), h.exit_signal(), h.killed_by()) == (137, 9, None)

    spec = run(["/nonexistent/agent-binary"], name="missing")
    h = spawn(spec)
    assert h.wait_ended(5)
    assert h.exit_status() == 127
    last = read_logs(spec.log_dir, "stderr")[-1]  # from env (the fast launcher) or launch.py
    assert "/nonexistent/agent-binary" in last and "No such file or directory" in last


def test_bad_cwd_is_a_spawn_error(run: Callable[..., SpawnSpec], tmp_path: Path) -> None:
    spec = run(["true"], cwd=tmp_path / "nope")
    with pytest.raises(SpawnError):
        spawn(spec)
    assert adopt(spec.run_dir) is None, "a run that never started leaves nothing to adopt"
    with pytest.raises(SpawnError):
        spawn(run([], name="empty"))


SPAWNER = """
import json, sys, time
from pathlib import Path
from tether.process import SpawnSpec, spawn
spec = SpawnSpec(agent="a", argv=json.loads(sys.argv[1]), run_dir=Path(sys.argv[2]), log_dir=Path(sys.argv[3]),
                 cgroup=sys.argv[4])
h = spawn(spec)
print(h.agent_pid(), flush=True)
time.sleep(60)
"""


def start_spawner(argv: list[str], spec: SpawnSpec, cgroup: str = "auto") -> tuple[subprocess.Popen[str], int]:
    """The "daemon": a separate Python process that spawns the agent and then just sleeps."""
    env = dict(os.environ, PYTHONPATH=SRC + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.Popen(
        [sys.executable, "-c", SPAWNER, json.dumps(argv), str(spec.run_dir), str(spec.log_dir), cgroup],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert line.strip().isdigit(), f"spawner said {line!r}"
    return proc, int(line)


@pytest.mark.parametrize("code", [3, 0])
def test_daemon_sigkilled_then_adopt(run: Callable[..., SpawnSpec], tmp_path: Path, code: int) -> None:
    stop = tmp_path / "stop"
    spec = run([])
    daemon, agent_pid = start_spawner(["/bin/sh", "-c", TICKER, "sh", str(stop), str(code)], spec)
    daemon.kill()
    daemon.wait(5)

    # the agent keeps running and printing without its daemon
    before = len(read_logs(spec.log_dir, "stdout"))
    assert wait_for(lambda: len(read_logs(spec.log_dir, "stdout")) > before + 5)

    h = adopt(spec.run_dir)
    assert isinstance(h, KeeperHandle)
    assert h.running() and h.agent_pid() == agent_pid
    assert h.exit_status() is None
    agent = h.agent_id()
    assert agent is not None and agent.alive()

    assert h.wait_exit(0.05) is None and h.running()  # timed out
    stop.touch()
    t0 = time.monotonic()
    assert h.wait_exit(5) == code  # the keeper is not our child: pidfd
    assert time.monotonic() - t0 < 2
    assert h.exit_status() == code
    assert not agent.alive()
    lines = read_logs(spec.log_dir, "stdout")
    assert lines[-1] == "done"
    assert [int(line.split()[1]) for line in lines[:-1]] == list(range(len(lines) - 1))  # no line lost

    # later, with keeper and agent long gone, adopt still reports the exit code
    h2 = adopt(spec.run_dir)
    assert h2 is not None and not h2.running() and h2.exit_status() == code


def test_spawn_refuses_a_second_live_instance(run: Callable[..., SpawnSpec], tmp_path: Path) -> None:
    stop = tmp_path / "stop"
    spec = run(["/bin/sh", "-c", TICKER, "sh", str(stop), "0"])
    first = spawn(spec)
    with pytest.raises(AlreadyRunning) as err:
        spawn(spec)
    assert err.value.agent_pid == first.agent_pid()
    # also from another process that only has the run folder (the daemon restarted)
    daemon_spec = SpawnSpec(agent=spec.agent, argv=["true"], run_dir=spec.run_dir, log_dir=spec.log_dir)
    with pytest.raises(AlreadyRunning):
        spawn(daemon_spec)
    stop.touch()
    assert first.wait_ended(5) and first.exit_status() == 0
    second = spawn(daemon_spec)  # the old run ended: a new one may start
    assert second.wait_ended(5) and second.exit_status() == 0
    assert second.instance != first.instance


def test_adopt_never_trusts_a_bare_pid(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    assert adopt(run_dir) is None
    run_dir.mkdir()
    assert adopt(run_dir) is None
    me = ProcessId.me()
    # our own PID, but another start time (a reused PID) and another boot (a reboot)
    (run_dir / "keeper.pid").write_text(f"{me.pid} {int(me.start_time) + 1} {me.boot_id}\n")
    (run_dir / "agent.pid").write_text(f"{me.pid} {me.start_time} not-this-boot\n")
    h = adopt(run_dir)
    assert h is not None
    assert not h.keeper_alive() and not h.agent_alive() and not h.running()
    assert h.lost() and h.exit_status() is None
    assert h.wait_ended(0.1)
    (run_dir / "exit").write_text("7\n")
    assert not h.lost() and h.exit_status() == 7


def test_watch_fd_for_the_event_loop(run: Callable[..., SpawnSpec], tmp_path: Path) -> None:
    stop = tmp_path / "stop"
    h = spawn(run(["/bin/sh", "-c", TICKER, "sh", str(stop), "5"]))
    fd = h.watch_fd()
    if fd is None:
        pytest.skip("no pidfd support")
    try:
        poller = select.poll()
        poller.register(fd, select.POLLIN)
        assert poller.poll(50) == []
        stop.touch()
        assert poller.poll(5000)
    finally:
        os.close(fd)
    assert wait_for(lambda: h.exit_status() == 5)


@pytest.mark.skipif(not IS_ROOT, reason="run_as needs root")
def test_run_as_user(run: Callable[..., SpawnSpec], tmp_path: Path, test_user: str) -> None:
    import pwd

    name = test_user
    pw = pwd.getpwnam(name)
    spec = run(["/bin/sh", "-c", 'id -u; id -g; echo "$HOME $USER"; sleep 30'], user=name)
    h = spawn(spec)
    agent = h.agent_id()
    assert agent is not None
    assert wait_for(lambda: len(read_logs(spec.log_dir, "stdout")) >= 3)
    uid, gid, home_user = read_logs(spec.log_dir, "stdout")[:3]
    assert (int(uid), int(gid)) == (pw.pw_uid, pw.pw_gid)
    assert home_user == f"{pw.pw_dir} {name}"
    assert psutil.Process(agent.pid).uids().real == pw.pw_uid
    assert psutil.Process(agent.pid).uids().effective == pw.pw_uid
    keeper = h.keeper_id
    assert keeper is not None and psutil.Process(keeper.pid).uids().real == 0  # the keeper stays root
    report = h.kill("TERM", grace=2)
    assert report.ok
    assert h.wait_ended(5) and h.exit_status() == 143

    with pytest.raises(SpawnError, match="does not exist"):
        spawn(run(["true"], name="nouser", user="tether-no-such-user"))


def test_keeper_sigkilled_agent_lives_on_exit_is_lost(run: Callable[..., SpawnSpec], tmp_path: Path) -> None:
    stop = tmp_path / "stop"
    spec = run(["/bin/sh", "-c", TICKER, "sh", str(stop), "4"])
    h = spawn(spec)
    keeper, agent = h.keeper_id, h.agent_id()
    assert keeper is not None and agent is not None
    os.kill(keeper.pid, signal.SIGKILL)
    assert wait_for(lambda: not keeper.alive())
    later = adopt(spec.run_dir)
    assert later is not None
    assert later.running() and not later.keeper_alive() and later.agent_alive()
    assert not later.wait_ended(0.05)
    stop.touch()
    assert later.wait_ended(5)  # waits on the agent itself now
    assert later.exit_status() is None and later.lost()


def test_spawn_lock_is_bounded(run: Callable[..., SpawnSpec]) -> None:
    import fcntl

    spec = run(["true"])
    spec.run_dir.mkdir(parents=True)
    fd = os.open(spec.run_dir / "spawn.lock", os.O_RDWR | os.O_CREAT)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # "another daemon" is mid-spawn (or SIGSTOPped there)
        with pytest.raises(AlreadyRunning, match="being started"):
            spawn(spec, timeout=0.2)
    finally:
        os.close(fd)
    assert spawn(spec).wait_ended(5)


def test_wait_exit_can_be_cancelled(run: Callable[..., SpawnSpec], tmp_path: Path) -> None:
    import threading

    stop = tmp_path / "stop"
    h = spawn(run(["/bin/sh", "-c", TICKER, "sh", str(stop), "0"]))
    wake = threading.Event()
    threading.Timer(0.1, wake.set).start()
    t0 = time.monotonic()
    assert h.wait_exit(None, cancel=wake) is None and h.running()
    assert time.monotonic() - t0 < 2
    stop.touch()
    assert h.wait_exit(5, cancel=threading.Event()) == 0
