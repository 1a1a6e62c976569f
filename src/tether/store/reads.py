"""The store's reads, written once for both backends (its writes: ``writes.py``). Each backend says how
it spells a placeholder (``PH``), a match against a list of values (``_in``) and a byte-order sort
(``_order``: SQLite sorts text by bytes; PostgreSQL by its locale unless told ``COLLATE "C"``), and
runs the query (``_read``)."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from tether.store.base import Event, Task


class SqlReads:
    PH = "?"

    def _read(self, query: str, params: Any = ()) -> list[dict[str, Any]]:
        raise NotImplementedError

    def _in(self, column: str, values: Iterable[Any], params: list[Any], kind: str = "text") -> str:
        """``column`` (of SQL type ``kind``: text or bigint) is one of ``values`` (SQLite: ``IN (?, ...)``)."""
        got = list(values)
        params.extend(got)
        return f"{column} IN ({','.join('?' * len(got))})" if got else "false"

    def _order(self, *columns: str) -> str:
        return ", ".join(columns)

    # -- events ------------------------------------------------------------------------------------
    def events(
        self, agent: str | None = None, after: int = 0, limit: int = 1000, kinds: Iterable[str] | None = None
    ) -> list[Event]:
        p = self.PH
        query, params = f"SELECT * FROM events WHERE id > {p}", list[Any]([after])
        if agent is not None:
            query += f" AND agent = {p}"
            params.append(agent)
        if kinds is not None:
            query += " AND " + self._in("kind", kinds, params)
        params.append(limit)
        return [event_row(r) for r in self._read(query + f" ORDER BY id LIMIT {p}", params)]

    def last_events(self, agent: str | None = None, limit: int = 50) -> list[Event]:
        p = self.PH
        if agent is None:
            rows = self._read(f"SELECT * FROM events ORDER BY id DESC LIMIT {p}", (limit,))
        else:
            rows = self._read(f"SELECT * FROM events WHERE agent = {p} ORDER BY id DESC LIMIT {p}", (agent, limit))
        return [event_row(r) for r in rows]

    def count_events(self) -> int:
        return int(self._read("SELECT count(*) AS n FROM events")[0]["n"])

    # -- the derived tables ------------------------------------------------------------------------
    def agents(self) -> list[dict[str, Any]]:
        return [agent_row(r) for r in self._read(f"SELECT * FROM agents ORDER BY {self._order('name')}")]

    def agent(self, name: str) -> dict[str, Any] | None:
        rows = self._read(f"SELECT * FROM agents WHERE name = {self.PH}", (name,))
        return agent_row(rows[0]) if rows else None

    def tasks(self, agent: str | None = None, states: Iterable[str] | None = None, *, text: str | None = None,
              limit: int | None = None) -> list[Task]:
        query, params = "SELECT * FROM tasks WHERE 1=1", list[Any]()
        if agent is not None:
            query += f" AND agent = {self.PH}"
            params.append(agent)
        if states is not None:
            query += " AND " + self._in("state", states, params)
        if text is not None:
            query += f" AND text = {self.PH}"
            params.append(text)
        if limit is None:
            return [task_row(r) for r in self._read(query + " ORDER BY id", params)]
        params.append(max(0, int(limit)))
        rows = self._read(query + f" ORDER BY id DESC LIMIT {self.PH}", params)
        return [task_row(r) for r in reversed(rows)]

    def queues(self, agent: str | None = None) -> dict[str, tuple[int, float]]:
        query, params = "SELECT agent, COUNT(*) AS n, MIN(created) AS oldest FROM tasks WHERE state = 'queued'", []
        if agent is not None:
            query += f" AND agent = {self.PH}"
            params.append(agent)
        rows = self._read(query + " GROUP BY agent", tuple(params))
        return {r["agent"]: (int(r["n"]), float(r["oldest"])) for r in rows}

    def task(self, task_id: int) -> Task | None:
        rows = self._read(f"SELECT * FROM tasks WHERE id = {self.PH}", (task_id,))
        return task_row(rows[0]) if rows else None

    def last_heartbeat(self) -> float | None:
        rows = self._read("SELECT max(last_heartbeat) AS at FROM agents")
        at = rows[0]["at"] if rows else None
        return float(at) if at is not None else None

    def budget_reset(self, agent: str, day: str) -> dict[str, Any] | None:
        rows = self._read(f"SELECT * FROM budget_resets WHERE agent = {self.PH} AND day = {self.PH}", (agent, day))
        return rows[0] if rows else None

    def token(self, token_hash: str) -> dict[str, Any] | None:
        rows = self._read(f"SELECT * FROM tokens WHERE hash = {self.PH} AND revoked IS NULL", (token_hash,))
        return rows[0] if rows else None

    def tokens(self) -> list[dict[str, Any]]:
        return self._read("SELECT id, role, agent, created, expires, last_used, revoked FROM tokens "
                          "ORDER BY created, id")

    def revoked_tokens(self) -> int:
        return int(self._read("SELECT count(revoked) AS n FROM tokens")[0]["n"])

    def incidents(self, state: str | None = None, agent: str | None = None, *,
                  limit: int | None = None) -> list[dict[str, Any]]:
        return [incident_row(r) for r in self._oldest_first("incidents", {"state": state, "agent": agent}, limit)]

    def approvals(
        self, state: str | None = None, agent: str | None = None, fingerprint: str | None = None,
        *, limit: int | None = None
    ) -> list[dict[str, Any]]:
        where = {"state": state, "agent": agent, "fingerprint": fingerprint}
        return [approval_row(r) for r in self._oldest_first("approvals", where, limit)]

    def _oldest_first(self, table: str, where: dict[str, Any], limit: int | None) -> list[dict[str, Any]]:
        """Rows of ``table`` whose columns equal ``where``'s values (None: any), oldest first; with ``limit``, only
        the newest that many, read newest first: an index walk that stops at the limit."""
        query, params = f"SELECT * FROM {table} WHERE 1=1", list[Any]()
        for column, value in where.items():
            if value is not None:
                query += f" AND {column} = {self.PH}"
                params.append(value)
        if limit is None:
            return self._read(query + " ORDER BY id", params)
        params.append(max(0, int(limit)))
        return list(reversed(self._read(query + f" ORDER BY id DESC LIMIT {self.PH}", params)))

    def approval(self, approval_id: int) -> dict[str, Any] | None:
        rows = self._read(f"SELECT * FROM approvals WHERE id = {self.PH}", (approval_id,))
        return approval_row(rows[0]) if rows else None

    def audit_rows(self, after: int = 0) -> list[dict[str, Any]]:
        return self._read(f"SELECT * FROM audit WHERE id > {self.PH} ORDER BY id", (after,))

    def usage(self, agent: str | None = None, since_day: str | None = None) -> list[dict[str, Any]]:
        query, params = "SELECT * FROM usage WHERE 1=1", list[Any]()
        if agent is not None:
            query += f" AND agent = {self.PH}"
            params.append(agent)
        if since_day is not None:
            query += f" AND day >= {self.PH}"
            params.append(since_day)
        return self._read(query + " ORDER BY " + self._order("agent", "day", "model"), params)

    def signal_counts(self, table: str) -> list[dict[str, Any]]:
        """``agent_errors`` or ``agent_violations`` (by kind) or ``agent_accounts`` (by account), per agent."""
        if table not in ("agent_errors", "agent_accounts", "agent_violations"):
            raise ValueError(table)
        second = "account" if table == "agent_accounts" else "kind"
        return self._read(f"SELECT * FROM {table} ORDER BY {self._order('agent', second)}")


    # -- bookkeeping: readers' cursors, the notifier's outbox -------------------------------------------
    def cursor(self, name: str) -> int | None:
        rows = self._read(f"SELECT event_id FROM export_cursors WHERE name = {self.PH}", (name,))
        return int(rows[0]["event_id"]) if rows else None

    def cursors(self) -> dict[str, int]:
        return {str(r["name"]): int(r["event_id"]) for r in self._read("SELECT name, event_id FROM export_cursors")}

    def notifications(self, thread: str | None = None, state: str | None = None,
                      limit: int | None = None) -> list[dict[str, Any]]:
        query, params = "SELECT * FROM notifications WHERE 1=1", list[Any]()
        for column, value in (("thread", thread), ("state", state)):
            if value is not None:
                query += f" AND {column} = {self.PH}"
                params.append(value)
        if limit is None:
            return self._read(query + " ORDER BY id", params)
        params.append(int(limit))
        return self._read(query + f" ORDER BY id LIMIT {self.PH}", params)

    def due_notifications(self, now: float, limit: int = 20) -> list[dict[str, Any]]:
        return self._read(f"SELECT * FROM notifications WHERE state = 'pending' AND next_try <= {self.PH} "
                          f"ORDER BY next_try, id LIMIT {self.PH}", (now, int(limit)))

    def next_notification_due(self) -> float | None:
        at = self._read("SELECT min(next_try) AS at FROM notifications WHERE state = 'pending'")[0]["at"]
        return None if at is None else float(at)

    def announced_resolutions(self, incident_ids: Iterable[int]) -> set[int]:
        ids = [int(i) for i in incident_ids]
        if not ids:
            return set()
        params: list[Any] = []
        match = self._in("subject", ids, params, "bigint")
        rows = self._read(f"SELECT DISTINCT subject FROM notifications WHERE topic = 'incident.resolved' AND {match}",
                          params)
        return {int(r["subject"]) for r in rows}

    def unfinished_threads(self) -> list[int]:
        rows = self._read(
            "SELECT DISTINCT subject FROM notifications WHERE topic = 'incident.opened' AND thread NOT IN "
            "(SELECT thread FROM notifications WHERE topic = 'incident.resolved')")
        return [int(r["subject"]) for r in rows if r["subject"] is not None]

    def incident(self, incident_id: int) -> dict[str, Any] | None:
        rows = self._read(f"SELECT * FROM incidents WHERE id = {self.PH}", (int(incident_id),))
        return incident_row(rows[0]) if rows else None

    def recent_incidents(self, agent: str | None, kind: str, limit: int = 50) -> list[dict[str, Any]]:
        p = self.PH
        if agent is None:
            query, params = f"SELECT * FROM incidents WHERE agent IS NULL AND kind = {p}", list[Any]([kind])
        else:
            query, params = f"SELECT * FROM incidents WHERE agent = {p} AND kind = {p}", list[Any]([agent, kind])
        params.append(int(limit))
        return [incident_row(r) for r in self._read(query + f" ORDER BY id DESC LIMIT {p}", params)]

    # -- the fleet ---------------------------------------------------------------------------------------
    def nodes(self) -> list[dict[str, Any]]:
        rows = self._read("SELECT * FROM nodes ORDER BY name")
        for r in rows:
            r["info"] = json.loads(r["info"] or "{}")
        return rows

    def pending_requests(self, node: str | None = None) -> list[dict[str, Any]]:
        if node is None:
            return self._read("SELECT * FROM kill_requests WHERE applied IS NULL ORDER BY requested")
        return self._read(f"SELECT * FROM kill_requests WHERE applied IS NULL AND node = {self.PH} "
                          "ORDER BY requested", (node,))

    def fleet_request(self, record_id: str) -> dict[str, Any] | None:
        rows = self._read(f"SELECT * FROM kill_requests WHERE record_id = {self.PH}", (record_id,))
        return rows[0] if rows else None


def event_row(row: dict[str, Any]) -> Event:
    return Event(row["id"], row["ts"], row["kind"], row["agent"], json.loads(row["data"]), row["node"])


def agent_row(row: dict[str, Any]) -> dict[str, Any]:
    row["info"] = json.loads(row.get("info") or "{}")
    row["tests"] = json.loads(row["tests"]) if row.get("tests") else None
    return row


def incident_row(row: dict[str, Any]) -> dict[str, Any]:
    row["data"] = json.loads(row["data"] or "{}")
    return row


def approval_row(row: dict[str, Any]) -> dict[str, Any]:
    row["classes"] = json.loads(row["classes"] or "[]")
    row["data"] = json.loads(row["data"] or "{}")
    return row


def task_row(row: dict[str, Any]) -> Task:
    return Task(row["id"], row["agent"], row["text"], row["state"], row["created"], row["started"],
                row["finished"], json.loads(row["meta"] or "{}"))
