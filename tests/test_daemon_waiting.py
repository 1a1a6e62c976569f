"""``waiting_for_approval`` for an SDK agent that waits inside ``check(wait=...)``: recorded when the
wait begins (with the approval in the reason), never judged stale while a human decides, ``running``
again as soon as a human decides; a wait that ran out keeps the state until the approval is settled."""

from __future__ import annotations

import json

from test_daemon_kit import PY, Host, agent, make_host, wait_until  # noqa: F401

WAITER = """
import sys, time
from tether.sdk import Agent
a = Agent.from_env()
a.heartbeat(progress="about to push")
got = a.check(command="git push origin main", wait=float(sys.argv[1]))
print("decision", got["decision"], flush=True)
for i in range(36000):
    a.heartbeat(progress="after the decision")
    time.sleep(0.1)
"""


def _pending(h: Host, agent: str) -> list[dict]:
    return [a for a in json.loads(h.cli("approvals", "--json").stdout or "[]") if a["agent"] == agent]


def test_an_sdk_agent_waiting_on_a_human_is_waiting_for_approval(make_host) -> None:  # noqa: F811
    h: Host = make_host({})
    script = h.script("waiter.py", WAITER)
    beats = {"source": "sdk", "interval": "100ms", "stale_after": "500ms", "stuck_after": "1h"}  # their own beats
    h.write({"long": agent([PY, script, "30"], heartbeat=beats),
             "short": agent([PY, script, "0.3"]),
             # never beats: its stale incident, due well after long's last beat + 500ms, shows the monitor
             # judged every agent after long would have gone stale
             "silent": agent(["sleep", "3600"], heartbeat={**beats, "stale_after": "1500ms"})})
    daemon = h.up()
    try:
        # a long wait: the state says why, and silence while a human decides is not staleness
        wait_until(lambda: h.state_of("long") == "waiting_for_approval", 10, "long to wait for approval")
        row = h.row("long")
        pending = _pending(h, "long")
        assert row["reason"] == f"waiting for approval {pending[0]['id']}: git push origin main"
        doc = json.loads((h.state / "agents" / "long" / "agent-status.json").read_text())
        assert doc["state"] == "waiting_for_approval"
        wait_until(lambda: h.incidents("stale", "silent"), 10, "the monitor to find silent stale")
        # silence from the wait's start on is not staleness (a start slower than stale_after, a loaded host's
        # Python start-up, may be judged stale before the first beat: that one is resolved by the beat)
        waited = min(e["ts"] for e in h.events("agent.state", "long") if e["data"]["state"] == "waiting_for_approval")
        assert h.state_of("long") == "waiting_for_approval"
        assert not [i for i in h.incidents("stale", "long") if i["opened"] >= waited or i["state"] == "open"]
        assert h.cli("approve", str(pending[0]["id"])).returncode == 0
        wait_until(lambda: h.state_of("long") == "running", 5, "long to run again")
        # the waiting call and the monitor both notice the decision: running, and nothing holds it, so WHY is
        # empty (what ended the wait is the event's note)
        assert h.row("long")["reason"] is None, h.row("long")
        notes = [e["data"].get("note") for e in map(json.loads, h.cli("events", "--agent", "long", "--json").stdout
                                                    .splitlines()) if e["kind"] == "agent.state"]
        assert notes[-1] in (f"approval {pending[0]['id']} approved", "no approval pending any more"), notes
        wait_until(lambda: "decision allow" in h.log("long"), 5, "long to hear the decision")

        # a short wait that ran out: still waiting (it usually asks again) until the approval is settled
        wait_until(lambda: "decision pending" in h.log("short"), 10, "short's wait to run out")
        assert h.state_of("short") == "waiting_for_approval"
        mine = _pending(h, "short")
        assert h.cli("deny", str(mine[0]["id"]), "--reason", "not today").returncode == 0
        wait_until(lambda: h.state_of("short") == "running", 5, "the monitor to lift the state")
    finally:
        h.down(daemon)
