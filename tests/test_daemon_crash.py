"""The daemon dies (SIGKILL) again and again while agents work: nothing they did is lost, nothing runs
twice, and the agents that ended meanwhile are handled by their exit codes. Real processes throughout."""

from __future__ import annotations

import random
import re
import time
from pathlib import Path

from test_daemon_kit import PY, Host, agent, make_host, wait_until  # noqa: F401

WORKER = """
import os, sys, time
from tether.sdk import Agent

a = Agent.from_env()
n = 0
while True:
    n += 1
    print(f"line {n}", flush=True)
    eid = a.report("log", n=n)          # returns once the event is durable
    print(f"ack {n} {eid}", flush=True)
    time.sleep(0.05)
"""

# exits with the code in its trigger file once that file appears
EXITER = """
import os, sys, time
path = sys.argv[1]
print("up", flush=True)
while not os.path.exists(path):
    time.sleep(0.02)
sys.exit(int(open(path).read()))
"""


def test_sigkill_the_daemon_ten_times(make_host) -> None:  # noqa: F811
    rng = random.Random(3)
    h: Host = make_host({})
    worker = h.script("worker.py", WORKER)
    exiter = h.script("exiter.py", EXITER)
    names = ["w1", "w2", "w3"]
    agents = {n: agent([PY, worker]) for n in names}
    agents["x3"] = agent([PY, exiter, str(h.root / "x3.exit")])
    agents["x0"] = agent([PY, exiter, str(h.root / "x0.exit")])
    h.write(agents)

    daemon = h.up()
    wait_until(lambda: all(len(h.instances(n)) == 1 for n in agents), 15, "every agent to start")
    first = {n: h.instances(n) for n in agents}
    for round_ in range(10):
        if round_ % 2:  # at a random moment of its start-up: maybe before it adopted anything
            time.sleep(rng.uniform(0.05, 0.9))
        else:  # at a random moment of its work
            h.wait_up(daemon)
            time.sleep(rng.uniform(0.05, 0.3))
        h.kill9(daemon)
        time.sleep(rng.uniform(0.0, 0.2))  # the agents keep working with no daemon
        for n in agents:  # never started a second time
            assert h.instances(n) == first[n], f"round {round_}: {n} runs {h.instances(n)}, was {first[n]}"
            assert len(h.agent_pids(n)) == 1, f"round {round_}: {n} has {h.agent_pids(n)}"
        daemon = h.up(wait=False)
    h.wait_up(daemon)
    for n in agents:
        assert h.instances(n) == first[n]
    assert len(h.events("agent.adopted")) >= 5 * len(agents), "re-adopted by every daemon that got that far"
    assert not [e for e in h.events("agent.started") if e["data"]["restart"]], "nothing restarted"

    # agents that end under a re-adopted watch: their exit codes decide (on-failure)
    (h.root / "x3.exit").write_text("3")
    (h.root / "x0.exit").write_text("0")
    wait_until(lambda: h.state_of("x0") == "stopped", 10, "x0 to stop")
    wait_until(lambda: len(h.events("agent.started", "x3")) == 2, 10, "x3 to be restarted")
    x0_exit = h.events("agent.exited", "x0")
    assert [e["data"]["code"] for e in x0_exit] == [0]
    assert len(h.events("agent.started", "x0")) == 1, "exit 0 under on-failure: not restarted"
    x3_exit = h.events("agent.exited", "x3")[0]
    assert x3_exit["data"]["code"] == 3
    assert h.row("x3")["restarts"] == 1

    h.down(daemon)
    check = h.sql("PRAGMA integrity_check")[0]
    assert list(check.values()) == ["ok"]
    stored = {e["id"]: e for e in h.events("log")}
    for n in names:
        text = h.log(n)
        printed = [int(x) for x in re.findall(r"^line (\d+)$", text, re.M)]
        assert printed, f"{n} printed nothing"
        assert printed == list(range(1, max(printed) + 1)), f"{n}: a printed line is missing"
        acks = [(int(a), int(b)) for a, b in re.findall(r"^ack (\d+) (\d+)$", text, re.M)]
        assert len(acks) >= max(printed) - 1
        for num, eid in acks:
            assert eid in stored, f"{n}: acknowledged event {eid} (line {num}) is not in the store"
            assert stored[eid]["agent"] == n and stored[eid]["data"]["n"] == num
    assert Path(h.state / "tether.db").exists()
