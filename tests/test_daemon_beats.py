"""Heartbeat ingest (``tether.daemon.beats``): beats that arrive together are written together, each is
acknowledged only once it is on disk, and a store error reaches every waiter."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tether.daemon.beats import BeatWriter
from tether.errors import StoreError
from tether.store import NewEvent, open_store
from tether.store.sqlite import SQLiteStore


def _store(tmp_path: Path, names: list[str]) -> SQLiteStore:
    store = open_store(f"sqlite:///{tmp_path / 'tether.db'}")
    assert isinstance(store, SQLiteStore)
    store.append([NewEvent("agent.registered", n, {"info": {}}) for n in names])
    return store


def test_concurrent_beats_share_writes_and_are_on_disk_when_acknowledged(tmp_path: Path) -> None:
    names = [f"a{i}" for i in range(40)]
    store = _store(tmp_path, names)
    writer = BeatWriter(store)
    start = threading.Barrier(len(names))
    seen: dict[str, float | None] = {}

    def beat(name: str) -> None:
        start.wait()
        for i in range(5):
            writer.submit(name, 1000.0 + i, "task", f"step {i}").result(timeout=10)
        row = open_store(store.url).agent(name)  # another connection: it is committed, not just queued
        seen[name] = None if row is None else row["last_heartbeat"]

    threads = [threading.Thread(target=beat, args=(n,)) for n in names]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    writer.close()
    assert seen == dict.fromkeys(names, 1004.0)
    assert writer.batches < len(names) * 5, "beats arriving together were written one by one"
    store.close()


def test_async_waiters_on_one_loop_are_all_answered(tmp_path: Path) -> None:
    names = [f"a{i}" for i in range(50)]
    store = _store(tmp_path, names)
    writer = BeatWriter(store)

    async def main() -> None:
        await asyncio.wait_for(asyncio.gather(*(writer.submit_async(n, 5.0, None, "p") for n in names)), 10)

    asyncio.run(main())
    writer.close()
    assert {r["name"]: r["last_heartbeat"] for r in store.agents()} == dict.fromkeys(names, 5.0)
    store.close()


def test_a_failing_write_fails_every_beat_in_it_and_the_writer_goes_on(tiny_disk: Path) -> None:
    """A real full disk: every beat queued meanwhile hears the store's one-line error; once there is room
    again the writer goes on."""
    store = _store(tiny_disk, ["a"])
    writer = BeatWriter(store)
    filler = tiny_disk / "filler"
    with open(filler, "wb", buffering=0) as f, contextlib.suppress(OSError):
        while True:
            f.write(b"x" * 4096)
    futures = [writer.submit("a", float(i), None, f"step {i}") for i in range(5)]
    for fut in futures:
        with pytest.raises(StoreError, match="disk is full"):
            fut.result(timeout=5)
    filler.unlink()
    writer.submit("a", 9.0, None, None).result(timeout=5)
    assert (store.agent("a") or {})["last_heartbeat"] == 9.0
    writer.close()
    with pytest.raises(RuntimeError, match="stopping"):
        writer.submit("a", 10.0, None, None).result(timeout=1)
    store.close()


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["a", "b"]), st.sampled_from([None, "t1", "t2"]),
                          st.sampled_from([None, "p1", "p2"])), max_size=12))
def test_a_coalesced_batch_equals_the_beats_one_by_one(tmp_path_factory: pytest.TempPathFactory,
                                                        beats: list[tuple[str, str | None, str | None]]) -> None:
    """``store.beats`` writes one update per agent; the rows must end exactly as beat after beat."""
    root = tmp_path_factory.mktemp("coalesce")
    one, many = (open_store(f"sqlite:///{root / name}.db") for name in ("one", "many"))
    for store in (one, many):
        store.append([NewEvent("agent.registered", n, {"info": {}}, ts=0.0) for n in ("a", "b")])
        store.beat("a", 0.5, "t0", "p1")  # a stored progress the batch may repeat
    timed = [(agent, 1.0 + i, task, progress) for i, (agent, task, progress) in enumerate(beats)]
    for beat in timed:
        one.beat(*beat)
    many.beats(timed)
    keys = ("last_heartbeat", "task", "progress", "last_progress")
    for name in ("a", "b"):
        assert {k: (one.agent(name) or {})[k] for k in keys} == {k: (many.agent(name) or {})[k] for k in keys}
    one.close()
    many.close()
