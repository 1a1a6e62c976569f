"""A flood of hook events cannot grow the daemon: the hook monitor's queue holds at most BACKLOG_MAX jobs
(each holds a request's payload); past it jobs are dropped, counted, and told once as integration.backlog."""

from __future__ import annotations

import threading
from pathlib import Path

from tether.integrations import monitor as monitor_mod
from tether.integrations.monitor import Monitor
from tether.paths import StateDir
from tether.store import open_store


def test_a_full_backlog_drops_counts_and_tells_once(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'tether.db'}")
    mon = Monitor(store, StateDir(tmp_path / "state"), lambda agent, task: None)
    gate = threading.Event()
    ran: list[int] = []
    try:
        mon.later(gate.wait)  # the worker is busy until the gate opens
        for i in range(monitor_mod.BACKLOG_MAX + 250):
            mon.later(lambda i=i: ran.append(i))
        assert mon.dropped == 251  # BACKLOG_MAX waiting in all, the blocked one included
        told = [e for e in store.events(limit=100) if e.kind == "integration.backlog"]
        assert len(told) == 1 and told[0].data == {"dropped": 1, "limit": monitor_mod.BACKLOG_MAX}
    finally:
        gate.set()
    assert mon.drain()
    assert len(ran) == monitor_mod.BACKLOG_MAX - 1  # every job that was queued ran; nothing queued was lost
    mon.later(lambda: ran.append(-1))  # room again
    assert mon.drain() and ran[-1] == -1
    mon.stop()
    store.close()
