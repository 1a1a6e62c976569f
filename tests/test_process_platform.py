"""Platform calls (tmpfs detection, sleep inhibitor, pidfd waits, signals, env scan) and the cgroup wrapper."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from tether.process import ProcessId, is_tmpfs, pidfd_wait, platform, sleep_inhibitor
from tether.process import cgroup as cgroups


def mount_types() -> dict[str, str]:
    return {m.mount_point: m.fstype for m in platform.mounts()}


def test_is_tmpfs(tmp_path: Path) -> None:
    if mount_types().get("/dev/shm") == "tmpfs":
        assert is_tmpfs("/dev/shm")
        assert is_tmpfs("/dev/shm/some/file/not/there/yet")
    m = platform.mount_of(tmp_path)
    assert m is not None
    assert is_tmpfs(tmp_path) == (m.fstype in ("tmpfs", "ramfs"))
    assert not is_tmpfs("/proc")


def test_sleep_inhibitor_is_held_or_says_why() -> None:
    with sleep_inhibitor("tether test") as inhibitor:
        assert inhibitor.message
        if inhibitor.active:
            assert inhibitor.process is not None and inhibitor.process.poll() is None
        proc = inhibitor.process
    if proc is not None:
        assert proc.poll() is not None  # released on exit


def test_pidfd_wait() -> None:
    if not platform.pidfd_supported():
        pytest.skip("no pidfds")
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(0.2)"])
    ident = ProcessId.of(proc.pid)
    assert ident is not None
    assert pidfd_wait(proc.pid, 0.01, ident.alive) is False
    t0 = time.monotonic()
    assert pidfd_wait(proc.pid, 5, ident.alive) is True
    assert time.monotonic() - t0 < 2
    proc.wait()
    assert pidfd_wait(proc.pid, 5, ident.alive) is True  # gone: at once


def test_send_signal_checks_identity() -> None:
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        ident = ProcessId.of(proc.pid)
        assert ident is not None
        stale = ProcessId(ident.boot_id, ident.pid, ident.start_time + 1)
        assert not platform.send_signal(proc.pid, signal.SIGKILL, stale.alive)
        assert proc.poll() is None
        assert not platform.send_signal(1, signal.SIGCONT) and not platform.send_signal(0, signal.SIGCONT)
        assert platform.send_signal(proc.pid, signal.SIGKILL, ident.alive)
        assert proc.wait(5) == -signal.SIGKILL
    finally:
        proc.kill()
        proc.wait()


def test_parse_signal() -> None:
    assert platform.parse_signal("TERM") == signal.SIGTERM
    assert platform.parse_signal("sigkill") == signal.SIGKILL
    assert platform.parse_signal("9") == signal.SIGKILL
    assert platform.parse_signal(2) == signal.SIGINT
    with pytest.raises(ValueError):
        platform.parse_signal("NOPE")


@pytest.mark.skipif(not platform.IS_LINUX, reason="Linux /proc")
def test_env_scan_matches_exactly() -> None:
    value = uuid.uuid4().hex
    env = dict(os.environ, TETHER_INSTANCE=value)
    near = dict(os.environ, TETHER_INSTANCE=value + "x")
    code = "import time; time.sleep(30)"
    hit = subprocess.Popen([sys.executable, "-c", code], env=env)
    miss = subprocess.Popen([sys.executable, "-c", code], env=near)
    try:
        assert platform.pids_with_env("TETHER_INSTANCE", value) == [hit.pid]
    finally:
        for p in (hit, miss):
            p.kill()
            p.wait()


def test_env_scan_finds_a_process_in_the_middle_of_an_exec(tmp_path: Path) -> None:
    """/proc/PID/environ reads empty while a process execs (the launcher execs the agent; a setsid
    descendant of an earlier run execs its next program): the kill's scan must not miss it then. A shell
    that re-execs itself 3,000 times is looked for 300 times; a scan that reads once misses it about one
    look in three on this machine."""
    value = uuid.uuid4().hex
    script = tmp_path / "reexec.sh"
    script.write_text(f'[ "$1" -gt 0 ] && exec /bin/sh {script} $(($1 - 1))\n')
    proc = subprocess.Popen(["/bin/sh", str(script), "3000"], env={"TETHER_INSTANCE": value, "PATH": os.defpath})
    missed, looks = 0, 0
    try:
        while looks < 300 and proc.poll() is None:
            got = platform.env_matches("TETHER_INSTANCE", {value})
            looks += 1
            if proc.pid not in got and proc.poll() is None:
                missed += 1
    finally:
        proc.kill()
        proc.wait()
    assert looks >= 50, "the shell ended before the scan could look at it"
    assert missed == 0, f"missed {missed} of {looks} looks"


def test_cgroup_group_name_is_one_safe_segment() -> None:
    assert cgroups.group_name("my agent/../x", "abc") == "my_agent_.._x-abc"
    assert "/" not in cgroups.group_name("../../etc", "i")
    assert not cgroups.group_name("..", "").startswith(".")


@pytest.mark.parametrize("version", ["v2", "v1"])
def test_cgroup_lifecycle(version: cgroups.Preference) -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root")
    group = cgroups.create("test", uuid.uuid4().hex[:8], version)
    if group is None:
        pytest.skip(f"no writable cgroup {version}")
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        assert group.to_dict() == cgroups.AgentCgroup.from_dict(group.to_dict()).to_dict()
        group.add(proc.pid)
        assert group.pids() == {proc.pid}
        assert not group.remove(timeout=0.05)  # never removes a populated group
        if group.can_freeze:
            assert group.freeze()
            assert group.frozen()
            group.thaw()
            assert not group.frozen()
        if group.can_kill:
            assert group.kill()
            assert proc.wait(5) == -signal.SIGKILL
        else:
            proc.kill()
            proc.wait(5)
        assert group.remove(timeout=2)
        assert not group.exists()
    finally:
        proc.kill()
        proc.wait()
        group.remove(timeout=0.5)
    assert cgroups.create("test", "x", "none") is None
