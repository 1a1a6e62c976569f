"""What the page and API views share: the daemon's parts (``tether.api.parts``, re-exported here), its paths.
Role checks are ``tether.api.access.require``; the core's errors become HTTP answers through the one map
in ``tether.api.errors``."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from fastapi import Request

from tether import audit
from tether.api.parts import control, known, loaded, state_root, store
from tether.auth import Principal
from tether.errors import NotFound
from tether.store import Store

__all__ = ["ack_incident", "control", "host_paths", "identity", "incident", "killed", "known", "last_event_id",
           "loaded", "log_dir", "seal", "spec", "state_root", "stopping", "store"]


def host_paths(request: Request) -> list[str]:
    lr = loaded(request)
    if lr is None:
        return []
    return [str(lr.state.root), str(lr.workspace_root)]


def stopping(request: Request) -> Callable[[], bool]:
    return control(request).shutdown_requested.is_set


def log_dir(request: Request, agent: str) -> Path | None:
    lr = loaded(request)
    return None if lr is None else Path(lr.state.log_dir(agent))


def killed(request: Request, agent: str) -> bool:
    lr = loaded(request)
    if lr is None:
        return False
    ctl = control(request)
    if ctl.place.elsewhere(ctl, agent):  # another node's agent: held by that node's kill files, as it recorded
        row = store(request).agent(agent)
        return bool(row and row.get("desired") == "killed")
    return lr.state.kill_engaged(agent) is not None


def spec(request: Request, agent: str) -> Any:
    lr = loaded(request)
    return None if lr is None else lr.runbook.agents.get(agent)


def identity(who: Principal, via: str = "") -> str:
    return f"{who.role}:{who.token_id}{via}"


def seal(request: Request) -> None:
    """Append new audit rows to the seal file, as the approval endpoints do after a decision."""
    lr = loaded(request)
    if lr is None:
        return
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


def last_event_id(request: Request) -> int | None:
    """The ``Last-Event-ID`` a reconnecting event stream sends: an event id, else None."""
    value = request.headers.get("last-event-id", "")
    if value.isascii() and value.isdigit() and len(value) <= 18:  # below 2**63: the store's ids
        return int(value)
    return None
