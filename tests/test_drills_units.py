"""``tether drill`` without a real daemon: the report, the status summary, how tests are broken, what the
network drill probes, the CLI's exit status, and drills that must fail against a daemon that gets it wrong
(a fake one: the real boundary cannot be made to allow a protected write)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from helpers import run_cli
from tether.drills import DRILLS, protected_file, runner
from tether.drills.base import Host, Result
from tether.drills.break_test import break_a_test, find_repo
from tether.drills.network import targets
from tether.drills.report import Report, table
from tether.drills.status import drill_summary
from tether.errors import UsageError
from tether.runbook import load
from tether.store import NewEvent, open_store

PY = sys.executable
needs_git = pytest.mark.skipif(shutil.which("git") is None, reason="needs git")


def git(repo: Path, *args: str) -> str:
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.com"}
    return subprocess.run(["git", *args], cwd=repo, env=env, check=True, capture_output=True, text=True).stdout


def make_repo(path: Path, files: dict[str, str]) -> Path:
    path.mkdir(parents=True)
    for name, text in files.items():
        (path / name).parent.mkdir(parents=True, exist_ok=True)
        (path / name).write_text(text)
    git(path, "init", "-q", "-b", "main")
    git(path, "add", ".")
    git(path, "commit", "-qm", "init")
    return path


PY_FILES = {
    "util.py": "def add(a, b):\n    return a + b\n",
    "test_util.py": "import unittest\n\nimport util\n\n\nclass T(unittest.TestCase):\n"
                    "    def test_add(self):\n        self.assertEqual(util.add(2, 2), 4)\n",
}


def write_runbook(root: Path, agent: dict[str, Any], name: str = "a") -> Path:
    import yaml

    body = {
        "owner": {"name": "Ana", "contact": "json://127.0.0.1:9/ana"},
        "backup": {"name": "Bo", "contact": "json://127.0.0.1:9/bo"},
        "command": ["sleep", "1000"], **agent,
    }
    doc = {"version": 1, "host": {"name": "unit", "state_dir": str(root / "state"),
                                  "workspace_root": str(root / "ws"), "listen": "127.0.0.1:0"},
           "agents": {name: body}}
    path = root / "tether.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


# -- the report and the status summary ----------------------------------------------------------------


def test_only_picks_drills_in_running_order_and_refuses_unknown_ones() -> None:
    assert runner.parse_only(None) == list(DRILLS)
    assert runner.parse_only("reboot, kill") == ["kill", "reboot"]
    with pytest.raises(UsageError, match="unknown drill 'reboots'"):
        runner.parse_only("kill,reboots")


def test_report_table_and_json() -> None:
    rep = Report("h1", "r1", [
        Result("a", "kill", "pass", 1.234, "restarted", [5, 7], {"restarted_s": 0.6}),
        Result("a", "network", "degraded", 0.4, "no namespace", [9]),
        Result("b", "break-test", "fail", 0.2, "no pr.open gate"),
    ])
    assert rep.failed and rep.counts() == {"pass": 1, "degraded": 1, "fail": 1}
    doc = json.loads(rep.to_json())
    assert doc["host"] == "h1" and doc["run"] == "r1"
    assert doc["drills"][0] == {"agent": "a", "drill": "kill", "status": "pass", "seconds": 1.234,
                                "detail": "restarted", "evidence": [5, 7], "timings": {"restarted_s": 0.6}}
    text = table(rep)
    for word in ("AGENT", "DRILL", "STATUS", "DETAIL", "no pr.open gate", "1.2s"):
        assert word in text
    assert "3 drill(s): 1 pass, 1 degraded, 1 fail" in text
    assert not Report("h", "r", [Result("a", "kill", "degraded", 1, "")]).failed


def test_drill_summary_newest_result_per_drill_worst_first_and_overdue(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path / 't.db'}")
    now = 1_800_000_000.0
    day = 86400.0
    assert drill_summary(store, "a", now) == {"last_drill": None, "last_drill_at": None, "drill_overdue": True}

    def result(drill: str, status: str, ts: float, run: str, h: str = "h1") -> NewEvent:
        return NewEvent("drill.result", "a", {"drill": drill, "status": status, "seconds": 1.0, "detail": "",
                                              "runbook_hash": h, "run": run}, ts)

    store.append([result("reboot", "fail", now - 40 * day, "r0"), result("kill", "pass", now - 40 * day, "r0")])
    got = drill_summary(store, "a", now)
    assert got["drill_overdue"] is True and got["last_drill"]["status"] == "fail"
    store.append([result("kill", "pass", now - 2 * day, "r1"), result("network", "skipped", now - day, "r1"),
                  result("network", "degraded", now - 3 * day, "r1", "h2")])
    got = drill_summary(store, "a", now, runbook_hash="h1")
    assert got["drill_overdue"] is False
    # a passing kill drill does not hide the reboot drill that failed; skipped drills do not count
    assert got["last_drill"]["drills"] == {"reboot": "fail", "kill": "pass", "network": "degraded"}
    assert got["last_drill"]["status"] == "fail" and got["last_drill"]["failed"] == ["reboot"]
    assert got["last_drill"]["run"] == "r1" and got["drill_runbook_changed"] is True  # newest: network, h2
    assert got["last_drill_at"] == time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(now - 3 * day))
    assert drill_summary(store, "b", now)["last_drill"] is None
    store.close()


def test_the_owner_is_told_by_a_new_notification_or_the_incident_thread_it_joined(tmp_path: Path) -> None:
    rb = write_runbook(tmp_path, {})
    host = Host(load(rb))
    assert host.notifier_runs() is False
    first = host.emit("incident.opened", "a", kind="network", summary="down")

    def queued(root: int, topic: str = "incident.opened") -> int:
        return host.emit("notify.queued", "a", thread=f"incident:{root}", topic=topic, subject=root,
                         recipient="owner:a", channel="mailto", title="t", body="b")

    told = queued(first)
    host._notifier = None
    assert host.notifier_runs() is True
    host.emit("incident.resolved", "a", incident_id=first, kind="network", why="drill")
    cursor = host.cursor()
    second = host.emit("incident.opened", "a", kind="network", summary="down again")
    got = host.owner_told("a", "network", cursor, 0.1)  # re-opened soon after: it joined the told thread
    assert got is not None and got.id == told
    assert host.owner_told("a", "exited", cursor, 0.1) is None
    other = host.emit("incident.opened", "a", kind="exited", summary="gone")
    cursor = host.cursor()
    late = queued(other)
    got = host.owner_told("a", "exited", cursor - 1, 0.5)
    assert got is not None and got.id == late and second
    host.close()


def test_a_daemon_outside_the_tether_unit_is_started_again_by_the_drill() -> None:
    from tether.drills.reboot import service_manager

    assert service_manager(os.getpid()) is None  # a shell under any unit (CI) is no service manager of ours
    assert service_manager(2**22 + 1) is None


def test_protected_globs_become_paths() -> None:
    m = protected_file.materialise
    assert m("**/secrets/**") == "secrets/tether-drill"
    assert m(".env.*") == ".env.tether-drill"
    assert m("*.pem") == "tether-drill.pem"
    assert m("config/prod.yaml") == "config/prod.yaml"
    assert m("keys/[ab]?.key") == "keys/ax.key"


def test_network_targets_are_scope_hosts_on_443_then_the_daemon(tmp_path: Path) -> None:
    rb = write_runbook(tmp_path, {"scope": {"hosts": ["api.github.com", "*.example.com", "db.internal:5432",
                                                      "API.github.com"]}})
    host = Host(load(rb))
    assert targets(host, "a", "http://127.0.0.1:9") == [
        "tcp://api.github.com:443", "tcp://example.com:443", "tcp://db.internal:5432", "http://127.0.0.1:9"]


# -- breaking a test -------------------------------------------------------------------------------------


@needs_git
def test_a_python_test_is_broken_so_that_unittest_fails_naming_it(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "r", {**PY_FILES, "pkg/__init__.py": "", "pkg/tests/test_deep.py": "x = 1\n"})
    path = break_a_test(repo, ("python", "-m", "unittest"), "MARKER-1")
    assert path == "test_util.py"  # the shallowest test file: the one the gate surely runs
    proc = subprocess.run([PY, "-m", "unittest", "-q"], cwd=repo, capture_output=True, text=True)
    assert proc.returncode == 1 and "AssertionError: MARKER-1" in proc.stderr
    # a gate naming a folder gets a test file from that folder
    repo2 = make_repo(tmp_path / "r2", {**PY_FILES, "tests/test_x.py": "", "tests/__init__.py": ""})
    assert break_a_test(repo2, ("pytest", "tests"), "M") == "tests/test_x.py"


@needs_git
def test_tests_in_other_languages_are_broken_by_the_language_the_gate_runs(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "r", {
        "test_a.py": "", "web/a.test.ts": "", "go/a_test.go": 'package a\n\nimport "testing"\n',
        "crate/tests/it.rs": "",
    })
    assert break_a_test(repo, ("npm", "test"), "M1") == "web/a.test.ts"
    assert 'throw new Error("M1")' in (repo / "web/a.test.ts").read_text()
    assert break_a_test(repo, ("go", "test", "./..."), "M2") == "go/a_test.go"
    assert 't.Fatal("M2")' in (repo / "go/a_test.go").read_text()
    assert break_a_test(repo, ("cargo", "test"), "M3") == "crate/tests/it.rs"
    assert break_a_test(repo, ("make", "check"), "M4") == "test_a.py"  # no hint: Python first
    bare = make_repo(tmp_path / "bare", {"README": "no tests\n"})
    assert break_a_test(bare, ("make",), "M") is None


@needs_git
def test_the_repo_is_the_scope_repo_or_a_workspace_that_is_one(tmp_path: Path) -> None:
    make_repo(tmp_path / "ws" / "a", PY_FILES)
    host = Host(load(write_runbook(tmp_path, {})))
    assert find_repo(host, "a") == (tmp_path / "ws" / "a").resolve()
    (tmp_path / "ws2" / "a").mkdir(parents=True)  # a default workspace inside someone else's repo is not one
    make_repo(tmp_path / "outer", {"x": "1"})
    (tmp_path / "outer" / "ws" / "a").mkdir(parents=True)
    host = Host(load(write_runbook(tmp_path / "outer", {})))
    assert find_repo(host, "a") is None


# -- the CLI, no daemon needed -----------------------------------------------------------------------------


@needs_git
def test_cli_break_test_passes_with_a_gate_and_fails_without_one(tmp_path: Path) -> None:
    make_repo(tmp_path / "repo", PY_FILES)
    gate = {"pr.open": {"command": [PY, "-m", "unittest", "-q"]}}
    rb = write_runbook(tmp_path, {"cwd": "./repo", "gates": gate, "approvals": {"verdicts": {"pr.open": "allow"}}})
    got = run_cli("-f", str(rb), "drill", "--only", "break-test", "--json")
    assert got.returncode == 0, got.stderr
    doc = json.loads(got.stdout)
    (row,) = doc["drills"]
    assert row["status"] == "pass" and "AssertionError: tether drill" in row["detail"], row
    assert row["evidence"], "the gate.ran and verdict events"
    assert "worktree" not in git(tmp_path / "repo", "worktree", "list").split("\n", 1)[-1]
    assert git(tmp_path / "repo", "branch", "--list", "tether-drill/*") == ""
    assert (tmp_path / "repo" / "test_util.py").read_text() == PY_FILES["test_util.py"], "live workspace untouched"

    rb = write_runbook(tmp_path, {"cwd": "./repo"})
    got = run_cli("-f", str(rb), "drill", "--only", "break-test")
    assert got.returncode == 1
    assert "fail" in got.stdout and "no pr.open gate" in got.stdout
    assert "break-test" in got.stderr, "progress lines go to stderr"

    # a gate that runs no tests: with pr.open allowed the PR opens; with it asked, only a human stands between
    rb = write_runbook(tmp_path, {"cwd": "./repo", "gates": {"pr.open": {"command": ["true"]}},
                                  "approvals": {"verdicts": {"pr.open": "allow"}}})
    got = run_cli("-f", str(rb), "drill", "--only", "break-test", "--json")
    assert got.returncode == 1
    assert "did not stop the PR" in json.loads(got.stdout)["drills"][0]["detail"]
    rb = write_runbook(tmp_path, {"cwd": "./repo", "gates": {"pr.open": {"command": ["true"]}}})
    got = run_cli("-f", str(rb), "drill", "--only", "break-test", "--json")
    assert got.returncode == 1
    assert "let a failing test" in json.loads(got.stdout)["drills"][0]["detail"]
    with open_store(f"sqlite:///{tmp_path / 'state' / 'tether.db'}") as store:
        assert store.approvals("pending") == [], "the drill denied the approval it caused"
    # a gate that fails on HEAD already shows nothing
    rb = write_runbook(tmp_path, {"cwd": "./repo", "gates": {"pr.open": {"command": ["false"]}}})
    got = run_cli("-f", str(rb), "drill", "--only", "break-test", "--json")
    assert got.returncode == 1
    assert "already fails on HEAD" in json.loads(got.stdout)["drills"][0]["detail"]


def test_cli_without_a_daemon_fails_the_drills_that_need_one(tmp_path: Path) -> None:
    rb = write_runbook(tmp_path, {})
    got = run_cli("-f", str(rb), "drill", "--only", "kill,network,protected-file,reboot", "--json")
    assert got.returncode == 1, got.stderr
    rows = json.loads(got.stdout)["drills"]
    assert [r["status"] for r in rows] == ["fail"] * 4 and all("no daemon" in r["detail"] for r in rows)
    got = run_cli("-f", str(rb), "drill", "--only", "kil")
    assert got.returncode == 2 and "unknown drill 'kil'" in got.stderr
    got = run_cli("-f", str(rb), "drill", "--agent", "zz")
    assert got.returncode == 1 and "no agent named 'zz'" in got.stderr


# -- a fake daemon that gets the protected write wrong -------------------------------------------------------


class FakeDaemon:
    """Answers the drill's API calls from a table; writes the state dir's daemon.json and admin.token."""

    def __init__(self, state: Path, answers: dict[tuple[str, str], tuple[int, Any]]) -> None:
        self.answers = answers
        self.calls: list[tuple[str, str, Any]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _answer(self, method: str) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = json.loads(self.rfile.read(length)) if length else None
                outer.calls.append((method, self.path, body))
                code, doc = outer.answers.get((method, self.path.split("?")[0]), (404, {"detail": "no"}))
                data = json.dumps(doc).encode()
                self.send_response(code)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                self._answer("GET")

            def do_POST(self) -> None:
                self._answer("POST")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        state.mkdir(parents=True, exist_ok=True)
        url = f"http://127.0.0.1:{self.server.server_address[1]}"
        (state / "daemon.json").write_text(json.dumps({"pid": os.getpid(), "url": url}))
        (state / "admin.token").write_text("fake\n")
        answers.setdefault(("GET", "/v1/health"), (200, {"status": "ok"}))

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def fake(tmp_path: Path) -> Iterator[tuple[Host, FakeDaemon]]:
    rb = write_runbook(tmp_path, {})
    daemon = FakeDaemon(tmp_path / "state", {})
    host = Host(load(rb))
    yield host, daemon
    host.close()
    daemon.close()


def test_protected_file_drill_fails_when_the_write_is_allowed(fake: tuple[Host, FakeDaemon]) -> None:
    host, daemon = fake
    daemon.answers[("POST", "/v1/agents/a/check")] = (200, {"decision": "allow", "rule": "someone: allow"})
    got = protected_file.run(host, "a")
    assert got.status == "fail" and "was allow without approval" in got.detail


def test_protected_file_drill_fails_when_pending_is_not_a_real_approval(fake: tuple[Host, FakeDaemon]) -> None:
    host, daemon = fake
    daemon.answers[("POST", "/v1/agents/a/check")] = (200, {"decision": "pending", "approval_id": 99})
    got = protected_file.run(host, "a")
    assert got.status == "fail" and "approval 99 is not pending" in got.detail
    daemon.answers[("GET", "/v1/approvals/99")] = (200, {"id": 99, "state": "pending"})
    daemon.answers[("POST", "/v1/approvals/99/deny")] = (200, {"id": 99, "state": "denied"})
    got = protected_file.run(host, "a")
    assert got.status == "pass" and got.evidence == [99]
    assert ("POST", "/v1/approvals/99/deny", {"reason": "drill"}) in daemon.calls, "cleaned up"


def test_protected_file_drill_is_degraded_when_the_write_is_denied_outright(fake: tuple[Host, FakeDaemon]) -> None:
    host, daemon = fake
    daemon.answers[("POST", "/v1/agents/a/check")] = (200, {"decision": "deny", "reason": "kill switch"})
    got = protected_file.run(host, "a")
    assert got.status == "degraded" and "no approval asked" in got.detail
