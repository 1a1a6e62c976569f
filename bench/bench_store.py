"""Event append throughput through the store API against raw sqlite3 ``executemany`` with the same
batch size and durability (WAL, synchronous=FULL) on the same kind of file. Goal: ≥ 0.8× raw."""

from __future__ import annotations

import json
import sqlite3
import tempfile
import time
from pathlib import Path

from tether.store import NewEvent
from tether.store.sqlite import SQLiteStore

from common import interleave, median, row

DATA = {"line": "ran pytest -q: 42 passed", "n": 1}


def _raw(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("CREATE TABLE events (id INTEGER PRIMARY KEY AUTOINCREMENT, ts REAL NOT NULL, node TEXT, "
                 "agent TEXT, kind TEXT NOT NULL, data TEXT NOT NULL)")
    conn.execute("CREATE INDEX events_agent_id ON events (agent, id)")
    conn.execute("CREATE INDEX events_ts ON events (ts)")
    return conn


def _measure(tmp: Path, batch: int, rounds: int, per_round: int) -> dict[str, object]:
    store = SQLiteStore(tmp / f"store-{batch}.db")
    raw = _raw(tmp / f"raw-{batch}.db")

    def api() -> float:
        start = time.perf_counter()
        for _ in range(per_round):
            store.append([NewEvent("log", "bench-agent", DATA) for _ in range(batch)])
        return per_round * batch / (time.perf_counter() - start)

    def baseline() -> float:
        start = time.perf_counter()
        for _ in range(per_round):
            rows = [(time.time(), None, "bench-agent", "log", json.dumps(DATA)) for _ in range(batch)]
            raw.execute("BEGIN")
            raw.executemany("INSERT INTO events (ts, node, agent, kind, data) VALUES (?, ?, ?, ?, ?)", rows)
            raw.execute("COMMIT")
        return per_round * batch / (time.perf_counter() - start)

    ours, theirs = interleave(api, baseline, rounds)
    store.close()
    raw.close()
    t, b = median(ours), median(theirs)
    return row(f"append, batch of {batch} (events/s) vs raw sqlite3", t, b, "ev/s", "≥ 0.8× raw", t >= 0.8 * b)


def run(quick: bool) -> list[dict[str, object]]:
    with tempfile.TemporaryDirectory(dir=Path(__file__).parent) as tmp:
        return [
            _measure(Path(tmp), 1, 6 if quick else 20, 20 if quick else 50),
            _measure(Path(tmp), 100, 6 if quick else 20, 5 if quick else 20),
        ]


if __name__ == "__main__":
    for r in run(quick=False):
        print(r)
