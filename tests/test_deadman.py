"""The dead-man's switch against a Healthchecks-style receiver on 127.0.0.1: ``/start`` at boot, a ping
each period, ``/fail`` on an incident; nothing while the daemon is unhealthy; never blocking the caller."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from test_notify_kit import Receiver, free_port, receiver, wait_for
from tether.deadman import DeadMan, open_incidents, signal_url
from tether.store import open_store

__all__ = ["receiver"]

UUID = "5f0c2b6e-7d1a-4f3e-9a8b-2c1d0e9f8a7b"


@pytest.fixture
def switches() -> Iterator[list[DeadMan]]:
    made: list[DeadMan] = []
    yield made
    for d in made:
        d.stop()


def test_signal_urls_keep_the_check_and_its_query() -> None:
    assert signal_url(f"https://hc-ping.com/{UUID}", "start") == f"https://hc-ping.com/{UUID}/start"
    assert signal_url("https://hc.example/ping/KEY/slug/?create=1", "fail") == "https://hc.example/ping/KEY/slug/fail?create=1"
    assert signal_url("https://hc.example/ping/x", "") == "https://hc.example/ping/x"


def test_start_then_pings_then_fail_on_an_incident_then_pings_again(
    receiver: Receiver, switches: list[DeadMan], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HC_URL", receiver.url(f"/ping/{UUID}"))
    store = open_store(f"sqlite:///{tmp_path / 'tether.db'}")
    try:
        d = DeadMan("env:HC_URL", 0.15, check=open_incidents(store))
        switches.append(d)
        d.start()
        wait_for(lambda: len(receiver.at(f"/ping/{UUID}")) >= 3, what="/start and two pings")
        paths = [r.path for r in receiver.requests]
        assert paths[0] == f"/ping/{UUID}/start"
        assert paths[1:3] == [f"/ping/{UUID}", f"/ping/{UUID}"]
        inc = store.emit("incident.opened", "worker", kind="disk.low", summary="disk low: 2% free on /var")
        wait_for(lambda: receiver.at(f"/ping/{UUID}/fail"), what="/fail")
        fail = receiver.at(f"/ping/{UUID}/fail")[0]
        assert fail.method == "POST" and fail.body.decode() == f"incident #{inc}: disk low: 2% free on /var"
        store.emit("incident.resolved", "worker", incident_id=inc, kind="disk.low", why="space freed")
        n = len(receiver.requests)
        wait_for(lambda: any(r.path == f"/ping/{UUID}" for r in receiver.requests[n:]), what="plain pings again")
        # The switch counts a ping once its answer is back, just after the receiver has logged it.
        wait_for(lambda: d.sent >= 5, what="five answered pings")
        assert d.errors == 0
    finally:
        store.close()


def test_explicit_fail_and_ping_are_sent_at_once_and_fail_sticks_until_ping(
    receiver: Receiver, switches: list[DeadMan]
) -> None:
    d = DeadMan(receiver.url("/hc/abc"), 0.2)
    switches.append(d)
    d.start()
    d.fail("tether: drill failed")
    wait_for(lambda: len(receiver.at("/hc/abc/fail")) >= 2, what="/fail, and /fail again at the next period")
    assert receiver.at("/hc/abc/fail")[0].body == b"tether: drill failed"
    d.ping()
    n = len(receiver.requests)
    wait_for(lambda: len([r for r in receiver.requests[n:] if r.path == "/hc/abc"]) >= 2, what="pings after ping()")
    assert all(r.path == "/hc/abc" for r in receiver.requests[n:])


def test_an_unhealthy_daemon_stops_pinging_so_the_switch_fires(receiver: Receiver, switches: list[DeadMan]) -> None:
    healthy = [True]
    d = DeadMan(receiver.url("/hc/x"), 0.1, healthy=lambda: healthy[0])
    switches.append(d)
    d.start()
    wait_for(lambda: len(receiver.at("/hc/x")) >= 3, what="pings")
    healthy[0] = False
    time.sleep(0.15)
    n = len(receiver.requests)
    time.sleep(0.5)
    assert len(receiver.requests) == n


def test_an_unreachable_endpoint_never_blocks_the_caller(switches: list[DeadMan]) -> None:
    d = DeadMan(f"http://127.0.0.1:{free_port()}/hc", 0.1, timeout=1.0)
    switches.append(d)
    t0 = time.perf_counter()
    d.start()
    for _ in range(50):
        d.fail("x")
        d.ping()
    assert time.perf_counter() - t0 < 0.1
    wait_for(lambda: d.errors >= 2, what="failures counted")
    assert d.last_error and d.sent == 0
