"""Process identity: a PID is only a name for a while; (boot id, pid, start time) names one process for ever.

A PID is reused after the process exits, and PIDs restart after a reboot. ``ProcessId`` pins the process
down by also recording the boot it belongs to and the moment it started, so ``alive()`` is False for a
PID that now belongs to someone else. On Linux the start time is field 22 of ``/proc/PID/stat`` in clock
ticks since boot (an exact integer); on macOS (and with ``TETHER_PROCESS_FALLBACK=1``) it is psutil's
``create_time`` (a float).

On disk (``keeper.pid``, ``agent.pid``) an identity is one line ``PID START BOOT_ID`` so a human can still
``kill $(cut -d' ' -f1 agent.pid)``; the keeper shell script writes that line itself. ``START`` and
``BOOT_ID`` may be ``-`` where the keeper cannot read them (macOS); readers then fill them in.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tether.atomic import write_atomic
from tether.process import platform


@dataclass(frozen=True)
class ProcessId:
    boot_id: str
    pid: int
    start_time: float | int

    @classmethod
    def of(cls, pid: int) -> ProcessId | None:
        """The identity of the process running as ``pid`` now, or None when there is none."""
        if pid <= 0:
            return None
        start = platform.start_time(pid)
        if start is None:
            return None
        return cls(platform.boot_id(), pid, start)

    @classmethod
    def live(cls, pid: int) -> ProcessId | None:
        """The identity of ``pid`` when it runs now (not a zombie), from one look at it; else None."""
        if pid <= 0:
            return None
        start = platform.live_start_time(pid)
        return None if start is None else cls(platform.boot_id(), pid, start)

    @classmethod
    def me(cls) -> ProcessId:
        ident = cls.of(os.getpid())
        assert ident is not None
        return ident

    def alive(self) -> bool:
        """True while this very process runs: False after it exits (zombies count as exited), after a
        reboot (other boot id), or when its PID now belongs to another process (other start time)."""
        if self.boot_id != platform.boot_id():
            return False
        return platform.live_start_time(self.pid) == self.start_time  # one read: see live_start_time

    def same_process(self, other: ProcessId | None) -> bool:
        return other is not None and (self.boot_id, self.pid, self.start_time) == (
            other.boot_id,
            other.pid,
            other.start_time,
        )

    # --- serialisation ---------------------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        return {"boot_id": self.boot_id, "pid": self.pid, "start_time": self.start_time}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ProcessId:
        start = data["start_time"]
        if not isinstance(start, int | float) or isinstance(start, bool):
            raise ValueError(f"bad start_time {start!r}")
        return cls(str(data["boot_id"]), int(data["pid"]), start)

    def to_line(self) -> str:
        return f"{self.pid} {self.start_time} {self.boot_id}"

    @classmethod
    def from_line(cls, line: str) -> ProcessId | None:
        """Parse ``PID START BOOT_ID``; ``-`` for START/BOOT_ID is completed from the live process when it is
        there (only meaningful right after the keeper wrote it); None when the line is unusable."""
        parts = line.split()
        if not parts or not parts[0].isdigit():
            return None
        pid = int(parts[0])
        start_text = parts[1] if len(parts) > 1 else "-"
        boot = parts[2] if len(parts) > 2 else "-"
        if start_text == "-" or boot == "-" or _foreign(boot):
            return cls.of(pid)
        try:
            start: float | int = int(start_text)
        except ValueError:
            try:
                start = float(start_text)
            except ValueError:
                return None
        return cls(boot, pid, start)

    def __str__(self) -> str:
        return f"pid {self.pid} (start {self.start_time}, boot {self.boot_id[:8]})"


def read_pid_file(path: Path) -> ProcessId | None:
    """The identity stored in ``path`` (``PID START BOOT_ID``), or None when missing or unreadable."""
    try:
        text = path.read_text()
    except (FileNotFoundError, NotADirectoryError):
        return None
    except OSError:
        return None
    ident = ProcessId.from_line(text.strip())
    if ident is not None and (text.split()[1:2] == ["-"] or _foreign((text.split() + ["-"] * 3)[2])):
        write_pid_file(path, ident)  # macOS: pin the start time the keeper could not read
    return ident


def _foreign(boot: str) -> bool:
    """With ``TETHER_PROCESS_FALLBACK`` the keeper still writes /proc's start ticks and boot id: the reader
    takes them as unknown (as on macOS) and pins psutil's instead."""
    return platform.FALLBACK and boot == platform.kernel_boot_id()


def write_pid_file(path: Path, ident: ProcessId) -> None:
    write_atomic(path, ident.to_line() + "\n")
