"""The run folder of one agent run (``<state>/agents/<agent>/run`` or wherever the daemon puts it).

Everything needed to find, adopt or kill a run lives here as small files, so ``tether kill`` works with no
daemon and no store:

``run.json``    written by ``spawn`` before the keeper starts: agent, instance, argv, user, log dir, cgroup
``keeper.pid``  ``PID START BOOT_ID`` of the keeper (written by the keeper itself)
``agent.pid``   ``PID START BOOT_ID`` of the agent (written by the keeper right after the fork)
``exit``        the agent's exit status as the shell saw it (``128+N`` when killed by signal N), written
                atomically by the keeper after ``wait``
``killed``      ``SIGNAME EPOCH`` written by ``kill_run`` before signalling (tells a kill from a crash)
``keeper.log``  the keeper's own stderr (only the keeper's errors; the agent logs to the log dir)
``spawn.lock``  held by ``spawn`` so two spawns of one run folder cannot race
"""

from __future__ import annotations

import json
import os
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tether.process.cgroup import AgentCgroup

RUN_JSON = "run.json"
KEEPER_PID = "keeper.pid"
AGENT_PID = "agent.pid"
EXIT = "exit"
KILLED = "killed"
KEEPER_LOG = "keeper.log"
SPAWN_LOCK = "spawn.lock"

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
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def write_run_info(run_dir: Path, info: RunInfo) -> None:
    write_atomic(run_dir / RUN_JSON, json.dumps(info.to_dict(), indent=2) + "\n")


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
