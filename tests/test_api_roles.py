"""Roles on every endpoint: each one called without a token, with its agent's token, with another agent's
token, with an approver's and with an admin's, in process (httpx against the ASGI app) and over real HTTP
on 127.0.0.1. Agent tokens never reach decision or control endpoints (403)."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from fastapi.routing import APIRoute

from test_dashboard_kit import BACKUP, PERSON, AsgiClient, InProcess, Served
from tether import auth
from tether.store import NewEvent, open_store

PUBLIC, OWN, READ_OWN, READ, DECIDE, ADMIN = "public", "own", "read-own", "read", "decide", "admin"
ROLES = ("none", "other", "agent", "approver", "admin")


def allowed(kind: str, role: str) -> bool:
    if kind == PUBLIC:
        return True
    if role == "none":
        return False
    return {
        OWN: role in ("agent", "admin"),
        READ_OWN: role in ("agent", "approver", "admin"),
        READ: role in ("approver", "admin"),
        DECIDE: role in ("approver", "admin"),
        ADMIN: role == "admin",
    }[kind]


def endpoints(ids: dict[str, int]) -> list[tuple[str, str, dict[str, Any] | None, str]]:
    """(method, path, JSON body, kind) for every endpoint; ``a`` is the agent whose token is ``agent``."""
    t, ap, ap2, inc = ids["task"], ids["approval"], ids["approval2"], ids["incident"]
    return [
        ("GET", "/v1/health", None, PUBLIC),
        ("GET", "/v1/agents", None, READ),
        ("GET", "/v1/agents/a", None, READ_OWN),
        ("POST", "/v1/agents/a/heartbeat", {"task": "t", "progress": "p"}, OWN),
        ("POST", "/v1/agents/a/report", {"kind": "log", "data": {"line": "x"}}, OWN),
        ("GET", "/v1/agents/a/tasks", None, READ_OWN),
        ("POST", "/v1/agents/a/tasks", {"text": "a task"}, OWN),
        ("POST", "/v1/agents/a/tasks/next", None, OWN),
        ("POST", f"/v1/agents/a/tasks/{t}/start", {"text": "a task"}, OWN),
        ("POST", f"/v1/agents/a/tasks/{t}/end", {"ok": True}, OWN),
        ("GET", "/v1/events?agent=a", None, READ_OWN),
        ("GET", "/v1/events", None, READ),
        ("GET", "/v1/incidents", None, READ),
        ("POST", "/v1/agents/a/check", {"command": "ls"}, OWN),
        ("GET", "/v1/approvals?agent=a", None, READ_OWN),
        ("GET", f"/v1/approvals/{ap}", None, READ_OWN),
        ("GET", f"/v1/approvals/{ap}/wait?timeout=0", None, READ_OWN),
        ("POST", f"/v1/approvals/{ap}/approve", {"note": "ok"}, DECIDE),
        ("POST", f"/v1/approvals/{ap2}/deny", {"reason": "no"}, DECIDE),
        ("GET", "/metrics", None, READ),
        ("GET", "/v1/signals", None, READ),
        ("POST", "/v1/hooks/claude-code/a", {"hook_event_name": "PostToolUse", "tool_name": "Bash",
                                             "tool_input": {"command": "ls"}, "session_id": "s"}, OWN),
        ("POST", "/v1/hooks/codex/a", {"hook_event_name": "PostToolUse", "tool_name": "Bash",
                                       "tool_input": {"command": "ls"}, "session_id": "s"}, OWN),
        # the dashboard's JSON endpoints
        ("GET", "/v1/overview", None, READ),
        ("GET", "/v1/host", None, READ),
        ("GET", "/v1/agents/a/detail", None, READ_OWN),
        ("GET", "/v1/agents/a/logs?tail=5", None, READ_OWN),
        ("GET", "/v1/agents/a/usage", None, READ_OWN),
        ("POST", "/v1/agents/a/explain", {"command": "git push --force origin main"}, READ_OWN),
        ("GET", f"/v1/incidents/{inc}", None, READ),
        ("POST", f"/v1/incidents/{inc}/ack", {"note": "mine"}, DECIDE),
        ("GET", "/v1/audit", None, READ),
        ("GET", "/v1/runbook", None, READ),
        ("GET", "/v1/stream?timeout=0.3", None, READ),
        ("GET", "/v1/stream?agent=a&timeout=0.3", None, READ_OWN),
        ("POST", "/v1/tokens", {"role": "approver"}, ADMIN),
        ("GET", "/v1/backup", None, ADMIN),
        ("POST", "/v1/prune", {"older_than_s": 1e9}, ADMIN),
        # control: admin only, last (they change the agent's state)
        ("POST", "/v1/agents/a/stop", None, ADMIN),
        ("POST", "/v1/agents/a/start", None, ADMIN),
        ("POST", "/v1/agents/a/restart", None, ADMIN),
        ("POST", "/v1/agents/a/kill", {"reason": "test"}, ADMIN),
        ("POST", "/v1/agents/a/resume", None, ADMIN),
        ("POST", "/v1/reload", None, ADMIN),
        ("POST", "/v1/shutdown", None, ADMIN),
    ]


def _template(path: str) -> str:
    """/v1/agents/a/tasks/12/start?x=1 -> /v1/agents/{}/tasks/{}/start, to match against the app's routes."""
    path = path.split("?")[0]
    return re.sub(r"/(a|\d+)(?=/|$)", "/{}", path)


@pytest.fixture
def host(tmp_path: Path) -> Iterator[InProcess]:
    h = InProcess(tmp_path)
    h.app.state.sse_lifetime = 0.3  # streams end quickly, so a whole answer can be read
    yield h
    h.close()


def _ids(h: InProcess) -> dict[str, int]:
    task = h.store.emit("task.added", "a", text="queued for the test")
    ap = h.control.approvals.request("a", "git.push", "fp1", classes=["git.push"], detail="git push --force",
                                     rule="default", reason="test", timeout=3600, escalate_after=3600)
    ap2 = h.control.approvals.request("a", "git.push", "fp2", classes=["git.push"], detail="git push -f",
                                      rule="default", reason="test", timeout=3600, escalate_after=3600)
    inc = h.store.append([NewEvent("incident.opened", "a", {"kind": "stale", "summary": "a is stale"})])[0]
    return {"task": task, "approval": ap["id"], "approval2": ap2["id"], "incident": inc}


def _check_matrix(h: InProcess, client: Any) -> list[str]:
    return check_matrix(h.tokens, _ids(h), client, h.app.routes)


def check_matrix(tokens: dict[str, str], ids: dict[str, int], client: Any, routes: list[Any]) -> list[str]:
    table = endpoints(ids)
    problems: list[str] = []
    seen: list[str] = []
    for role in ROLES:
        headers = {} if role == "none" else {"Authorization": f"Bearer {tokens[role]}"}
        for method, path, body, kind in table:
            t0 = time.perf_counter()
            got = client.request(method, path, json=body, headers=headers)
            seen.append(f"{role:8} {method} {path}: {got.status_code} {time.perf_counter() - t0:.2f}s")
            want_ok = allowed(kind, role)
            if got.status_code >= 500:
                problems.append(f"{role:8} {method} {path}: {got.status_code} {got.text[:200]}")
            elif role == "none" and kind != PUBLIC:
                if got.status_code != 401:
                    problems.append(f"{role:8} {method} {path}: {got.status_code}, expected 401")
            elif want_ok and got.status_code in (401, 403):
                problems.append(f"{role:8} {method} {path}: {got.status_code} {got.text[:200]}, expected allowed")
            elif not want_ok and got.status_code != 403:
                problems.append(f"{role:8} {method} {path}: {got.status_code}, expected 403 ({kind})")
    # every JSON endpoint the app has is in the table; one that is not still gets the generic checks
    covered = {(m, _template(p)) for m, p, _, _ in table}
    for route in routes:
        if not isinstance(route, APIRoute) or not route.include_in_schema:
            continue
        shape = re.sub(r"\{[^}]+\}", "{}", route.path)
        for method in route.methods - {"HEAD"}:
            if (method, shape) in covered:
                continue
            path = route.path
            for name in re.findall(r"\{([^}]+)\}", route.path):
                path = path.replace("{" + name + "}", "a" if "agent" in name else "1")
            t0 = time.perf_counter()
            if client.request(method, path, json={}).status_code != 401:
                problems.append(f"untabled {method} {route.path}: answers without a token")
            other = client.request(method, path, json={}, headers={"Authorization": f"Bearer {tokens['other']}"})
            seen.append(f"untabled {method} {path}: {other.status_code} {time.perf_counter() - t0:.2f}s")
            if "{agent}" in route.path and other.status_code < 300:
                problems.append(f"untabled {method} {route.path}: another agent's token got {other.status_code}")
    print("\n".join(seen))
    return problems


def test_roles_on_every_endpoint_in_process(host: InProcess) -> None:
    with AsgiClient(host.app) as client:
        problems = _check_matrix(host, client)
    assert not problems, "\n".join(problems)
    # what the allowed calls did is what they say
    assert ("kill", "a", "test") in [c[:3] for c in host.control.calls if c[0] == "kill"]
    assert ("shutdown",) in host.control.calls


def test_roles_on_every_endpoint_over_http(host: InProcess) -> None:
    served = Served(host.app)
    try:
        with httpx.Client(base_url=served.url, timeout=30) as client:
            problems = _check_matrix(host, client)
    finally:
        served.stop()
    assert not problems, "\n".join(problems)


def test_agent_tokens_never_decide_or_control(host: InProcess) -> None:
    """The boundary itself: an agent cannot approve its own request, ack, kill, mint tokens or prune."""
    ids = _ids(host)
    with AsgiClient(host.app) as client:
        for role in ("agent", "other"):
            auth = {"Authorization": f"Bearer {host.tokens[role]}"}
            for method, path, body in [
                ("POST", f"/v1/approvals/{ids['approval']}/approve", {"note": "self-approved"}),
                ("POST", f"/v1/approvals/{ids['approval']}/deny", {"reason": "x"}),
                ("POST", f"/v1/incidents/{ids['incident']}/ack", {}),
                ("POST", "/v1/agents/a/kill", {}), ("POST", "/v1/agents/a/resume", None),
                ("POST", "/v1/tokens", {"role": "admin"}), ("POST", "/v1/prune", {"older_than_s": 0}),
                ("GET", "/v1/backup", None), ("POST", "/v1/shutdown", None),
            ]:
                got = client.request(method, path, json=body, headers=auth)
                assert got.status_code == 403, (role, path, got.status_code, got.text)
        assert host.store.approval(ids["approval"])["state"] == "pending"  # type: ignore[index]
        # the approver decides; the admin mints a token that works
        ok = client.post(f"/v1/approvals/{ids['approval']}/approve", json={"note": "fine"},
                         headers={"Authorization": f"Bearer {host.tokens['approver']}"})
        assert ok.status_code == 200 and ok.json()["state"] == "approved"
        made = client.post("/v1/tokens", json={"role": "agent", "agent": "b"},
                           headers={"Authorization": f"Bearer {host.tokens['admin']}"})
        assert made.status_code == 201, made.text
        tok = made.json()["token"]
        assert client.get("/v1/agents/b", headers={"Authorization": f"Bearer {tok}"}).status_code == 200
        assert client.get("/v1/agents/a", headers={"Authorization": f"Bearer {tok}"}).status_code == 403
        unknown = client.post("/v1/tokens", json={"role": "agent", "agent": "zz"},
                              headers={"Authorization": f"Bearer {host.tokens['admin']}"})
        assert unknown.status_code == 404


def test_roles_on_every_endpoint_against_the_daemon(tmp_path: Path) -> None:
    """The same matrix against `tether up --foreground` on 127.0.0.1: the daemon's own server and core."""
    agent = {"owner": PERSON, "backup": BACKUP, "command": ["sleep", "3600"], "autostart": False,
             "kill": {"grace": "500ms"}, "approvals": {"timeout": "1h"}}
    runbook = tmp_path / "tether.yaml"
    runbook.write_text(yaml.safe_dump({
        "version": 1, "host": {"state_dir": str(tmp_path / "state"), "workspace_root": str(tmp_path / "ws"),
                               "listen": "127.0.0.1:0"},
        "agents": {"a": dict(agent), "b": dict(agent)},
    }))
    env = {k: v for k, v in os.environ.items() if (not k.startswith("TETHER_") or k == "TETHER_SANDBOX")}
    log = open(tmp_path / "daemon.log", "ab")  # noqa: SIM115 - closed below
    proc = subprocess.Popen([sys.executable, "-m", "tether", "-f", str(runbook), "up", "--foreground"], stdout=log,
                            stderr=log, stdin=subprocess.DEVNULL, env=env, start_new_session=True)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                info = json.loads((tmp_path / "state" / "daemon.json").read_text())
                if info.get("pid") == proc.pid:
                    break
            except (OSError, ValueError):
                pass
            assert proc.poll() is None and time.monotonic() < deadline, (tmp_path / "daemon.log").read_text()
            time.sleep(0.05)
        store = open_store(f"sqlite:///{tmp_path / 'state' / 'tether.db'}")
        try:
            tokens = {"admin": (tmp_path / "state" / "admin.token").read_text().strip(),
                      "approver": auth.create(store, "approver"), "agent": auth.create(store, "agent", "a"),
                      "other": auth.create(store, "agent", "b")}
            inc = store.append([NewEvent("incident.opened", "a", {"kind": "stale", "summary": "a is stale"})])[0]
        finally:
            store.close()
        admin = {"Authorization": f"Bearer {tokens['admin']}"}
        with httpx.Client(base_url=info["url"], timeout=20) as client:
            task = client.post("/v1/agents/a/tasks", json={"text": "t"}, headers=admin).json()["id"]
            asks = [client.post("/v1/agents/a/check", json={"command": f"git push --force origin {b}"},
                                headers=admin).json() for b in ("main", "release")]
            assert [x["decision"] for x in asks] == ["pending", "pending"], asks
            ids = {"task": task, "approval": asks[0]["approval_id"], "approval2": asks[1]["approval_id"],
                   "incident": inc}
            from tether.api.app import create_app

            class Routes:  # the route table, to find endpoints the matrix does not list
                store = None

                def agent_names(self) -> list[str]:
                    return []

            problems = check_matrix(tokens, ids, client, create_app(Routes()).routes)  # type: ignore[arg-type]
        assert not problems, "\n".join(problems)
        assert proc.wait(20) == 0  # the admin's POST /v1/shutdown, last in the table, stopped it cleanly
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)
        log.close()
