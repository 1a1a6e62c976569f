"""`tether prune` applies the event retention and keeps newer events."""

from __future__ import annotations

import time
from pathlib import Path

from helpers import run_cli
from tether.store import NewEvent
from tether.store.sqlite import SQLiteStore


def test_prune_deletes_only_events_past_retention(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "tether.db")
    now = time.time()
    store.append([NewEvent("log", "a", {"n": 1}, now - 10 * 86400), NewEvent("log", "a", {"n": 2}, now - 60)])
    store.close()
    got = run_cli("--home", str(tmp_path), "prune", "--older-than", "1d")
    assert got.returncode == 0, got.stderr
    assert "deleted 1 event" in got.stdout
    left = SQLiteStore(tmp_path / "tether.db", readonly=True)
    assert [e.data["n"] for e in left.events()] == [2]
    left.close()


def test_prune_rejects_a_bad_duration(tmp_path: Path) -> None:
    SQLiteStore(tmp_path / "tether.db").close()
    got = run_cli("--home", str(tmp_path), "prune", "--older-than", "soon")
    assert got.returncode == 2
    assert got.stderr.strip().count("\n") == 0 and "expected a duration" in got.stderr
