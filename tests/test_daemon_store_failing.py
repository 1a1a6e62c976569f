"""A daemon whose store fails logs one line when it starts failing and one when it is back, not a line on
every monitor wake (a corrupt store once logged the same line 22 times in 20 s). The stores: a SQLite file
overwritten with garbage under the running daemon; a PostgreSQL schema of its own, renamed away under the
running daemon (every query fails) and back (it recovers)."""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from test_daemon_kit import Host, agent, make_host, wait_until  # noqa: F401 - the fixture

FAILING = "tether: monitor: the store is failing: "
BACK = "tether: monitor: the store is back"


@pytest.fixture
def schema() -> Iterator[str]:
    pytest.importorskip("psycopg")
    from test_store_postgres import _admin

    admin = _admin()
    name = f"t_{secrets.token_hex(6)}"
    yield name
    for each in (name, f"{name}_away"):
        admin.execute(f'DROP SCHEMA IF EXISTS "{each}" CASCADE')
    admin.close()


def _lines(h: Host, start: str) -> list[str]:
    return [ln for ln in h.daemon_log().splitlines() if ln.startswith(start)]


def _beat_fails(h: Host, token: str) -> bool:
    return h.api("POST", "/v1/agents/w/heartbeat", {"progress": None}, token=token, timeout=10)[0] == 503


def _four_seconds_of(h: Host, token: str) -> None:
    """The monitor retries every second: over 4 s it wakes several times (each beat meanwhile is a 503)."""
    wakes_by = time.monotonic() + 4
    wait_until(lambda: time.monotonic() >= wakes_by and _beat_fails(h, token), 10, "4 s of failing")


def test_a_corrupt_sqlite_store_is_logged_once(make_host: Callable[..., Host]) -> None:  # noqa: F811
    h = make_host({"w": agent(["sleep", "600"])})
    proc = h.up()
    token = h.agent_token("w")
    db = h.state / "tether.db"
    for path, header in ((db, 100), (Path(f"{db}-wal"), 32)):  # past the headers: every page is garbage
        if path.exists():
            with path.open("r+b") as f:
                f.seek(header)
                f.write(b"\xff" * (path.stat().st_size - header))
    wait_until(lambda: _lines(h, FAILING), 15, "the monitor to log the failing store")
    _four_seconds_of(h, token)
    monitor = [ln for ln in h.daemon_log().splitlines() if ln.startswith("tether: monitor")]
    assert len(monitor) == 1, monitor
    assert monitor[0].startswith(f"{FAILING}{db}: the file is corrupt or not a tether store; "), monitor[0]
    h.down(proc)  # it may exit non-zero: its store is gone


def test_a_failing_store_is_logged_once_per_change(schema: str, make_host: Callable[..., Host]) -> None:  # noqa: F811
    from test_store_postgres import _admin, _url

    h = make_host({"w": agent(["sleep", "600"])}, {"store": _url(schema), "name": "solo"})
    proc = h.up()
    token = h.agent_token("w")
    admin: Any = _admin()
    try:
        for round_ in (1, 2):
            admin.execute(f'ALTER SCHEMA "{schema}" RENAME TO "{schema}_away"')
            wait_until(lambda n=round_: len(_lines(h, FAILING)) >= n, 10, "the monitor to log the failing store")
            failing = _lines(h, FAILING)
            assert len(failing) == round_, failing
            assert "no tether store in this database/schema" in failing[-1], failing[-1]
            _four_seconds_of(h, token)  # and says nothing more
            assert len(_lines(h, FAILING)) == round_, h.daemon_log()[-3000:]
            assert len(_lines(h, BACK)) == round_ - 1
            admin.execute(f'ALTER SCHEMA "{schema}_away" RENAME TO "{schema}"')
            wait_until(lambda n=round_: len(_lines(h, BACK)) == n, 10, "the monitor to log the store back")
            assert h.api("POST", "/v1/agents/w/heartbeat", {"progress": None}, token=token)[0] == 200
        monitor = [ln for ln in h.daemon_log().splitlines() if ln.startswith("tether: monitor")]
        assert len(monitor) == 4, monitor
    finally:
        admin.close()
    assert h.down(proc) == 0
