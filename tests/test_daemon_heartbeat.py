"""Heartbeats from the SDK, the CLI and HTTP; stale (within a second of its deadline), stuck, recovered
(incident resolved once), on_stale: restart; and a suspend seen through an injected clock."""

from __future__ import annotations

import time
from pathlib import Path

from test_daemon_kit import PY, Host, agent, make_host, wait_until  # noqa: F401
from tether import heartbeat
from tether.daemon.core import Clock, Daemon
from tether.runbook import load

# beats every 50ms; progress changes each beat unless $STEADY; pauses while $DIR/pause exists
BEATER = """
import os, time
from tether.sdk import Agent
a = Agent.from_env()
steady = os.environ.get("STEADY")
d = os.environ["DIR"]
n = 0
while True:
    if not os.path.exists(os.path.join(d, "pause")):
        n += 1
        moving = not steady or os.path.exists(os.path.join(d, "move"))
        a.heartbeat(task="t", progress=str(n) if moving else "same")
    time.sleep(0.05)
"""


def test_beats_stale_stuck_recovered_and_restart(make_host) -> None:  # noqa: F811
    h: Host = make_host({})
    beater = h.script("beater.py", BEATER)
    dirs = {n: h.root / n for n in ("sdk", "stuck")}
    for d in dirs.values():
        d.mkdir()
    hb = {"source": "sdk", "interval": "50ms", "stale_after": "1500ms", "stuck_after": "1h"}  # its own beats only
    h.write({
        "sdk": agent([PY, beater], env={"DIR": str(dirs["sdk"])}, heartbeat=hb),
        "stuck": agent([PY, beater], env={"DIR": str(dirs["stuck"]), "STEADY": "1"},
                       heartbeat={"interval": "50ms", "stale_after": "5s", "stuck_after": "700ms"}),
        "cli": agent(["sh", "-c", f"i=0; while :; do i=$((i+1)); {PY} -m tether beat --progress c$i; sleep 0.1; done"],
                     heartbeat={"interval": "100ms", "stale_after": "10s", "stuck_after": "1h"}),
        "http": agent(["sleep", "3600"], heartbeat={"interval": "1s", "stale_after": "10s", "stuck_after": "1h"}),
        "restarter": agent(["sleep", "3600"], heartbeat={"source": "sdk", "interval": "100ms", "stale_after": "700ms",
                                                         "on_stale": "restart"}),
    })
    daemon = h.up()

    # three ways to beat
    wait_until(lambda: (h.row("sdk")["progress"] or "").isdigit(), 10, "an SDK beat")
    wait_until(lambda: (h.row("cli")["progress"] or "").startswith("c"), 15, "a `tether beat` from inside the agent")
    before = h.row("http")["last_heartbeat"]
    status, _ = h.api("POST", "/v1/agents/http/heartbeat", {"progress": "from http"}, token=h.agent_token("http"))
    assert status == 200
    row = h.row("http")
    assert row["progress"] == "from http" and row["last_heartbeat"] > before

    # stale: beats stop; flagged within a second of the deadline; one incident; recovered when they resume
    (dirs["sdk"] / "pause").touch()
    wait_until(lambda: h.state_of("sdk") == "stale", 5, "sdk to go stale")
    last = h.row("sdk")["last_heartbeat"]
    flagged = [e for e in h.events("agent.state", "sdk") if e["data"]["state"] == "stale"][-1]
    late = flagged["ts"] - (last + 1.5)
    assert 0 <= late <= 1.0, f"stale flagged {late:.3f}s after its deadline"
    assert len(h.incidents("stale", "sdk")) == 1
    (dirs["sdk"] / "pause").unlink()
    wait_until(lambda: h.state_of("sdk") == "running", 5, "sdk to recover")
    assert h.row("sdk")["reason"] == "recovered from stale"
    time.sleep(0.3)
    incidents = h.incidents("stale", "sdk")
    assert [i["state"] for i in incidents] == ["resolved"]
    assert len(h.events("incident.resolved", "sdk")) == 1

    # stuck: beats keep coming, progress does not change
    wait_until(lambda: h.state_of("stuck") == "stuck", 5, "stuck to be stuck")
    assert h.row("stuck")["progress"] == "same"
    assert [i["state"] for i in h.incidents("stuck", "stuck")] == ["open"]
    (dirs["stuck"] / "move").touch()
    wait_until(lambda: h.state_of("stuck") == "running", 5, "stuck to recover on progress")
    time.sleep(0.2)
    assert [i["state"] for i in h.incidents("stuck", "stuck")] == ["resolved"]

    # on_stale: restart
    wait_until(lambda: len(h.events("agent.started", "restarter")) >= 2, 10, "the stale agent to be restarted")
    assert any(e["data"]["state"] == "stale" for e in h.events("agent.state", "restarter"))
    assert len(h.instances("restarter")) <= 1, "restarted, never run twice"
    assert h.down(daemon) == 0


class FakeClock(Clock):
    """The wall clock leaps forward by ``offset`` (a suspend); the monotonic clock does not."""

    def __init__(self) -> None:
        self.offset = 0.0

    def wall(self) -> float:
        return time.time() + self.offset


def test_a_suspend_opens_one_incident_and_marks_no_agent_stale(make_host) -> None:  # noqa: F811
    h: Host = make_host({f"a{i}": agent(["sleep", "3600"], heartbeat={"source": "sdk", "interval": "1s",
                                                                      "stale_after": "4s"})
                         for i in range(3)})
    clock = FakeClock()
    daemon = Daemon(load(h.runbook), clock=clock)
    try:
        daemon.boot("http://127.0.0.1:9")
        wait_until(lambda: all(h.state_of(f"a{i}") == "running" for i in range(3)), 10, "agents to run")
        clock.offset += 3600.0  # the host slept an hour
        row = daemon.store.agent("a0")
        assert row is not None and heartbeat.judge(row, clock.wall())[0] == "stale", "what a naive monitor sees"
        daemon.poke()
        wait_until(lambda: h.incidents("host.suspended"), 5, "the suspend to be noticed")
        assert daemon.last_jump is not None and abs(daemon.last_jump - 3600) < 5
        for i in range(3):
            row = daemon.store.agent(f"a{i}")
            assert row is not None and heartbeat.judge(row, clock.wall())[0] == "running"
        clock.offset += 600.0  # and again, before anyone acknowledged the first
        daemon.poke()
        wait_until(lambda: daemon.last_jump is not None and abs(daemon.last_jump - 600) < 5, 5, "the second jump")
        time.sleep(0.2)
        assert len(h.incidents("host.suspended")) == 1, "one incident, not one per agent or per jump"
        assert not [e for e in h.events("agent.state") if e["data"]["state"] == "stale"]
        # re-baselined, not switched off: an agent that stays silent still goes stale afterwards
        wait_until(lambda: h.state_of("a1") == "stale", 10, "a silent agent to go stale after the re-baseline")
    finally:
        daemon.halt(stop_agents=True)
    assert all(not h.instances(f"a{i}") for i in range(3))


def test_status_file_follows_the_state(make_host, tmp_path: Path) -> None:  # noqa: F811
    import json

    h: Host = make_host({"w": agent(["sleep", "3600"], heartbeat={"source": "sdk", "interval": "100ms",
                                                                  "stale_after": "300ms"})})
    daemon = h.up()
    path = h.state / "agents" / "w" / "agent-status.json"
    wait_until(lambda: path.exists() and json.loads(path.read_text())["state"] == "stale", 5, "stale status file")
    assert h.down(daemon) == 0
