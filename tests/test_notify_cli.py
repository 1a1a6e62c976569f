"""``tether incidents`` and ``tether ack`` as real processes, with no daemon (or a dead one)."""

from __future__ import annotations

import json
from pathlib import Path

from helpers import one_line_error, run_cli
from tether.paths import StateDir
from tether.store import open_store


def seed(home: Path) -> tuple[int, int, int]:
    with open_store(f"sqlite:///{StateDir(home).db}") as store:
        stale = store.emit("incident.opened", "worker", kind="stale", summary="worker is stale: no heartbeat for 3m")
        host = store.emit("incident.opened", None, kind="disk.low", summary="disk low: 3% free")
        done = store.emit("incident.opened", "worker", kind="crashloop", summary="worker is crash-looping")
        store.emit("incident.resolved", "worker", incident_id=done, kind="crashloop", why="stable again")
    return stale, host, done


def test_incidents_lists_the_open_ones_and_all_with_all(tmp_path: Path) -> None:
    home = tmp_path / "home"
    stale, host, done = seed(home)
    out = run_cli("incidents", home=home)
    assert out.returncode == 0, out.stderr
    assert "worker is stale" in out.stdout and "disk low" in out.stdout and "(host)" in out.stdout
    assert "crash-looping" not in out.stdout
    everything = json.loads(run_cli("incidents", "--all", "--json", home=home).stdout)
    assert [(i["id"], i["state"]) for i in everything] == [(stale, "open"), (host, "open"), (done, "resolved")]


def test_ack_with_no_daemon_writes_the_store_and_a_dead_daemon_changes_nothing(tmp_path: Path) -> None:
    home = tmp_path / "home"
    stale, host, _ = seed(home)
    out = run_cli("ack", str(stale), "--note", "on it", home=home)
    assert out.returncode == 0, out.stderr
    assert f"incident {stale} acknowledged at" in out.stdout
    # a daemon that died and left its daemon.json behind: the CLI falls back to the store
    (home / "daemon.json").write_text(json.dumps({"pid": 999999, "url": "http://127.0.0.1:9"}))
    (home / "admin.token").write_text("tok\n")
    assert run_cli("ack", str(host), home=home).returncode == 0
    with open_store(f"sqlite:///{StateDir(home).db}", readonly=True) as store:
        acked = {i["id"]: i["acked"] for i in store.incidents()}
        events = store.events(kinds=["incident.acked"])
    assert acked[stale] and acked[host]
    assert events[0].data["note"] == "on it" and events[0].data["by"].endswith("(cli)")
    listing = run_cli("incidents", home=home).stdout
    assert listing.count("acked") == 2
    assert run_cli("ack", str(stale), home=home).returncode == 0  # twice: no second event
    with open_store(f"sqlite:///{StateDir(home).db}", readonly=True) as store:
        assert len(store.events(kinds=["incident.acked"])) == 2


def test_ack_of_an_unknown_incident_is_one_line(tmp_path: Path) -> None:
    home = tmp_path / "home"
    seed(home)
    line = one_line_error(run_cli("ack", "4242", home=home))
    assert "no incident 4242" in line


def test_ack_from_inside_an_agent_is_refused(tmp_path: Path) -> None:
    home = tmp_path / "home"
    stale, _, _ = seed(home)
    line = one_line_error(run_cli("ack", str(stale), home=home, env={"TETHER_AGENT": "worker", "TETHER_TOKEN": "t"}))
    assert "tether.control" in line
