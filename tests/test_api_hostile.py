"""A hostile agent with nothing but its own agent token, against a real daemon over real HTTP: every odd
request is a 4xx that names what is wrong (or, at a hook, a deny in the hook's shape), and afterwards the
daemon answers /v1/health and its log holds no traceback. Then the figures an agent reports cannot lift
a budget or break agent-status.json, and the labels it chooses stay bounded in /metrics."""

from __future__ import annotations

import http.client
import json
import math
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from test_daemon_kit import Host, agent, make_host, wait_until  # noqa: F401

BIG = 2**63
DEEP = b"[" * 1000 + b"]" * 1000
SURROGATE = b"\xed\xa0\x80"  # U+D800 encoded as if it were a character: not UTF-8


@pytest.fixture
def host(make_host) -> Host:  # noqa: F811
    h: Host = make_host({"a": agent(["sleep", "3600"], budgets={"usd_per_day": 10})})
    h.up()
    wait_until(lambda: h.state_of("a") == "running", 15, "agent a to run")
    return h


def send(h: Host, method: str, path: str, body: bytes | None = None, token: str | None = None,
         headers: dict[str, str] | None = None, chunks: list[bytes] | None = None) -> tuple[int, Any]:
    """One request with exactly these bytes (``chunks``: chunked, no Content-Length): (status, JSON or text)."""
    url = urlsplit(h.url)
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=30)
    hdrs = {"Content-Type": "application/json", **(headers or {})}
    if token:
        hdrs["Authorization"] = f"Bearer {token}"
    try:
        if chunks is not None:
            conn.putrequest(method, path)
            for k, v in {**hdrs, "Transfer-Encoding": "chunked"}.items():
                conn.putheader(k, v)
            conn.endheaders()
            try:
                for c in chunks:
                    conn.send(b"%x\r\n%s\r\n" % (len(c), c))
                conn.send(b"0\r\n\r\n")
            except OSError:  # the daemon answered and closed before taking it all
                pass
        else:
            try:
                conn.request(method, path, body=body, headers=hdrs)
            except OSError:
                pass
        resp = conn.getresponse()
        raw = resp.read()
        try:
            return resp.status, json.loads(raw)
        except ValueError:
            return resp.status, raw.decode(errors="replace")
    finally:
        conn.close()


def alive(h: Host) -> None:
    assert h.api("GET", "/v1/health")[0] == 200
    log = h.daemon_log()
    assert "Traceback" not in log and "Exception in ASGI" not in log, log[-3000:]


def report(kind: str, data: Any) -> bytes:
    return json.dumps({"kind": kind, "data": data}).encode()


def named(answer: Any, field: str) -> bool:
    """The 422's detail names ``field`` in a ``loc``, or a 4xx's one-line detail mentions it."""
    detail = answer.get("detail") if isinstance(answer, dict) else answer
    if isinstance(detail, list):
        return any(field in [str(p) for p in e.get("loc", [])] or f"'{field}'" in e.get("msg", "") for e in detail)
    return field in str(detail)


def test_odd_requests_are_4xx_that_name_the_problem(host: Host) -> None:
    h, tok = host, host.agent_token("a")
    cases: list[tuple[str, str, bytes | None, int, str]] = [
        # query parameters: 64-bit, finite, in range
        ("GET", f"/v1/events?agent=a&after={BIG}", None, 422, "after"),
        ("GET", f"/v1/events?agent=a&after={10**30}", None, 422, "after"),
        ("GET", "/v1/events?agent=a&after=-1", None, 422, "after"),
        ("GET", f"/v1/events?agent=a&limit={10**30}", None, 422, "limit"),
        ("GET", f"/v1/stream?agent=a&after={BIG}", None, 422, "after"),
        ("GET", f"/v1/approvals/{BIG}", None, 422, "approval_id"),
        ("GET", f"/v1/incidents/{BIG}", None, 422, "incident_id"),
        ("GET", "/v1/approvals/1/wait?timeout=nan", None, 422, "timeout"),
        ("GET", "/v1/approvals/1/wait?timeout=inf", None, 422, "timeout"),
        ("GET", "/v1/approvals/1/wait?timeout=-1", None, 422, "timeout"),
        # numbers JSON does not have, or that are not finite
        ("POST", "/v1/agents/a/check", b'{"command": "ls", "wait": NaN}', 400, "NaN"),
        ("POST", "/v1/agents/a/check", b'{"command": "ls", "wait": Infinity}', 400, "NaN"),
        ("POST", "/v1/agents/a/check", b'{"command": "ls", "wait": 1e400}', 400, "finite"),
        ("POST", "/v1/agents/a/check", b'{"command": "ls", "wait": 1e308}', 422, "wait"),
        # usage: whole, non-negative, finite, bounded
        ("POST", "/v1/agents/a/report", report("usage", {"input_tokens": "abc"}), 422, "input_tokens"),
        ("POST", "/v1/agents/a/report", report("usage", {"input_tokens": 1e308}), 422, "input_tokens"),
        ("POST", "/v1/agents/a/report", report("usage", {"output_tokens": 10**30}), 422, "output_tokens"),
        ("POST", "/v1/agents/a/report", report("usage", {"input_tokens": -5000}), 422, "input_tokens"),
        ("POST", "/v1/agents/a/report", report("usage", {"cost_usd": -50}), 422, "cost_usd"),
        ("POST", "/v1/agents/a/report", report("usage", {"cost_usd": 1e308}), 422, "cost_usd"),
        ("POST", "/v1/agents/a/report", b'{"kind": "usage", "data": {"cost_usd": Infinity}}', 400, "NaN"),
        ("POST", "/v1/agents/a/report", b'{"kind": "usage", "data": {"cost_usd": 1e999}}', 400, "finite"),
        ("POST", "/v1/agents/a/report", report("usage", {"model": "x" * 500}), 422, "model"),
        ("POST", "/v1/agents/a/report", report("usage", {"model": "a\nb"}), 422, "model"),
        ("POST", "/v1/agents/a/report", report("error", {"kind": "{evil=\"1\"}"}), 422, "kind"),
        ("POST", "/v1/agents/a/report", report("files.changed", {"paths": None}), 422, "paths"),
        ("POST", "/v1/agents/a/report", report("files.changed", {"count": -3}), 422, "count"),
        ("POST", "/v1/agents/a/report", report("tests.reported", {"passed": -1}), 422, "passed"),
        ("POST", "/v1/agents/a/report", report("bogus", {}), 422, "kind"),
        # nesting, encoding
        ("POST", "/v1/agents/a/report", b'{"kind": "log", "data": {"x": ' + DEEP + b"}}", 400, "nested"),
        ("POST", "/v1/agents/a/report", b'{"kind": "log", "data": {"x": ' + b"[" * 70 + b"]" * 70 + b"}}", 400,
         "nested"),
        ("POST", "/v1/agents/a/heartbeat", b'{"task": ' + DEEP + b"}", 400, "nested"),
        ("POST", "/v1/agents/a/check", b'{"tool": "Bash", "input": ' + DEEP + b"}", 400, "nested"),
        ("POST", "/v1/agents/a/report", b'{"kind": "log", "data": {"line": "' + SURROGATE + b'"}}', 400, "UTF-8"),
        ("POST", "/v1/agents/a/check", b'{"command": "ls ' + SURROGATE + b'"}', 400, "UTF-8"),
        ("POST", "/v1/agents/a/tasks", b'{"text": "' + SURROGATE + b'"}', 400, "UTF-8"),
        ("POST", "/v1/agents/a/tasks", b'{"text": "\\ud800"}', 400, "UTF-8"),
        ("POST", "/v1/agents/a/heartbeat", b'{"task": "\\udfff"}', 400, "UTF-8"),
        ("POST", "/v1/agents/a/tasks", b'{"text": "\xff\xfe"}', 400, "UTF-8"),
        # size
        ("POST", "/v1/agents/a/report", report("log", {"line": "x" * 10_000_000}), 413, ""),
        ("POST", "/v1/agents/a/report", report("log", {"line": "x" * 100_000}), 413, ""),
        ("POST", "/v1/agents/a/tasks", json.dumps({"text": "x" * 2_000_000}).encode(), 413, ""),
    ]
    problems = []
    for method, path, body, status, field in cases:
        got, answer = send(h, method, path, body, token=tok)
        if got != status or (field and not named(answer, field)):
            problems.append(f"{method} {path} {(body or b'')[:60]!r}: {got} {str(answer)[:300]}")
    # chunked, with no Content-Length: counted as it comes
    got, answer = send(h, "POST", "/v1/agents/a/tasks", token=tok, chunks=[b'{"text": "' + b"x" * 65536] * 40)
    if got != 413:
        problems.append(f"chunked 2.5 MB: {got} {str(answer)[:200]}")
    # a Last-Event-ID that is digits but not an id: the stream starts from now
    got, _ = send(h, "GET", "/v1/stream?agent=a&timeout=0.2", token=tok, headers={"Last-Event-ID": "²"})
    if got != 200:
        problems.append(f"Last-Event-ID ²: {got}")
    got, _ = send(h, "GET", "/v1/stream?agent=a&timeout=0.2", token=tok, headers={"Last-Event-ID": str(BIG * 10)})
    if got != 200:
        problems.append(f"Last-Event-ID 2^63*10: {got}")
    assert problems == [], "\n".join(problems)
    alive(h)
    # nothing odd was recorded: every event the agent sent above was refused
    assert h.events("task.added", "a") == [] and h.events("usage", "a") == []


def test_the_hooks_answer_a_deny_in_their_own_shape(host: Host) -> None:
    h, tok = host, host.agent_token("a")
    bodies = {
        "nested": b'{"hook_event_name": "PreToolUse", "tool_name": "Bash", "tool_input": ' + DEEP + b"}",
        "not an object": b"[1, 2]",
        "not JSON": b"{nope",
        "surrogate": b'{"hook_event_name": "PreToolUse", "tool_name": "Bash", "tool_input": {"command": "'
                     + SURROGATE + b'"}}',
        "NaN": b'{"hook_event_name": "PreToolUse", "tool_name": "Bash", "tool_input": {"n": NaN}}',
        "event a list": b'{"hook_event_name": ["PreToolUse"], "tool_name": "Bash", "tool_input": {}}',
        "odd fields": json.dumps({"hook_event_name": "PreToolUse", "tool_name": ["x"], "tool_input": "y",
                                  "tool_use_id": {"a": 1}, "cwd": 5}).encode(),
    }
    for what, body in bodies.items():
        for path in ("/v1/hooks/claude-code", "/v1/hooks/claude-code/a"):
            got, answer = send(h, "POST", path, body, token=tok)
            assert got == 200, (what, path, answer)
            out = answer["hookSpecificOutput"]
            assert out["hookEventName"] == "PreToolUse" and out["permissionDecision"] == "deny", (what, answer)
            assert out["permissionDecisionReason"], (what, answer)
        got, answer = send(h, "POST", "/v1/hooks/codex/a", body, token=tok)
        assert got == 200 and answer["decision"] == "deny" and answer["reason"], (what, answer)
    # a hook event larger than the hook's limit, sent chunked: still a deny
    got, answer = send(h, "POST", "/v1/hooks/claude-code/a", token=tok, chunks=[b"x" * 65536] * 140)
    assert got == 200 and answer["hookSpecificOutput"]["permissionDecision"] == "deny", answer
    # the token and the agent are checked first, as documented (Claude Code blocks a non-2xx)
    assert send(h, "POST", "/v1/hooks/claude-code/a", bodies["nested"])[0] == 401
    # a monitoring event never blocks: an odd one is answered {}
    got, answer = send(h, "POST", "/v1/hooks/claude-code/a", json.dumps(
        {"hook_event_name": "PostToolUseFailure", "tool_name": {"x": 1}, "error": ["y"], "session_id": 7}).encode(),
        token=tok)
    assert got == 200 and answer == {}, answer
    alive(h)


def test_an_agent_cannot_rewrite_its_figures(host: Host) -> None:
    h, tok = host, host.agent_token("a")
    assert send(h, "POST", "/v1/agents/a/report", report("usage", {"model": "m", "cost_usd": 12.5}), tok)[0] == 200
    spent = h.sql("SELECT SUM(cost_usd) AS c FROM usage WHERE agent = 'a'")[0]["c"]
    assert spent == 12.5
    for data in ({"model": "m", "cost_usd": -50}, {"model": "m", "input_tokens": -5000}, {"cost_usd": -1e-9}):
        assert send(h, "POST", "/v1/agents/a/report", report("usage", data), tok)[0] == 422, data
    # the budget stays spent: the boundary still refuses
    got, answer = send(h, "POST", "/v1/agents/a/check", b'{"command": "ls"}', tok)
    assert got == 200 and answer["decision"] == "deny", answer
    assert h.sql("SELECT SUM(cost_usd) AS c FROM usage WHERE agent = 'a'")[0]["c"] == spent

    def strict(path: Path) -> Any:
        def no(c: str) -> Any:
            raise ValueError(f"{c} in {path}")
        return json.loads(path.read_text(), parse_constant=no)

    doc = strict(h.state / "agents" / "a" / "agent-status.json")
    assert math.isfinite(doc["spend_today_usd"])


def test_labels_an_agent_chooses_stay_bounded(host: Host) -> None:
    h, tok = host, host.agent_token("a")
    for i in range(40):
        assert send(h, "POST", "/v1/agents/a/report",
                    report("usage", {"model": f"junk-{i}", "input_tokens": 1, "cost_usd": 0.0}), tok)[0] == 200
        assert send(h, "POST", "/v1/agents/a/report", report("error", {"kind": f"kind_{i}"}), tok)[0] == 200
    send(h, "POST", "/v1/agents/a/report", report("usage", {"model": "claude-sonnet-4-5", "input_tokens": 1}), tok)
    send(h, "POST", "/v1/agents/a/report", report("error", {"kind": "timeout"}), tok)
    got, text = send(h, "GET", "/metrics", token=h.admin_token())
    assert got == 200
    models = {line.split('model="')[1].split('"')[0] for line in text.splitlines()
              if line.startswith("tether_agent_cost_usd_total{") and 'agent="a"' in line}
    kinds = {line.split('kind="')[1].split('"')[0] for line in text.splitlines()
             if line.startswith("tether_agent_errors_total{") and 'agent="a"' in line}
    assert len(models) <= 11 and len(kinds) <= 11, (models, kinds)
    assert {"claude-sonnet-4-5", "other"} <= models and {"timeout", "other"} <= kinds, (models, kinds)
    # nothing is lost: the folded figures add up
    tokens = sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
                 if line.startswith("tether_agent_tokens_total{") and 'type="input"' in line and 'agent="a"' in line)
    assert tokens == 41
    doc = json.loads((h.state / "agents" / "a" / "agent-status.json").read_text())
    assert len(doc.get("usage_by_model") or {}) <= 11 and len(doc.get("errors") or {}) <= 11, doc
    alive(h)


def test_a_failing_store_is_a_503_at_every_door(tmp_path: Path) -> None:
    """One map from errors to statuses: an approval decided while the store fails is a 503 (the SDK retries
    it; it was a 409, never retried), as on the other routes; a page says so as a page."""
    from test_dashboard_kit import AsgiClient, InProcess

    host = InProcess(tmp_path)
    approver = {"Authorization": f"Bearer {host.tokens['approver']}"}
    with AsgiClient(host.app) as client:
        assert client.get("/v1/approvals", headers=approver).status_code == 200  # the token is known now
        db = host.loaded.state.root / "tether.db"
        for path, header in ((db, 100), (Path(f"{db}-wal"), 32)):  # past the headers: every page is garbage
            if path.exists():
                with path.open("r+b") as f:
                    f.seek(header)
                    f.write(b"\xff" * (path.stat().st_size - header))
        for path in ("/v1/approvals/1/approve", "/v1/approvals/1/deny"):
            got = client.post(path, headers=approver, json={"note": "x", "reason": "y"})
            assert got.status_code == 503, (path, got.text)
            detail = got.json()["detail"]
            assert "tether.db" in detail and "\n" not in detail, detail
