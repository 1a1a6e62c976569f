"""Approvals: request → pending → approved | denied | expired, stored as events; waits are pushed.

A decision is bound to an action fingerprint (the action, its resources, the working directory and
the content hash of any script it runs): the agent's identical retry goes through once (or within
the runbook's ``retry_window``), and a different action, or the same ``bash deploy.sh`` after
deploy.sh changed, asks again.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

from tether.classify import Resource
from tether.errors import NotFound, UsageError
from tether.store import Store

PENDING, APPROVED, DENIED, EXPIRED = "pending", "approved", "denied", "expired"


def fingerprint(agent: str, classes: Iterable[str], resources: Iterable[Resource], cwd: str, action: str) -> str:
    """The identity of an action for approval purposes."""
    scripts = {}
    res = sorted({(r.kind, r.value, r.op) for r in resources})
    for kind, value, op in res:
        if (kind == "script" or op == "exec") and os.path.isfile(value):
            try:
                with open(value, "rb") as f:
                    scripts[value] = hashlib.sha256(f.read()).hexdigest()
            except OSError:
                scripts[value] = "unreadable"
    body = json.dumps(
        {"agent": agent, "classes": sorted(set(classes)), "resources": res, "cwd": cwd, "action": action,
         "scripts": scripts},
        sort_keys=True,
    )
    return hashlib.sha256(body.encode()).hexdigest()


class Approvals:
    def __init__(self, store: Store, on_change: Callable[[], None] | None = None) -> None:
        self.store = store
        self._changed = threading.Condition()
        self._on_change = on_change
        self._transition = threading.Lock()  # decide and tick: one state change of an approval at a time
        self._closed = False

    # -- asking --------------------------------------------------------------------------------------
    def grant_for(self, agent: str, fp: str, retry_window: float, now: float | None = None) -> dict[str, Any] | None:
        """An approval for this exact action that the agent may use now: approved, not used yet, or
        used but still within the retry window. Using it is recorded."""
        now = time.time() if now is None else now
        for row in reversed(self.store.approvals(APPROVED, agent, fp)):
            decided = row["decided"] or 0
            if row["uses"] == 0 or now - decided <= retry_window:
                self.store.emit("approval.used", agent, approval_id=row["id"])
                grant: dict[str, Any] = row
                return grant
        return None

    def request(
        self,
        agent: str,
        action: str,
        fp: str,
        *,
        classes: Iterable[str],
        detail: str,
        rule: str,
        reason: str,
        timeout: float,
        escalate_after: float,
        extra: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """The pending approval for this action, made now unless one is already waiting."""
        waiting = self.store.approvals(PENDING, agent, fp)
        if waiting:
            return waiting[0]
        now = time.time()
        approval_id = self.store.emit(
            "approval.requested", agent, action=action, classes=sorted(set(classes)), detail=detail[:4000],
            fingerprint=fp, rule=rule, reason=reason, expires=now + timeout, escalate_at=now + escalate_after,
            extra=extra or {},
        )
        self._notify()
        row = self.store.approval(approval_id)
        assert row is not None
        return row

    # -- deciding ------------------------------------------------------------------------------------
    def decide(self, approval_id: int, approve: bool, by: str, note: str | None = None) -> dict[str, Any]:
        if not approve and not (note or "").strip():
            raise UsageError("a denial needs a reason (--reason)")
        with self._transition:
            row = self.store.approval(approval_id)
            if row is None:
                raise NotFound(f"no approval {approval_id}; `tether approvals` lists the pending ones")
            if row["state"] != PENDING:
                raise UsageError(f"approval {approval_id} is already {row['state']}")
            state = APPROVED if approve else DENIED
            self.store.emit("approval.decided", row["agent"], approval_id=approval_id, state=state, by=by, note=note)
        self._notify()
        notify = getattr(self.store, "notify", None)  # a fleet store: wake the waiters on every other node now
        if callable(notify):
            try:
                notify("approvals", str(approval_id))
            except Exception:  # the decision is recorded; other nodes still see it within their 5 s re-read
                pass
        got = self.store.approval(approval_id)
        assert got is not None
        return got

    def wait(self, approval_id: int, timeout: float) -> dict[str, Any]:
        """Block until the approval is decided or ``timeout`` passes; woken by the decision itself.
        A waiter also expires (and escalates) its approval when that falls due, so a waiting agent
        hears of its expiry on time whether or not anything else ticks the approvals."""
        deadline = time.monotonic() + max(0.0, timeout)
        while True:
            with self._changed:
                row = self.store.approval(approval_id)
                if row is None:
                    raise NotFound(f"no approval {approval_id}")
                left = deadline - time.monotonic()
                if row["state"] != PENDING or left <= 0 or self._closed:
                    return row
                due = [t for t in (row["expires"], None if row["escalated"] else row["escalate_at"]) if t is not None]
                until_due = min(due) - time.time() if due else None
                if until_due is None or until_due > 0:
                    self._changed.wait(min(left, 5.0, until_due if until_due is not None else 5.0))
                    continue
            self.tick(time.time())  # outside the condition: tick takes the transition lock, then notifies

    def close(self) -> None:
        """Release every waiter now (still pending): the daemon is stopping and must not wait for them."""
        self._closed = True
        self._notify()

    def _notify(self) -> None:
        with self._changed:
            self._changed.notify_all()
        if self._on_change is not None:
            self._on_change()

    # -- time ----------------------------------------------------------------------------------------
    def tick(self, now: float) -> float | None:
        """Expire and escalate what is due; return when the next approval deadline falls, if any."""
        nxt: float | None = None
        changed = False
        with self._transition:
            for row in self.store.approvals(PENDING):
                if row["expires"] is not None and row["expires"] <= now:
                    self.store.emit(
                        "approval.expired", row["agent"], approval_id=row["id"], state=EXPIRED, by="timeout",
                        note=f"no decision within the approval timeout; denied ({row['action']})",
                    )
                    changed = True
                    continue
                if row["escalated"] is None and row["escalate_at"] is not None:
                    if row["escalate_at"] <= now:
                        self.store.emit("approval.escalated", row["agent"], approval_id=row["id"], to="backup")
                        changed = True
                    else:
                        nxt = row["escalate_at"] if nxt is None else min(nxt, row["escalate_at"])
                if row["expires"] is not None:
                    nxt = row["expires"] if nxt is None else min(nxt, row["expires"])
        if changed:
            self._notify()
        return nxt
