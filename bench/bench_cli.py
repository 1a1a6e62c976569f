"""CLI start-up: ``tether --help`` against a bare ``python3 -c pass`` (goal ≤ 2×),
``tether status --json`` on 1,000 agents and 1,000,000 events (goal ≤ bare python + 75 ms), and the
recovery commands with the daemon SIGSTOPped: ``tether kill`` and ``tether resume`` of an agent (a shell
and its child), given only the state directory (``--home``), given the runbook (``-f``), and with the
stopped daemon holding the store's write lock; median and max of N, one core kept busy by a shell loop
meanwhile (goal: each under 1 s)."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sqlite3
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import yaml

from tether.store.sqlite import SQLiteStore

from common import BIN, PYTHON, interleave, median, row, stop, wait_until, wall


def _fill(home: Path, agents: int, events: int) -> None:
    store = SQLiteStore(home / "tether.db")
    now = time.time()
    info = json.dumps({"heartbeat": {"interval": 30, "stale_after": 120, "stuck_after": 1800}})
    store.run(
        lambda conn: conn.executemany(
            "INSERT INTO agents (name, state, state_since, last_heartbeat, last_progress, info, updated) "
            "VALUES (?, 'running', ?, ?, ?, ?, ?)",
            [(f"agent-{i:04d}", now, now, now, info, now) for i in range(agents)],
        )
    )
    data = json.dumps({"line": "worked on item", "n": 1})
    step = 50_000
    for start in range(0, events, step):
        n = min(step, events - start)
        store.append_raw(
            [(now - events + start + i, f"agent-{(start + i) % agents:04d}", "log", data) for i in range(n)]
        )
    store.close()


def run(quick: bool) -> list[dict[str, object]]:
    tether = str(BIN / "tether")
    rounds = 10 if quick else 30
    bare = wall([PYTHON, "-c", "pass"])
    ours, base = interleave(wall([tether, "--help"]), bare, rounds)
    t, b = median(ours) * 1000, median(base) * 1000
    out = [row("tether --help vs python3 -c pass", t, b, "ms", "≤ 2× bare python", t <= 2 * b)]
    events = 100_000 if quick else 1_000_000
    with tempfile.TemporaryDirectory(dir=Path(__file__).parent) as tmp:
        home = Path(tmp)
        _fill(home, 1000, events)
        status = wall([tether, "--home", str(home), "status", "--json"])
        ours, base = interleave(status, bare, rounds)
        t, b = median(ours) * 1000, median(base) * 1000
        label = f"status --json, 1,000 agents, {events:,} events"
        out.append(row(label, t, b, "ms", "≤ bare python + 75 ms", t <= b + 75))
    return out + kill_rows(quick)


# --- kill and resume with the daemon SIGSTOPped ------------------------------------------------------------

PERSON = {"name": "Bench", "contact": "json://127.0.0.1:9/bench"}
TREE = ["sh", "-c", "sleep 3600 & while :; do sleep 1; done"]  # a shell and its child


@contextlib.contextmanager
def _daemon(root: Path) -> Iterator[subprocess.Popen[bytes]]:
    agent = {
        "owner": PERSON,
        "backup": PERSON,
        "sandbox": "off",
        "command": TREE,
        "kill": {"grace": "5s"},
        "heartbeat": {"interval": "1h", "stale_after": "1h", "stuck_after": "1h"},
    }
    doc = {
        "version": 1,
        "host": {"state_dir": str(root / "state"), "workspace_root": str(root / "ws"), "listen": "127.0.0.1:0"},
        "agents": {"victim": agent},
    }
    (root / "tether.yaml").write_text(yaml.safe_dump(doc))
    env = {k: v for k, v in os.environ.items() if not k.startswith("TETHER_")}
    with open(root / "daemon.log", "wb") as log:
        proc = subprocess.Popen(
            [PYTHON, "-m", "tether", "-f", str(root / "tether.yaml"), "up", "--foreground"],
            env=env,
            stdout=log,
            stderr=log,
            stdin=subprocess.DEVNULL,
        )
    try:
        wait_until(lambda: (root / "state" / "daemon.json").exists() or proc.poll() is not None, 30, "the daemon")
        if proc.poll() is not None:
            raise RuntimeError(f"the daemon exited: {(root / 'daemon.log').read_text()[-500:]}")
        yield proc
    finally:
        proc.send_signal(signal.SIGCONT)
        stop(proc)


def _running(run: Path) -> bool:
    """The agent's current run has started and not ended (its keeper wrote agent.pid, and no exit)."""
    return (run / "agent.pid").exists() and not (run / "exit").exists()


@contextlib.contextmanager
def _busy_core() -> Iterator[None]:
    busy = subprocess.Popen(["sh", "-c", "while :; do :; done"])
    try:
        yield
    finally:
        busy.kill()
        busy.wait()


def kill_rows(quick: bool) -> list[dict[str, object]]:
    n = 5 if quick else 15
    with tempfile.TemporaryDirectory(prefix="tether-bench-kill-") as tmp, _daemon(Path(tmp)) as daemon:
        root = Path(tmp)
        state, run = root / "state", root / "state" / "agents" / "victim" / "run"
        anywhere = root / "anywhere"  # no tether.yaml here: the state directory is all the CLI is given
        anywhere.mkdir()
        env = {k: v for k, v in os.environ.items() if not k.startswith("TETHER_")}
        modes = {
            "--home STATE": ["--home", str(state)],
            "-f RUNBOOK": ["-f", str(root / "tether.yaml")],
            "--home STATE, the stopped daemon holds the write lock": ["--home", str(state)],
        }
        took: dict[tuple[str, str], list[float]] = {}

        def timed(mode: str, verb: str, expect: str) -> None:
            started = time.perf_counter()
            got = subprocess.run(
                [PYTHON, "-m", "tether", *modes[mode], verb, "victim"],
                cwd=anywhere,
                env=env,
                capture_output=True,
                text=True,
                timeout=60,
            )
            took.setdefault((mode, verb), []).append(time.perf_counter() - started)
            if got.returncode != 0 or expect not in got.stdout:
                raise RuntimeError(f"tether {verb}: {got.stdout}{got.stderr}")

        with _busy_core():
            for _ in range(n):
                for mode in modes:
                    wait_until(lambda: _running(run), 30, "the agent to run")
                    time.sleep(0.2)  # its child started too
                    locker = None
                    daemon.send_signal(signal.SIGSTOP)
                    try:
                        if "lock" in mode:
                            locker = sqlite3.connect(state / "tether.db", timeout=10)
                            locker.execute("BEGIN IMMEDIATE")  # as a daemon stopped mid-write would
                        timed(mode, "kill", "victim: killed (")
                        timed(mode, "resume", "victim: kill switch lifted; the daemon")
                    finally:
                        if locker is not None:
                            locker.rollback()
                            locker.close()
                        daemon.send_signal(signal.SIGCONT)
                    subprocess.run(
                        [PYTHON, "-m", "tether", "--home", str(state), "start", "victim"],
                        env=env,
                        capture_output=True,
                        timeout=60,
                        check=True,
                    )
    out = []
    for (mode, verb), xs in took.items():
        t, worst = median(xs) * 1000, max(xs) * 1000
        out.append(
            row(
                f"{verb}, daemon SIGSTOPped, {mode}: median of {n} (max {worst:.0f} ms)",
                t,
                float("nan"),
                "ms",
                "< 1000 ms, max too",
                worst < 1000,
            )
        )
    return out


if __name__ == "__main__":
    for r in run(quick=False):
        print(r)
