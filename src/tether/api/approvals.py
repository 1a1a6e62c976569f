"""The approval endpoints: an agent checks an action (``/v1/agents/{agent}/check``) and waits for a
decision; approvers list and decide (``/v1/approvals``). Agent tokens can never decide (403)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from tether.api import waits
from tether.api.access import Caller, require
from tether.api.body import Id, StrictRoute
from tether.approvals import Approvals
from tether.auth import Principal
from tether.boundary import Boundary, Gatekeeper
from tether.boundary import Request as ActionRequest
from tether.errors import NotFound

router = APIRouter(route_class=StrictRoute)
MAX_WAIT = 600.0


class ActionBody(BaseModel):
    """One action an agent wants to take (see ``tether.boundary.Request``): checked, or explained."""

    command: str | None = Field(default=None, max_length=100_000)
    tool: str | None = Field(default=None, max_length=200)
    input: dict[str, Any] | None = None
    path: str | None = Field(default=None, max_length=4096)
    op: str = Field(default="write", pattern=r"^(read|write|delete|exec)$")
    url: str | None = Field(default=None, max_length=8192)
    method: str = Field(default="GET", max_length=16)
    action: str | None = Field(default=None, max_length=64)
    detail: str = Field(default="", max_length=10_000)
    cwd: str | None = Field(default=None, max_length=4096)
    session: str | None = Field(default=None, max_length=200, description="the client's session: a grant is for it")
    task: str | None = Field(default=None, max_length=200, description="else the task: a grant is for it")


class CheckBody(ActionBody):
    wait: float = Field(default=0.0, ge=0.0, le=MAX_WAIT, allow_inf_nan=False,
                        description="seconds to wait for a human decision")


class Decide(BaseModel):
    note: str | None = Field(default=None, max_length=4000)
    scope: str = Field(default="once", pattern=r"^(once|task|1h)$",
                       description="what the grant covers: once, every identical call of this task, or 1 h of them")


class Deny(BaseModel):
    reason: str = Field(min_length=1, max_length=4000)


def _gatekeeper(request: Request) -> Gatekeeper:
    """One gatekeeper per loaded runbook (rebuilt after a reload)."""
    control = request.app.state.control
    cached: tuple[Any, Gatekeeper] | None = getattr(request.app.state, "gatekeeper", None)
    if cached is None or cached[0] is not control.loaded:
        approvals: Approvals = control.approvals
        cached = (control.loaded, Gatekeeper(Boundary(control.loaded), approvals))
        request.app.state.gatekeeper = cached
    return cached[1]


def _identity(who: Principal) -> str:
    return f"{who.role}:{who.token_id}"


@router.post("/v1/agents/{agent}/check")
async def check(agent: str, body: CheckBody, who: Caller, request: Request) -> dict[str, Any]:
    """Classify an action and decide it by the runbook: allow, deny, or pending (held for a human).
    With ``wait`` the call returns as soon as a human decides, or when the wait runs out (the wait on a thread
    of its own: ``tether.api.waits``)."""
    gk = await run_in_threadpool(_gatekeeper, request)  # the first call builds the boundary
    if agent not in gk.loaded.runbook.agents:
        raise NotFound(f"no agent named {agent!r}")
    require(who, "act", agent)
    req = ActionRequest(**body.model_dump(exclude={"wait"}))
    outcome = await waits.of(request).run(agent, body.wait, lambda w: gk.check(agent, req, w))
    result: dict[str, Any] = outcome.to_dict()
    return result

@router.get("/v1/approvals")
def list_approvals(
    who: Caller, request: Request, state: str | None = "pending", agent: str | None = None,
    limit: Annotated[int, Query(ge=1, le=1000, description="the newest this many, in id order")] = 200,
) -> dict[str, Any]:
    """The newest ``limit`` approvals; ``more`` says whether older ones exist. Bounded like every listing: every
    ``ask`` adds one, and the whole table (60,000 rows: 56 MB of JSON) took the daemon up 380 MB per request."""
    if who.role == "agent" and agent is None:
        agent = who.agent  # an agent token lists its own agent's
    require(who, "read", agent)
    approvals: Approvals = request.app.state.control.approvals
    got = approvals.store.approvals(state if state != "all" else None, agent, limit=limit + 1)
    return {"approvals": got[-limit:], "more": len(got) > limit}

@router.get("/v1/approvals/{approval_id}")
def get_approval(approval_id: Id, who: Caller, request: Request) -> dict[str, Any]:
    row = _visible(request, who, approval_id)
    return row

@router.get("/v1/approvals/{approval_id}/wait")
async def wait_approval(approval_id: Id, who: Caller, request: Request,
                        timeout: Annotated[float, Query(ge=0.0, le=MAX_WAIT, allow_inf_nan=False)] = 30.0
                        ) -> dict[str, Any]:
    """Long-poll: returns when the approval is decided (pushed, not polled) or after ``timeout`` s (on a
    waiting thread: ``tether.api.waits``; past its limits, the approval as it is now)."""
    await run_in_threadpool(_visible, request, who, approval_id)
    approvals: Approvals = request.app.state.control.approvals
    row: dict[str, Any] = await waits.of(request).run(who.agent or f"token:{who.token_id}", timeout,
                                                      lambda t: approvals.wait(approval_id, t))
    return row

@router.post("/v1/approvals/{approval_id}/approve")
def approve(approval_id: Id, body: Decide, who: Caller, request: Request) -> dict[str, Any]:
    return _decide(request, who, approval_id, True, body.note, body.scope)


@router.post("/v1/approvals/{approval_id}/deny")
def deny(approval_id: Id, body: Deny, who: Caller, request: Request) -> dict[str, Any]:
    return _decide(request, who, approval_id, False, body.reason)


def _decide(request: Request, who: Principal, approval_id: int, approve: bool, note: str | None,
            scope: str = "once") -> dict[str, Any]:
    require(who, "decide")
    approvals: Approvals = request.app.state.control.approvals
    row: dict[str, Any] = approvals.decide(approval_id, approve, _identity(who), note, scope)
    _gatekeeper(request)._seal()
    return row


def _visible(request: Request, who: Principal, approval_id: int) -> dict[str, Any]:
    approvals: Approvals = request.app.state.control.approvals
    row = approvals.store.approval(approval_id)
    if row is None:
        raise NotFound(f"no approval {approval_id}")
    require(who, "read", row["agent"])
    return row

