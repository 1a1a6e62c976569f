"""Signed one-time links (``/link/TOKEN``): the link in a notification decides one approval, as the one person it
was sent to, with no session. ``TOKEN`` is ``ID.PERSON.SIG`` (``notify.deciders.link_token``): only this host
can make one, and it names its approval and its person.

A GET shows the approval and the two buttons and changes nothing (a link preview, a scanner, a prefetch may
open it); the decision is the POST the button sends, made by ``Decider.decide`` like a tap on a phone, so the
audit names the person the link was sent to (channel ``link``). A link is used once and dies with its approval:
once the approval is decided (by this link or any other way) or expired, it only shows what became of it.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from starlette.concurrency import run_in_threadpool

from tether.notify.deciders import Approver, Decider, Outcome, read_link, settled
from tether.web import common, pages, views

router = APIRouter(include_in_schema=False)
MAX_FORM = 16 * 1024
HEADERS = {**pages.SECURITY_HEADERS, "Referrer-Policy": "no-referrer"}  # the token is in the path


def _page(request: Request, status: int, ctx: dict[str, Any], template: str = "link.html") -> HTMLResponse:
    html = (
        pages.env()
        .get_template(template)
        .render(**{"user": None, "csrf": "", "path": request.url.path, "counts": None, **ctx})
    )
    return HTMLResponse(html, status_code=status, headers=HEADERS)


def _error(request: Request, status: int, detail: str) -> HTMLResponse:
    return _page(request, status, {"status": status, "detail": detail, "title": str(status)}, "error.html")


def _resolve(request: Request, token: str) -> tuple[Decider, int, Approver] | None:
    channels = getattr(common.control(request), "channels", None)
    if channels is None:
        return None
    got = read_link(channels.signer, token, channels.runbook())
    if got is None:
        return None
    return channels.decider, got[0], got[1]


def _view(
    request: Request, decider: Decider, approval_id: int, who: str, said: str = "", status: int = 200
) -> HTMLResponse:
    import time

    row = decider.store.approval(approval_id)
    if row is None:
        return _error(request, 404, f"There is no approval #{approval_id} (any more).")
    a = views.redact_any(views.approval_view(row, time.time()))
    outcome = settled(row) if row["state"] != "pending" else ""
    return _page(
        request, status, {"a": a, "who": who, "said": said, "outcome": outcome, "title": f"Approval #{approval_id}"}
    )


@router.get("/link/{token}")
def show(request: Request, token: str) -> Response:
    found = _resolve(request, token)
    if found is None:
        return _error(
            request,
            404,
            "This link is not valid here: it was not made by this host for someone its "
            "runbook names, or it was cut short.",
        )
    decider, approval_id, who = found
    return _view(request, decider, approval_id, who.label)


@router.post("/link/{token}")
async def decide(request: Request, token: str) -> Response:
    origin = request.headers.get("origin")
    if origin and origin != "null" and urlsplit(origin).netloc != request.headers.get("host", ""):
        return _error(request, 403, "cross-site form submission refused")
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM:
            return _error(request, 413, "form too large")
    try:
        fields = {k: v[0] for k, v in parse_qs(body.decode("utf-8"), max_num_fields=10).items()}
    except (UnicodeDecodeError, ValueError):
        return _error(request, 400, "malformed form")
    found = _resolve(request, token)
    if found is None:
        channels = getattr(common.control(request), "channels", None)
        if channels is not None:
            await run_in_threadpool(
                channels.decider.refuse,
                None,
                "link",
                _client(request),
                "the link was not made by this host for someone its runbook names",
            )
        return _error(
            request,
            404,
            "This link is not valid here: it was not made by this host for someone its "
            "runbook names, or it was cut short; the attempt was recorded.",
        )
    decider, approval_id, who = found
    verb = fields.get("verb")
    if verb not in ("approve", "deny"):
        return _error(request, 422, "verb: expected approve or deny")
    note = (fields.get("note") if verb == "approve" else fields.get("reason")) or ""
    if verb == "deny" and not note.strip():
        return _view(request, decider, approval_id, who.label, "A denial needs a reason: nothing was decided.", 422)
    out: Outcome = await run_in_threadpool(decider.decide, approval_id, verb == "approve", who, "link", note or None)
    return _view(request, decider, approval_id, who.label, out.text, 200 if out.ok else 409)


def _client(request: Request) -> str:
    peer = request.client.host if request.client else "?"
    return f"a browser at {peer}"
