"""Who the caller is (``Caller``: its bearer token, verified) and the one role check every route makes:
``require(who, NEED, agent)``, a 403 that says what is missing.

- ``read``: approvers and admins read everything; an agent token reads what is its own agent's (when
  ``agent`` is given);
- ``act``: act for ``agent`` (heartbeats, reports, tasks, checks): its own agent token, or an admin;
- ``decide``: approve, deny, acknowledge: approvers and admins, never an agent;
- ``control``: start, stop, kill, reload, tokens, backups: admins only.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import Depends, HTTPException, Request

from tether.auth import Principal, Refused, verify

Need = Literal["read", "act", "decide", "control"]
#: What any route with a role check may answer, for its OpenAPI description.
REFUSALS: dict[int | str, dict[str, Any]] = {
    401: {"description": "no valid bearer token"},
    403: {"description": "this token's role may not do this"},
}


def allowed(who: Principal, need: Need, agent: str | None = None) -> bool:
    if need == "read":
        return who.can_read or (agent is not None and who.role == "agent" and who.agent == agent)
    if need == "act":
        return agent is not None and who.may_act_for(agent)
    if need == "decide":
        return who.role in ("approver", "admin")
    return who.role == "admin"


def require(who: Principal, need: Need, agent: str | None = None) -> None:
    if allowed(who, need, agent):
        return
    if need == "act":
        raise HTTPException(403, f"this token may not act for agent {agent!r}")
    if need == "decide":
        raise HTTPException(403, "deciding needs an approver or admin token; agents never decide")
    if need == "control":
        raise HTTPException(403, "control needs an admin token")
    raise HTTPException(403, "this token may not read that")


def principal(request: Request) -> Principal:
    """The caller, from its bearer token (401 without a valid one)."""
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise HTTPException(401, "send Authorization: Bearer <token> (create one with `tether token create`)")
    try:
        return verify(request.app.state.control.store, token.strip())
    except Refused as err:  # unknown or revoked; expired
        raise HTTPException(401, str(err)) from None


async def _caller(request: Request) -> Principal:
    """``principal`` on the event loop, not a worker thread: a token seen in the last seconds is a
    dictionary lookup, and one that is not is a single indexed read."""
    return principal(request)


Caller = Annotated[Principal, Depends(_caller)]
