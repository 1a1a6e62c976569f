"""The process layer: agents run under a tiny per-agent keeper, are known by identity, and can be stopped —
whole tree — with or without the daemon.

- ``identity``  ``ProcessId`` (boot id + pid + start time): ``alive()`` is False for a reused PID
- ``keeper``    ``spawn(SpawnSpec) -> KeeperHandle``, ``adopt(run_dir)`` after a daemon restart
- ``tree``      ``kill_tree`` / ``kill_run``: process group + cgroup + ``TETHER_INSTANCE`` scan + descendants
- ``cgroup``    the per-run cgroup (v2 preferred, v1 pids + freezer otherwise)
- ``logs``      ``rotate``, ``read_logs``, ``follow``
- ``logindex``  when each log line was written and where each run begins (``CLOCK``, ``mark_run``, ``timed``)
- ``rundir``    the files of a run folder
- ``platform``  every Linux/macOS-specific call (``is_tmpfs``, ``sleep_inhibitor``, pidfds, /proc)
"""

from __future__ import annotations

from tether.process.cgroup import AgentCgroup
from tether.process.errors import AlreadyRunning, ProcessError, SpawnError
from tether.process.identity import ProcessId, read_pid_file
from tether.process.keeper import KeeperHandle, SpawnSpec, adopt, spawn
from tether.process.logindex import CLOCK
from tether.process.logs import follow, read_logs, rotate
from tether.process.platform import SleepInhibitor, is_tmpfs, pidfd_wait, sleep_inhibitor
from tether.process.rundir import RunInfo, read_run_info
from tether.process.tree import KillReport, RunIdentities, find_tree, kill_run, kill_tree

Spec = SpawnSpec  # short alias (the daemon calls process.Spec)

__all__ = [
    "CLOCK",
    "AgentCgroup",
    "AlreadyRunning",
    "KeeperHandle",
    "KillReport",
    "ProcessError",
    "ProcessId",
    "RunIdentities",
    "RunInfo",
    "SleepInhibitor",
    "SpawnError",
    "SpawnSpec",
    "Spec",
    "adopt",
    "find_tree",
    "follow",
    "is_tmpfs",
    "kill_run",
    "kill_tree",
    "pidfd_wait",
    "read_logs",
    "read_pid_file",
    "read_run_info",
    "rotate",
    "sleep_inhibitor",
    "spawn",
]
