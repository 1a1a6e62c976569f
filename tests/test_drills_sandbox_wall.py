"""The sixth drill, ``sandbox`` (issue 16): on a real host (a real daemon, a real agent inside its wall), a
probe inside the agent's wall tries an outside write and an outside connection; the drill passes when both
fail and both are recorded (``wall.violation`` events, the proxy's ``network.connection``), and fails with one
line when the wall is off for the agent (``sandbox: off``, ``TETHER_SANDBOX=off``), when its network is open,
or when a connection gets through. Nothing of the drill is left behind: no file, folder or pending approval."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from test_daemon_kit import Host, agent, wait_until
from test_wall import USER, root  # noqa: F401 - the fixture: a host folder for agents inside the wall
from tether.drills import DRILLS, runner


def _drill(h: Host, *args: str, env: dict[str, str] | None = None) -> tuple[int, dict[str, Any], str]:
    got = h.cli("drill", "--only", "sandbox", "--json", *args, env=env, timeout=120)
    try:
        doc = json.loads(got.stdout)
    except ValueError:
        raise AssertionError(got.stdout + got.stderr) from None
    return got.returncode, doc, got.stderr


def _host(root: Path, **over: Any) -> Host:  # noqa: F811
    h = Host(root, {})
    (root / "ws" / "walled").mkdir(parents=True)
    h.write({"walled": agent(["sleep", "3600"], run_as=USER, **over)})
    return h


@pytest.mark.wall
def test_the_drill_passes_inside_the_wall_and_records_both(root: Path) -> None:  # noqa: F811
    h = _host(root)
    try:
        daemon = h.up()
        wait_until(lambda: h.agent_pids("walled"), 15, "the agent to start")
        before = {p.name for p in root.iterdir()}
        code, doc, err = _drill(h)
        (r,) = doc["drills"]
        assert r["drill"] == "sandbox" and r["agent"] == "walled"
        assert code == 0 and r["status"] == "pass", (r, err)
        assert "outside writes denied" in r["detail"] and "refused by the proxy (pending; approval" in r["detail"], r
        assert "a direct connection failed" in r["detail"], r
        # the evidence: a wall.violation per denied write, the proxy's refusal and violation. The daemon saw both
        # writes refused (the kernel's audit): into /etc (it names the folder of a refused create) and into a
        # folder hidden from the agent (ENOENT: /tmp is empty inside)
        assert "recorded by the daemon, from the kernel's audit as 2 wall.violation" in r["detail"], r
        evidence = {e["id"]: e for e in h.events() if e["id"] in r["evidence"]}
        writes = {
            e["data"]["path"]: e["data"]
            for e in evidence.values()
            if e["kind"] == "wall.violation" and e["data"]["kind"] == "write"
        }
        hidden = writes[str(root / f".tether-drill-{doc['run']}" / "planted")]
        assert hidden["error"] == "ENOENT" and hidden["source"] == "audit", writes
        etc = writes["/etc/"]
        assert etc["error"] == "EROFS" and etc["call"] == "openat" and etc["source"] == "audit", writes
        assert not etc["in_run"] and not hidden["counted"], "the drill's probe is no run of the agent: it never counts"
        connects = [
            e["data"] for e in evidence.values() if e["kind"] == "wall.violation" and e["data"]["kind"] == "connect"
        ]
        assert len(connects) == 1 and connects[0]["host"] == "127.0.0.1" and connects[0]["source"] == "proxy"
        assert [e for e in evidence.values() if e["kind"] == "network.connection"], "the proxy's own record"
        # nothing left: no file, no folder, no approval waiting for a human
        assert {p.name for p in root.iterdir()} == before
        assert not Path(f"/etc/tether-drill-{doc['run']}").exists()
        assert h.sql("SELECT id FROM approvals WHERE state = 'pending'") == []
        status = json.loads(h.cli("status", "--json").stdout)["agents"][0]
        assert status["violations"] == {"connect": 1, "write": 2} and status["last_drill"]["drills"] == {
            "sandbox": "pass"
        }
        h.down(daemon)
    finally:
        h.cleanup()


@pytest.mark.wall
def test_without_the_daemons_write_watch_the_drill_records_the_writes_itself(root: Path) -> None:  # noqa: F811
    h = _host(root)
    try:
        daemon = h.up(env={"TETHER_WALL_AUDIT": "off"})
        wait_until(lambda: h.agent_pids("walled"), 15, "the agent to start")
        code, doc, err = _drill(h)
        (r,) = doc["drills"]
        assert code == 0 and r["status"] == "pass", (r, err)
        assert "recorded by the drill (the daemon does not see them: TETHER_WALL_AUDIT=off" in r["detail"], r
        evidence = [e["data"] for e in h.events("wall.violation") if e["id"] in r["evidence"]]
        writes = [w for w in evidence if w["kind"] == "write"]
        assert len(writes) == 2 and all(w["source"] == "drill" for w in writes), writes
        assert not [e for e in h.events("wall.violation") if e["data"].get("source") == "audit"]
        h.down(daemon)
    finally:
        h.cleanup()


@pytest.mark.wall
def test_the_drill_fails_with_the_wall_off(root: Path) -> None:  # noqa: F811
    h = _host(root, sandbox="off")
    try:
        daemon = h.up()
        code, doc, _ = _drill(h)
        (r,) = doc["drills"]
        assert code == 1 and r["status"] == "fail", r
        assert r["detail"] == "sandbox: off: walled runs without the wall (its runbook says `sandbox: off`)"
        # the whole host's wall off: the same verdict, naming the switch
        h.write({"walled": agent(["sleep", "3600"], run_as=USER)})
        code, doc, _ = _drill(h, env={"TETHER_SANDBOX": "off"})
        assert (
            code == 1
            and doc["drills"][0]["detail"] == "sandbox: off: TETHER_SANDBOX=off turns the wall off on this host"
        ), doc
        # an open network: nothing stops a connection
        h.write({"walled": agent(["sleep", "3600"], run_as=USER, network="open")})
        code, doc, _ = _drill(h)
        assert code == 1 and doc["drills"][0]["detail"].startswith("network: open: walled has the host's network")
        assert h.events("wall.violation") == [], "nothing was tried, nothing recorded"
        # no network at all: nothing gets out, and nothing is there to record the try: degraded, not a pass
        h.write({"walled": agent(["sleep", "3600"], run_as=USER, network="none")})
        code, doc, _ = _drill(h)
        (r,) = doc["drills"]
        assert code == 0 and r["status"] == "degraded", r
        assert "network: none: a direct connection failed" in r["detail"] and "nothing got out" in r["detail"], r
        assert [e["data"]["kind"] for e in h.events("wall.violation")] == ["write", "write"]
        h.down(daemon)
    finally:
        h.cleanup()


def test_the_drill_is_named_sandbox_and_runs_before_the_reboot(tmp_path: Path) -> None:
    """``--only sandbox`` (the drill) and ``--sandbox`` (drilling copies) are two things; both parse."""
    assert DRILLS.index("sandbox") == len(DRILLS) - 2 and DRILLS[-1] == "reboot"
    assert runner.parse_only("sandbox,kill") == ["kill", "sandbox"]
    h = Host(tmp_path, {"a": agent(["sleep", "3600"], sandbox="off")})
    got = h.cli("drill", "--only", "sandbox", "--json")  # no daemon: the wall's state is checked first
    doc = json.loads(got.stdout)
    assert got.returncode == 1 and doc["drills"][0]["detail"].startswith("sandbox: off: a runs without the wall")
