"""`tether status` tells the truth to a person at 80 columns, through a real daemon (`tether up --foreground`,
real SQLite, real HTTP on 127.0.0.1): a session run by hand that waits on an approval shows as waiting for
it, and when the daemon is gone, stopped (SIGSTOP) or was stopped, its line fits 80 columns."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from helpers import DaemonHost

RUNBOOK = """\
version: 1
host: {state_dir: ./state, workspace_root: ./ws, listen: "127.0.0.1:0"}
agents:
  a-claude-code-agent-run-by-hand:
    kind: claude-code
    owner: {name: Olive Owner, contact: "json://127.0.0.1/owner"}
    backup: {name: Bob Backup, contact: "json://127.0.0.1/backup"}
    autostart: false
    sandbox: off
"""
AGENT = "a-claude-code-agent-run-by-hand"


@pytest.fixture
def host(tmp_path: Path) -> Any:
    h = DaemonHost(tmp_path / "host", RUNBOOK)
    (h.root / "ws" / AGENT).mkdir(parents=True)
    h.up()
    try:
        yield h
    finally:
        if h.proc is not None and h.proc.poll() is None:
            h.proc.send_signal(signal.SIGCONT)
            h.down()


def _status(h: DaemonHost, columns: int, fast: bool = False) -> list[str]:
    """``tether status`` as printed to a pipe of ``columns``: through click (``-f RUNBOOK``), or the fast
    path (``--home STATE``, no click)."""
    args = ["--home", str(h.state), "status"] if fast else ["status"]
    if fast:
        proc = subprocess.run([sys.executable, "-m", "tether", *args], env=h.env({"COLUMNS": str(columns)}),
                              cwd="/", capture_output=True, text=True, timeout=60)
    else:
        proc = h.cli(*args, env={"COLUMNS": str(columns)})
    assert proc.returncode == 0 and not proc.stderr, proc.stderr
    return proc.stdout.splitlines()


def _hold(h: DaemonHost, token: str, session: str, command: str) -> None:
    """A Claude Code session run by hand asks to run ``command``; tether holds it (defer) for a human."""
    event = {"hook_event_name": "PreToolUse", "session_id": session, "cwd": str(h.root / "ws" / AGENT),
             "tool_name": "Bash", "tool_input": {"command": command}, "tool_use_id": f"t-{session}"}
    req = urllib.request.Request(f"{h.url}/v1/hooks/claude-code/{AGENT}", data=json.dumps(event).encode(),
                                 headers={"Authorization": f"Bearer {token}", "X-Tether-Hold": "defer",
                                          "Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as resp:
        out = json.load(resp)["hookSpecificOutput"]
    assert out["permissionDecision"] == "defer", out


def _agent(h: DaemonHost) -> dict[str, Any]:
    [doc] = json.loads(h.cli("status", "--json").stdout)["agents"]
    return dict(doc)


def test_a_session_run_by_hand_waiting_on_approvals_shows_as_waiting(host: DaemonHost) -> None:
    token = host.cli("token", "create", "--role", "agent", "--agent", AGENT).stdout.split()[0]
    _hold(host, token, "by-hand", "git push --force origin main")
    [first] = [int(r["id"]) for r in host.query("SELECT id FROM approvals WHERE state = 'pending'")]
    doc = _agent(host)
    assert doc["state"] == "waiting_for_approval", doc
    assert doc["reason"].startswith(f"waiting for approval {first} (`tether approve {first}`): ")
    assert "git push --force origin main" in doc["reason"]
    lines = _status(host, 80)
    assert lines[1].split()[:2] == [AGENT, "waiting_for_approval"], lines
    assert lines[2].startswith(f"  why: waiting for approval {first} (`tether approve {first}`)"), lines

    _hold(host, token, "by-hand-too", "git push --force origin release")
    assert _agent(host)["reason"].startswith(f"waiting for approval {first} (`tether approve {first}`) (and 1 more")
    for row in host.query("SELECT id FROM approvals WHERE state = 'pending'"):
        decided = host.cli("deny", str(row["id"]), "--reason", "not today")
        assert decided.returncode == 0, decided.stderr
    doc = _agent(host)
    assert (doc["state"], doc["reason"]) == ("stopped", None), "no approval left: what the daemon recorded"


def test_the_daemon_line_fits_80_columns_when_the_daemon_is_not_running(host: DaemonHost) -> None:
    assert host.proc is not None
    pid = host.proc.pid
    host.proc.send_signal(signal.SIGSTOP)
    for fast in (False, True):
        lines = _status(host, 80, fast)
        assert lines[0].startswith(f"daemon: pid {pid} is stopped (SIGSTOP), answers nothing; last heard "), lines
        assert all(len(line) <= 80 for line in lines), "\n".join(lines)
    host.proc.send_signal(signal.SIGKILL)
    host.proc.wait(30)
    for fast in (False, True):
        lines = _status(host, 80, fast)
        assert lines[0].startswith(f"daemon: pid {pid} is gone; last heard from "), lines
        assert lines[0].endswith("; `tether up` starts it") and "+00:00" not in lines[0]
        assert all(len(line) <= 80 for line in lines), "\n".join(lines)
        wide = _status(host, 200, fast)
        assert wide[0].startswith(f"daemon: pid {pid} is gone; last heard from ") and "+00:00)" in wide[0], wide

    host.proc = None
    host.up()
    host.down()
    for fast in (False, True):
        lines = _status(host, 80, fast)
        assert lines[0].startswith("daemon: not running since it was stopped "), lines
        assert all(len(line) <= 80 for line in lines), "\n".join(lines)
