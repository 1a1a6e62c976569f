"""The notifier's reads of the ``notifications`` and ``incidents`` tables (its writes are events).

Backend-neutral SQL through the store's writer (``export.cursor.run``): rows are plain tuples there,
so each query names its columns and this module turns them into dicts.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from tether.export.cursor import run
from tether.store.base import Store

NOTIFICATION = ("id", "thread", "subject", "topic", "agent", "recipient", "channel", "title", "body", "state",
                "attempts", "next_try", "last_error", "created", "sent")
INCIDENT = ("id", "agent", "kind", "state", "summary", "opened", "resolved", "acked")


def _select(
    store: Store, cols: tuple[str, ...], table: str, where: str, params: tuple[Any, ...]
) -> list[dict[str, Any]]:
    sql = f"SELECT {', '.join(cols)} FROM {table} {where}"
    got = run(store, lambda tx: tx.execute(sql, params).fetchall())
    return [dict(zip(cols, row, strict=True)) for row in got]


def thread(store: Store, name: str) -> list[dict[str, Any]]:
    return _select(store, NOTIFICATION, "notifications", "WHERE thread = ? ORDER BY id", (name,))


def notifications(store: Store, thread: str | None = None, state: str | None = None,
                  limit: int = 1000) -> list[dict[str, Any]]:
    where, params = "WHERE 1=1", []
    if thread is not None:
        where += " AND thread = ?"
        params.append(thread)
    if state is not None:
        where += " AND state = ?"
        params.append(state)
    return _select(store, NOTIFICATION, "notifications", f"{where} ORDER BY id LIMIT {int(limit)}", tuple(params))


def due(store: Store, now: float, limit: int = 20) -> list[dict[str, Any]]:
    return _select(store, NOTIFICATION, "notifications",
                   f"WHERE state = 'pending' AND next_try <= ? ORDER BY next_try, id LIMIT {int(limit)}", (now,))


def next_due(store: Store) -> float | None:
    row = run(store, lambda tx: tx.execute(
        "SELECT min(next_try) FROM notifications WHERE state = 'pending'").fetchone())
    return None if row is None or row[0] is None else float(row[0])


def resolved_announced(store: Store, incident_ids: Iterable[int]) -> set[int]:
    """Which of these incidents' resolutions were announced (a thread ends with that)."""
    ids = [int(i) for i in incident_ids]
    if not ids:
        return set()
    marks = ", ".join("?" for _ in ids)
    rows = run(store, lambda tx: tx.execute(
        f"SELECT DISTINCT subject FROM notifications WHERE topic = 'incident.resolved' AND subject IN ({marks})",
        tuple(ids)).fetchall())
    return {int(r[0]) for r in rows}


def unfinished_threads(store: Store) -> list[int]:
    """Incident threads that told someone and have not said "resolved" yet: their root incident ids."""
    rows = run(store, lambda tx: tx.execute(
        "SELECT DISTINCT subject FROM notifications WHERE topic = 'incident.opened' AND thread NOT IN "
        "(SELECT thread FROM notifications WHERE topic = 'incident.resolved')").fetchall())
    return [int(r[0]) for r in rows if r[0] is not None]


def incident(store: Store, incident_id: int) -> dict[str, Any] | None:
    got = _select(store, INCIDENT, "incidents", "WHERE id = ?", (int(incident_id),))
    return got[0] if got else None


def recent_incidents(store: Store, agent: str | None, kind: str, limit: int = 50) -> list[dict[str, Any]]:
    """The newest incidents of one kind for one agent (or the host), newest first."""
    if agent is None:
        return _select(store, INCIDENT, "incidents",
                       f"WHERE agent IS NULL AND kind = ? ORDER BY id DESC LIMIT {int(limit)}", (kind,))
    return _select(store, INCIDENT, "incidents",
                   f"WHERE agent = ? AND kind = ? ORDER BY id DESC LIMIT {int(limit)}", (agent, kind))
