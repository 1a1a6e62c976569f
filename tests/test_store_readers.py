"""The SQLite store reads on a bounded pool of connections (issue 14): however many threads read, the
process holds at most ``READERS`` read connections to the store, and ``close()`` closes them. A connection
per thread grew with the daemon's request threads (28 under bench_fuzz, up to 40), each with its own page
cache of up to 2 MB. Counted from outside: the file descriptors this process holds on the store file."""

from __future__ import annotations

import os
import threading
from pathlib import Path

from tether.errors import StoreError
from tether.store import NewEvent
from tether.store.sqlite import READERS, SQLiteStore

THREADS = 32


def _open_on(path: Path) -> int:
    """File descriptors of this process on the database file itself (one per SQLite connection)."""
    n = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            n += os.readlink(f"/proc/self/fd/{fd}") == str(path)
        except OSError:
            pass
    return n


def _read_from_many_threads(store: SQLiteStore, rounds: int = 20) -> list[BaseException]:
    """THREADS threads, all started together, each reading ``rounds`` times and checking what it read."""
    errors: list[BaseException] = []
    gate = threading.Barrier(THREADS)

    def reader() -> None:
        try:
            gate.wait(10)
            for _ in range(rounds):
                got = store.events(limit=1000)
                assert [e.data["n"] for e in got] == list(range(50))
                assert store.count_events() == 50
        except BaseException as err:  # handed to the test
            errors.append(err)

    threads = [threading.Thread(target=reader) for _ in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not any(t.is_alive() for t in threads), "a reader is stuck"
    return errors


def test_many_threads_share_at_most_readers_connections_and_close_closes_them(tmp_path: Path) -> None:
    path = tmp_path / "tether.db"
    store = SQLiteStore(path)
    store.append([NewEvent("log", "a", {"n": i}) for i in range(50)])
    writer = _open_on(path)  # the write connection, opened by the first write
    assert writer == 1
    assert not _read_from_many_threads(store)
    assert 1 <= _open_on(path) - writer <= READERS < THREADS
    assert not _read_from_many_threads(store)  # again: the same connections, no new ones
    assert 1 <= _open_on(path) - writer <= READERS
    store.close()
    assert _open_on(path) == 0


def test_a_read_failure_gives_its_connection_back(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "tether.db")
    try:
        for _ in range(READERS + 2):  # each failed query returned its connection: no wait for a free one
            try:
                store._read("SELECT * FROM no_such_table")
            except StoreError as err:
                assert "corrupt or not a tether store" in str(err)
            else:
                raise AssertionError("the query did not fail")
        assert store.count_events() == 0
        assert _open_on(tmp_path / "tether.db") <= 1 + READERS
    finally:
        store.close()
