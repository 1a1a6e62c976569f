"""Files changed counts the agent's work only: not tether's own files (the hook settings `tether integrate`
wrote, anything under the state directory) and not files git ignores. A real daemon (`tether up
--foreground`), the real `tether integrate claude-code`, real git; the session's hook events are posted as
Claude Code posts them."""

from __future__ import annotations

import json
import os
import subprocess
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

from helpers import DaemonHost

RUNBOOK = """\
version: 1
host: {state_dir: ./proj/.tether-state, workspace_root: ./ws, listen: "127.0.0.1:0"}
agents:
  cc:
    kind: claude-code
    cwd: ./proj
    owner: {name: Olive Owner, contact: "json://127.0.0.1/owner"}
    backup: {name: Bob Backup, contact: "json://127.0.0.1/backup"}
    autostart: false
    sandbox: off
"""
GIT_ENV = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@x", "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@x"}


def _repo(proj: Path) -> None:
    proj.mkdir(parents=True)
    (proj / ".gitignore").write_text("build/\n")
    (proj / "app.py").write_text("print(1)\n")
    for args in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-q", "-m", "init"]):
        subprocess.run(["git", "-C", str(proj), *args], check=True, env={**os.environ, **GIT_ENV}, capture_output=True)


def _post(h: DaemonHost, token: str, event: dict[str, Any]) -> None:
    body = {"session_id": "by-hand", "cwd": str(h.root / "proj"), **event}
    req = urllib.request.Request(f"{h.url}/v1/hooks/claude-code/cc", data=json.dumps(body).encode(),
                                 headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as resp:
        assert resp.status == 200


def _wrote(h: DaemonHost, token: str, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("x\n")
    _post(h, token, {"hook_event_name": "PostToolUse", "tool_name": "Write", "tool_use_id": f"w-{path.name}",
                     "tool_input": {"file_path": str(path), "content": "x\n"}, "tool_response": {}})


def _changed(h: DaemonHost, until: str, timeout: float = 30) -> set[str]:
    """Every path of every ``files.changed`` event, once ``until`` is among them."""
    deadline = time.monotonic() + timeout
    while True:
        rows = h.query("SELECT data FROM events WHERE kind = 'files.changed' AND agent = 'cc'")
        paths = {p for r in rows for p in json.loads(r["data"])["paths"]}
        if until in paths:
            return paths
        assert time.monotonic() < deadline, f"no files.changed for {until} in {timeout:g}s: {sorted(paths)}"
        time.sleep(0.05)


def test_files_changed_leaves_out_tethers_own_and_ignored_files(tmp_path: Path) -> None:
    proj = tmp_path / "host" / "proj"
    _repo(proj)
    h = DaemonHost(tmp_path / "host", RUNBOOK)
    h.state = proj / ".tether-state"  # inside the project: every write of the daemon's shows in `git status`
    try:
        h.up()
        token = h.cli("token", "create", "--role", "agent", "--agent", "cc").stdout.split()[0]
        _post(h, token, {"hook_event_name": "SessionStart", "source": "startup"})  # the baseline; the task begins
        _wrote(h, token, proj / "first.md")
        assert _changed(h, str(proj / "first.md")) == {str(proj / "first.md")}

        integrated = h.cli("integrate", "claude-code", "--agent", "cc")  # the hand-run session's hooks
        assert integrated.returncode == 0, integrated.stderr
        assert (proj / ".claude" / "settings.json").exists()
        (proj / "app.py").write_text("print(2)\n")  # the agent's work, seen by git after a command
        (proj / "build").mkdir()
        (proj / "build" / "made.o").write_text("ignored\n")
        _post(h, token, {"hook_event_name": "PostToolUse", "tool_name": "Bash", "tool_use_id": "b1",
                         "tool_input": {"command": "make"}, "tool_response": {"exit_code": 0}})
        _wrote(h, token, proj / "build" / "written.o")  # reported by the tool, and ignored
        _wrote(h, token, proj / "notes.md")
        _wrote(h, token, proj / "last.md")  # its job runs after every earlier one (one worker, in order)
        got = _changed(h, str(proj / "last.md"))
        assert got == {str(proj / p) for p in ("first.md", "app.py", "notes.md", "last.md")}, sorted(got)

        _post(h, token, {"hook_event_name": "SessionEnd", "reason": "exit"})  # the task ends: rollback's count
        deadline = time.monotonic() + 30
        while not (ended := h.query("SELECT data FROM events WHERE kind = 'rollback.end'")):
            assert time.monotonic() < deadline, "no rollback.end"
            time.sleep(0.05)
        files = json.loads(ended[0]["data"])["files"]
        assert files == sorted(str(proj / p) for p in ("app.py", "first.md", "last.md", "notes.md")), files
        [agent] = h.query("SELECT files_changed FROM agents WHERE name = 'cc'")
        assert agent["files_changed"] == 4
    finally:
        h.down()


def test_a_file_the_late_baseline_listed_still_counts_when_a_tool_reports_it(tmp_path: Path) -> None:
    """The session's baseline look at git runs on the monitor's worker: under load it runs after the agent's
    first write, and lists that file. A tool's report of it still counts (the baseline counted nothing);
    only a change a later git look counted is not counted again (CI saw first.md never counted)."""
    from tether.integrations.monitor import Monitor
    from tether.paths import StateDir
    from tether.store import open_store

    proj = tmp_path / "proj"
    _repo(proj)
    store = open_store(f"sqlite:///{tmp_path / 'tether.db'}")
    mon = Monitor(store, StateDir(tmp_path / "state"), lambda agent, task: None)
    try:
        gate = threading.Event()
        mon.later(gate.wait)  # the worker is busy: the baseline queued by SessionStart waits
        mon.event("claude-code", "cc", {"hook_event_name": "SessionStart", "session_id": "s", "cwd": str(proj)})
        (proj / "first.md").write_text("x\n")  # written before the baseline runs
        gate.set()
        assert mon.drain()
        mon.event("claude-code", "cc", {"hook_event_name": "PostToolUse", "session_id": "s", "cwd": str(proj),
                                        "tool_name": "Write", "tool_use_id": "w1",
                                        "tool_input": {"file_path": str(proj / "first.md")}, "tool_response": {}})
        assert mon.drain()
        paths = [p for e in store.events(limit=100) if e.kind == "files.changed" for p in e.data["paths"]]
        assert paths == [str(proj / "first.md")], paths
        (proj / "app.py").write_text("print(2)\n")  # counted by a git look after a command ...
        mon.event("claude-code", "cc", {"hook_event_name": "PostToolUse", "session_id": "s", "cwd": str(proj),
                                        "tool_name": "Bash", "tool_use_id": "b1", "tool_input": {"command": "make"},
                                        "tool_response": {}})
        assert mon.drain()
        mon.event("claude-code", "cc", {"hook_event_name": "PostToolUse", "session_id": "s", "cwd": str(proj),
                                        "tool_name": "Edit", "tool_use_id": "e1",
                                        "tool_input": {"file_path": str(proj / "app.py")}, "tool_response": {}})
        assert mon.drain()  # ... and its report by a tool afterwards, unchanged since, is not counted again
        paths = [p for e in store.events(limit=100) if e.kind == "files.changed" for p in e.data["paths"]]
        assert sorted(paths) == [str(proj / "app.py"), str(proj / "first.md")], paths
    finally:
        mon.stop()
        store.close()
