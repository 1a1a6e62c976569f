"""The run folder of one agent run (``<state>/agents/<agent>/run`` or wherever the daemon puts it).

Everything needed to find, adopt or kill a run lives here as small files, so ``tether kill`` works with no
daemon and no store:

``run.json``    written by ``spawn`` before the keeper starts (on disk once it started): agent, instance, argv,
                user, log dir, cgroup
``keeper.pid``  ``PID START BOOT_ID`` of the keeper (written by the keeper itself)
``agent.pid``   ``PID START BOOT_ID`` of the agent (written by the keeper right after the fork)
``exit``        the agent's exit status as the shell saw it (``128+N`` when killed by signal N), written
                atomically by the keeper after ``wait``
``killed``      ``SIGNAME EPOCH`` written by ``kill_run`` before signalling (tells a kill from a crash)
``keeper.log``  the keeper's own stderr (only the keeper's errors; the agent logs to the log dir)
``spawn.lock``  held by ``spawn`` so two spawns of one run folder cannot race
``runs``        one JSON line per run started in this folder (instance, cgroup, start), appended by
                ``write_run_info``: a run's escaped descendants (``setsid``, double fork) outlive it, and the
                kill finds them through its instance and cgroup after ``run.json`` names a newer run. Runs whose
                cgroup is gone (empty, so removed) are dropped; of runs without a cgroup the last ``KEEP_RUNS``
                are kept
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tether.atomic import fsync_dir
from tether.atomic import write_atomic as replace
from tether.atomic import write_atomic as write
from tether.process.cgroup import AgentCgroup

RUN_JSON = "run.json"
KEEPER_PID = "keeper.pid"
AGENT_PID = "agent.pid"
EXIT = "exit"
KILLED = "killed"
KEEPER_LOG = "keeper.log"
SPAWN_LOCK = "spawn.lock"
RUNS = "runs"
KEEP_RUNS = 128  # earlier runs without a cgroup remembered for the environment scan

# Files of a previous run that a new spawn clears (``run.json`` is overwritten, ``keeper.log`` appended).
STALE = (KEEPER_PID, AGENT_PID, EXIT, KILLED, KEEPER_PID + ".tmp", AGENT_PID + ".tmp", EXIT + ".tmp")


@dataclass(frozen=True)
class RunInfo:
    agent: str
    instance: str
    argv: list[str]
    log_dir: Path
    cwd: str | None = None
    user: str | None = None
    cgroup: AgentCgroup | None = None
    started_at: float = field(default_factory=time.time)

    def to_dict(self) -> dict[str, Any]:
        return {
            "agent": self.agent,
            "instance": self.instance,
            "argv": list(self.argv),
            "log_dir": str(self.log_dir),
            "cwd": self.cwd,
            "user": self.user,
            "cgroup": None if self.cgroup is None else self.cgroup.to_dict(),
            "started_at": self.started_at,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunInfo:
        cg = data.get("cgroup")
        return cls(
            agent=str(data["agent"]),
            instance=str(data["instance"]),
            argv=[str(a) for a in data.get("argv", [])],
            log_dir=Path(data["log_dir"]),
            cwd=data.get("cwd"),
            user=data.get("user"),
            cgroup=None if cg is None else AgentCgroup.from_dict(cg),
            started_at=float(data.get("started_at", 0.0)),
        )


def write_atomic(path: Path, text: str) -> None:
    write(path, text)


def write_run_info(run_dir: Path, info: RunInfo) -> None:
    """Record the run about to start: ``run.json`` (replaced whole: a temp file renamed over it), and a line
    in ``runs`` (see the module doc). Not yet on disk: ``sync_run_info`` once the keeper is started, so the
    fsyncs (milliseconds, tens under I/O load) are not on the way to the agent's start; a power cut in
    between ends the run's processes with its record."""
    path = run_dir / RUN_JSON
    tmp = run_dir / f".{RUN_JSON}.{os.getpid()}.{threading.get_ident()}.tmp"
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(json.dumps(info.to_dict(), indent=2) + "\n")
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    remember_run(run_dir, info)


def sync_run_info(run_dir: Path) -> None:
    """``run.json`` and its rename on disk (after ``write_run_info``)."""
    with contextlib.suppress(OSError):
        fd = os.open(run_dir / RUN_JSON, os.O_RDONLY | os.O_CLOEXEC)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    fsync_dir(run_dir)


def _run_line(info: RunInfo) -> str:
    cg = None if info.cgroup is None else info.cgroup.to_dict()
    return json.dumps({"instance": info.instance, "cgroup": cg, "started_at": info.started_at}) + "\n"


def remember_run(run_dir: Path, info: RunInfo) -> None:
    """Append the run to ``runs`` (no fsync: a lost line only loses a run that had no time to escape);
    once it grows past ``2 * KEEP_RUNS`` lines, keep only the runs that may still hold processes."""
    path = run_dir / RUNS
    with open(path, "a+") as f:
        f.write(_run_line(info))
        f.seek(0)
        lines = f.read().count("\n")
    if lines > 2 * KEEP_RUNS:
        prune_runs(run_dir)


def read_runs(run_dir: Path) -> list[RunInfo]:
    """Every run recorded in ``runs`` (oldest first) and the current one from ``run.json``, each once."""
    runs: dict[str, RunInfo] = {}
    try:
        lines = (run_dir / RUNS).read_text().splitlines()
    except OSError:
        lines = []
    for line in lines:
        try:
            data = json.loads(line)
            cg = data.get("cgroup")
            runs[str(data["instance"])] = RunInfo(
                agent="", instance=str(data["instance"]), argv=[], log_dir=run_dir,
                cgroup=None if cg is None else AgentCgroup.from_dict(cg),
                started_at=float(data.get("started_at", 0.0)),
            )
        except (ValueError, KeyError, TypeError, AttributeError):
            continue  # a line cut short by a crash or a full disk
    current = read_run_info(run_dir)
    if current is not None:
        runs.pop(current.instance, None)
        runs[current.instance] = current
    return list(runs.values())


def prune_runs(run_dir: Path, settled: bool = False) -> None:
    """Rewrite ``runs`` with the runs that may still hold processes: those whose cgroup still exists (an
    empty one is removed here) and the last ``KEEP_RUNS`` without a cgroup (none when ``settled``: a kill
    just left nothing of them); the current run always."""
    runs = read_runs(run_dir)
    current = runs[-1].instance if (run_dir / RUN_JSON).exists() and runs else None
    keep: list[RunInfo] = []
    plain = 0
    for info in reversed(runs):
        if info.instance == current:
            keep.append(info)
        elif info.cgroup is not None:
            if info.cgroup.exists() and not info.cgroup.remove(timeout=0):
                keep.append(info)
        elif plain < KEEP_RUNS and not settled:
            plain += 1
            keep.append(info)
    try:
        replace(run_dir / RUNS, "".join(_run_line(i) for i in reversed(keep)))
    except OSError:
        pass  # a full disk: the longer list is still right


def read_run_info(run_dir: Path) -> RunInfo | None:
    try:
        return RunInfo.from_dict(json.loads((run_dir / RUN_JSON).read_text()))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def read_exit(run_dir: Path) -> int | None:
    """The agent's exit status from the ``exit`` file, or None while it runs (or when it was lost)."""
    try:
        text = (run_dir / EXIT).read_text().strip()
    except OSError:
        return None
    try:
        return int(text.split()[0])
    except (IndexError, ValueError):
        return None


def signal_of(code: int | None) -> int | None:
    """The signal number a shell status of ``128+N`` stands for (N in 1..64), else None.

    The shell cannot tell an agent killed by SIGKILL from one that called ``exit(137)``; ``killed`` in the
    run folder says whether tether sent the signal.
    """
    if code is None or not 128 < code <= 128 + 64:
        return None
    return code - 128


def mark_killed(run_dir: Path, sig: signal.Signals) -> None:
    try:
        write_atomic(run_dir / KILLED, f"{sig.name} {time.time():.3f}\n")
    except OSError:
        pass


def read_killed(run_dir: Path) -> str | None:
    try:
        return (run_dir / KILLED).read_text().split()[0]
    except (OSError, IndexError):
        return None
