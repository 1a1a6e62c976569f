"""CLI start-up: ``tether --help`` against a bare ``python3 -c pass`` (goal ≤ 2×), and
``tether status --json`` on 1,000 agents and 1,000,000 events (goal ≤ bare python + 75 ms)."""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path

from tether.store.sqlite import SQLiteStore

from common import BIN, PYTHON, interleave, median, row, wall


def _fill(home: Path, agents: int, events: int) -> None:
    store = SQLiteStore(home / "tether.db")
    now = time.time()
    info = json.dumps({"heartbeat": {"interval": 30, "stale_after": 120, "stuck_after": 1800}})
    store.run(lambda conn: conn.executemany(
        "INSERT INTO agents (name, state, state_since, last_heartbeat, last_progress, info, updated) "
        "VALUES (?, 'running', ?, ?, ?, ?, ?)",
        [(f"agent-{i:04d}", now, now, now, info, now) for i in range(agents)],
    ))
    data = json.dumps({"line": "worked on item", "n": 1})
    step = 50_000
    for start in range(0, events, step):
        n = min(step, events - start)
        store.append_raw([(now - events + start + i, f"agent-{(start + i) % agents:04d}", "log", data)
                          for i in range(n)])
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
    return out


if __name__ == "__main__":
    for r in run(quick=False):
        print(r)
