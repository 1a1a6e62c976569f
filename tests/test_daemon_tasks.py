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
    status, page = h.api("GET", "/v1/agents/w/tasks?limit=2")  # bounded: the newest, in id order
    newest = [t["text"] for t in _tasks(h)][-2:]
    assert status == 200 and [t["text"] for t in page["tasks"]] == newest and page["more"]
    status, page = h.api("GET", "/v1/agents/w/tasks")
    assert status == 200 and len(page["tasks"]) == 5 and not page["more"]
    assert h.api("GET", "/v1/agents/w/tasks?limit=1001")[0] == 422
    assert h.down(daemon) == 0
    assert os.path.exists(h.state / "tether.db")


def _tasks(h: Host) -> list[dict]:
    return h.sql("SELECT * FROM tasks WHERE agent = 'w' ORDER BY id")


DIES = """
import os, signal
from tether.sdk import Agent
a = Agent.from_env()
while True:
    task = a.next_task()
    if task is None:
        import time; time.sleep(0.05); continue
    print("took", task["text"], flush=True)
    if "crash" in task["text"] or ("once" in task["text"] and not os.path.exists("crashed-once")):
        open("crashed-once", "w").close()
        os.kill(os.getpid(), signal.SIGKILL)   # dies with the task started
    if "hang" in task["text"]:
        import time; time.sleep(3600)
    with a.task(task):
        pass
"""


def test_a_task_left_started_by_a_dead_agent_is_queued_again(make_host) -> None:  # noqa: F811
    """The agent dies inside a task: the task goes back to the queue and the next run takes it; a task
    that kills every run fails after three; a task the kill switch interrupted fails and is not redone."""
    h: Host = make_host({})
    dies = h.script("dies.py", DIES)
    h.write({"w": agent([PY, dies], restart={"policy": "always", "backoff": {"base": "50ms", "cap": "100ms"}})})
    daemon = h.up()
    try:
        h.cli("task", "add", "w", "once")
        wait_until(lambda: _task(h, "once")["state"] == "done", 15, "the task to be done on the second run")
        requeued = h.events("task.requeued", "w")
        assert len(requeued) == 1 and requeued[0]["data"]["attempts"] == 1
        assert "the agent exited 137" in requeued[0]["data"]["note"]
        assert h.log("w").count("took once") == 2

        h.cli("task", "add", "w", "crash always")
        wait_until(lambda: _task(h, "crash always")["state"] == "failed", 20, "the poison task to fail")
        assert h.log("w").count("took crash always") == 3
        failed = h.events("task.failed", "w")[-1]["data"]
        assert failed["attempts"] == 3 and "3 times; not queued again" in failed["note"]

        h.cli("task", "add", "w", "hang")
        wait_until(lambda: _task(h, "hang")["state"] == "started", 10, "the hanging task to start")
        assert h.cli("kill", "w", "--reason", "runaway").returncode == 0
        wait_until(lambda: _task(h, "hang")["state"] == "failed", 10, "the killed task to fail")
        assert "kill switch" in h.events("task.failed", "w")[-1]["data"]["note"]
        assert h.cli("resume", "w").returncode == 0
        h.cli("task", "add", "w", "after resume")  # the queue is first in, first out: once this is done,
        wait_until(lambda: _task(h, "after resume")["state"] == "done", 15, "the resumed agent's next task")
        assert _task(h, "hang")["state"] == "failed" and h.log("w").count("took hang") == 1  # it was passed over
    finally:
        h.down(daemon)


def _task(h: Host, text: str) -> dict:
    rows = h.sql("SELECT * FROM tasks WHERE agent = 'w' AND text = ?", (text,))
    return rows[0] if rows else {"state": None}
