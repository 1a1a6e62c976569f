"""Approvals end to end, through a real daemon (``tether up --foreground`` on 127.0.0.1, real SQLite):
the SDK waits, a human decides with the CLI or the API, the agent hears at once; roles; ``tether exec``;
``@agent.gated``; expiry, escalation, and pending approvals across a daemon restart."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from helpers import DaemonHost, clean_env, one_line_error
from tether.sdk import Agent, Denied

RUNBOOK = """\
version: 1
host: {state_dir: ./state, workspace_root: ./ws, listen: "127.0.0.1:0"}
x-agent: &agent
  owner: {name: Olive Owner, contact: "json://127.0.0.1/owner"}
  backup: {name: Bob Backup, contact: "json://127.0.0.1/backup"}
  command: [python, -c, "import time; time.sleep(3600)"]
  autostart: false
agents:
  a: *agent
  other: *agent
  deployer: *agent
  hasty:
    <<: *agent
    approvals: {timeout: 500ms}
  escalating:
    <<: *agent
    approvals: {escalate_after: 300ms, timeout: 1h}
"""


class Host(DaemonHost):
    """One daemon for ``RUNBOOK`` in a temporary folder, driven by the real CLI."""

    def __init__(self, root: Path) -> None:
        super().__init__(root, RUNBOOK)
        self._tokens: dict[str, str] = {}

    # -- callers -------------------------------------------------------------------------------
    def token(self, role: str, agent: str | None = None) -> str:
        key = f"{role}:{agent}"
        if key not in self._tokens:
            proc = self.cli("token", "create", "--role", role, *(["--agent", agent] if agent else []))
            assert proc.returncode == 0, proc.stderr
            self._tokens[key] = proc.stdout.strip()
        return self._tokens[key]

    def agent(self, name: str) -> Agent:
        return Agent(name, self.url, self.token("agent", name))

    def agent_env(self, name: str) -> dict[str, str]:
        return {"TETHER_AGENT": name, "TETHER_URL": self.url, "TETHER_TOKEN": self.token("agent", name)}

    def api(self, method: str, path: str, token: str | None, body: dict[str, Any] | None = None) -> tuple[int, Any]:
        headers = {"Content-Type": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        req = urllib.request.Request(
            self.url + path, method=method, headers=headers, data=None if body is None else json.dumps(body).encode()
        )
        try:
            with urllib.request.urlopen(req, timeout=15) as resp:
                return resp.status, json.loads(resp.read())
        except urllib.error.HTTPError as err:
            return err.code, json.loads(err.read() or b"null")

    def approve(self, approval_id: int, note: str | None = None) -> dict[str, Any]:
        status, got = self.api("POST", f"/v1/approvals/{approval_id}/approve", self.token("approver"), {"note": note})
        assert status == 200, got
        return dict(got)

    def deny(self, approval_id: int, reason: str) -> dict[str, Any]:
        status, got = self.api("POST", f"/v1/approvals/{approval_id}/deny", self.token("approver"), {"reason": reason})
        assert status == 200, got
        return dict(got)

    def pending(self, agent: str, timeout: float = 10) -> dict[str, Any]:
        """The agent's one pending approval, once it exists."""
        deadline = time.monotonic() + timeout
        while True:
            rows = self.query("SELECT * FROM approvals WHERE agent = ? AND state = 'pending' ORDER BY id", (agent,))
            if rows:
                assert len(rows) == 1, rows
                return rows[0]
            assert time.monotonic() < deadline, f"no pending approval for {agent}"
            time.sleep(0.01)

    def events(self, agent: str, kind: str) -> list[dict[str, Any]]:
        rows = self.query("SELECT * FROM events WHERE agent = ? AND kind = ? ORDER BY id", (agent, kind))
        for r in rows:
            r["data"] = json.loads(r["data"])
        return rows


@pytest.fixture(scope="module")
def exec_without_daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[subprocess.Popen[str], Path]]:
    """`tether exec` pointed at a port nobody listens on, started first: the SDK keeps trying to reach
    the daemon for a while (it may be restarting) before it gives up, so this runs beside the other tests."""
    cwd = tmp_path_factory.mktemp("no-daemon")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = clean_env({"TETHER_AGENT": "a", "TETHER_URL": f"http://127.0.0.1:{port}", "TETHER_TOKEN": "tt_x"})
    proc = subprocess.Popen(
        [sys.executable, "-m", "tether", "exec", "--", "touch", "unchecked"],
        env=env,
        cwd=cwd,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        yield proc, cwd
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate()


@pytest.fixture(scope="module")
def host(exec_without_daemon: object, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Host]:
    h = Host(tmp_path_factory.mktemp("approvals") / "host")
    h.up()
    try:
        yield h
    finally:
        h.down()


def in_thread(fn: Callable[[], Any]) -> tuple[threading.Thread, dict[str, Any]]:
    """Run ``fn`` in a thread; the dict gets ``result`` (or ``error``) and ``at`` (monotonic) when it returns."""
    out: dict[str, Any] = {}

    def run() -> None:
        try:
            out["result"] = fn()
        except BaseException as err:
            out["error"] = err
        out["at"] = time.monotonic()

    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t, out


# --- the round trip ---------------------------------------------------------------------------


def test_waiting_agent_is_released_by_tether_approve(host: Host) -> None:
    agent = host.agent("a")
    push = "git push --force origin main"
    t, out = in_thread(lambda: agent.check(command=push, wait=20))
    row = host.pending("a")
    assert row["action"] == "git.push" and row["detail"] == push

    listed = host.cli("approvals")
    assert listed.returncode == 0 and f"{row['id']:>6}  pending  a" in listed.stdout and push in listed.stdout
    assert t.is_alive()  # still held while nobody decided

    proc = host.cli("approve", str(row["id"]), "--note", "ship it")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == f"approval {row['id']} approved once: a may git.push: {push}"
    t.join(10)
    got = out["result"]
    assert (got["decision"], got["approval_id"]) == ("allow", row["id"])
    assert got["reason"].startswith("approved by admin:")

    # the approval was for once and the waiting call used it: the identical retry asks again ...
    again = agent.check(command=push)
    assert again["decision"] == "pending" and again["approval_id"] != row["id"]
    host.deny(again["approval_id"], "once was enough")
    # ... and so does a different action
    other = agent.check(command="git push --force origin release")
    assert other["decision"] == "pending" and other["approval_id"] != row["id"]
    assert "`tether approve" in other["reason"]
    host.deny(other["approval_id"], "not today")
    # deciding twice is refused
    status, body = host.api("POST", f"/v1/approvals/{row['id']}/approve", host.token("approver"), {})
    assert status == 409 and "already approved" in body["detail"]


def test_edited_script_asks_again(host: Host) -> None:
    agent = host.agent("a")
    script = host.root / "ws" / "a" / "deploy.sh"
    script.write_text("#!/bin/sh\nterraform apply -auto-approve\n")
    first = agent.check(command="bash deploy.sh")
    assert first["decision"] == "pending"
    host.approve(first["approval_id"])
    assert agent.check(command="bash deploy.sh")["decision"] == "allow"
    script.write_text("#!/bin/sh\nterraform apply -auto-approve\nterraform apply -auto-approve -var env=prod\n")
    edited = agent.check(command="bash deploy.sh")
    assert edited["decision"] == "pending" and edited["approval_id"] != first["approval_id"]
    host.deny(edited["approval_id"], "the script changed")


def test_denial_needs_a_reason_and_the_agent_gets_it(host: Host) -> None:
    agent = host.agent("deployer")
    t, out = in_thread(lambda: agent.check(command="terraform apply", wait=20))
    row = host.pending("deployer")

    proc = host.cli("deny", str(row["id"]))
    assert proc.returncode == 2 and "--reason" in proc.stderr
    status, _ = host.api("POST", f"/v1/approvals/{row['id']}/deny", host.token("approver"), {"reason": ""})
    assert status == 422
    assert host.pending("deployer")["id"] == row["id"] and t.is_alive()

    proc = host.cli("deny", str(row["id"]), "--reason", "change freeze until Monday")
    assert proc.returncode == 0, proc.stderr
    t.join(10)
    got = out["result"]
    assert got["decision"] == "deny"
    assert got["reason"].startswith("denied by admin:") and got["reason"].endswith(": change freeze until Monday")
    # the identical retry is told at once, with no new approval
    retry = agent.check(command="terraform apply")
    assert (retry["decision"], retry["reason"], retry["approval_id"]) == ("deny", got["reason"], row["id"])
    assert not host.api("GET", "/v1/approvals?agent=deployer", host.token("approver"))[1]["approvals"]
    [decided] = host.events("deployer", "approval.decided")
    assert decided["data"]["state"] == "denied" and decided["data"]["note"] == "change freeze until Monday"


def test_expiry_denies_the_waiter(host: Host) -> None:
    agent = host.agent("hasty")
    started = time.monotonic()
    got = agent.check(command="terraform apply", wait=20)  # the runbook's timeout is 500ms
    took = time.monotonic() - started
    assert got["decision"] == "deny"
    assert got["reason"].startswith("expired: no decision within the approval timeout; denied (deploy.production)")
    assert 0.4 < took < 5
    [expired] = host.events("hasty", "approval.expired")
    assert expired["data"]["approval_id"] == got["approval_id"]
    rows = host.query("SELECT state, decided_by FROM approvals WHERE id = ?", (got["approval_id"],))
    assert rows == [{"state": "expired", "decided_by": "timeout"}]


def test_escalation(host: Host) -> None:
    agent = host.agent("escalating")
    got = agent.check(action="billing.modify", detail="upgrade the plan", wait=1.0)  # escalate_after: 300ms
    assert got["decision"] == "pending"
    [escalated] = host.events("escalating", "approval.escalated")
    assert escalated["data"] == {"approval_id": got["approval_id"], "to": "backup"}
    row = host.query("SELECT state, escalated FROM approvals WHERE id = ?", (got["approval_id"],))[0]
    assert row["state"] == "pending" and row["escalated"] is not None
    host.approve(got["approval_id"])  # an escalated approval is still decidable
    assert agent.check(action="billing.modify", detail="upgrade the plan")["decision"] == "allow"


# --- roles ------------------------------------------------------------------------------------


def test_agent_tokens_never_decide(host: Host) -> None:
    a = host.token("agent", "a")
    got = host.agent("a").check(action="secrets.modify", detail="rotate the db password")
    approval_id = got["approval_id"]
    for verb, body in (("approve", {}), ("deny", {"reason": "x"})):
        status, detail = host.api("POST", f"/v1/approvals/{approval_id}/{verb}", a, body)
        assert status == 403 and "agents never decide" in detail["detail"]
    # not another agent's check, not another agent's approvals
    status, _ = host.api("POST", "/v1/agents/other/check", a, {"command": "ls"})
    assert status == 403
    status, _ = host.api("GET", "/v1/approvals?agent=other", a, None)
    assert status == 403
    other = host.agent("other").check(action="secrets.modify", detail="theirs")
    status, _ = host.api("GET", f"/v1/approvals/{other['approval_id']}", a, None)
    assert status == 403
    status, _ = host.api("GET", f"/v1/approvals/{approval_id}", a, None)
    assert status == 200  # its own, yes
    # an approver decides, but does not act as an agent; no token at all is 401
    status, _ = host.api("POST", "/v1/agents/a/check", host.token("approver"), {"command": "ls"})
    assert status == 403
    status, _ = host.api("POST", f"/v1/approvals/{approval_id}/approve", None, {})
    assert status == 401
    assert host.query("SELECT state FROM approvals WHERE id = ?", (approval_id,)) == [{"state": "pending"}]
    decided = host.approve(approval_id, "rotation is due")
    assert decided["state"] == "approved" and decided["decided_by"].startswith("approver:")
    host.approve(other["approval_id"])


def test_tether_approve_inside_an_agent_is_refused(host: Host) -> None:
    got = host.agent("a").check(action="auth.modify", detail="add an admin")
    inside = host.agent_env("a")
    for args in (("approve", str(got["approval_id"])), ("deny", str(got["approval_id"]), "--reason", "x")):
        proc = host.cli(*args, env=inside)
        assert proc.returncode == 2
        line = one_line_error(proc)
        assert "from inside agent 'a' is tether.control" in line
    assert host.query("SELECT state FROM approvals WHERE id = ?", (got["approval_id"],)) == [{"state": "pending"}]
    host.deny(got["approval_id"], "no")


@pytest.mark.parametrize(
    "action",
    [
        {"command": "tether approve 5"},
        {"command": "tether resume a"},
        {"command": "git commit --no-verify -m 'skip the hooks'"},
        {"command": "sed -i s/ask/allow/ RUNBOOK"},
        {"tool": "Edit", "input": {"file_path": "RUNBOOK", "old_string": "ask", "new_string": "allow"}},
        {
            "tool": "Write",
            "input": {"file_path": ".claude/settings.local.json", "content": '{"disableAllHooks": true}'},
        },
    ],
    ids=["approve", "resume", "no-verify", "sed-runbook", "edit-runbook", "disable-hooks"],
)
def test_agent_checking_control_actions_is_blocked(host: Host, action: dict[str, Any]) -> None:
    body = json.loads(json.dumps(action).replace("RUNBOOK", str(host.runbook)))
    status, got = host.api("POST", "/v1/agents/a/check", host.token("agent", "a"), body)
    assert status == 200, got
    assert got["decision"] == "deny" and got["verdict"] == "block"
    assert "tether.control" in got["classes"]
    assert got["rule"] == "default table: tether.control: block"
    assert got["approval_id"] is None  # nothing for a human to approve: blocked outright
    recorded = host.events("a", "verdict")[-1]["data"]
    assert recorded["decision"] == "deny" and "tether.control" in recorded["classes"]


# --- tether exec and @agent.gated -------------------------------------------------------------


def test_tether_exec(host: Host) -> None:
    ws = host.root / "ws" / "a"
    env = host.agent_env("a")
    proc = host.cli("exec", "--", "sh", "-c", "exit 3", env=env, cwd=ws)
    assert proc.returncode == 3, proc.stderr
    proc = host.cli("exec", "--", "touch", "made-by-exec", env=env, cwd=ws)
    assert proc.returncode == 0 and (ws / "made-by-exec").exists()

    proc = host.cli("exec", "--", "touch", "../escaped", env=env, cwd=ws)  # scope.outside: block
    assert proc.returncode == 126
    assert proc.stderr.startswith("tether: deny: ") and len(proc.stderr.splitlines()) == 1
    assert not (ws.parent / "escaped").exists()

    script = "open('held-file', 'w').write('ran')"  # unknown: ask; nobody decides within --wait
    proc = host.cli("exec", "--wait", "200ms", "--", "python3", "-c", script, env=env, cwd=ws)
    assert proc.returncode == 126 and proc.stderr.startswith("tether: pending: ")
    assert not (ws / "held-file").exists()
    host.deny(host.pending("a")["id"], "no")


def test_tether_ask_exit_statuses(host: Host) -> None:
    env = host.agent_env("other")
    ask = ("ask", "message.external", "--detail", "email the customer", "--wait", "100ms")
    proc = host.cli(*ask, env=env)
    assert proc.returncode == 3 and proc.stdout.startswith("pending: "), proc.stderr  # nobody decided yet
    row = host.pending("other")
    host.approve(row["id"])
    proc = host.cli(*ask, env=env)
    assert (proc.returncode, proc.stdout.strip()) == (
        0,
        f"allow: approved by {row_decider(host, row['id'])} (approval {row['id']}, once)",
    )
    t, out = in_thread(lambda: host.cli("ask", "billing.modify", "--wait", "20s", env=env))
    host.deny(host.pending("other")["id"], "over budget")
    t.join(15)
    denied = out["result"].stdout.strip()
    assert (
        out["result"].returncode == 1
        and denied.startswith("deny: denied by approver:")
        and denied.endswith(": over budget")
    )


def row_decider(host: Host, approval_id: int) -> str:
    return str(host.query("SELECT decided_by FROM approvals WHERE id = ?", (approval_id,))[0]["decided_by"])


def test_gated_function_runs_only_after_approval(host: Host) -> None:
    agent = host.agent("deployer")
    ran: list[tuple[str, float]] = []

    @agent.gated("deploy.production", wait=20)
    def ship(version: str) -> str:
        ran.append((version, time.monotonic()))
        return f"shipped {version}"

    t, out = in_thread(lambda: ship("1.2.3"))
    row = host.pending("deployer")
    assert (row["action"], row["detail"]) == ("deploy.production", "deploy.production: ship")
    time.sleep(0.2)
    assert ran == [] and t.is_alive()
    approved_at = time.monotonic()
    host.approve(row["id"])
    t.join(10)
    assert out["result"] == "shipped 1.2.3"
    assert ran[0][0] == "1.2.3" and ran[0][1] >= approved_at


def test_gated_function_denied_does_not_run(host: Host) -> None:
    agent = host.agent("deployer")
    ran: list[str] = []

    @agent.gated("deploy.production", detail="hotfix to prod", wait=20)
    def hotfix() -> None:
        ran.append("hotfix")

    t, out = in_thread(hotfix)
    row = host.pending("deployer")
    host.deny(row["id"], "no hotfixes on a Friday")
    t.join(10)
    err = out["error"]
    assert isinstance(err, Denied)
    assert err.outcome["decision"] == "deny" and "no hotfixes on a Friday" in err.outcome["reason"]
    assert ran == []


# --- audit through the daemon; then a restart ---------------------------------------------------


def test_audit_verify_after_the_run(host: Host) -> None:
    proc = host.cli("audit", "verify")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.startswith("audit log ok: ")
    kinds = {r["kind"] for r in host.query("SELECT DISTINCT kind FROM audit")}
    assert {
        "verdict",
        "approval.requested",
        "approval.decided",
        "approval.used",
        "approval.expired",
        "approval.escalated",
    } <= kinds


def test_pending_approval_survives_a_daemon_restart(host: Host) -> None:
    """Last in this module: it stops and restarts the shared daemon."""
    agent = host.agent("a")
    got = agent.check(command="kubectl apply -f prod.yaml")
    assert got["decision"] == "pending"
    approval_id = got["approval_id"]

    host.down()
    assert host._info() is None
    listed = host.cli("approvals", "--json")  # reads the store: no daemon needed
    assert listed.returncode == 0, listed.stderr
    assert (approval_id, "pending") in [(r["id"], r["state"]) for r in json.loads(listed.stdout)]
    proc = host.cli("approve", str(approval_id))
    assert proc.returncode == 1 and "no daemon runs" in one_line_error(proc)

    host.up()
    listed = host.cli("approvals", "--json", "--agent", "a")
    assert (approval_id, "pending") in [(r["id"], r["state"]) for r in json.loads(listed.stdout)]
    proc = host.cli("approve", str(approval_id))
    assert proc.returncode == 0, proc.stderr
    again = host.agent("a").check(command="kubectl apply -f prod.yaml")
    assert (again["decision"], again["approval_id"]) == ("allow", approval_id)
    assert host.cli("audit", "verify").returncode == 0
    assert os.path.exists(host.state / "audit.chain")


def test_exec_refuses_to_run_without_a_daemon(exec_without_daemon: tuple[subprocess.Popen[str], Path]) -> None:
    proc, cwd = exec_without_daemon
    out, err = proc.communicate(timeout=60)
    assert proc.returncode not in (0, 126), (out, err)
    assert "Traceback" not in err and len(err.splitlines()) == 1, err
    assert err.startswith("tether: error: ") and "refusing to run unchecked" in err
    assert not (cwd / "unchecked").exists()
