"""The dashboard's pages: server-rendered HTML (Jinja2), plain forms that work without JavaScript, a
little script that keeps them live through server-sent events.

Signing in takes an approver or admin token and gives a session cookie; every form carries the session's
CSRF token, and every POST checks it (and the Origin header when the browser sends one). Approvers
decide and acknowledge; only admins use the kill switch and the other control verbs.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

from fastapi import APIRouter, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse
from fastapi.routing import APIRoute
from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup
from starlette.concurrency import run_in_threadpool

from tether.api.access import require
from tether.api.body import Id
from tether.api.errors import status_of
from tether.approvals import SCOPES
from tether.auth import identify
from tether.errors import NotFound, TetherError
from tether.notify import health as channel_health
from tether.redact import redact
from tether.web import common, live, views
from tether.web.sessions import COOKIE, LOGIN_COOKIE, LoginLimiter, Session, Sessions, new_csrf, same

HERE = Path(__file__).resolve().parent
STATIC = {"app.css": "text/css; charset=utf-8", "app.js": "text/javascript; charset=utf-8"}
MAX_FORM = 64 * 1024
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}
VERBS = ("resume", "start", "stop", "restart")



class PageRoute(APIRoute):
    """A page's errors are pages too: a redirect to sign in, or an HTML error with the right status."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        original = super().get_route_handler()

        async def handler(request: Request) -> Response:
            try:
                return await original(request)
            except NeedLogin as err:
                return err.response
            except HTTPException as err:
                return await run_in_threadpool(error_page, request, err.status_code, str(err.detail))
            except TetherError as err:
                return await run_in_threadpool(error_page, request, status_of(err), str(err))
            except RequestValidationError:
                return await run_in_threadpool(error_page, request, 404, "no such page")

        return handler


router = APIRouter(include_in_schema=False, route_class=PageRoute)


def _finalize(value: Any) -> Any:
    """Every value a template prints is redacted: no secret reaches a page, whatever its source."""
    if isinstance(value, Markup):
        return value
    if isinstance(value, str):
        return redact(value)
    return value


_env = Environment(
    loader=FileSystemLoader(str(HERE / "templates")), autoescape=select_autoescape(default=True),
    finalize=_finalize, trim_blocks=True, lstrip_blocks=True,
)
_env.filters.update(age=views.age, clock=views.clock, iso=views.iso, money=views.money, size=views.size,
                    count=views.count, tone=views.tone)


def env() -> Environment:
    return _env


# -- sessions ----------------------------------------------------------------------------------------
def sessions(request: Request) -> Sessions:
    got: Sessions | None = getattr(request.app.state, "sessions", None)
    if got is None:
        got = request.app.state.sessions = Sessions()
    return got


def limiter(request: Request) -> LoginLimiter:
    got: LoginLimiter | None = getattr(request.app.state, "login_limiter", None)
    if got is None:
        got = request.app.state.login_limiter = LoginLimiter()
    return got


def current(request: Request) -> Session | None:
    """The signed-in session, if its token is still live (a revoked token ends its sessions)."""
    s = sessions(request).get(request.cookies.get(COOKIE))
    if s is None:
        return None
    row = common.store(request).token(s.token_hash)
    if row is None or row["role"] not in ("approver", "admin"):
        sessions(request).drop(s.id)
        return None
    return s


def _secure(request: Request) -> bool:
    return request.url.scheme == "https"


def _safe_next(value: str | None) -> str:
    """Only a path on this site (never ``//host`` or a scheme): no open redirect."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return "/"
    parts = urlsplit(value)
    if parts.scheme or parts.netloc:
        return "/"
    return value


class NeedLogin(Exception):
    def __init__(self, response: Response) -> None:
        self.response = response


def need(request: Request, role: str | None = None) -> Session:
    """The session, or a redirect to the sign-in page (raised as ``NeedLogin``); 403 below ``role``."""
    s = current(request)
    if s is None:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        if request.method == "GET" and request.headers.get("sec-fetch-site") == "cross-site" \
                and "bounced=1" not in request.url.query:
            # a link from a notification (another site): a SameSite=Strict cookie is not sent on that first
            # navigation, so come back once from this page, which is same-site and carries the cookie
            sep = "&" if request.url.query else "?"
            raise NeedLogin(_html(request, "bounce.html", {"target": target + sep + "bounced=1"}, None))
        raise NeedLogin(RedirectResponse(f"/login?next={quote(target, safe='')}", status_code=303))
    if role == "admin":
        require(s.principal(), "control")
    return s


async def form(request: Request, s: Session | None) -> dict[str, str]:
    """The urlencoded form of a POST, after the CSRF checks (403 on failure)."""
    origin = request.headers.get("origin")
    if origin and origin != "null":
        host = request.headers.get("host", "")
        if urlsplit(origin).netloc != host:
            raise HTTPException(403, "cross-site form submission refused")
    ctype = request.headers.get("content-type", "").split(";")[0].strip()
    if ctype not in ("application/x-www-form-urlencoded", ""):
        raise HTTPException(415, "send the form as application/x-www-form-urlencoded")
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM:
            raise HTTPException(413, "form too large")
    try:
        parsed = parse_qs(body.decode("utf-8"), keep_blank_values=True, max_num_fields=50)
    except (UnicodeDecodeError, ValueError):
        raise HTTPException(400, "malformed form") from None
    fields = {k: v[0] for k, v in parsed.items()}
    expected = s.csrf if s is not None else request.cookies.get(LOGIN_COOKIE)
    if not same(fields.get("csrf"), expected):
        raise HTTPException(403, "the form's CSRF token is missing or stale; reload the page and try again")
    return fields


def _html(request: Request, template: str, ctx: dict[str, Any], s: Session | None, status: int = 200,
          started: float | None = None) -> HTMLResponse:
    page = _env.get_template(template).render(
        **ctx, user=s, csrf=s.csrf if s is not None else "", path=request.url.path,
    )
    headers = dict(SECURITY_HEADERS)
    if started is not None:
        headers["Server-Timing"] = f"app;dur={(time.perf_counter() - started) * 1000:.2f}"
    return HTMLResponse(page, status_code=status, headers=headers)


def _counts(request: Request) -> dict[str, int]:
    st = common.store(request)
    return {"approvals": len(st.approvals("pending")), "incidents": len(st.incidents("open"))}


def _render(request: Request, s: Session, template: str, ctx: dict[str, Any], fragment: str | None,
            fragments: tuple[str, ...], started: float, live: str | None = "/stream") -> HTMLResponse:
    """The full page, or only one of its live regions (``?fragment=NAME``, what the script refreshes)."""
    if fragment is not None:
        if fragment not in fragments:
            raise NotFound(f"no fragment {fragment!r} on this page")
        return _html(request, f"_{fragment}.html", ctx, s, started=started)
    if "counts" not in ctx:
        ctx["counts"] = _counts(request)
    return _html(request, template, {**ctx, "live": live}, s, started=started)


def error_page(request: Request, status: int, detail: str) -> HTMLResponse:
    s = None
    try:
        s = current(request)
    except Exception:  # the error page must render whatever went wrong
        s = None
    return _html(request, "error.html", {"status": status, "detail": str(detail), "counts": None}, s, status)


def wants_html(request: Request) -> bool:
    """A dashboard page (not the JSON API)."""
    return not request.url.path.startswith(("/v1/", "/metrics", "/openapi"))


# -- signing in --------------------------------------------------------------------------------------
@router.get("/login")
def login_page(request: Request, next: str | None = None) -> Response:
    if current(request) is not None:
        return RedirectResponse(_safe_next(next), status_code=303)
    token = request.cookies.get(LOGIN_COOKIE) or new_csrf()
    resp = _html(request, "login.html", {"next": _safe_next(next), "login_csrf": token, "error": None,
                                         "counts": None}, None)
    resp.set_cookie(LOGIN_COOKIE, token, httponly=True, samesite="strict", secure=_secure(request), path="/login",
                    max_age=3600)
    return resp


@router.post("/login")
async def login(request: Request) -> Response:
    client = request.client.host if request.client else "?"
    lim = limiter(request)
    wait = lim.retry_after(client)
    if wait is not None:
        resp = _html(request, "login.html", {"next": "/", "login_csrf": request.cookies.get(LOGIN_COOKIE, ""),
                                             "error": f"Too many failed sign-ins. Try again in {wait:.0f}s.",
                                             "counts": None}, None, 429)
        resp.headers["Retry-After"] = str(int(wait + 0.999))
        return resp
    fields = await form(request, None)
    token = fields.get("token", "").strip()
    nxt = _safe_next(fields.get("next"))
    who = await run_in_threadpool(identify, common.store(request), token) if token else None
    if who is None or who.role not in ("approver", "admin"):
        lim.failed(client)
        error = ("Agent tokens cannot sign in: use an approver or admin token."
                 if who is not None else "That token is not valid (unknown or revoked).")
        status = 403 if who is not None else 401
        return _html(request, "login.html", {"next": nxt, "login_csrf": request.cookies.get(LOGIN_COOKIE, ""),
                                             "error": error, "counts": None}, None, status)
    s = sessions(request).create(token, who)
    done = RedirectResponse(nxt, status_code=303)
    done.set_cookie(COOKIE, s.id, httponly=True, samesite="strict", secure=_secure(request), path="/",
                    max_age=int(sessions(request).lifetime))
    done.delete_cookie(LOGIN_COOKIE, path="/login")
    return done


@router.post("/logout")
async def logout(request: Request) -> Response:
    s = current(request)
    if s is not None:
        await form(request, s)
        sessions(request).drop(s.id)
    resp = RedirectResponse("/login", status_code=303)
    resp.delete_cookie(COOKIE, path="/")
    return resp


# -- the overview ------------------------------------------------------------------------------------
@router.get("/")
def overview_page(request: Request, fragment: str | None = None) -> Response:
    started = time.perf_counter()
    s = need(request)
    c = common.control(request)
    root = common.state_root(request)
    data = views.overview(common.store(request), paths=common.host_paths(request),
                          started=c.started, probes=list(c.probe_results),
                          channels=channel_health.read(root) if root is not None else ())
    counts = {"approvals": data["totals"]["pending_approvals"], "incidents": data["totals"]["open_incidents"]}
    return _render(request, s, "overview.html", {"o": data, "counts": counts, "title": "Overview"}, fragment,
                   ("agents", "summary", "side"), started)


# -- approvals ---------------------------------------------------------------------------------------
@router.get("/approvals")
def approvals_page(request: Request, fragment: str | None = None) -> Response:
    started = time.perf_counter()
    s = need(request)
    st = common.store(request)
    now = time.time()
    pending = [views.approval_view(a, now) for a in st.approvals("pending")]
    decided = [views.approval_view(a, now) for a in reversed(st.approvals(None, limit=300)) if a["state"] != "pending"]
    ctx = views.redact_any({"pending": pending, "decided": decided[:50], "now": now})
    return _render(request, s, "approvals.html", {**ctx, "title": "Approvals"}, fragment, ("inbox",), started)


@router.get("/approvals/{approval_id}")
def approval_page(request: Request, approval_id: Id, fragment: str | None = None) -> Response:
    started = time.perf_counter()
    s = need(request)
    row = common.store(request).approval(approval_id)
    if row is None:
        raise NotFound(f"no approval {approval_id}")
    a = views.redact_any(views.approval_view(row, time.time()))
    return _render(request, s, "approval.html", {"a": a, "title": f"Approval #{approval_id}"}, fragment,
                   ("decision",), started)


async def _decide(request: Request, approval_id: int, approve: bool) -> Response:
    s = need(request)
    fields = await form(request, s)
    note = (fields.get("note") if approve else fields.get("reason")) or ""
    note = note.strip()[:4000]
    if not approve and not note:
        raise HTTPException(422, "a denial needs a reason")
    scope = fields.get("scope") or "once"  # what the grant covers: once, this task, 1 h
    if scope not in SCOPES:
        raise HTTPException(422, f"scope: expected once, task or 1h, got {scope[:20]!r}")
    approvals = common.control(request).approvals
    who = s.principal()
    await run_in_threadpool(approvals.decide, approval_id, approve, common.identity(who, " (dashboard)"),
                            note or None, scope)
    await run_in_threadpool(common.seal, request)
    return RedirectResponse(f"/approvals/{approval_id}", status_code=303)


@router.post("/approvals/{approval_id}/approve")
async def approve(request: Request, approval_id: Id) -> Response:
    return await _decide(request, approval_id, True)


@router.post("/approvals/{approval_id}/deny")
async def deny(request: Request, approval_id: Id) -> Response:
    return await _decide(request, approval_id, False)


# -- an agent ----------------------------------------------------------------------------------------
@router.get("/agents/{name}")
def agent_page(request: Request, name: str, fragment: str | None = None) -> Response:
    started = time.perf_counter()
    s = need(request)
    common.known(request, name)
    d = views.agent_detail(common.store(request), name, spec=common.spec(request, name),
                           log_dir=common.log_dir(request, name), killed=common.killed(request, name))
    return _render(request, s, "agent.html", {"a": d, "title": name}, fragment,
                   ("agent_summary", "agent_activity"), started, live=f"/stream?agent={quote(name)}")


@router.get("/agents/{name}/kill")
def kill_confirm(request: Request, name: str) -> Response:
    started = time.perf_counter()
    s = need(request, "admin")
    common.known(request, name)
    return _render(request, s, "kill.html", {"name": name, "title": f"Kill {name}", "error": None}, None, (),
                   started, live=None)


@router.post("/agents/{name}/kill")
async def kill(request: Request, name: str) -> Response:
    s = need(request, "admin")
    fields = await form(request, s)
    common.known(request, name)
    if fields.get("confirm", "").strip() != name:
        return _html(request, "kill.html", {"name": name, "title": f"Kill {name}", "counts": None,
                                            "error": f"Type the agent's name ({name}) to confirm."}, s, 422)
    reason = (fields.get("reason") or "").strip()[:1000] or "killed from the dashboard"
    ctl = common.control(request)
    why = f"{reason} (by {common.identity(s.principal())})"
    if await run_in_threadpool(ctl.place.route, ctl, "kill", name, why) is None:  # None: this daemon's agent
        await run_in_threadpool(ctl.kill, name, why)
    return RedirectResponse(f"/agents/{quote(name)}", status_code=303)


@router.post("/agents/{name}/{verb}")
async def control_verb(request: Request, name: str, verb: str) -> Response:
    if verb not in VERBS:
        raise NotFound(f"no action {verb!r}")
    s = need(request, "admin")
    await form(request, s)
    common.known(request, name)
    ctl = common.control(request)
    if await run_in_threadpool(ctl.place.route, ctl, verb, name) is None:  # None: this daemon's agent
        await run_in_threadpool(getattr(ctl, verb), name)
    return RedirectResponse(f"/agents/{quote(name)}", status_code=303)


# -- incidents and the audit log -------------------------------------------------------------------
@router.get("/incidents")
def incidents_page(request: Request, fragment: str | None = None) -> Response:
    started = time.perf_counter()
    s = need(request)
    now = time.time()
    rows = common.store(request).incidents()
    open_ = [views.incident_view(i, now) for i in reversed(rows) if i["state"] == "open"]
    closed = [views.incident_view(i, now) for i in reversed(rows) if i["state"] != "open"][:100]
    ctx = views.redact_any({"open": open_, "closed": closed})
    return _render(request, s, "incidents.html", {**ctx, "title": "Incidents"}, fragment, ("incident_list",),
                   started)


@router.get("/incidents/{incident_id}")
def incident_page(request: Request, incident_id: Id) -> Response:
    started = time.perf_counter()
    s = need(request)
    st = common.store(request)
    inc = common.incident(st, incident_id)
    i = views.redact_any(views.incident_view(inc, time.time()))
    timeline = []
    if inc["agent"]:
        timeline = [views.event_view(e) for e in st.last_events(inc["agent"], 300)
                    if abs(e.ts - inc["opened"]) < 3600][:50]
    return _render(request, s, "incident.html", {"i": i, "timeline": views.redact_any({"t": timeline})["t"],
                                                 "title": f"Incident #{incident_id}"}, None, (), started)


@router.post("/incidents/{incident_id}/ack")
async def ack(request: Request, incident_id: Id) -> Response:
    s = need(request)
    fields = await form(request, s)
    note = (fields.get("note") or "").strip()[:4000] or None
    await run_in_threadpool(common.ack_incident, common.store(request), incident_id,
                            common.identity(s.principal(), " (dashboard)"), note)
    back = _safe_next(fields.get("next")) if fields.get("next") else f"/incidents/{incident_id}"
    return RedirectResponse(back, status_code=303)


@router.get("/audit")
def audit_page(request: Request) -> Response:
    started = time.perf_counter()
    s = need(request)
    lr = common.loaded(request)
    if lr is None:
        raise NotFound("this daemon has no state directory")
    data = views.audit_page(common.store(request), lr.state.audit_file)
    return _render(request, s, "audit.html", {"audit": data, "title": "Audit log"}, None, (), started, live=None)


# -- live --------------------------------------------------------------------------------------------
@router.get("/stream")
def page_stream(request: Request, agent: str | None = None) -> Response:
    s = current(request)
    if s is None:
        raise HTTPException(401, "sign in first")
    if agent is not None:
        common.known(request, agent)
    body = live.stream(request, common.store(request), agent=agent, after=common.last_event_id(request),
                       log_dir=common.log_dir(request, agent) if agent else None, stopping=common.stopping(request),
                       lifetime=float(getattr(request.app.state, "sse_lifetime", live.LIFETIME)))
    return StreamingResponse(body, media_type="text/event-stream",
                             headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})


@router.get("/static/{name}")
def static(name: str) -> Response:
    media = STATIC.get(name)
    if media is None:
        raise NotFound("no such file")
    return Response((HERE / "static" / name).read_bytes(), media_type=media,
                    headers={"Cache-Control": "public, max-age=300", "X-Content-Type-Options": "nosniff"})


@router.get("/favicon.ico")
def favicon() -> Response:
    return Response(status_code=204)
