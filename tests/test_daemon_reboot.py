"""A "reboot": the daemon, every keeper and every agent SIGKILLed at once; the next daemon restores each
agent to its desired state, with its logs and queued tasks."""

from __future__ import annotations

import re
import signal
import time

from test_daemon_kit import Host, agent, make_host, wait_until  # noqa: F401

COUNTER = "i=0; while :; do i=$((i+1)); echo line $i; sleep 0.02; done"


def test_reboot_restores_desired_state_logs_and_tasks(make_host) -> None:  # noqa: F811
    h: Host = make_host({
        "runner": agent(["sh", "-c", COUNTER]),
        "stopped": agent(["sh", "-c", COUNTER]),
        "killed": agent(["sh", "-c", COUNTER]),
        "later": agent(["sh", "-c", COUNTER], autostart=False),
        "queue": agent(["sh", "-c", "while :; do sleep 1; done"]),
    })
    daemon = h.up()
    wait_until(lambda: all(h.instances(n) for n in ("runner", "stopped", "killed", "queue")), 10, "agents to run")
    assert h.instances("later") == set(), "autostart: false"
    assert h.api("POST", "/v1/agents/stopped/stop")[0] == 200
    assert h.api("POST", "/v1/agents/killed/kill", {"reason": "drill"})[0] == 200
    for text in ("first", "second"):
        assert h.api("POST", "/v1/agents/queue/tasks", {"text": text})[0] == 201
    wait_until(lambda: re.search(r"^line 20$", h.log("runner"), re.M), 10, "runner to print")
    before = {n: h.instances(n) for n in ("runner", "queue")}

    # the power goes: everything of this host dies at once, keepers included
    for pid in h.marked():
        signal_pid(pid)
    wait_until(lambda: not h.marked(), 5, "every process to die")
    daemon.wait(timeout=5)
    lines_before = len(re.findall(r"^line \d+$", h.log("runner"), re.M))

    daemon = h.up()
    wait_until(lambda: h.instances("runner") and h.instances("queue"), 10, "runner and queue back")
    for n in ("runner", "queue"):
        assert h.instances(n) != before[n], f"{n} was started afresh"
    lost = [e for e in h.events("agent.exited") if e["data"].get("lost")]
    assert {e["agent"] for e in lost} == {"runner", "queue"}, "their runs are recorded as lost"
    time.sleep(0.5)
    assert h.instances("stopped") == set() and h.state_of("stopped") == "stopped"
    assert h.instances("killed") == set() and h.state_of("killed") == "killed"
    assert h.instances("later") == set()
    assert len(h.events("agent.started", "stopped")) == 1 and len(h.events("agent.started", "killed")) == 1

    # logs: every line from before the reboot is still there, and the new run appends
    wait_until(lambda: len(re.findall(r"^line \d+$", h.log("runner"), re.M)) > lines_before + 5, 10, "new lines")
    numbers = [int(x) for x in re.findall(r"^line (\d+)$", h.log("runner"), re.M)]
    first_run = numbers[:numbers.index(1, 1)] if 1 in numbers[1:] else numbers
    assert first_run == list(range(1, len(first_run) + 1)) and len(first_run) >= 20

    # queued tasks: still queued, in order, and counted in the status
    got = h.cli("task", "list", "queue")
    assert got.returncode == 0, got.stderr
    rows = [line for line in got.stdout.splitlines() if line.split()[0].isdigit()]  # not the header
    assert [line.split()[1] for line in rows] == ["queued", "queued"]
    assert rows[0].endswith("first") and rows[1].endswith("second")
    doc = h.api("GET", "/v1/agents/queue")[1]
    assert doc["queue_depth"] == 2 and doc["queue_age_s"] > 0
    assert h.down(daemon) == 0


def signal_pid(pid: int) -> None:
    import os

    try:
        os.kill(pid, signal.SIGKILL)
    except OSError:
        pass


def test_pids_recorded_before_a_reboot_are_never_taken_for_the_agent(make_host) -> None:  # noqa: F811
    """After a real reboot the recorded PIDs may belong to other processes, even with the same start
    time. Here the run folder names a live stranger (its PID and start time right, the boot id of
    another boot): the daemon neither adopts nor signals it, records the run as lost and starts the
    agent afresh, and `tether kill` leaves the stranger alone."""
    import subprocess
    from pathlib import Path

    h: Host = make_host({"runner": agent(["sh", "-c", COUNTER])})
    daemon = h.up()
    wait_until(lambda: h.instances("runner"), 10, "runner to run")
    for pid in h.marked():  # the power goes
        signal_pid(pid)
    wait_until(lambda: not h.marked(), 5, "every process to die")
    daemon.wait(timeout=5)

    stranger = subprocess.Popen(["sleep", "300"])  # after the "reboot", these PIDs are someone else's
    try:
        start = Path(f"/proc/{stranger.pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
        run = h.state / "agents" / "runner" / "run"
        old_boot = "00000000-0000-4000-8000-000000000000"
        for name in ("keeper.pid", "agent.pid"):
            (run / name).write_text(f"{stranger.pid} {start} {old_boot}\n")

        daemon = h.up()
        wait_until(lambda: h.instances("runner"), 10, "runner started afresh")
        lost = h.events("agent.exited", "runner")
        assert len(lost) == 1 and lost[0]["data"].get("lost"), lost
        assert stranger.poll() is None, "the stranger was not signalled"
        assert int((run / "agent.pid").read_text().split()[0]) != stranger.pid
        assert h.cli("kill", "runner").returncode == 0
        wait_until(lambda: not h.instances("runner"), 10, "runner killed")
        time.sleep(0.2)
        assert stranger.poll() is None, "`tether kill` left the stranger alone"
        assert h.down(daemon) == 0
    finally:
        stranger.kill()
        stranger.wait()
