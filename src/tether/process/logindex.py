"""When an agent's log lines were written, and where each run begins: marks kept beside the logs.

The keeper hands the log files to the agent (O_APPEND, through the redaction ``sed``), so no tether code
sees a line as it is written, and ``sed`` cannot stamp one. Instead ``STREAM.idx`` in the log dir holds
marks, one a line:

- ``TIME INODE SIZE``: by TIME the file INODE was SIZE bytes long. The daemon's ``Clock`` takes one a
  second for each agent it supervises, only when the file grew or changed;
- ``TIME INODE SIZE run INSTANCE``: a run begins at byte SIZE of file INODE (``mark_run``, by ``spawn``
  just before the keeper starts).

A line's time is that of the first mark covering its end: the time it was on disk by, within a second
while a daemon watched the agent; a line past the last mark gets its file's modification time (when the
file was last written), so no line is stamped later than it was written. Rotation renames files and
keeps their inodes, so marks follow their file; ``mark_run`` drops the marks of files rotated away.
"""

from __future__ import annotations

import bisect
import contextlib
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from time import time as wall

from tether.process.logs import STREAMS, log_files, log_path

INTERVAL = 1.0  # seconds between the Clock's marks


def index_path(log_dir: Path, stream: str) -> Path:
    return Path(log_dir) / f"{stream}.idx"


def _append(log_dir: Path, stream: str, text: str) -> None:
    fd = os.open(index_path(log_dir, stream), os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o644)
    try:
        os.write(fd, text.encode())
    finally:
        os.close(fd)


def mark_run(log_dir: Path, instance: str, now: float | None = None) -> None:
    """Record that a run begins here, at the current end of each stream's file (made now if missing, as
    the keeper's ``>>`` would, so its inode is known)."""
    now = wall() if now is None else now
    live = set()
    for stream in STREAMS:
        fd = os.open(log_path(log_dir, stream), os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o644)
        try:
            st = os.fstat(fd)
        finally:
            os.close(fd)
        live |= {p.stat().st_ino for p in log_files(log_dir, stream) if p.exists()}
        _trim(log_dir, stream, live)
        _append(log_dir, stream, f"{now:.3f} {st.st_ino} {st.st_size} run {instance}\n")


def _trim(log_dir: Path, stream: str, live: set[int]) -> None:
    """Drop the marks of files no longer there (rotated past ``keep``)."""
    marks = read_marks(log_dir, stream)
    if all(m.inode in live for m in marks):
        return
    text = "".join(m.line() for m in marks if m.inode in live)
    path = index_path(log_dir, stream)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


@dataclass(frozen=True)
class Mark:
    time: float
    inode: int
    size: int
    run: str | None = None  # the instance whose run begins at ``size``

    def line(self) -> str:
        return f"{self.time:.3f} {self.inode} {self.size}{f' run {self.run}' if self.run else ''}\n"


def read_marks(log_dir: Path, stream: str) -> list[Mark]:
    try:
        text = index_path(log_dir, stream).read_text(errors="replace")
    except OSError:
        return []
    out = []
    for raw in text.splitlines():
        parts = raw.split()
        try:
            run = parts[4] if len(parts) == 5 and parts[3] == "run" else None
            out.append(Mark(float(parts[0]), int(parts[1]), int(parts[2]), run))
        except (ValueError, IndexError):
            continue  # a torn last line (a crash mid-write): the next mark covers it
    return out


class Clock:
    """One thread that marks the log files of every watched log dir once a second (while they change)."""

    def __init__(self, interval: float = INTERVAL) -> None:
        self.interval = interval
        self._dirs: dict[Path, dict[str, tuple[int, int]]] = {}
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    def watch(self, log_dir: Path) -> None:
        with self._lock:
            self._dirs.setdefault(Path(log_dir), {})
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="tether-logclock", daemon=True)
                self._thread.start()

    def unwatch(self, log_dir: Path) -> None:
        with self._lock:
            seen = self._dirs.pop(Path(log_dir), None)
        if seen is not None:
            with contextlib.suppress(OSError):
                self.mark(Path(log_dir), seen)  # the last lines it wrote

    def _run(self) -> None:
        while True:
            self._wake.wait(self.interval)
            with self._lock:
                dirs = list(self._dirs.items())
            for log_dir, seen in dirs:
                with contextlib.suppress(OSError):
                    self.mark(log_dir, seen)

    @staticmethod
    def mark(log_dir: Path, seen: dict[str, tuple[int, int]], now: float | None = None) -> None:
        """A mark for each stream whose file changed since ``seen`` (updated)."""
        for stream in STREAMS:
            try:
                st = log_path(log_dir, stream).stat()
            except FileNotFoundError:
                continue
            got = (st.st_ino, st.st_size)
            if seen.get(stream) != got and st.st_size:
                _append(log_dir, stream, f"{wall() if now is None else now:.3f} {got[0]} {got[1]}\n")
                seen[stream] = got


CLOCK = Clock()


@dataclass(frozen=True)
class Line:
    """A log line and when it was on disk by; or (``run`` set) the mark of a run beginning."""

    time: float
    text: str
    run: str | None = None


def _spans(data: bytes, base: int) -> Iterator[tuple[int, int, bytes]]:
    """(start, end, line) for each line of ``data``, which begins at byte ``base`` of its file."""
    pos = 0
    while pos < len(data):
        nl = data.find(b"\n", pos)
        end = len(data) if nl < 0 else nl
        yield base + pos, base + end, data[pos:end]
        pos = end + 1


def timed(log_dir: Path, stream: str = "stdout", tail: int | None = None, since: float | None = None) -> list[Line]:
    """The stream's lines, oldest first, each with its time, and a ``run`` line where each run begins;
    the last ``tail`` lines (None: all) of those written at or after ``since`` (None: all)."""
    marks = read_marks(log_dir, stream)
    files: list[list[Line]] = []
    count = 0
    for path in reversed(log_files(log_dir, stream)):  # newest first: a tail reads only the files it needs
        if tail is not None and since is None and count >= tail:
            break
        try:
            with open(path, "rb") as f:
                st = os.fstat(f.fileno())
                if since is not None and st.st_mtime < since:
                    break  # last written before `since`, and so is every older file
                data = f.read(st.st_size)
        except FileNotFoundError:
            continue  # rotated away meanwhile
        mine = sorted((m for m in marks if m.inode == st.st_ino), key=lambda m: m.size)
        sizes = [m.size for m in mine]
        runs = [m for m in mine if m.run]
        lines: list[Line] = []
        r = 0
        for start, end, raw in _spans(data, 0):
            while r < len(runs) and runs[r].size <= start:
                lines.append(Line(runs[r].time, "", runs[r].run))
                r += 1
            at = bisect.bisect_left(sizes, end + 1 if end < len(data) else end)  # on disk with its newline
            lines.append(Line(mine[at].time if at < len(mine) else st.st_mtime, raw.decode("utf-8", "replace")))
        lines += [Line(m.time, "", m.run) for m in runs[r:]]
        count += sum(ln.run is None for ln in lines)
        files.append(lines)
    out = [ln for lines in reversed(files) for ln in lines]
    if since is not None:  # a run's mark stays with its lines: it is made just before the run's first line
        kept, held = [], None
        for ln in out:
            if ln.run is not None and ln.time < since:
                held = ln
                continue
            if ln.time >= since:
                kept += [held, ln] if held is not None and ln.run is None else [ln]
            held = None
        out = kept
    if tail is not None:
        shown = 0
        for i in range(len(out) - 1, -1, -1):  # keep the last `tail` lines and the run marks among them
            shown += out[i].run is None
            if shown > tail:
                out = out[i + 1 :]
                break
    return out
