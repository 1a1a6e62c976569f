"""The agent's log files: ``stdout.log`` and ``stderr.log`` in its log dir, plus rotated ``*.log.1`` … ``.N``.

The keeper opens the log files with O_APPEND and hands them to the agent: no pipe, no copy, nothing lost
when the daemon dies. Rotation therefore renames rather than copies: ``rotate`` moves ``stdout.log`` to
``stdout.log.1`` (shifting older files up, dropping the one past ``keep``). A running agent still holds
its descriptor, so the lines it writes after the rename land in the renamed file — every line is kept,
in order — and a fresh ``stdout.log`` only starts when the agent next starts. So rotation bounds the
logs across restarts, not within one very chatty run. Readers see the files oldest first:
``.N`` … ``.1``, then ``stdout.log``.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

STREAMS = ("stdout", "stderr")
_BLOCK = 64 * 1024


def log_path(log_dir: Path, stream: str) -> Path:
    if stream not in STREAMS:
        raise ValueError(f"unknown log stream {stream!r} (use stdout or stderr)")
    return Path(log_dir) / f"{stream}.log"


def log_files(log_dir: Path, stream: str) -> list[Path]:
    """The stream's existing files, oldest first (highest rotation number first, the current file last)."""
    current = log_path(log_dir, stream)
    pattern = re.compile(re.escape(current.name) + r"\.(\d+)")
    numbered: list[tuple[int, Path]] = []
    try:
        entries = list(Path(log_dir).iterdir())
    except FileNotFoundError:
        return []
    for entry in entries:
        m = pattern.fullmatch(entry.name)
        if m:
            numbered.append((int(m.group(1)), entry))
    files = [p for _, p in sorted(numbered, reverse=True)]
    if current.exists():
        files.append(current)
    return files


def rotate(log_dir: Path, max_bytes: int, keep: int = 5, streams: tuple[str, ...] = STREAMS) -> list[Path]:
    """Rotate each stream whose current file has reached ``max_bytes``; returns the files rotated away.

    ``stdout.log`` → ``stdout.log.1``, ``.1`` → ``.2`` …; ``.keep`` is deleted first (those lines are gone by
    policy, everything newer is kept). Call it before each agent start and periodically.
    """
    if keep < 1:
        raise ValueError("keep must be at least 1")
    rotated: list[Path] = []
    for stream in streams:
        current = log_path(log_dir, stream)
        try:
            size = current.stat().st_size
        except FileNotFoundError:
            continue
        if size < max_bytes or size == 0:
            continue
        base = str(current)
        Path(f"{base}.{keep}").unlink(missing_ok=True)
        for i in range(keep - 1, 0, -1):
            src = Path(f"{base}.{i}")
            if src.exists():
                os.replace(src, f"{base}.{i + 1}")
        os.replace(current, f"{base}.1")
        rotated.append(Path(f"{base}.1"))
    return rotated


def _decode(line: bytes) -> str:
    return line.decode("utf-8", errors="replace")


def _lines(data: bytes) -> list[bytes]:
    lines = data.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    return lines


def _tail(f: BinaryIO, end: int, n: int) -> list[bytes]:
    """The last ``n`` lines of bytes ``[0, end)`` of ``f`` (a final line without newline counts)."""
    pos, buf = end, b""
    while pos > 0 and buf.count(b"\n") <= n:
        step = min(_BLOCK, pos)
        pos -= step
        f.seek(pos)
        buf = f.read(step) + buf
    lines = _lines(buf)
    if pos > 0 and lines:
        lines = lines[1:]  # may be the end of a longer line
    return lines[-n:] if n else []


def _read_tail(files: list[tuple[Path, BinaryIO | None, int | None]], tail_lines: int | None) -> list[str]:
    """Lines of ``files`` (oldest first), each read up to its byte limit (None: to the end)."""
    chunks: list[list[bytes]] = []
    wanted = tail_lines
    for path, handle, limit in reversed(files):
        if wanted is not None and wanted <= 0:
            break
        try:
            f = handle if handle is not None else open(path, "rb")  # noqa: SIM115 - closed below unless borrowed
        except FileNotFoundError:
            continue
        try:
            end = limit if limit is not None else os.fstat(f.fileno()).st_size
            if wanted is None:
                f.seek(0)
                got = _lines(f.read(end))
            else:
                got = _tail(f, end, wanted)
                wanted -= len(got)
        finally:
            if handle is None:
                f.close()
        chunks.append(got)
    return [_decode(line) for chunk in reversed(chunks) for line in chunk]


def read_logs(log_dir: Path, stream: str = "stdout", tail_lines: int | None = None) -> list[str]:
    """The stream's lines across rotated files in order (without newlines); the last ``tail_lines`` only
    when given. Reads backwards from the end, so a small tail of large logs is cheap."""
    return _read_tail([(p, None, None) for p in log_files(log_dir, stream)], tail_lines)


def follow(
    log_dir: Path,
    stream: str = "stdout",
    stop: Callable[[], bool] = lambda: False,
    *,
    tail_lines: int | None = 0,
    poll: float = 0.1,
) -> Iterator[str]:
    """``tether logs -f``: yield the last ``tail_lines`` lines (default none; None: all), then each new line
    as it is written, until ``stop()`` returns True (checked every ``poll`` s). Asking ``follow`` for the
    tail, rather than calling ``read_logs`` first, leaves no gap between the two.

    Follows the file by descriptor, so a rotation (rename) does not lose its place; when a new current file
    appears (the agent restarted), the old one is drained and the new one followed from its start.
    """
    current = log_path(log_dir, stream)
    files = log_files(log_dir, stream)
    f: BinaryIO | None = None
    if files:
        try:
            f = open(files[-1], "rb")  # noqa: SIM115 - kept open while following, closed in finally
        except FileNotFoundError:  # rotated away meanwhile: start again
            yield from follow(log_dir, stream, stop, tail_lines=tail_lines, poll=poll)
            return
        end = os.fstat(f.fileno()).st_size
        older: list[tuple[Path, BinaryIO | None, int | None]] = [(p, None, None) for p in files[:-1]]
        yield from _read_tail([*older, (files[-1], f, end)], tail_lines)
        f.seek(end)
    pending = b""
    try:
        while True:
            if f is not None:
                data = f.read()
                if data:
                    pending += data
                    *complete, pending = pending.split(b"\n")
                    for line in complete:
                        yield _decode(line)
            # a new current file (the agent restarted): drain the old one, then switch
            try:
                st = current.stat()
            except FileNotFoundError:
                st = None
            if st is not None and (f is None or os.fstat(f.fileno()).st_ino != st.st_ino):
                if f is not None:
                    pending += f.read()
                    *complete, pending = pending.split(b"\n")
                    for line in complete:
                        yield _decode(line)
                    if pending:
                        yield _decode(pending)
                        pending = b""
                    f.close()
                try:
                    f = open(current, "rb")  # noqa: SIM115 - closed on switch and in finally
                except FileNotFoundError:
                    f = None
                continue
            if stop():
                if pending:
                    yield _decode(pending)
                return
            time.sleep(poll)
    finally:
        if f is not None:
            f.close()
