"""ProcessId: boot id + pid + start time; a reused PID or a PID from another boot is not alive."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tether.process import ProcessId, platform, read_pid_file
from tether.process.identity import write_pid_file

linux_only = pytest.mark.skipif(not platform.IS_LINUX, reason="Linux /proc")


def test_of_me_is_alive_and_round_trips() -> None:
    me = ProcessId.me()
    assert me.pid == os.getpid() and me.alive()
    assert ProcessId.from_dict(json.loads(json.dumps(me.to_dict()))) == me
    assert ProcessId.from_line(me.to_line()) == me
    assert me.same_process(ProcessId.of(os.getpid()))


@linux_only
def test_start_time_is_field_22_in_ticks() -> None:
    stat = Path(f"/proc/{os.getpid()}/stat").read_text()
    ticks = int(stat[stat.rindex(")") + 2 :].split()[19])
    me = ProcessId.me()
    assert me.start_time == ticks and isinstance(me.start_time, int)
    assert me.boot_id == Path("/proc/sys/kernel/random/boot_id").read_text().strip()


def test_reused_pid_and_other_boot_are_not_alive() -> None:
    me = ProcessId.me()
    assert isinstance(me.start_time, int | float)
    reused = ProcessId(me.boot_id, me.pid, me.start_time + 1)  # same pid, different start time
    before_reboot = ProcessId("00000000-0000-0000-0000-000000000000", me.pid, me.start_time)
    assert not reused.alive()
    assert not before_reboot.alive()
    assert not reused.same_process(me)


def test_exited_and_zombie_processes_are_not_alive() -> None:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    ident = ProcessId.of(proc.pid)
    assert ident is not None
    # wait for it to exit without reaping it: a zombie counts as gone
    os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOWAIT)
    assert not ident.alive()
    proc.wait()
    assert not ident.alive()
    assert ProcessId.of(proc.pid) is None or ProcessId.of(proc.pid) != ident
    assert ProcessId.of(0) is None and ProcessId.of(-5) is None


def test_pid_file_round_trip_and_bad_input(tmp_path: Path) -> None:
    me = ProcessId.me()
    path = tmp_path / "agent.pid"
    write_pid_file(path, me)
    assert path.read_text() == f"{me.pid} {me.start_time} {me.boot_id}\n"
    assert read_pid_file(path) == me
    assert read_pid_file(tmp_path / "missing.pid") is None
    path.write_text("garbage\n")
    assert read_pid_file(path) is None
    # the keeper writes "-" where it cannot read /proc: completed from the live process
    path.write_text(f"{me.pid} - -\n")
    assert read_pid_file(path) == me
    assert read_pid_file(path) == me
    with pytest.raises(ValueError):
        ProcessId.from_dict({"boot_id": "x", "pid": 1, "start_time": "soon"})
