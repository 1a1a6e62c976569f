"""The JSON API's admin routes, for the CLI and scripts as much as the dashboard: tokens, a backup of the
store, pruning, the audit log with its verification, the runbook summary.

Roles (``tether.api.access``): approvers and admins read the audit log and the runbook; tokens, backup and
prune are control, admins only.
"""

from __future__ import annotations

import os
import tempfile
import time
from typing import Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import FileResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.background import BackgroundTask

from tether import auth
from tether.api import parts
from tether.api.access import REFUSALS, Caller, require
from tether.api.body import StrictRoute
from tether.audit import page
from tether.errors import NotFound
from tether.redact import redact_obj

router = APIRouter(responses={**REFUSALS, 404: {"description": "no such agent, or no state directory"}},
                   tags=["admin"], route_class=StrictRoute)


class Open(BaseModel):
    """An answer whose documented fields are the least it holds."""

    model_config = ConfigDict(extra="allow")


class Verification(Open):
    ok: bool
    rows: int
    sealed: int
    problems: list[str]


class Audit(Open):
    verification: Verification
    rows: list[dict[str, Any]]


class TokenBody(BaseModel):
    role: str = Field(pattern=r"^(agent|approver|admin)$")
    agent: str | None = Field(default=None, max_length=63)


class TokenMade(Open):
    token: str = Field(description="shown once: only its hash is kept")
    role: str
    agent: str | None = None


class PruneBody(BaseModel):
    older_than_s: float | None = Field(default=None, ge=0, le=100 * 365 * 86400.0,
                                       description="default: the runbook's host.retention.events")


class Pruned(Open):
    deleted: int
    before: float


def _redacted(value: dict[str, Any]) -> dict[str, Any]:
    out = redact_obj(value)
    assert isinstance(out, dict)
    return out


@router.get("/v1/audit", response_model=Audit)
def audit(who: Caller, request: Request, limit: int = Query(default=200, ge=0, le=10_000)) -> dict[str, Any]:
    """The newest audit rows and the chain's verification against its seal file (``tether audit verify``)."""
    require(who, "read")
    lr = parts.loaded(request)
    if lr is None:
        raise NotFound("this daemon has no state directory")
    return page(parts.store(request), lr.state.audit_file, limit)


@router.get("/v1/runbook")
def runbook(who: Caller, request: Request) -> dict[str, Any]:
    """The loaded runbook's agents: owner, backup, kind, scope, heartbeat, restart, approvals, budgets
    (``tether check``), without commands or secrets."""
    require(who, "read")
    lr = parts.loaded(request)
    if lr is None:
        return {"path": None, "agents": {}}
    agents = {}
    for name, a in lr.runbook.agents.items():
        agents[name] = {
            "kind": a.kind, "owner": a.owner.name, "backup": a.backup.name, "cwd": str(lr.agent_cwd(name)),
            "scope": a.scope.model_dump(mode="json"), "heartbeat": a.heartbeat.model_dump(mode="json"),
            "restart": a.restart.policy, "approvals": a.approvals.model_dump(mode="json"),
            "budgets": a.budgets.model_dump(mode="json"), "gates": sorted(a.gates), "autostart": a.autostart,
        }
    return _redacted({"path": str(lr.path), "agents": agents})


@router.post("/v1/tokens", response_model=TokenMade, status_code=201)
def make_token(body: TokenBody, who: Caller, request: Request) -> dict[str, Any]:
    """Create a token (``tether token create``); admin only. The token is in this answer and nowhere else."""
    require(who, "control")
    if body.agent is not None and body.role == "agent":
        parts.known(request, body.agent)
    token = auth.create(parts.store(request), body.role, body.agent)
    return {"token": token, "role": body.role, "agent": body.agent}


@router.get("/v1/backup", response_class=FileResponse,
            responses={200: {"content": {"application/octet-stream": {}}, "description": "a consistent copy"}})
def backup(who: Caller, request: Request) -> FileResponse:
    """A consistent copy of the store, taken now while the daemon keeps writing (``tether backup``)."""
    require(who, "control")
    root = parts.state_root(request)
    folder = tempfile.mkdtemp(prefix=".backup-", dir=root if root is not None and root.exists() else None)
    path = os.path.join(folder, "tether-backup")
    try:
        parts.store(request).backup(path)
    except BaseException:
        _remove(folder)
        raise
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    return FileResponse(path, media_type="application/octet-stream", filename=f"tether-{stamp}.backup",
                        background=BackgroundTask(_remove, folder))


def _remove(folder: str) -> None:
    import shutil

    shutil.rmtree(folder, ignore_errors=True)


@router.post("/v1/prune", response_model=Pruned)
def prune(body: PruneBody, who: Caller, request: Request) -> dict[str, Any]:
    """Delete events past the retention (``tether prune``); admin only."""
    require(who, "control")
    keep = body.older_than_s
    if keep is None:
        lr = parts.loaded(request)
        keep = lr.runbook.host.retention.events if lr is not None else 30 * 86400.0
    before = time.time() - keep
    return {"deleted": parts.store(request).prune(before), "before": before}
