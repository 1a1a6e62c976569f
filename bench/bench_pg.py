"""Event ingest through the store API on PostgreSQL beside SQLite, in the same run: batches of 1 and 100
from one thread, and batches of 1 from 8 threads (group commit). Both durable on return (SQLite WAL with
synchronous=FULL; PostgreSQL synchronous_commit=on). No goal beyond "reported": the figures say what a
fleet pays for a shared database. The server: ``$TETHER_BENCH_PG`` or
``postgresql://postgres@127.0.0.1:5432/test``; the run uses a schema of its own and drops it."""

from __future__ import annotations

import os
import secrets
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

from tether.store import NewEvent, Store, open_store

from common import interleave, median, row

SERVER = os.environ.get("TETHER_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/test")
DATA = {"line": "ran pytest -q: 42 passed", "n": 1}


def _url(schema: str) -> str:
    return f"{SERVER}{'&' if '?' in SERVER else '?'}schema={schema}"


def _rate(store: Store, batch: int, per_round: int, threads: int) -> Callable[[], float]:
    def one_thread() -> None:
        for _ in range(per_round):
            store.append([NewEvent("log", "bench-agent", DATA) for _ in range(batch)])

    def once() -> float:
        pool = [threading.Thread(target=one_thread) for _ in range(threads - 1)]
        start = time.perf_counter()
        for t in pool:
            t.start()
        one_thread()
        for t in pool:
            t.join()
        return threads * per_round * batch / (time.perf_counter() - start)

    return once


def run(quick: bool) -> list[dict[str, object]]:
    try:
        import psycopg
    except ImportError:
        return [row("PostgreSQL store: skipped, psycopg is not installed (pip install 'tether[postgres]')",
                    float("nan"), float("nan"), "ev/s", "reported", False)]
    try:
        admin = psycopg.connect(SERVER, autocommit=True, connect_timeout=5)
    except psycopg.Error as err:
        where = SERVER.rsplit("@", 1)[-1]
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        return [row(f"PostgreSQL store: skipped, cannot connect to {where} ({first})",
                    float("nan"), float("nan"), "ev/s", "reported", False)]
    schema = f"bench_{secrets.token_hex(4)}"
    rounds = 4 if quick else 12
    cases = [  # (batch, appends per round per thread, threads)
        (1, 30 if quick else 100, 1),
        (100, 5 if quick else 20, 1),
        (1, 15 if quick else 50, 8),
    ]
    rows: list[dict[str, object]] = []
    try:
        with tempfile.TemporaryDirectory(dir=Path(__file__).parent) as tmp:
            pg = open_store(_url(schema))
            lite = open_store(f"sqlite:///{Path(tmp) / 'tether.db'}")
            try:
                for batch, per_round, threads in cases:
                    ours, theirs = interleave(_rate(pg, batch, per_round, threads),
                                              _rate(lite, batch, per_round, threads), rounds)
                    p, s = median(ours), median(theirs)
                    who = f"{threads} threads, " if threads > 1 else ""
                    rows.append(row(f"append to PostgreSQL, {who}batch of {batch} (events/s) vs SQLite",
                                    p, s, "ev/s", "reported", True))
            finally:
                pg.close()
                lite.close()
    finally:
        admin.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        admin.close()
    return rows


if __name__ == "__main__":
    for r in run(quick=False):
        print(r)
