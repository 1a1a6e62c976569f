"""What the page and API views share: the daemon's parts (with defaults for a control that lacks one),
role checks, and the errors the core raises turned into HTTP answers."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from fastapi import HTTPException, Request

from tether.auth import Principal
from tether.errors import NotFound, TetherError, UsageError
from tether.store import Store


def control(request: Request) -> Any:
    return request.app.state.control


def store(request: Request) -> Store:
    s: Store = control(request).store
    return s


def loaded(request: Request) -> Any:
    return getattr(control(request), "loaded", None)


def state_root(request: Request) -> Path | None:
    lr = loaded(request)
    return None if lr is None else Path(lr.state.root)


def host_paths(request: Request) -> list[str]:
    lr = loaded(request)
    if lr is None:
        return []
    return [str(lr.state.root), str(lr.workspace_root)]


def stopping(request: Request) -> Callable[[], bool]:
    event = getattr(control(request), "shutdown_requested", None)
    if event is None:
        return lambda: False
    return lambda: bool(event.is_set())


def log_dir(request: Request, agent: str) -> Path | None:
    lr = loaded(request)
    return None if lr is None else Path(lr.state.log_dir(agent))


def killed(request: Request, agent: str) -> bool:
    lr = loaded(request)
    if lr is None:
        return False
    ctl = control(request)
    if getattr(ctl, "bus", None) is not None and agent not in ctl.agent_names():
        row = store(request).agent(agent)  # fleet: another node's agent, held by that node's kill files
        return bool(row and row.get("desired") == "killed")
    return lr.state.kill_engaged(agent) is not None


def spec(request: Request, agent: str) -> Any:
    lr = loaded(request)
    return None if lr is None else lr.runbook.agents.get(agent)


def known(request: Request, agent: str) -> None:
    names = control(request).agent_names()
    if agent not in names and store(request).agent(agent) is None:
        raise HTTPException(404, f"no agent named {agent!r}")


# -- roles ---------------------------------------------------------------------------------------------
def reader(who: Principal, agent: str | None = None) -> None:
    """Approvers and admins read everything; an agent token only what is its own agent's."""
    if who.can_read or (agent is not None and who.role == "agent" and who.agent == agent):
        return
    raise HTTPException(403, "this token may not read that")


def decider(who: Principal) -> None:
    if who.role not in ("approver", "admin"):
        raise HTTPException(403, "deciding needs an approver or admin token; agents never decide")


def admin(who: Principal) -> None:
    if who.role != "admin":
        raise HTTPException(403, "control needs an admin token")


def identity(who: Principal, via: str = "") -> str:
    return f"{who.role}:{who.token_id}{via}"


def call(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    try:
        return fn(*args, **kwargs)
    except NotFound as err:
        raise HTTPException(404, str(err)) from None
    except (UsageError, TetherError) as err:
        raise HTTPException(409, str(err)) from None


def seal(request: Request) -> None:
    """Append new audit rows to the seal file, as the approval endpoints do after a decision."""
    lr = loaded(request)
    if lr is None:
        return
    from tether import audit

    audit.seal(store(request), lr.state.audit_file)


def ack_incident(s: Store, incident_id: int, by: str, note: str | None) -> dict[str, Any]:
    """Acknowledge an incident (idempotent: the row keeps the first acknowledgement)."""
    for inc in s.incidents():
        if inc["id"] == incident_id:
            if inc["acked"] is None:
                s.emit("incident.acked", inc["agent"], incident_id=incident_id, by=by, note=note)
                return incident(s, incident_id)
            return inc
    raise NotFound(f"no incident {incident_id}; `tether incidents --all` lists them")


def incident(s: Store, incident_id: int) -> dict[str, Any]:
    for inc in s.incidents():
        if inc["id"] == incident_id:
            return inc
    raise NotFound(f"no incident {incident_id}")
