"""Whether the daemon of a state directory runs, from ``daemon.json`` and the process table alone: no
socket, no store, so it answers at once when the daemon is dead or SIGSTOPped. Views use it to say when
the daemon is not running; ``tether kill``, ``resume`` and ``down`` to act locally instead of waiting on
a daemon that cannot answer. Stdlib and plain strings only: ``tether status``'s fast path imports it."""

from __future__ import annotations

import json
import os
import sys
from typing import Any

RUNNING = "running"
STOPPED = "stopped"  # alive but SIGSTOPped (or traced): it answers nothing until SIGCONT
DOWN = "down"


def info(state_root: str | os.PathLike[str]) -> dict[str, Any] | None:
    """What the running (or last) daemon wrote of itself in ``daemon.json`` (its pid, URL, start), or None."""
    try:
        with open(os.path.join(os.fspath(state_root), "daemon.json"), encoding="utf-8") as f:
            data = json.load(f)
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def probe(root: str | os.PathLike[str]) -> dict[str, Any]:
    """``{"state": running|stopped|down, "pid": int|None, "started": float|None}`` for the daemon of
    state directory ``root``. ``pid``/``started`` are the last daemon's, from ``daemon.json`` (which a
    clean stop removes, and a crash leaves behind)."""
    try:
        with open(os.path.join(os.fspath(root), "daemon.json"), encoding="utf-8") as f:
            info = json.load(f)
    except (OSError, ValueError):
        return {"state": DOWN, "pid": None, "started": None}
    pid, started = info.get("pid"), info.get("started")
    if not isinstance(pid, int) or isinstance(pid, bool) or pid <= 0:
        return {"state": DOWN, "pid": None, "started": None}
    started = float(started) if isinstance(started, int | float) else None
    return {"state": _state_of(pid, started), "pid": pid, "started": started}


def _state_of(pid: int, started: float | None) -> str:
    if not sys.platform.startswith("linux"):  # macOS (untested): no /proc; a signal 0 says it exists
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return DOWN
        except PermissionError:
            return RUNNING
        return RUNNING
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return DOWN
    if started is not None and _start_time(int(fields[19])) > started + 2:
        return DOWN  # the pid now names a process that began after the daemon wrote daemon.json
    if fields[0] in ("Z", "X"):
        return DOWN
    return STOPPED if fields[0] in ("T", "t") else RUNNING


def _start_time(ticks: int) -> float:
    """A process's start (epoch seconds) from field 22 of ``/proc/PID/stat``."""
    try:
        with open("/proc/stat", encoding="ascii") as f:
            boot = next(float(line.split()[1]) for line in f if line.startswith("btime "))
    except (OSError, StopIteration, ValueError):
        return 0.0
    return boot + ticks / os.sysconf("SC_CLK_TCK")
