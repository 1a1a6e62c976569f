"""The kill switch with the daemon SIGSTOPped while it holds the store's write lock, and the records
parked meanwhile, replayed by the daemon."""

from __future__ import annotations

import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from helpers import cli_env
from test_daemon_kit import PY, Host, agent, make_host, wait_until  # noqa: F401

# ignores SIGTERM, and so does the grandchild it starts in a session of its own (setsid)
STUBBORN = """
trap '' TERM
setsid sh -c "trap '' TERM; echo grandchild \\$\\$; while :; do sleep 0.05; done" &
while :; do sleep 0.05; done
"""

BEATER = """
from tether.sdk import Agent
a = Agent.from_env()
n = 0
while True:
    n += 1
    a.heartbeat(progress=str(n))
"""


def write_locked(db: Path) -> bool:
    """True when another process holds the store's write lock right now."""
    conn = sqlite3.connect(db, timeout=0)
    try:
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("ROLLBACK")
        return False
    except sqlite3.OperationalError as err:
        return "locked" in str(err) or "busy" in str(err)
    finally:
        conn.close()


def test_kill_with_the_daemon_stopped_holding_the_write_lock(make_host) -> None:  # noqa: F811
    h: Host = make_host({})
    beater = h.script("beater.py", BEATER)
    stubborn = h.script("stubborn.sh", STUBBORN)
    grace = 1.0
    agents = {"victim": agent(["sh", stubborn], kill={"grace": f"{grace}s"})}
    agents.update({f"b{i}": agent([PY, beater]) for i in range(3)})
    h.write(agents)
    daemon = h.up()
    wait_until(lambda: len(h.agent_pids("victim")) >= 2, 10, "the victim and its setsid grandchild")
    wait_until(lambda: "grandchild" in h.log("victim"), 5, "the grandchild to start")
    victim_pids = h.agent_pids("victim")
    assert any(os.getsid(p) == p for p in victim_pids), "one of them leads a session of its own"
    wait_until(lambda: all((h.row(f"b{i}")["progress"] or "0").isdigit() for i in range(3)), 10, "beats")

    # stop the daemon in the middle of the beat storm, while it holds the write lock (bounded tries)
    db = h.state / "tether.db"
    held = False
    for _ in range(300):
        daemon.send_signal(signal.SIGSTOP)
        time.sleep(0.002)
        if write_locked(db):
            held = True
            break
        daemon.send_signal(signal.SIGCONT)
        time.sleep(0.003)
    assert held, "never caught the daemon holding the write lock"

    try:
        started = time.monotonic()
        kill = subprocess.Popen(
            [sys.executable, "-m", "tether", "-f", str(h.runbook), "kill", "victim", "--reason", "drill"],
            env=cli_env({"TETHER_TEST_MARK": h.mark}),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        wait_until(lambda: not any(_alive(p) for p in victim_pids), grace + 3, "the whole tree to go")
        gone = time.time()
        took = time.monotonic() - started
        out, err = kill.communicate(timeout=20)
        assert kill.returncode == 0, err
        assert "victim: killed" in out
        signalled = float((h.state / "agents" / "victim" / "run" / "killed").read_text().split()[1])
        assert gone - signalled <= grace + 1.0, f"the tree took {gone - signalled:.2f}s after the signal"
        assert took <= grace + 2.0, f"{took:.2f}s from `tether kill` (Python start-up included) to the tree gone"
        assert (h.state / "agents" / "victim" / "KILL").exists()
        assert write_locked(db), "the daemon still holds the lock: the record could not land"
        parked = list((h.state / "pending-events").glob("*.json"))
        assert len(parked) == 1
        body = json.loads(parked[0].read_text())
        assert [e["kind"] for e in body["events"]] == ["agent.killed", "agent.desired", "agent.state"]
    finally:
        daemon.send_signal(signal.SIGCONT)

    # the daemon resumes: it replays the parked record, does not restart the killed agent
    wait_until(lambda: h.events("agent.killed", "victim"), 10, "the kill record to land")
    wait_until(lambda: not list((h.state / "pending-events").glob("*.json")), 10, "the parked file to go")
    killed = h.events("agent.killed", "victim")
    assert len(killed) == 1 and killed[0]["data"]["reason"] == "drill"
    assert killed[0]["data"]["escalated"], "it ignored SIGTERM: SIGKILL after the grace"
    time.sleep(0.5)
    assert len(h.events("agent.started", "victim")) == 1, "a killed agent is not restarted"
    assert h.agent_pids("victim") == []
    row = h.row("victim")
    assert (row["state"], row["desired"]) == ("killed", "killed")
    assert all(h.instances(f"b{i}") for i in range(3)), "the other agents live on"

    got = h.cli("resume", "victim")
    assert got.returncode == 0, got.stderr
    wait_until(lambda: h.agent_pids("victim"), 10, "the resumed agent")
    assert not (h.state / "agents" / "victim" / "KILL").exists()
    assert h.down(daemon) == 0


def test_kill_with_no_daemon_and_a_locked_store_parks_the_record(make_host) -> None:  # noqa: F811
    h: Host = make_host({"w": agent(["sh", "-c", "while :; do sleep 0.05; done"])})
    daemon = h.up()
    # running, and its start recorded: a daemon SIGKILLed between the spawn and that write leaves a run the
    # next daemon adopts, with no start of its own to count below (seen once in the process-fallback pass)
    wait_until(lambda: h.agent_pids("w") and h.events("agent.started", "w"), 10, "w to run")
    pids = h.agent_pids("w")
    h.kill9(daemon)  # the daemon is gone; w lives on

    locker = sqlite3.connect(h.state / "tether.db", timeout=0)  # someone holds the write lock
    locker.execute("BEGIN IMMEDIATE")
    try:
        got = h.cli("kill", "w", timeout=30)
        assert got.returncode == 0, got.stderr
        assert not any(_alive(p) for p in pids)
        parked = list((h.state / "pending-events").glob("*.json"))
        assert len(parked) == 1
    finally:
        locker.execute("ROLLBACK")
        locker.close()
    assert h.events("agent.killed", "w") == []

    daemon = h.up()  # replays at boot, deletes the file, keeps w killed
    assert not list((h.state / "pending-events").glob("*.json"))
    assert len(h.events("agent.killed", "w")) == 1
    replayed = h.events("daemon.started")[-1]["data"]["replayed"]
    assert replayed == 1
    time.sleep(0.3)
    assert h.agent_pids("w") == [] and h.state_of("w") == "killed"
    assert len(h.events("agent.started", "w")) == 1
    assert h.down(daemon) == 0


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_kill_all_and_the_api_kill(make_host) -> None:  # noqa: F811
    loop = ["sh", "-c", "while :; do sleep 0.05; done"]
    h: Host = make_host({"a": agent(loop), "b": agent(loop), "c": agent(loop)})
    daemon = h.up()
    wait_until(lambda: all(h.instances(n) for n in "abc"), 10, "agents to run")

    status, body = h.api("POST", "/v1/agents/c/kill", {"reason": "by api"})  # the admin, through the daemon
    assert status == 200
    assert body["status"] == "killed" and body["kill"]["survivors"] == [] and body["kill"]["signalled"], body
    assert h.instances("c") == set() and h.state_of("c") == "killed"
    note = json.loads((h.state / "agents" / "c" / "KILL").read_text())
    assert note["by"].startswith("admin token ") and note["reason"] == "by api", "the kill file says who, and why"
    status, body = h.api("POST", "/v1/agents/c/start", {})
    assert status == 409 and "tether resume c" in body["detail"], "a killed agent is not started by `start`"

    got = h.cli("kill", "--all", "--reason", "drill")
    assert got.returncode == 0, got.stderr
    assert (h.state / "KILL").exists()
    assert all(h.instances(n) == set() for n in "abc")
    got = h.cli("resume", "a")
    assert got.returncode == 0 and "global kill switch is still engaged" in got.stderr
    import time

    time.sleep(0.3)
    assert h.instances("a") == set(), "the global kill file still holds it"
    got = h.cli("resume", "--all")
    assert got.returncode == 0, got.stderr
    assert not (h.state / "KILL").exists()
    wait_until(lambda: all(h.instances(n) for n in "abc"), 10, "every agent back")
    assert h.down(daemon) == 0


def test_kill_never_waits_on_an_unreachable_fleet_store(make_host) -> None:  # noqa: F811
    """On a fleet (a PostgreSQL store) whose database cannot be reached, an agent that runs on this host
    is still killed at once, from its run folder; the record waits for the store."""
    h: Host = make_host({"a": agent(["sleep", "3600"])})
    daemon = h.up()
    try:
        wait_until(lambda: h.agent_pids("a"), 10, "a to run")
        h.runbook.write_text(
            h.runbook.read_text().replace(
                "listen: 127.0.0.1:0", "listen: 127.0.0.1:0\n  store: postgresql://127.0.0.1:1/nowhere"
            )
        )
        assert "postgresql://127.0.0.1:1" in h.runbook.read_text()
        started = time.monotonic()
        got = h.cli("kill", "a", "--reason", "the database is down")
        assert got.returncode == 0, got.stderr
        assert "a: killed" in got.stdout
        assert not h.agent_pids("a") and time.monotonic() - started < 8
    finally:
        h.down(daemon)


def test_an_sdk_agent_inside_the_wall_asks_the_daemon_whether_it_is_killed(make_host, monkeypatch) -> None:  # noqa: F811
    """Inside the wall the state directory is hidden (no kill file to see): killed() asks the daemon."""
    from tether.sdk import Agent

    h: Host = make_host({"w": agent(["sleep", "3600"])})
    daemon = h.up()
    try:
        wait_until(lambda: h.instances("w"), 10, "the agent to run")
        monkeypatch.setenv("TETHER_AGENT", "w")
        monkeypatch.setenv("TETHER_URL", h.url)
        monkeypatch.setenv("TETHER_TOKEN", h.agent_token("w"))
        monkeypatch.setenv("TETHER_KILL_FILES", str(h.state / "hidden" / "KILL"))  # what the wall leaves: ENOENT
        monkeypatch.setenv("TETHER_WALL", "1")
        a = Agent.from_env()
        assert a.killed() is False
        assert h.api("POST", "/v1/agents/w/kill", {"reason": "test"})[0] == 200
        assert a.killed() is True
        assert h.api("POST", "/v1/agents/w/resume", {})[0] == 200
        assert a.killed() is False
        monkeypatch.setenv("TETHER_URL", "http://127.0.0.1:9")  # no daemon to ask: killed, to be safe
        assert Agent.from_env().killed() is True
    finally:
        h.down(daemon)


def test_kill_and_resume_from_the_state_dir_parse_no_runbook(make_host, tmp_path: Path) -> None:  # noqa: F811
    """Given only the state directory, the kill takes each agent's signal and grace from what the daemon
    keeps beside its runbook copy (``kill-specs.json``, rewritten on reload): the runbook's models
    (pydantic) are never imported, so kill and resume stay quick with the daemon SIGSTOPped."""
    h: Host = make_host(
        {"stubborn": agent(["sh", "-c", "trap '' TERM; while :; do sleep 0.05; done"], kill={"grace": "400ms"})}
    )
    daemon = h.up()
    wait_until(lambda: h.agent_pids("stubborn"), 10, "stubborn to run")
    pids = h.agent_pids("stubborn")
    specs = h.state / "kill-specs.json"
    assert json.loads(specs.read_text()) == {"stubborn": {"signal": "SIGTERM", "grace": 0.4}}
    anywhere = tmp_path / "anywhere"
    anywhere.mkdir()

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-X", "importtime", "-m", "tether", "--home", str(h.state), *args],
            cwd=anywhere,
            env=cli_env({"TETHER_TEST_MARK": h.mark}),
            capture_output=True,
            text=True,
            timeout=60,
        )

    daemon.send_signal(signal.SIGSTOP)
    try:
        got = cli("kill", "stubborn")
        assert got.returncode == 0, got.stderr[-2000:]
        # it ignores SIGTERM (its sleeps do not, and come and go meanwhile): the kept grace, then SIGKILL
        forced = r"stubborn: killed \(\d+ process\(es\) signalled, \d+ SIGKILLed after the grace\)"
        assert re.match(forced, got.stdout), got.stdout
        assert not any(_alive(p) for p in pids)
        assert "pydantic" not in got.stderr, "the runbook was parsed"
        got = cli("resume", "stubborn")
        assert got.returncode == 0, got.stderr[-2000:]
        assert got.stdout.startswith("stubborn: kill switch lifted; the daemon"), got.stdout
        assert "pydantic" not in got.stderr, "the runbook was parsed"
    finally:
        daemon.send_signal(signal.SIGCONT)

    h.write({"stubborn": agent(["sh", "-c", "trap '' TERM; while :; do sleep 0.05; done"], kill={"grace": "2s"})})
    assert h.cli("reload").returncode == 0
    assert json.loads(specs.read_text()) == {"stubborn": {"signal": "SIGTERM", "grace": 2.0}}, "kept on reload"

    specs.unlink()  # none kept (a daemon of an earlier version): the kill parses the runbook copy instead
    got = cli("kill", "stubborn")
    assert got.returncode == 0 and got.stdout.startswith("stubborn: "), got.stderr[-2000:]
    assert "pydantic" in got.stderr
    got = cli("kill", "nobody")
    assert got.returncode != 0 and got.stderr.splitlines()[-1].startswith("tether: error: no agent named 'nobody'")
    assert h.down(daemon) == 0
