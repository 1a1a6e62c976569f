"""The demo does what its intro says, driven as a newcomer would from a second shell: data-deleter shows
as blocked (not stuck), repo-maintainer merges once approved and ends (never stuck), `tether kill
flaky-worker` reaches a running process, `--port` is the dashboard's port, and the owner's notifications
reach the demo's own receiver (sent, not failed)."""

from __future__ import annotations

import json
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from helpers import cli_env, run_cli
from test_daemon_kit import wait_until
from test_demo_exit import DEMO_AGENTS, agents_running, clean_up, of_demo

pytestmark = pytest.mark.skipif(
    shutil.which("git") is None or not sys.platform.startswith("linux"),
    reason="the demo needs git; finding its processes needs /proc",
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_the_demo_as_its_intro_says(tmp_path: Path) -> None:
    mark, d, port = uuid.uuid4().hex, tmp_path / "demo", _free_port()
    out = open(tmp_path / "demo.out", "w")  # noqa: SIM115 - the child's
    demo = subprocess.Popen(
        [sys.executable, "-m", "tether", "demo", "--dir", str(d), "--port", str(port), "--duration", "60"],
        stdout=out,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        env=cli_env({"TETHER_TEST_MARK": mark}),
        cwd=tmp_path,
    )
    out.close()
    env = {"TETHER_RUNBOOK": str(d / "tether.yaml")}

    def status() -> dict[str, dict[str, object]]:
        got = run_cli("status", "--json", env=env, cwd=tmp_path)
        return {a["agent"]: a for a in json.loads(got.stdout)["agents"]} if got.returncode == 0 else {}

    info = {"url": "-"}
    try:
        wait_until(lambda: agents_running(d / "state"), 60, "the demo's daemon and its four agents", interval=0.1)
        info = json.loads((d / "state" / "daemon.json").read_text())
        assert info["url"] == f"http://127.0.0.1:{port}"
        intro = f"dashboard  http://127.0.0.1:{port}/"  # printed once the demo sees its daemon ready: may trail
        wait_until(lambda: intro in (tmp_path / "demo.out").read_text(), 30, "the demo's intro")

        # data-deleter: blocked, with the runbook's reason, and still so past its stuck_after (20s)
        wait_until(lambda: status().get("data-deleter", {}).get("state") == "blocked", 20, "data-deleter blocked")
        assert "rm -rf ./data" in str(status()["data-deleter"]["reason"])

        # repo-maintainer: waits for its merge; approved, it merges and ends (exit 0), never stuck
        wait_until(
            lambda: status().get("repo-maintainer", {}).get("state") == "waiting_for_approval",
            30,
            "repo-maintainer to wait for its merge",
        )
        pending = json.loads(run_cli("approvals", "--json", env=env, cwd=tmp_path).stdout)
        (merge,) = [a for a in pending if a["agent"] == "repo-maintainer"]
        assert run_cli("approve", str(merge["id"]), env=env, cwd=tmp_path).returncode == 0
        wait_until(lambda: status().get("repo-maintainer", {}).get("state") == "stopped", 20, "repo-maintainer done")
        assert status()["repo-maintainer"]["reason"] == "exited 0; restart policy on-failure"

        # tether kill flaky-worker: its process is signalled (it restarts a second after each crash, so
        # this waits for a moment it runs), and says so in its log
        def killed_running() -> bool:
            got = run_cli("kill", "flaky-worker", env=env, cwd=tmp_path)
            if "process(es) signalled" in got.stdout:
                return True
            run_cli("resume", "flaky-worker", env=env, cwd=tmp_path)  # caught between runs: again
            return False

        wait_until(killed_running, 30, "a kill that meets flaky-worker running", interval=0.5)
        wait_until(
            lambda: (
                "flaky-worker: got SIGTERM, stopping"
                in (run_cli("logs", "flaky-worker", "--stderr", "--raw", env=env, cwd=tmp_path).stdout)
            ),
            10,
            "its SIGTERM",
        )
        assert status()["flaky-worker"]["state"] == "killed"

        # past data-deleter's stuck_after: blocked still, never stuck; repo-maintainer was never stuck
        started = float(json.loads((d / "state" / "daemon.json").read_text())["started"])
        wait_until(lambda: time.time() > started + 22, 30, "stuck_after to pass", interval=0.2)
        assert status()["data-deleter"]["state"] == "blocked"
        events = run_cli("events", "-n", "5000", "--json", env=env, cwd=tmp_path).stdout.splitlines()
        kinds = [json.loads(e) for e in events]
        stuck = {e["agent"] for e in kinds if e["kind"] == "agent.state" and e["data"]["state"] == "stuck"}
        assert stuck == {"stuck-agent"}, stuck

        # notifications: sent to the demo's receiver, none failed
        assert [e for e in kinds if e["kind"] == "notify.sent"], "no notification was sent"
        assert not [e for e in kinds if e["kind"] == "notify.failed"], [
            e for e in kinds if e["kind"] == "notify.failed"
        ]
        got = [json.loads(line) for line in (d / "notifications.jsonl").read_text().splitlines()]
        assert any(n["to"] == "owner" and f"approval #{merge['id']}" in n["notification"]["title"] for n in got)

        demo.send_signal(signal.SIGINT)
        assert demo.wait(timeout=90) == 0, (tmp_path / "demo.out").read_text()
        assert of_demo(mark, info["url"], d) == [], "processes of the demo outlived it"
    finally:
        clean_up(demo, mark, info["url"], d)
    assert sorted(DEMO_AGENTS) == sorted(status())


def test_demo_port_taken_is_one_line(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        got = run_cli("demo", "--dir", str(tmp_path / "d"), "--port", str(port), "--duration", "1", cwd=tmp_path)
    assert got.returncode == 2
    assert got.stderr == (
        f"tether: error: --port {port}: 127.0.0.1:{port} is taken (Address already in use); pick "
        "another port, or leave --port out for any free one\n"
    )
    assert not (tmp_path / "d").exists(), "nothing written"
