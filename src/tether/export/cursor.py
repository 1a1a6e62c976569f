"""How far a reader of the event log (an exporter, the notifier) has got, kept in the store.

A cursor is bookkeeping, not a state change: it is written straight into ``export_cursors`` (like a
heartbeat, it would only grow the log as an event). Readers deliver at least once: a cursor is saved
after what it covers was delivered, so a crash in between sends those events again, never skips them.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar, cast

from tether.errors import StoreError
from tether.store.base import Store

T = TypeVar("T")


def run(store: Store, fn: Callable[[Any], T]) -> T:
    """``fn(tx)`` in the store's writer transaction; ``tx.execute`` takes backend-neutral SQL (``?``) and
    returns a cursor of plain tuples. Both backends have it; the contract does not (yet)."""
    runner = getattr(store, "run", None)
    if runner is None:
        raise StoreError(f"{type(store).__name__} cannot run statements for notifications and exports")
    return cast(T, runner(fn))


class Cursors:
    def __init__(self, store: Store) -> None:
        self.store = store

    def get(self, name: str) -> int | None:
        """The last event id ``name`` has handled, or None if it never saved one."""
        row = run(self.store, lambda tx: tx.execute("SELECT event_id FROM export_cursors WHERE name = ?",
                                                    (name,)).fetchone())
        return None if row is None else int(row[0])

    def set(self, name: str, event_id: int, now: float | None = None) -> None:
        at = time.time() if now is None else now
        run(self.store, lambda tx: tx.execute(
            "INSERT INTO export_cursors (name, event_id, updated) VALUES (?, ?, ?) "
            "ON CONFLICT (name) DO UPDATE SET event_id = excluded.event_id, updated = excluded.updated",
            (name, int(event_id), at),
        ))

    def all(self) -> dict[str, int]:
        rows = run(self.store, lambda tx: tx.execute("SELECT name, event_id FROM export_cursors").fetchall())
        return {str(r[0]): int(r[1]) for r in rows}
