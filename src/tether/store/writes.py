"""The store's writes, written once for both backends, each inside the writer's transaction: the
compare-and-sets that record an event with its projection (claiming a task, using an approval's grant) and
the row writes that are no events (a token's last use, a reader's cursor, a node's beat). ``tx.execute``
takes backend-neutral SQL (``?``). Each backend gives the transaction (``run``; ``_submit`` for a job that
also says which agents' rows it changed), how it inserts an event row (``_insert_event``) and what the
claim adds to skip a task another transaction holds (``_SKIP_HELD``: PostgreSQL's ``FOR UPDATE SKIP
LOCKED``, so two hosts never claim one task; nothing on SQLite, whose writer holds the whole file)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any

from tether.store import projections
from tether.store.base import Event, Task


class SqlWrites:
    _SKIP_HELD = ""

    #: ``run(fn)``: ``fn(tx)`` inside the writer's transaction; ``_submit(job)``: ``job(tx)`` returns
    #: ``(value, agents whose rows changed)``, and the store's listeners hear of those agents.
    run: Callable[..., Any]
    _submit: Callable[..., Any]
    task: Callable[[int], Task | None]

    def _insert_event(self, tx: Any, ts: float, agent: str | None, kind: str, data: dict[str, Any]) -> int:
        """Insert one event row (redacted, like every event) inside the writer's transaction, with no
        projection; its id."""
        raise NotImplementedError

    # -- compare-and-sets that record an event ----------------------------------------------------------
    def claim_task(self, agent: str) -> Task | None:
        """Take the agent's oldest queued task and mark it started (``task.started``), atomically."""

        def job(tx: Any) -> tuple[int | None, set[str]]:
            row = tx.execute("SELECT id, text FROM tasks WHERE agent = ? AND state = 'queued' ORDER BY id LIMIT 1"
                             + self._SKIP_HELD, (agent,)).fetchone()
            if row is None:
                return None, set()
            data = {"task_id": row[0], "text": row[1]}
            now = time.time()
            event_id = self._insert_event(tx, now, agent, "task.started", data)
            projections.apply(tx, Event(event_id, now, "task.started", agent, data))
            return int(row[0]), {agent}

        task_id: int | None = self._submit(job)
        return None if task_id is None else self.task(task_id)

    def use_approval(self, approval_id: int, agent: str, at: float, until: float | None = None) -> bool:
        """Use an approval's grant if it is still usable at ``at``, and record ``approval.used`` (audited),
        in one transaction: a compare-and-set (``projections.use_approval``). False when it is used up,
        lapsed or not approved: nothing is recorded then."""
        data = {"approval_id": approval_id, "at": at, "until": until}

        def use(tx: Any) -> bool:
            if not projections.use_approval(tx, approval_id, at, until):
                return False
            ts = time.time()
            event_id = self._insert_event(tx, ts, agent, "approval.used", data)
            projections.audit(tx, Event(event_id, ts, "approval.used", agent, data))
            return True

        used: bool = self.run(use)
        return used

    # -- row writes that are no events --------------------------------------------------------------------
    def touch_tokens(self, used: Iterable[tuple[str, float]]) -> None:
        """A token's uses do not grow the store: its row keeps the last one."""
        rows = list(used)

        def job(tx: Any) -> None:
            for token_id, at in rows:
                tx.execute("UPDATE tokens SET last_used = ? WHERE id = ? AND (last_used IS NULL OR last_used < ?)",
                           (at, token_id, at))

        self.run(job)

    def set_cursor(self, name: str, event_id: int, at: float) -> None:
        self.run(lambda tx: tx.execute(
            "INSERT INTO export_cursors (name, event_id, updated) VALUES (?, ?, ?) "
            "ON CONFLICT (name) DO UPDATE SET event_id = excluded.event_id, updated = excluded.updated",
            (name, int(event_id), at),
        ))

    def beat_node(self, name: str, at: float) -> None:
        self.run(lambda tx: tx.execute("UPDATE nodes SET last_beat = ? WHERE name = ?", (at, name)))
