"""Tasks end to end: `tether task add`, the SDK's next_task and `with agent.task(...)`, done and failed
recorded, queue depth and age in the status."""

from __future__ import annotations

import json
import os
import time

from test_daemon_kit import PY, Host, agent, make_host, wait_until  # noqa: F401

WORKER = """
import os, time
from tether.sdk import Agent
a = Agent.from_env()
go = os.environ["GO"]
while not os.path.exists(go):
    time.sleep(0.02)
with a.task("warm up") as t:          # an ad-hoc task: added, started, done
    print("ad-hoc", t["id"], flush=True)
while True:
    task = a.next_task()
    if task is None:
        time.sleep(0.05)
        continue
    try:
        with a.task(task):
            print("working on", task["text"], flush=True)
            if "fail" in task["text"]:
                raise RuntimeError("cannot do " + task["text"])
    except RuntimeError:
        pass
"""


def test_tasks_queue_and_complete(make_host) -> None:  # noqa: F811
    h: Host = make_host({})
    worker = h.script("worker.py", WORKER)
    go = h.root / "go"
    h.write({"w": agent([PY, worker], env={"GO": str(go)})})
    daemon = h.up()
    got = h.cli("task", "add", "w", "fix the bug")
    assert got.returncode == 0, got.stderr
    assert "queued for w" in got.stdout
    for text in ("please fail", "write docs"):
        assert h.api("POST", "/v1/agents/w/tasks", {"text": text})[0] == 201
    status, body = h.api("POST", "/v1/agents/w/tasks", {"text": "via http"})
    assert status == 201 and body["state"] == "queued"
    time.sleep(0.3)
    doc = json.loads(h.cli("status", "--json").stdout)["agents"][0]
    assert doc["queue_depth"] == 4 and doc["queue_age_s"] >= 0.3
    status_file = json.loads((h.state / "agents" / "w" / "agent-status.json").read_text())
    assert status_file["queue_depth"] == 4
    api_doc = h.api("GET", "/v1/agents/w")[1]
    assert api_doc["queue_depth"] == 4

    go.touch()
    wait_until(lambda: all(t["state"] in ("done", "failed") for t in _tasks(h)) and len(_tasks(h)) == 5, 10,
               "every task to finish")
    states = {t["text"]: t["state"] for t in _tasks(h)}
    assert states == {"warm up": "done", "fix the bug": "done", "please fail": "failed", "write docs": "done",
                      "via http": "done"}
    order = [line.split("working on ", 1)[1] for line in h.log("w").splitlines() if "working on" in line]
    assert order == ["fix the bug", "please fail", "write docs", "via http"], "oldest first"
    failed = h.events("task.failed", "w")
    assert len(failed) == 1 and "RuntimeError: cannot do please fail" in failed[0]["data"]["note"]
    row = h.row("w")
    assert row["last_task"] == "via http" and row["last_task_at"] is not None
    doc = h.api("GET", "/v1/agents/w")[1]
    assert doc["queue_depth"] == 0 and doc["queue_age_s"] is None
    assert doc["last_completed_task"] == "via http"
    listed = h.cli("task", "list", "w").stdout.splitlines()[1:]  # after the header
    assert len(listed) == 5 and sum("failed" in line for line in listed) == 1
    assert h.down(daemon) == 0
    assert os.path.exists(h.state / "tether.db")


def _tasks(h: Host) -> list[dict]:
    return h.sql("SELECT * FROM tasks WHERE agent = 'w' ORDER BY id")
