"""Approvals: request → pending → approved | denied | expired, stored as events; waits are pushed.

Filled in by the approvals work (issue 4); the daemon calls ``tick`` from its monitor and serves the
router in ``tether.api.approvals``.
"""

from __future__ import annotations

import threading

from tether.store import Store


class Approvals:
    def __init__(self, store: Store) -> None:
        self.store = store
        self._changed = threading.Condition()

    def tick(self, now: float) -> float | None:
        """Expire and escalate what is due; return when the next approval deadline falls, if any."""
        return None
