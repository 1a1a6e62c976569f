"""A process that ends while the kill looks at it is gone, not a survivor.

Under load, `tether kill` once reported "1 process survived the kill" for an agent whose tree was gone:
the process layer looked at a process twice (its start time, then whether it was a zombie), and a zombie
reaped between the two looks (by its parent, or by init for an orphan) read as "not a zombie", so alive.
Here the reaper acts right after tether's first look at a real zombie, on both process paths (``/proc``,
and psutil with ``TETHER_PROCESS_FALLBACK=1``).
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator

import psutil
import pytest

from tether.process import ProcessId, RunIdentities, find_tree, platform


@pytest.fixture
def zombie(monkeypatch: pytest.MonkeyPatch) -> Iterator[ProcessId]:
    """A real child that has exited and is not reaped yet; it is reaped right after tether first looks at it."""
    child = subprocess.Popen(["true"])
    os.waitid(os.P_PID, child.pid, os.WEXITED | os.WNOWAIT)  # ended, still a zombie
    ident = ProcessId.of(child.pid)
    assert ident is not None, "a zombie still has an identity"
    looked = False

    def reap_after_first_look(pid: int) -> None:
        nonlocal looked
        if pid == child.pid and not looked:
            looked = True
            child.wait()  # the reaper acts between this look and the next

    if platform.PROC:
        real_stat = platform.proc_stat

        def proc_stat(pid: int) -> platform.ProcStat | None:
            got = real_stat(pid)
            reap_after_first_look(pid)
            return got

        monkeypatch.setattr(platform, "proc_stat", proc_stat)
    else:
        real_init = psutil.Process.__init__

        def init(self: psutil.Process, pid: int | None = None) -> None:
            real_init(self, pid)
            reap_after_first_look(self.pid)

        monkeypatch.setattr(psutil.Process, "__init__", init)
    yield ident
    assert looked, "tether never looked at the zombie: the test proved nothing"
    child.wait()


def test_a_zombie_reaped_between_looks_is_not_alive(zombie: ProcessId) -> None:
    assert not zombie.alive()


def test_a_zombie_reaped_between_looks_is_not_found(zombie: ProcessId) -> None:
    found = find_tree(RunIdentities(keeper=None, agent=zombie), None, scan_env=False)
    assert found == {}, f"an ended process was found as alive: {found}"


def test_a_live_process_is_still_found_in_one_look() -> None:
    child = subprocess.Popen(["sleep", "30"])
    try:
        ident = ProcessId.live(child.pid)
        assert ident is not None and ident.same_process(ProcessId.of(child.pid)) and ident.alive()
        assert list(find_tree(RunIdentities(keeper=None, agent=ident), None, scan_env=False)) == [child.pid]
    finally:
        child.kill()
        child.wait()
    assert ProcessId.live(child.pid) is None and not ident.alive()
