"""Liveness without the SDK: the daemon beats for agents whose ``heartbeat.source`` is not ``sdk``.

Called once per monitor wake (``Daemon._monitor_once``), before the agents are judged, so a beat it finds
counts in the same wake. Per agent with a live run:

``process``  alive while its run is: a beat every ``interval`` at most (its time: now; a wake beats every
             such agent past half its interval, so their beats fall together). Nothing here says whether
             it progresses: its ``stuck_after`` is off unless the runbook sets one (``Heartbeat.for_kind``),
             then judged on the progress the agent reports itself (``tether beat PROGRESS``, tasks).
``output``   a line written to ``stdout.log`` or ``stderr.log`` is a beat (its time: the file's
             modification time), the last line of the file written last the progress.
``file``     the status file's modification time is the beat, its first line the progress. It is read only
             when it is a regular file owned by the agent's own user (the user of its process), so a link to
             a file of the daemon's (a token in the state directory) is never read into the progress.

Beats are written through the daemon's ``BeatWriter`` only when the source shows something newer than what
was seen for this run, and waited for (bounded) before the monitor judges. Bounded work per wake: two
``stat`` calls per agent, and at most ``TAIL`` bytes read from the end of a log or ``HEAD`` from the start
of a status file, when it changed. Returns when it wants to look again: within each such agent's
``interval``.
"""

from __future__ import annotations

import contextlib
import os
import re
import stat
import sys
import time
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tether import redact

#: Bytes read from the end of a log for its last line, and from the start of a status file.
TAIL = 4096
HEAD = 4096
#: A progress is at most this long (as the API's beat takes it).
PROGRESS_MAX = 1000
#: How long the monitor waits for its beats to be written before it judges (they land later otherwise).
WRITE_WAIT = 2.0

_CONTROL = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b[@-_]|[\x00-\x08\x0b-\x1f\x7f]")


@dataclass
class _Run:
    """What was seen of one run of one agent."""

    instance: str | None
    at: float  # the time of the last beat written for it (its start before any)
    seen: dict[str, tuple[int, int, int]] = field(default_factory=dict)  # file -> (inode, size, mtime_ns)


class Liveness:
    def __init__(self, daemon: Any) -> None:
        self.daemon = daemon
        self._runs: dict[str, _Run] = {}
        self._said: set[tuple[str, str]] = set()  # (agent, problem) logged once

    def wake(self, now: float) -> float | None:
        """Beat for every live agent whose source shows something newer; the time to look again."""
        pending: list[Future[None]] = []
        soonest: float | None = None
        for name, sup in list(self.daemon.supervisors.items()):
            hb = sup.spec.heartbeat
            handle = sup.handle
            if hb.source == "sdk" or handle is None or not handle.running():
                self._runs.pop(name, None)
                continue
            run = self._runs.get(name)
            if run is None or run.instance != handle.instance:
                started = handle.info.started_at if handle.info is not None else now
                run = self._runs[name] = _Run(handle.instance, min(started, now))
            got = self._look(name, sup, handle, run, now)
            if got is not None:
                at, progress = got
                if progress is not None:
                    progress = redact.redact(progress)  # beats are no events: redacted here, as the API's
                pending.append(self.daemon.beats.submit(name, at, None, progress))
                run.at = at
            due = run.at + hb.interval if hb.source == "process" else now + hb.interval
            soonest = due if soonest is None else min(soonest, due)
        until = time.monotonic() + WRITE_WAIT
        for fut in pending:  # the store's error, if any, is the monitor's (it says so once)
            with contextlib.suppress(FutureTimeout):
                fut.result(timeout=max(0.0, until - time.monotonic()))
        for gone in set(self._runs) - set(self.daemon.supervisors):
            self._runs.pop(gone, None)
        return soonest

    def _look(self, name: str, sup: Any, handle: Any, run: _Run, now: float) -> tuple[float, str | None] | None:
        hb = sup.spec.heartbeat
        if hb.source == "process":  # due once interval has passed; the half-due beat along: fewer wakes
            return (now, None) if now - run.at >= hb.interval / 2 else None
        if hb.source == "output":
            log_dir = self.daemon.state.log_dir(name)
            newest: tuple[float, Path] | None = None
            for path in (log_dir / "stdout.log", log_dir / "stderr.log"):
                try:
                    st = path.stat()
                except OSError:
                    continue
                key = (st.st_ino, st.st_size, st.st_mtime_ns)
                if st.st_size == 0 or run.seen.get(path.name) == key:
                    continue
                run.seen[path.name] = key
                at = st.st_mtime_ns / 1e9
                if at > run.at and (newest is None or at > newest[0]):
                    newest = (at, path)
            if newest is None:
                return None
            return min(newest[0], now), last_line(newest[1])
        return self._status_file(name, sup, handle, run, now)

    def _status_file(self, name: str, sup: Any, handle: Any, run: _Run, now: float) -> tuple[float, str | None] | None:
        path = Path(os.path.expandvars(sup.spec.heartbeat.file)).expanduser()
        if not path.is_absolute():
            path = Path(sup.cwd) / path
        try:
            st = path.stat()
        except OSError:
            return None  # not there (yet): no beat; the agent goes stale in its time
        key = (st.st_ino, st.st_size, st.st_mtime_ns)
        if run.seen.get("file") == key:
            return None
        run.seen["file"] = key
        if not stat.S_ISREG(st.st_mode):  # never opened: a FIFO would block, a device act on its open
            self._say(name, "not a file", f"heartbeat.source file {path} is not a regular file: not read")
            return None
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
        except OSError:
            return None
        try:
            st = os.fstat(fd)  # what was opened (it may have been replaced since the stat)
            owner = _agent_uid(handle, sup.spec)
            if not stat.S_ISREG(st.st_mode):
                return None
            if owner is None or st.st_uid != owner:
                self._say(name, "owner", f"heartbeat.source file {path} belongs to uid {st.st_uid}, not to the "
                          f"agent's user{'' if owner is None else f' (uid {owner})'}: not read; the agent must "
                          "write it itself")
                return None
            at = st.st_mtime_ns / 1e9
            if at <= run.at:
                return None  # from before this run (or no newer than its last beat)
            head = os.pread(fd, HEAD, 0)
        except OSError:
            return None
        finally:
            os.close(fd)
        return min(at, now), _clean(head.decode(errors="replace").split("\n", 1)[0])

    def _say(self, name: str, problem: str, line: str) -> None:
        if (name, problem) not in self._said:
            self._said.add((name, problem))
            with contextlib.suppress(Exception):
                print(f"tether: {name}: {line}", file=sys.stderr, flush=True)


def last_line(path: Path) -> str | None:
    """The last non-empty line of ``path`` (after a carriage return, the text a terminal would show), from
    at most ``TAIL`` bytes at its end; None when there is none."""
    try:
        with open(path, "rb") as f:
            size = f.seek(0, os.SEEK_END)
            f.seek(max(0, size - TAIL))
            tail = f.read(TAIL)
    except OSError:
        return None
    lines = tail.decode(errors="replace").split("\n")
    if size > TAIL:
        lines = lines[1:] or lines  # the first is cut short
    for line in reversed(lines):
        shown = _clean(line.rstrip("\r").rsplit("\r", 1)[-1])
        if shown:
            return shown
    return None


def _clean(text: str) -> str | None:
    """Terminal escapes and control characters removed, clipped to ``PROGRESS_MAX``; None when empty."""
    text = _CONTROL.sub("", text).strip()
    return text[:PROGRESS_MAX] or None


def _agent_uid(handle: Any, spec: Any) -> int | None:
    """The uid the agent's process runs as (its /proc entry's owner), else the one it is set to run as."""
    pid = handle.agent_pid(0)
    if pid is not None:
        with contextlib.suppress(OSError):
            return os.stat(f"/proc/{pid}").st_uid
    if spec.run_as:
        import pwd

        with contextlib.suppress(KeyError):
            return pwd.getpwnam(spec.run_as).pw_uid
        return None
    return os.geteuid() if os.geteuid() != 0 else None
