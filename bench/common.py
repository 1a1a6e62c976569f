"""Helpers shared by the benchmarks: interleaved timing so a noisy machine misleads both sides alike."""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

PYTHON = sys.executable
BIN = Path(PYTHON).parent


def row(name: str, tether: float, baseline: float, unit: str, goal: str, ok: bool) -> dict[str, object]:
    return {
        "name": name,
        "tether": tether,
        "baseline": baseline,
        "unit": unit,
        "ratio": tether / baseline if baseline else float("nan"),
        "goal": goal,
        "ok": ok,
    }


def interleave(a: Callable[[], float], b: Callable[[], float], rounds: int) -> tuple[list[float], list[float]]:
    """Run a and b alternately ``rounds`` times each; return both lists of samples."""
    xs, ys = [], []
    for i in range(rounds):
        if i % 2:
            ys.append(b())
            xs.append(a())
        else:
            xs.append(a())
            ys.append(b())
    return xs, ys


def wall(argv: list[str], env: dict[str, str] | None = None) -> Callable[[], float]:
    full_env = {**os.environ, **(env or {})}

    def once() -> float:
        start = time.perf_counter()
        subprocess.run(argv, env=full_env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
        return time.perf_counter() - start

    return once


median = statistics.median


def wait_until(pred: Callable[[], object], timeout: float, what: str, interval: float = 0.02) -> None:
    """Poll ``pred`` every ``interval`` seconds until it is truthy; a RuntimeError naming ``what`` after
    ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        time.sleep(interval)


def stop(proc: subprocess.Popen[bytes], timeout: float = 60) -> None:
    """SIGTERM, then SIGKILL if it does not end within ``timeout``."""
    proc.terminate()
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
