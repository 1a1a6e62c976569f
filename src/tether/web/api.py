"""The JSON the dashboard's views are made of, which ``tether top``, ``logs``, ``explain``, ``incidents`` and
``events -F`` read too: the overview, the host, an agent's detail, logs and usage, ``explain``, incidents and
their acknowledgement, and a live event stream (SSE). The admin routes (tokens, backup, prune, the audit log,
the runbook summary) are the JSON API's: ``tether.api.admin``.

Roles: approver and admin read; agent tokens read only what is their own agent's and never decide (403);
acknowledging needs approver or admin.
"""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from tether.api.access import Caller, require
from tether.api.approvals import ActionBody
from tether.api.body import MAX_ID, Id, StrictRoute
from tether.boundary import Boundary
from tether.boundary import Request as Action
from tether.errors import NotFound
from tether.process.logs import read_logs
from tether.redact import redact
from tether.web import common, live, views

ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"description": "no valid bearer token"},
    403: {"description": "this token's role may not do this"},
    404: {"description": "no such agent, incident or file"},
}
router = APIRouter(responses=ERRORS, tags=["dashboard"], route_class=StrictRoute)


class Open(BaseModel):
    model_config = ConfigDict(extra="allow")


class AgentRow(Open):
    name: str
    state: str
    reason: str | None = None
    heartbeat_age_s: float | None = None
    task: str | None = None
    progress: str | None = None
    queue_depth: int = 0
    queue_age_s: float | None = None
    blocked: str | None = Field(default=None, description="why it cannot go on: a pending approval, its state")
    spend_today_usd: float = 0.0
    tokens_today: int = 0
    errors: int = 0
    restarts: int = 0


class Totals(Open):
    agents: int
    ok: int
    warn: int
    bad: int
    spend_today_usd: float
    errors: int
    pending_approvals: int
    open_incidents: int


class Overview(Open):
    now: float
    agents: list[AgentRow]
    totals: Totals
    host: dict[str, Any]
    approvals: list[dict[str, Any]]
    incidents: list[dict[str, Any]]
    events: list[dict[str, Any]]


class Logs(Open):
    agent: str
    stream: str
    lines: list[str]


class Incident(Open):
    id: int
    agent: str | None
    kind: str
    state: str
    summary: str
    opened: float
    resolved: float | None = None
    acked: float | None = None


class AckBody(BaseModel):
    note: str | None = Field(default=None, max_length=4000)


class ExplainBody(ActionBody):
    """The action to explain: the same fields an agent's check takes, without the wait."""


class Explained(Open):
    agent: str
    verdict: str
    rule: str
    reason: str
    classes: list[str]
    parsed: bool
    gates: list[str]
    resources: list[dict[str, Any]]


@router.get("/v1/overview", response_model=Overview)
def overview(who: Caller, request: Request) -> dict[str, Any]:
    """Every agent (state, heartbeat age, task, queue, blocked reason, spend today, errors, restarts),
    the host, pending approvals, open incidents and the newest events: what the dashboard's overview
    and ``tether top`` show."""
    require(who, "read")
    c = common.control(request)
    return views.overview(common.store(request), paths=common.host_paths(request), started=c.started,
                          probes=list(c.probe_results))


@router.get("/v1/host")
def host(who: Caller, request: Request) -> dict[str, Any]:
    """The host: uptime, the daemon's uptime, disk of the state and workspace folders, network."""
    require(who, "read")
    c = common.control(request)
    return views.host(common.host_paths(request), getattr(c, "started", None), time.time(),
                      list(c.probe_results))


@router.get("/v1/agents/{agent}/detail")
def agent_detail(agent: str, who: Caller, request: Request,
                 lines: int = Query(default=100, ge=0, le=2000)) -> dict[str, Any]:
    """What the agent page shows: status, timeline, files changed, commands run, tasks, usage per day,
    the log tail, its pending approvals and open incidents."""
    common.known(request, agent)
    require(who, "read", agent)
    got: dict[str, Any] = views.agent_detail(
        common.store(request), agent, spec=common.spec(request, agent),
        log_dir=common.log_dir(request, agent), killed=common.killed(request, agent), log_lines=lines)
    return got


@router.get("/v1/agents/{agent}/logs", response_model=Logs)
def logs(agent: str, who: Caller, request: Request, stream: str = Query(default="stdout", pattern="^(stdout|stderr)$"),
         tail: int = Query(default=200, ge=0, le=10_000)) -> dict[str, Any]:
    """The last ``tail`` lines of the agent's log (``tether logs``), secrets redacted."""
    common.known(request, agent)
    require(who, "read", agent)
    d = common.log_dir(request, agent)
    got = read_logs(d, stream, tail) if d is not None else []
    return {"agent": agent, "stream": stream, "lines": [redact(line) for line in got]}


@router.get("/v1/agents/{agent}/usage")
def usage(agent: str, who: Caller, request: Request) -> dict[str, Any]:
    """Tokens and spend per day and model."""
    common.known(request, agent)
    require(who, "read", agent)
    rows = common.store(request).usage(agent)
    return {"agent": agent, "usage": rows, "days": views.usage_days(rows, time.time())}


@router.post("/v1/agents/{agent}/explain", response_model=Explained)
def explain(agent: str, body: ExplainBody, who: Caller, request: Request) -> dict[str, Any]:
    """How the runbook treats an action (``tether explain``): classes, resources, verdict and rule.
    Nothing is recorded and nothing is held."""
    require(who, "read", agent)
    lr = common.loaded(request)
    if lr is None or agent not in lr.runbook.agents:
        raise NotFound(f"no agent named {agent!r}")
    cached = getattr(request.app.state, "explain_boundary", None)
    if cached is None or cached[0] is not lr:
        cached = (lr, Boundary(lr))
        request.app.state.explain_boundary = cached
    _, d = cached[1].evaluate(agent, Action(**body.model_dump()))
    out = {
        "agent": agent, "verdict": d.verdict, "rule": d.rule, "reason": d.reason, "classes": list(d.classes),
        "parsed": d.parsed, "gates": list(d.gates),
        "resources": [{"kind": r.kind, "value": r.value, "op": r.op, "protected": r.protected} for r in d.resources],
    }
    return views.redact_any(out)


@router.get("/v1/incidents/{incident_id}", response_model=Incident)
def get_incident(incident_id: Id, who: Caller, request: Request) -> dict[str, Any]:
    require(who, "read")
    got: dict[str, Any] = common.incident(common.store(request), incident_id)
    return views.redact_any(got)


@router.post("/v1/incidents/{incident_id}/ack", response_model=Incident)
def ack(incident_id: Id, body: AckBody, who: Caller, request: Request) -> dict[str, Any]:
    """Acknowledge an incident (``tether ack``): you have it, its backup is not paged."""
    require(who, "decide")
    got: dict[str, Any] = common.ack_incident(common.store(request), incident_id, common.identity(who), body.note)
    return views.redact_any(got)


@router.get("/v1/stream", response_class=StreamingResponse,
            responses={200: {"content": {"text/event-stream": {}}, "description": "server-sent events"}})
def stream(who: Caller, request: Request, agent: str | None = None,
           after: int | None = Query(default=None, ge=0, le=MAX_ID),
           timeout: float | None = Query(default=None, gt=0, le=3600,
                                         description="end the stream after this many seconds")) -> StreamingResponse:
    """New events as server-sent events (``tether events -F``): ``tether`` frames, one event each, and,
    with ``agent``, ``log`` frames with new lines of its log. Agent tokens must name their own agent.
    Resumes after ``after`` or the ``Last-Event-ID`` header; ends after ``timeout`` or a few minutes
    (reconnect), and at once when the daemon stops."""
    if agent is None:
        require(who, "read")
    else:
        common.known(request, agent)
        require(who, "read", agent)
    resume = after if after is not None else common.last_event_id(request)
    lifetime = float(getattr(request.app.state, "sse_lifetime", live.LIFETIME))
    body = live.stream(request, common.store(request), agent=agent, after=resume,
                       log_dir=common.log_dir(request, agent) if agent else None, stopping=common.stopping(request),
                       lifetime=min(lifetime, timeout) if timeout is not None else lifetime)
    return StreamingResponse(body, media_type="text/event-stream",
                             headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})
