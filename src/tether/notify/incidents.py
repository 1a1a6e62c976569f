"""Incidents for people: acknowledge one (the CLI, and the daemon's ``POST /v1/incidents/{id}/ack``)."""

from __future__ import annotations

from typing import Any

from tether.errors import NotFound
from tether.store.base import Store


def find(store: Store, incident_id: int) -> dict[str, Any]:
    for inc in store.incidents():
        if inc["id"] == incident_id:
            return inc
    raise NotFound(f"no incident {incident_id}; `tether incidents --all` lists them")


def ack(store: Store, incident_id: int, by: str, note: str | None = None) -> dict[str, Any]:
    """Acknowledge an incident: its backup is not paged for it. Acknowledging twice changes nothing;
    the row says when it was first acknowledged."""
    inc = find(store, incident_id)
    if inc["acked"] is None:
        store.emit("incident.acked", inc["agent"], incident_id=incident_id, by=by, note=note)
        inc = find(store, incident_id)
    return inc
