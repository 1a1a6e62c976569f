"""Log rotation keeps every line; reading and following across rotated files."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import pytest

from tether.process import follow, read_logs, rotate
from tether.process.logs import log_files

N = 10_000


def numbers(lines: list[str]) -> list[int]:
    return [int(line.split()[1]) for line in lines]


def all_numbers(log_dir: Path) -> Counter[int]:
    seen: Counter[int] = Counter()
    for path in log_files(log_dir, "stdout"):
        seen.update(int(line.split()[1]) for line in path.read_text().splitlines())
    return seen


def test_rotation_with_one_long_lived_writer_keeps_every_line(tmp_path: Path) -> None:
    """The agent holds one O_APPEND descriptor for its whole life; rotations rename under it."""
    fd = os.open(tmp_path / "stdout.log", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    rotations = 0
    try:
        for i in range(N):
            os.write(fd, f"line {i}\n".encode())
            if i % 1000 == 999 and rotate(tmp_path, max_bytes=1000, keep=50):
                rotations += 1
    finally:
        os.close(fd)
    assert rotations >= 1
    assert all_numbers(tmp_path) == Counter(range(N))
    assert numbers(read_logs(tmp_path, "stdout")) == list(range(N))


def test_rotation_across_restarts_keeps_every_line_in_order(tmp_path: Path) -> None:
    """Each batch of 500 is a new agent start (a fresh O_APPEND open of stdout.log), rotated mid-batch
    while the writer still holds its descriptor, and again between batches."""
    rotations = 0
    i = 0
    while i < N:
        fd = os.open(tmp_path / "stdout.log", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        try:
            for _ in range(500):
                os.write(fd, f"line {i}\n".encode())
                i += 1
                if i % 250 == 0 and rotate(tmp_path, max_bytes=1, keep=1000):
                    rotations += 1
        finally:
            os.close(fd)
        if rotate(tmp_path, max_bytes=1, keep=1000):
            rotations += 1
    assert rotations >= N // 500
    assert all_numbers(tmp_path) == Counter(range(N))
    assert numbers(read_logs(tmp_path, "stdout")) == list(range(N))


WRITER = """
import os, sys
path, n = sys.argv[1], int(sys.argv[2])
i = 0
while i < n:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)  # a restart every 700 lines
    for _ in range(700):
        if i >= n:
            break
        os.write(fd, f"line {i}\\n".encode())
        i += 1
    os.close(fd)
"""


def test_rotation_racing_a_writer_keeps_every_line(tmp_path: Path) -> None:
    """A writer process (reopening now and then, like restarts) races rotations."""
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(tmp_path / "stdout.log"), str(N)])
    rotations = 0
    deadline = time.monotonic() + 10
    while writer.poll() is None and time.monotonic() < deadline:
        if rotate(tmp_path, max_bytes=2000, keep=1000):
            rotations += 1
        time.sleep(0.001)
    assert writer.wait(5) == 0
    assert all_numbers(tmp_path) == Counter(range(N))
    assert numbers(read_logs(tmp_path, "stdout")) == list(range(N))


def test_rotate_shifts_and_drops_beyond_keep(tmp_path: Path) -> None:
    for gen in range(5):
        (tmp_path / "stdout.log").write_text(f"gen {gen}\n")
        assert rotate(tmp_path, max_bytes=1, keep=3) == [tmp_path / "stdout.log.1"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["stdout.log.1", "stdout.log.2", "stdout.log.3"]
    assert read_logs(tmp_path, "stdout") == ["gen 2", "gen 3", "gen 4"]
    (tmp_path / "stdout.log").write_text("small\n")
    assert rotate(tmp_path, max_bytes=1000) == []
    assert rotate(tmp_path / "missing", max_bytes=1) == []
    with pytest.raises(ValueError):
        rotate(tmp_path, max_bytes=1, keep=0)


def test_read_logs_tail_across_files(tmp_path: Path) -> None:
    (tmp_path / "stderr.log.2").write_text("".join(f"e {i}\n" for i in range(0, 100)))
    (tmp_path / "stderr.log.1").write_text("".join(f"e {i}\n" for i in range(100, 103)))
    (tmp_path / "stderr.log").write_text("e 103\ne 104")  # last line still being written
    assert numbers(read_logs(tmp_path, "stderr")) == list(range(105))
    assert numbers(read_logs(tmp_path, "stderr", tail_lines=3)) == [102, 103, 104]
    assert numbers(read_logs(tmp_path, "stderr", tail_lines=10)) == list(range(95, 105))
    assert read_logs(tmp_path, "stderr", tail_lines=0) == []
    assert read_logs(tmp_path / "nope", "stdout") == []
    with pytest.raises(ValueError):
        read_logs(tmp_path, "stdin")


def test_read_logs_tail_of_a_large_file(tmp_path: Path) -> None:
    (tmp_path / "stdout.log").write_text("".join(f"line {i}\n" for i in range(200_000)))
    assert numbers(read_logs(tmp_path, "stdout", tail_lines=5)) == list(range(199_995, 200_000))


def test_follow_sees_new_lines_rotation_and_restart(tmp_path: Path) -> None:
    (tmp_path / "stdout.log").write_text("line 0\nline 1\n")
    fd = os.open(tmp_path / "stdout.log", os.O_WRONLY | os.O_APPEND)
    got: list[str] = []
    done = threading.Event()

    def reader() -> None:
        for line in follow(tmp_path, "stdout", stop=done.is_set, tail_lines=1, poll=0.01):
            got.append(line)

    t = threading.Thread(target=reader)
    t.start()
    try:
        assert wait_until(lambda: got == ["line 1"])
        os.write(fd, b"line 2\n")
        assert wait_until(lambda: got[-1:] == ["line 2"])
        assert rotate(tmp_path, max_bytes=1)  # the writer keeps its descriptor: lines land in .1
        os.write(fd, b"line 3\n")
        assert wait_until(lambda: got[-1:] == ["line 3"])
        os.write(fd, b"line 4 (partial")
        os.close(fd)
        # the agent restarts: a new stdout.log; the old file is drained first
        (tmp_path / "stdout.log").write_text("line 5\n")
        assert wait_until(lambda: got[-1:] == ["line 5"])
    finally:
        done.set()
        t.join(5)
    assert got == ["line 1", "line 2", "line 3", "line 4 (partial", "line 5"]


def wait_until(pred: object, timeout: float = 3.0) -> bool:
    assert callable(pred)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(0.005)
    return bool(pred())
