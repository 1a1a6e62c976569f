"""Approvals: request → pending → approved | denied | expired, stored as events; waits are pushed.

A decision is bound to the exact action: its fingerprint (agent, classes, resources, command, working
directory, and the content of every script it runs; a project definition such as package.json or a
Makefile is a script resource ``PATH@sha256:DIGEST`` from the classifier) and the session or task that
asked (a Claude Code / Codex session id, an SDK task id, else the agent's current run). An approval grants:

- ``once`` (the default): one use, by that session or task;
- ``task``: every identical call of that session or task, lapsing after ``retry_window`` without a use;
- ``1h``: every identical call of that session or task for one hour from the decision.

A grant nobody uses lapses ``retry_window`` (runbook, default 10 min) after the decision; a use is a
compare-and-set in the store (``Store.use_approval``), so two identical checks at the same moment never
share a ``once``. A denial answers the identical action at once, from any session of the agent, with
``denied by NAME: REASON`` for the approval's own timeout after the decision; after that it asks again.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
import threading
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from tether.errors import NotFound, UsageError
from tether.store import NewEvent, Store

if TYPE_CHECKING:  # the classifier stays out of what lists approvals (``tether top``, the dashboard's views)
    from tether.classify import Resource

PENDING, APPROVED, DENIED, EXPIRED, USED = "pending", "approved", "denied", "expired", "used"
SCOPES = {"once": "this call, once", "task": "this session or task", "1h": "one hour"}
HOUR = 3600.0
DEFAULT_WINDOW = 600.0  # the runbook's approvals.retry_window default
MAX_HASHED = 16 << 20  # bytes of a script hashed; a longer file adds its size and mtime
#: Approvals one agent may have waiting at once; further asks are refused without asking (and an incident says so).
MAX_PENDING = 50


class TooManyPending(UsageError):
    """The agent already has ``MAX_PENDING`` approvals waiting for a human."""


def session_key(session: str | None = None, task: str | int | None = None, run: float | None = None) -> str:
    """Who a grant belongs to: the session, else the task, else the agent's run, else nobody in particular."""
    if session:
        return f"session:{session}"[:300]
    if task is not None and task != "":
        return f"task:{task}"[:300]
    return f"run:{run!r}" if run else ""


def _digest(path: str) -> str | None:
    """SHA-256 of a regular file's content (its first MAX_HASHED bytes, then size and mtime); None if none."""
    try:
        st = os.stat(path)
    except (OSError, ValueError):
        return None
    if not stat.S_ISREG(st.st_mode):
        return None
    try:
        h = hashlib.sha256()
        with open(path, "rb") as f:
            left = MAX_HASHED
            while left > 0 and (chunk := f.read(min(1 << 20, left))):
                h.update(chunk)
                left -= len(chunk)
    except OSError:
        return f"unreadable:{st.st_size}:{st.st_mtime_ns}"
    return h.hexdigest() + ("" if st.st_size <= MAX_HASHED else f"+{st.st_size}:{st.st_mtime_ns}")


def fingerprint(agent: str, classes: Iterable[str], resources: Iterable[Resource], cwd: str, action: str) -> str:
    """The identity of an action for approval purposes (the session is kept beside it, not in it)."""
    res = sorted({(r.kind, r.value, r.op) for r in resources})
    scripts = {value: got for kind, value, op in res
               if (kind == "script" or op == "exec") and (got := _digest(value)) is not None}
    body = json.dumps(
        {"agent": agent, "classes": sorted(set(classes)), "resources": res, "cwd": cwd, "action": action,
         "scripts": scripts},
        sort_keys=True,
    )
    return hashlib.sha256(body.encode()).hexdigest()


def denied_line(row: dict[str, Any]) -> str:
    """``denied by NAME: REASON``: what the agent is told of a human's denial."""
    return f"denied by {row['decided_by'] or 'a human'}: {row['note'] or 'no reason given'}"


def approved_line(row: dict[str, Any]) -> str:
    return f"approved by {row['decided_by']} (approval {row['id']}, {row.get('scope') or 'once'})"


def grant_line(row: dict[str, Any], now: float) -> str:
    """What an approval grants now, for lists and pages: ``pending``, ``approved for once until ...``,
    ``approved, lapsed unused``, ``used``, ``denied``, ``expired``."""
    state = row["state"]
    if state != APPROVED:
        return str(state)
    until = row.get("grant_until")
    if until is None or until < now:
        return "approved, lapsed" + (" unused" if not row.get("uses") else "")
    left = max(0, int(until - now))
    return f"approved for {row.get('scope') or 'once'}, {row.get('uses') or 0} use(s), {left}s left"


class Approvals:
    def __init__(self, store: Store, on_change: Callable[[], None] | None = None) -> None:
        self.store = store
        self._changed = threading.Condition()
        self._on_change = on_change
        self._transition = threading.Lock()  # decide and tick: one state change of an approval at a time
        self._asking = threading.Lock()  # one pending approval per action and session
        self._closed = False
        self._listeners: list[Callable[[], None]] = []

    def listen(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` (quick, never raising) after every change: a request, a decision, an expiry."""
        self._listeners.append(callback)

    # -- asking --------------------------------------------------------------------------------------
    def grant_for(self, agent: str, fp: str, session: str = "", now: float | None = None) -> dict[str, Any] | None:
        """Use a grant for this exact action by this session or task, if one is open (a compare-and-set:
        of two identical checks at once, one gets a ``once`` grant). Its use is recorded."""
        now = time.time() if now is None else now
        for row in reversed(self.store.approvals(APPROVED, agent, fp)):
            if row["session"] == session and (row["grant_until"] or 0) >= now and self.use(row, now):
                grant: dict[str, Any] = row
                return grant
        return None

    def use(self, row: dict[str, Any], at: float | None = None) -> bool:
        """Use this approval's grant now (or as of ``at``): True if this call got it."""
        at = time.time() if at is None else at
        window = row["grant_window"] if row.get("grant_window") is not None else DEFAULT_WINDOW
        return self.store.use_approval(row["id"], row["agent"], at, at + window)

    def denial(self, agent: str, fp: str, now: float | None = None) -> dict[str, Any] | None:
        """A human's denial of this exact action, by any session of the agent, still in force: for the
        approval's own timeout after the decision."""
        now = time.time() if now is None else now
        for row in reversed(self.store.approvals(DENIED, agent, fp)):
            timeout = (row["expires"] or row["requested"]) - row["requested"]
            if (row["decided"] or 0) + timeout > now:
                found: dict[str, Any] = row
                return found
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
        session: str = "",
        window: float = DEFAULT_WINDOW,
        extra: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """The pending approval for this action and session, made now unless one is already waiting.
        ``window``: how long its grant lives unused after the decision (the runbook's ``retry_window``)."""
        with self._asking:
            same = self.store.approvals(PENDING, agent, fp)
            waiting = [r for r in same if r["session"] == session]
            if waiting:
                return waiting[0]
            if session.startswith("run:"):  # an earlier run of this agent asked the same: that run has ended
                ended = [r for r in same if r["session"].startswith("run:")]
                if ended:
                    self.store.append([NewEvent("approval.expired", agent, {
                        "approval_id": r["id"], "state": EXPIRED, "by": "superseded",
                        "note": "the run that asked has ended; its next run asks again"}) for r in ended])
            pending = len(self.store.approvals(PENDING, agent))
            if pending >= MAX_PENDING:  # an agent cannot bury its humans (or the daemon) under asks
                self._flood(agent, pending)
                raise TooManyPending(
                    f"{pending} approvals of {agent} already wait for a human (at most {MAX_PENDING}): refused "
                    "without asking; decide or deny the waiting ones first")
            now = time.time()
            approval_id = self.store.emit(
                "approval.requested", agent, action=action, classes=sorted(set(classes)), detail=detail[:4000],
                fingerprint=fp, rule=rule, reason=reason, expires=now + timeout, escalate_at=now + escalate_after,
                session=session, window=window, extra=extra or {},
            )
        self._notify()
        row = self.store.approval(approval_id)
        assert row is not None
        return row

    def _flood(self, agent: str, pending: int) -> None:
        """One open ``approvals.flood`` incident per agent while it is refused asks."""
        if not any(i["kind"] == "approvals.flood" for i in self.store.incidents("open", agent)):
            self.store.emit("incident.opened", agent, kind="approvals.flood",
                            summary=f"{agent}: {pending} approvals wait for a human; its further asks are refused")

    # -- deciding ------------------------------------------------------------------------------------
    def decide(
        self, approval_id: int, approve: bool, by: str, note: str | None = None, scope: str = "once",
        via: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Approve (for ``scope``: once, task or 1h) or deny (with a reason) a pending approval. ``via``: how
        the decision came (a phone channel: its name and the person), recorded with it in the audit chain."""
        if not approve and not (note or "").strip():
            raise UsageError("a denial needs a reason (--reason)")
        if scope not in SCOPES:
            raise UsageError(f"an approval is for once, task or 1h, not {scope!r}")
        with self._transition:
            row = self.store.approval(approval_id)
            if row is None:
                raise NotFound(f"no approval {approval_id}; `tether approvals` lists the pending ones")
            if row["state"] != PENDING:
                state = "approved and used" if row["state"] == USED else row["state"]
                raise UsageError(f"approval {approval_id} is already {state}")
            now = time.time()  # the decision's time: a waiter uses the grant as of then (``use(row, decided)``)
            data: dict[str, Any] = {"approval_id": approval_id, "state": APPROVED if approve else DENIED,
                                    "by": by, "note": note, **({"via": via} if via else {})}
            if approve:
                window = row["grant_window"] if row.get("grant_window") is not None else DEFAULT_WINDOW
                data.update(scope=scope, until=now + (HOUR if scope == "1h" else window))
            self.store.append([NewEvent("approval.decided", row["agent"], data, now)])
        self._notify()
        try:  # a fleet store: wake the waiters on every other node now (alone: nobody else to tell)
            self.store.notify("approvals", str(approval_id))
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
        for listener in list(self._listeners):
            listener()

    # -- time ----------------------------------------------------------------------------------------
    def tick(self, now: float) -> float | None:
        """Expire and escalate what is due; return when the next approval deadline falls, if any."""
        nxt: float | None = None
        changed = False
        with self._transition:
            due: list[NewEvent] = []  # every expiry and escalation of this pass in one write (one fsync)
            for row in self.store.approvals(PENDING):
                if row["expires"] is not None and row["expires"] <= now:
                    due.append(NewEvent("approval.expired", row["agent"], {
                        "approval_id": row["id"], "state": EXPIRED, "by": "timeout",
                        "note": f"no decision within the approval timeout; denied ({row['action']})"}))
                    continue
                if row["escalated"] is None and row["escalate_at"] is not None:
                    if row["escalate_at"] <= now:
                        due.append(NewEvent("approval.escalated", row["agent"],
                                            {"approval_id": row["id"], "to": "backup"}))
                    else:
                        nxt = row["escalate_at"] if nxt is None else min(nxt, row["escalate_at"])
                if row["expires"] is not None:
                    nxt = row["expires"] if nxt is None else min(nxt, row["expires"])
            if due:
                self.store.append(due)
                changed = True
        if changed:
            self._notify()
        return nxt
