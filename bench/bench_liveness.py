"""Liveness without the SDK (``daemon/liveness.py``), with a real daemon: what it costs the daemon to beat for
its agents, against the same daemon with the same agents and no beats at all (``source: sdk``, silent).

- ``process``: agents that never beat (``sleep``), the daemon beating for each every second;
- ``output``: agents printing a line a second, each line a beat (a ``stat`` of both logs per agent per
  wake, the last line read from the end when one changed).

Quick: 50 agents for 10 s; full: 200 agents for 30 s. Goals: no false ``stale`` state, the daemon's CPU
≤ 10 % of one core.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import yaml

from common import PYTHON, row, stop

PERSON = {"name": "Bench", "contact": "json://127.0.0.1:9/bench"}
PRINTER = "i=0; while :; do i=$((i+1)); echo \"line $i\"; sleep 1; done"


@contextlib.contextmanager
def _daemon(root: Path, n: int, source: str) -> Iterator[tuple[psutil.Process, Path]]:
    state = root / "state"
    command = ["sh", "-c", PRINTER] if source == "output" else ["sleep", "3600"]
    agents = {
        f"a{i:03d}": {"owner": PERSON, "backup": PERSON, "command": command, "sandbox": "off",
                      "heartbeat": {"source": source, "interval": "1s", "stale_after": "3s",
                                    **({"stale_after": "1h"} if source == "sdk" else {})}}
        for i in range(n)
    }
    doc = {"version": 1, "host": {"state_dir": str(state), "listen": "127.0.0.1:0"}, "agents": agents}
    (root / "tether.yaml").write_text(yaml.safe_dump(doc))
    env = {k: v for k, v in os.environ.items() if not k.startswith("TETHER_")}
    log = open(root / "daemon.log", "ab")  # noqa: SIM115 - the child's
    proc = subprocess.Popen([PYTHON, "-m", "tether", "-f", str(root / "tether.yaml"), "up", "--foreground"],
                            env=env, stdout=log, stderr=log, stdin=subprocess.DEVNULL)
    db = state / "tether.db"
    try:
        deadline, started = time.monotonic() + 300, 0
        while time.monotonic() < deadline:
            with contextlib.suppress(sqlite3.Error):
                with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as conn:
                    started = conn.execute("SELECT count(*) FROM agents WHERE state = 'running'").fetchone()[0]
                if started == n and (state / "daemon.json").exists():
                    break
            time.sleep(0.2)
        else:
            raise RuntimeError(f"the daemon ran {started} of its {n} agents ({source}) after 300 s")
        yield psutil.Process(proc.pid), db
    finally:
        stop(proc)
        log.close()


def _measure(n: int, seconds: float, source: str) -> tuple[float, int]:
    """(daemon CPU % of one core over ``seconds``, false stale states) once every agent runs."""
    with tempfile.TemporaryDirectory(dir=Path(__file__).parent) as tmp, _daemon(Path(tmp), n, source) as (p, db):
        time.sleep(2.0)  # past the starts: what is measured is the steady state
        with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as conn:
            since = conn.execute("SELECT COALESCE(MAX(id), 0) FROM events").fetchone()[0]
        cpu0, t0 = p.cpu_times(), time.monotonic()
        time.sleep(seconds)
        cpu1, t1 = p.cpu_times(), time.monotonic()
        with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as conn:
            stale = conn.execute(
                "SELECT count(*) FROM events WHERE id > ? AND kind = 'agent.state' AND data LIKE '%\"stale\"%'",
                (since,),
            ).fetchone()[0]
    used = (cpu1.user + cpu1.system) - (cpu0.user + cpu0.system)
    return 100 * used / (t1 - t0), int(stale)


def run(quick: bool) -> list[dict[str, object]]:
    n, seconds = (50, 10.0) if quick else (200, 30.0)
    idle, _ = _measure(n, seconds, "sdk")
    rows = []
    for source, what in (("process", "that never beat (source: process)"),
                         ("output", "printing a line a second (source: output)")):
        cpu, stale = _measure(n, seconds, source)
        rows.append(row(f"{n} agents {what} for {seconds:g}s: daemon CPU, % of one core (baseline: the same "
                        "agents silent, source: sdk)", cpu, idle, "%", "≤ 10 %, no false stale",
                        cpu <= 10.0 and stale == 0))
    return rows


if __name__ == "__main__":
    for r in run(quick="--quick" in sys.argv):
        print(r)
