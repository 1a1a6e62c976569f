"""The dashboard in process (httpx against the ASGI app, a real store): signing in, the session cookie,
CSRF on every form, the login rate limit, every page for each role, approve/deny/ack/kill as plain forms
(no JavaScript), secrets redacted from every page and response, and the bind check."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from test_dashboard_kit import SECRETS, AsgiClient, InProcess, any_secret, csrf_of
from tether.errors import TetherError
from tether.store import NewEvent
from tether.web.bind import check_bind, is_loopback
from tether.web.sessions import LoginLimiter, Sessions


@pytest.fixture
def host(tmp_path: Path) -> Iterator[InProcess]:
    h = InProcess(tmp_path)
    h.app.state.sse_lifetime = 0.3
    yield h
    h.close()


def login(client: AsgiClient, token: str, next_: str = "/") -> object:
    page = client.get(f"/login?next={next_}")
    assert page.status_code == 200
    return client.post("/login", data={"token": token, "csrf": csrf_of(page.text), "next": next_})


def signed_in(h: InProcess, role: str) -> AsgiClient:
    c = AsgiClient(h.app)
    got = login(c, h.tokens[role])
    assert got.status_code == 303, got.text  # type: ignore[attr-defined]
    return c


def test_login_gives_a_strict_httponly_session_and_agents_cannot_sign_in(host: InProcess) -> None:
    with AsgiClient(host.app) as c:
        assert c.get("/").status_code == 303
        assert c.get("/").headers["location"] == "/login?next=%2F"
        bad = login(c, host.tokens["agent"])
        assert bad.status_code == 403 and "Agent tokens cannot sign in" in bad.text  # type: ignore[attr-defined]
        assert "tether_session" not in c.cookies
        wrong = login(c, "tt_ad_nope_nope")
        assert wrong.status_code == 401  # type: ignore[attr-defined]
        ok = login(c, host.tokens["approver"], "/approvals")
        assert ok.status_code == 303 and ok.headers["location"] == "/approvals"  # type: ignore[attr-defined]
        cookie = ok.headers["set-cookie"].lower()  # type: ignore[attr-defined]
        assert "tether_session=" in cookie and "httponly" in cookie and "samesite=strict" in cookie
        assert "path=/" in cookie
        page = c.get("/")
        assert page.status_code == 200 and 'data-agent="a"' in page.text
        for header in ("content-security-policy", "x-frame-options", "x-content-type-options"):
            assert header in page.headers
        assert "Server-Timing" in page.headers or "server-timing" in page.headers
        # no open redirect after sign-in
        assert login(AsgiClient(host.app), host.tokens["admin"], "//evil.example/x").headers[  # type: ignore[attr-defined]
            "location"] == "/"
        # signing out ends the session (with its CSRF token)
        out = c.post("/logout", data={"csrf": csrf_of(page.text)})
        assert out.status_code == 303
        assert c.get("/").status_code == 303


def test_revoking_the_token_ends_its_sessions(host: InProcess) -> None:
    from tether.auth import identify

    with signed_in(host, "approver") as c:
        assert c.get("/").status_code == 200
        who = identify(host.store, host.tokens["approver"])
        assert who is not None
        host.store.emit("token.revoked", None, token_id=who.token_id)
        assert c.get("/").status_code == 303


def test_login_is_rate_limited(host: InProcess) -> None:
    with AsgiClient(host.app) as c:
        codes = [login(c, f"tt_ap_guess_{i}").status_code for i in range(7)]  # type: ignore[attr-defined]
        assert codes[:5] == [401] * 5
        assert codes[5] == 429
        limited = login(c, host.tokens["admin"])  # even the right token waits out the window
        assert limited.status_code == 429 and int(limited.headers["retry-after"]) >= 1  # type: ignore[attr-defined]
    lim = LoginLimiter(per_client=2, overall=3, window=10)
    lim.failed("x", 100)
    lim.failed("x", 101)
    assert lim.retry_after("x", 102) == pytest.approx(8)
    assert lim.retry_after("y", 102) is None
    lim.failed("y", 103)
    assert lim.retry_after("z", 104) is not None  # overall cap: guessing from many addresses
    assert lim.retry_after("x", 111.5) is None


def test_sessions_expire() -> None:
    from tether.auth import Principal

    s = Sessions(lifetime=100, idle=10)
    got = s.create("tok", Principal("approver", None, "t1"), now=0)
    assert s.get(got.id, now=5) is got
    assert s.get(got.id, now=14) is got  # seen at 5: idle counts from there
    assert s.get(got.id, now=30) is None
    got = s.create("tok", Principal("approver", None, "t1"), now=0)
    for t in range(9, 120, 9):
        if t > 100:
            assert s.get(got.id, now=t) is None
            break
        assert s.get(got.id, now=t) is got


def test_every_form_needs_its_csrf_token(host: InProcess) -> None:
    ap = host.control.approvals.request("a", "git.push", "fp", classes=["git.push"], detail="git push -f",
                                        rule="default table: git.push: ask", reason="force", timeout=3600,
                                        escalate_after=3600)
    with signed_in(host, "admin") as c:
        token = csrf_of(c.get("/").text)
        posts = [
            (f"/approvals/{ap['id']}/approve", {"note": "x"}),
            (f"/approvals/{ap['id']}/deny", {"reason": "x"}),
            ("/agents/a/kill", {"confirm": "a"}),
            ("/agents/a/restart", {}),
            ("/incidents/1/ack", {}),
            ("/logout", {}),
        ]
        for path, data in posts:
            assert c.post(path, data=data).status_code == 403, path
            assert c.post(path, data={**data, "csrf": "wrong"}).status_code == 403, path
        # a cross-site Origin is refused even with the right token
        cross = c.post(f"/approvals/{ap['id']}/approve", data={"csrf": token},
                       headers={"Origin": "https://evil.example"})
        assert cross.status_code == 403
        assert host.store.approval(ap["id"])["state"] == "pending"  # type: ignore[index]
        assert host.control.calls == []
        # and the login form's own (double-submit) token
        with AsgiClient(host.app) as fresh:
            fresh.get("/login")
            assert fresh.post("/login", data={"token": host.tokens["admin"], "csrf": "x"}).status_code == 403


def test_approve_and_deny_without_javascript(host: InProcess) -> None:
    def ask(fp: str) -> int:
        row = host.control.approvals.request(
            "a", "git.push", fp, classes=["git.push"], detail=f"git push --force origin main # {fp}",
            rule="default table: git.push: ask", reason="a force push rewrites history", timeout=3600,
            escalate_after=3600, extra={"cwd": "/tmp/repo", "diff": "--- a/x\n+++ b/x\n@@ -1 +1 @@\n-old\n+new\n"})
        return int(row["id"])

    one, two = ask("one"), ask("two")
    with signed_in(host, "approver") as c:
        inbox = c.get("/approvals")
        assert inbox.status_code == 200
        for needle in (f"#{one}", "git push --force origin main", "default table: git.push: ask", "asked"):
            assert needle in inbox.text
        page = c.get(f"/approvals/{one}")
        assert page.status_code == 200
        assert 'class="add">+new' in page.text and 'class="del">-old' in page.text  # the diff, coloured
        assert f'action="/approvals/{one}/approve"' in page.text
        got = c.post(f"/approvals/{one}/approve", data={"csrf": csrf_of(page.text), "note": "go ahead"})
        assert got.status_code == 303 and got.headers["location"] == f"/approvals/{one}"
        row = host.store.approval(one)
        assert row is not None and row["state"] == "approved" and row["note"] == "go ahead"
        assert row["decided_by"].startswith("approver:") and "dashboard" in row["decided_by"]
        assert "approved" in c.get(f"/approvals/{one}").text
        # deny needs a reason
        page = c.get(f"/approvals/{two}")
        assert c.post(f"/approvals/{two}/deny", data={"csrf": csrf_of(page.text), "reason": " "}).status_code == 422
        got = c.post(f"/approvals/{two}/deny", data={"csrf": csrf_of(page.text), "reason": "not on main"})
        assert got.status_code == 303
        assert host.store.approval(two)["state"] == "denied"  # type: ignore[index]
        # deciding twice says so
        again = c.post(f"/approvals/{two}/approve", data={"csrf": csrf_of(page.text)})
        assert again.status_code == 409 and "already denied" in again.text
        # the audit seal follows the decisions
        assert (host.loaded.state.audit_file).exists()


def test_kill_switch_needs_admin_and_a_typed_confirmation(host: InProcess) -> None:
    with signed_in(host, "approver") as c:
        page = c.get("/agents/a")
        assert page.status_code == 200 and "Kill switch" not in page.text
        assert c.get("/agents/a/kill").status_code == 403
        assert c.post("/agents/a/kill", data={"csrf": csrf_of(page.text), "confirm": "a"}).status_code == 403
        assert c.post("/agents/a/restart", data={"csrf": csrf_of(page.text)}).status_code == 403
    with signed_in(host, "admin") as c:
        page = c.get("/agents/a")
        assert 'href="/agents/a/kill"' in page.text
        confirm = c.get("/agents/a/kill")
        assert confirm.status_code == 200 and "Type <b>a</b> to confirm" in confirm.text
        token = csrf_of(confirm.text)
        wrong = c.post("/agents/a/kill", data={"csrf": token, "confirm": "b", "reason": "runaway"})
        assert wrong.status_code == 422 and host.control.calls == []
        done = c.post("/agents/a/kill", data={"csrf": token, "confirm": "a", "reason": "runaway"})
        assert done.status_code == 303
        assert host.control.calls[0][:2] == ("kill", "a") and "runaway" in host.control.calls[0][2]
        page = c.get("/agents/a")
        assert "kill switch on" in page.text and 'action="/agents/a/resume"' in page.text
        assert c.post("/agents/a/resume", data={"csrf": token}).status_code == 303
        assert ("resume", "a") in host.control.calls
        assert c.post("/agents/a/nonsense", data={"csrf": token}).status_code == 404
        assert c.get("/agents/zz").status_code == 404


def test_incidents_ack_and_the_audit_page(host: InProcess) -> None:
    inc = host.store.append([NewEvent("incident.opened", "a", {"kind": "stuck", "summary": "a is stuck"})])[0]
    host.store.append([NewEvent("incident.opened", None, {"kind": "disk", "summary": "disk nearly full"})])
    with signed_in(host, "approver") as c:
        page = c.get("/incidents")
        assert page.status_code == 200 and "a is stuck" in page.text and "disk nearly full" in page.text
        detail = c.get(f"/incidents/{inc}")
        assert detail.status_code == 200 and "Acknowledge" in detail.text
        assert c.post(f"/incidents/{inc}/ack", data={"csrf": csrf_of(detail.text), "note": "on it"}).status_code == 303
        row = next(i for i in host.store.incidents() if i["id"] == inc)
        assert row["acked"] is not None
        assert "acked" in c.get(f"/incidents/{inc}").text
        assert c.get("/incidents/99999").status_code == 404
        audit = c.get("/audit")
        assert audit.status_code == 200 and "The chain is intact" in audit.text
    # a row edited in the database makes the audit page say so
    host.control.approvals.request("a", "git.push", "fp", classes=["git.push"], detail="x", rule="r",
                                   reason="r", timeout=60, escalate_after=60)
    from tether import audit as audit_mod

    audit_mod.seal(host.store, host.loaded.state.audit_file)
    store = host.store
    store.run(lambda conn: conn.execute("UPDATE audit SET data = '{}'"))  # type: ignore[attr-defined]
    with signed_in(host, "admin") as c:
        page = c.get("/audit")
        assert "FAILED" in page.text and "do not match its hash" in page.text
        api = c.get("/v1/audit", headers={"Authorization": f"Bearer {host.tokens['admin']}"})
        assert api.json()["verification"]["ok"] is False


def test_overview_page_shows_what_the_issue_lists(host: InProcess) -> None:
    now = time.time()
    host.store.append([
        NewEvent("usage", "a", {"model": "claude", "input_tokens": 1200, "output_tokens": 300, "cost_usd": 0.42}),
        NewEvent("error", "a", {"kind": "tool", "detail": "boom"}),
        NewEvent("task.added", "a", {"text": "queued one"}, ts=now - 90),
        NewEvent("agent.exited", "b", {"code": 1, "uptime_s": 2}),
        NewEvent("agent.started", "b", {"pid": 1, "instance": "y", "restart": True}),
    ])
    host.control.approvals.request("a", "git.push", "fp", classes=["git.push"], detail="git push -f",
                                   rule="r", reason="r", timeout=600, escalate_after=600)
    with signed_in(host, "approver") as c:
        page = c.get("/")
        text = page.text
        assert page.status_code == 200
        for needle in ("task of a", "step 1", "$0.42", "waiting for approval #", "Pending approvals", "Open incidents",
                       "Spend today", "disk", "net", "Heartbeat", "Restarts"):
            assert needle in text, needle
        agents = c.get("/?fragment=agents")
        assert agents.status_code == 200 and "<html" not in agents.text and 'data-agent="b"' in agents.text
        assert c.get("/?fragment=nope").status_code == 404
        api = c.get("/v1/overview", headers={"Authorization": f"Bearer {host.tokens['approver']}"}).json()
        row = next(r for r in api["agents"] if r["name"] == "a")
        assert row["spend_today_usd"] == pytest.approx(0.42) and row["errors"] == 1 and row["queue_depth"] == 1
        assert row["queue_age_s"] >= 89 and row["blocked"].startswith("waiting for approval")
        assert next(r for r in api["agents"] if r["name"] == "b")["restarts"] == 1
        assert api["host"]["uptime_s"] > 0 and "bytes_sent" in api["host"]["network"]
        agent_page = c.get("/agents/a")
        assert "Tokens and spend" in agent_page.text and "<rect" in agent_page.text
        assert "queued one" in agent_page.text


def test_secrets_are_redacted_from_every_page_and_response(host: InProcess) -> None:
    """Known key formats fed in through every way text reaches the dashboard: agent reports, task text,
    heartbeats, approvals, incidents, logs. None may come back out of a page or a JSON answer."""
    s = " ".join(SECRETS.values())
    log_dir = host.loaded.state.log_dir("a")
    log_dir.mkdir(parents=True, exist_ok=True)
    (log_dir / "stdout.log").write_text(f"starting with {s}\n")
    (log_dir / "stderr.log").write_text(f"warning: {SECRETS['aws']}\n")
    host.store.append([
        NewEvent("log", "a", {"line": s}),
        NewEvent("command.run", "a", {"command": f"curl -H 'Authorization: {SECRETS['github']}'", "exit_code": 0}),
        NewEvent("files.changed", "a", {"paths": [f"/tmp/{SECRETS['openai']}.txt"]}),
        NewEvent("task.added", "a", {"text": f"rotate {SECRETS['anthropic']}"}),
        NewEvent("error", "a", {"kind": "auth", "detail": SECRETS["slack"]}),
        NewEvent("incident.opened", "a", {"kind": "leak", "summary": f"saw {s}"}),
    ])
    # straight into the store, unredacted (the daemon redacts beats before they get there): pages redact anyway
    host.store.beat("a", time.time(), f"using {SECRETS['aws']}", SECRETS["github"])
    host.control.approvals.request("a", "net.post", "fp", classes=["net.post"], detail=f"curl -d {s}", rule="r",
                                   reason="r", timeout=600, escalate_after=600, extra={"diff": f"+{s}\n"})
    ap = host.store.approvals("pending")[0]["id"]
    inc = host.store.incidents("open")[0]["id"]
    with signed_in(host, "admin") as c:
        pages = ["/", "/approvals", f"/approvals/{ap}", "/agents/a", "/incidents", f"/incidents/{inc}", "/audit",
                 "/?fragment=agents", "/agents/a?fragment=agent_activity"]
        for path in pages:
            got = c.get(path)
            assert got.status_code == 200, path
            assert not any_secret(got.text), (path, any_secret(got.text))
            assert "[REDACTED" in got.text or path in ("/audit", "/incidents"), path
        for path in ["/v1/overview", "/v1/agents/a/detail"]:  # the dashboard's JSON redacts what it reads too
            got = c.get(path, headers={"Authorization": f"Bearer {host.tokens['admin']}"})
            assert not any_secret(got.text), (path, any_secret(got.text))
        host.control.beat("a", f"using {SECRETS['aws']}", SECRETS["github"])  # the way beats really arrive
        auth = {"Authorization": f"Bearer {host.tokens['admin']}"}
        for path in ["/v1/overview", "/v1/agents", "/v1/agents/a", "/v1/agents/a/detail", "/v1/agents/a/logs",
                     "/v1/agents/a/logs?stream=stderr", "/v1/events?limit=1000", "/v1/approvals",
                     f"/v1/approvals/{ap}", "/v1/incidents", f"/v1/incidents/{inc}", "/v1/audit",
                     "/v1/agents/a/tasks", "/v1/stream?after=0", "/v1/stream?agent=a&after=0"]:
            got = c.get(path, headers=auth)
            assert got.status_code == 200, path
            assert not any_secret(got.text), (path, any_secret(got.text))


def test_bind_check() -> None:
    for host_ in ("127.0.0.1", "127.8.9.1", "localhost", "[::1]", "::1", "::ffff:127.0.0.1"):
        assert is_loopback(host_), host_
        check_bind(f"{host_}:7717")
    for host_ in ("0.0.0.0", "::", "[::]", "192.168.1.5", "10.0.0.1", "example.com", ""):
        assert not is_loopback(host_), host_
        with pytest.raises(TetherError, match="refusing to listen"):
            check_bind(f"{host_}:7717")
        check_bind(f"{host_}:7717", tls={"cert": "c.pem", "key": "k.pem"})
        check_bind(f"{host_}:7717", allow_remote=True)


def test_pages_answer_html_errors_and_static_files(host: InProcess) -> None:
    with signed_in(host, "approver") as c:
        assert c.get("/static/app.css").headers["content-type"].startswith("text/css")
        assert c.get("/static/app.js").status_code == 200
        assert c.get("/static/../views.py").status_code == 404
        missing = c.get("/approvals/424242")
        assert missing.status_code == 404 and "<html" in missing.text
        assert c.get("/approvals/notanumber").status_code == 404
    with AsgiClient(host.app) as anon:
        # a notification link opened from another site: the Strict cookie is not sent, so bounce once
        bounce = anon.get("/approvals/7", headers={"Sec-Fetch-Site": "cross-site"})
        assert bounce.status_code == 200 and "bounced=1" in bounce.text
        assert anon.get("/approvals/7?bounced=1", headers={"Sec-Fetch-Site": "cross-site"}).status_code == 303
        assert anon.get("/stream").status_code == 401


def test_notification_links_open_the_approval_and_incident_pages(host: InProcess,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """Every approval notification links to /approvals/<id> (incidents: /incidents/<id>); those pages exist,
    name the approval or incident, and offer the decision or the acknowledgement."""
    row = host.control.approvals.request("a", "git.push", "fp", classes=["git.push"], detail="git push -f",
                                         rule="r", reason="r", timeout=600, escalate_after=600)
    inc = host.store.append([NewEvent("incident.opened", "a", {"kind": "stale", "summary": "a is stale"})])[0]
    from tether import redact
    from tether.notify.notifier import Notifier

    # the notifier registers contact URLs as secrets in this process: put the registry back afterwards
    monkeypatch.setattr(redact, "_values", redact._values)
    monkeypatch.setattr(redact, "_values_re", redact._values_re)

    notifier = Notifier(host.store, lambda: host.loaded.runbook, base_url="http://127.0.0.1", start_worker=False)
    links = [*notifier._link("approvals", row["id"]), *notifier._link("incidents", inc)]
    assert len(links) == 2
    with signed_in(host, "approver") as c:
        page = c.get(links[0])
        assert page.status_code == 200
        assert re.search(rf"#{row['id']}\s*<b>git.push</b>", page.text) and 'id="approve"' in page.text
        page = c.get(links[1])
        assert page.status_code == 200 and "a is stale" in page.text and 'id="ack"' in page.text


def test_a_store_that_fails_is_a_503_with_its_one_line_error(tmp_path: Path) -> None:
    """The store cannot be read (here: closed under the app): every route answers 503 with the store's
    one-line error, a heartbeat included, never a 500 with a traceback."""
    host = InProcess(tmp_path)
    client = AsgiClient(host.app)
    admin = {"Authorization": f"Bearer {host.tokens['admin']}"}
    agent = {"Authorization": f"Bearer {host.tokens['agent']}"}
    assert client.get("/v1/agents", headers=admin).status_code == 200
    host.store.close()
    import tether.auth

    tether.auth._cache.clear()  # the next request reads its token from the store
    for method, path, headers in (("GET", "/v1/agents", admin), ("POST", "/v1/agents/a/heartbeat", agent)):
        got = client.request(method, path, headers=headers, json={})
        assert got.status_code == 503, (path, got.text)
        detail = got.json()["detail"]
        assert "tether.db" in detail and "\n" not in detail and "Traceback" not in detail
