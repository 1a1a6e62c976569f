"""How each event kind updates the tables an operator reads. Runs inside ``append``'s transaction.

Backend-neutral SQL with ``?`` placeholders; each backend's transaction object translates them.
A projection returns the agent whose row it changed (so its status file is rewritten), or None.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from tether import events, lifecycle
from tether.store.base import Event, NewEvent
from tether.vocabulary import VIOLATION_KINDS


class Tx(Protocol):
    def execute(self, sql: str, params: tuple[Any, ...] = ...) -> Any: ...


Projection = Callable[[Tx, Event], "str | None"]
#: Registers a projection against the event catalogue (``tether.events``): each kind declared there, once.
projection = events.project
#: Event kinds that also go into the hash-chained audit log (``tether audit verify``): the catalogue says.
AUDITED = events.AUDITED


def apply(tx: Tx, event: Event) -> str | None:
    if event.kind in AUDITED:
        _audit(tx, event)
    fn = PROJECTIONS.get(event.kind)
    return fn(tx, event) if fn is not None else None


def apply_appended(tx: Tx, events: Sequence[NewEvent], data: Sequence[str], ids: Sequence[int]) -> set[str]:
    """Project the events just inserted (``data``: each one's stored JSON, ``ids``: their ids); return the
    agents whose rows changed."""
    changed: set[str] = set()
    for i, ev in enumerate(events):
        if ev.kind in PROJECTIONS:
            agent = apply(tx, Event(ids[i], ev.ts, ev.kind, ev.agent, json.loads(data[i])))
            if agent:
                changed.add(agent)
    return changed


def audit_hash(prev: str, event_id: int, ts: float, agent: str | None, kind: str, data: str) -> str:
    """One link of the chain: SHA-256 over the previous hash and the canonical event."""
    import hashlib  # not at the top: `tether status` imports this module and starts without hashlib (~2.5 ms)

    body = json.dumps([prev, event_id, repr(ts), agent, kind, data], separators=(",", ":"))
    return hashlib.sha256(body.encode()).hexdigest()


GENESIS = "0" * 64


def _audit(tx: Tx, e: Event) -> None:
    row = tx.execute("SELECT hash FROM audit ORDER BY id DESC LIMIT 1").fetchone()
    prev = row[0] if row else GENESIS
    data = json.dumps(e.data, sort_keys=True, separators=(",", ":"))
    tx.execute(
        "INSERT INTO audit (event_id, ts, agent, kind, data, prev, hash) VALUES (?, ?, ?, ?, ?, ?, ?)",
        (e.id, e.ts, e.agent, e.kind, data, prev, audit_hash(prev, e.id, e.ts, e.agent, e.kind, data)),
    )


def _ensure_agent(tx: Tx, name: str, ts: float) -> None:
    tx.execute(
        "INSERT INTO agents (name, state, state_since, updated) VALUES (?, 'stopped', ?, ?) "
        "ON CONFLICT (name) DO NOTHING",
        (name, ts, ts),
    )


@projection("agent.registered")
def _registered(tx: Tx, e: Event) -> str | None:
    """The first node to register an agent pins it (fleet); only ``agent.pinned`` moves or releases it."""
    assert e.agent
    _ensure_agent(tx, e.agent, e.ts)
    tx.execute(
        "UPDATE agents SET info = ?, node = COALESCE(node, ?), updated = ? WHERE name = ?",
        (json.dumps(e.data.get("info", {})), e.data.get("node"), e.ts, e.agent),
    )
    return e.agent


@projection("agent.removed")
def _removed(tx: Tx, e: Event) -> str | None:
    tx.execute("DELETE FROM agents WHERE name = ?", (e.agent,))
    return None


@projection("agent.desired")
def _desired(tx: Tx, e: Event) -> str | None:
    assert e.agent
    _ensure_agent(tx, e.agent, e.ts)
    tx.execute("UPDATE agents SET desired = ?, updated = ? WHERE name = ?", (e.data["desired"], e.ts, e.agent))
    return e.agent


@projection("agent.state")
def _state(tx: Tx, e: Event) -> str | None:
    """The agent's new state, when ``lifecycle.legal`` allows the change from its row's: otherwise the row
    keeps its state (the event stays, as what was asked)."""
    assert e.agent
    row = tx.execute("SELECT state, desired FROM agents WHERE name = ?", (e.agent,)).fetchone()
    if row is None:
        _ensure_agent(tx, e.agent, e.ts)
    elif not lifecycle.legal(row[0], str(e.data.get("state")), row[1]):
        return None
    tx.execute(
        "UPDATE agents SET state = ?, reason = ?, state_since = ?, updated = ? WHERE name = ?",
        (e.data["state"], e.data.get("reason"), e.ts, e.ts, e.agent),
    )
    return e.agent


@projection("agent.started")
def _started(tx: Tx, e: Event) -> str | None:
    assert e.agent
    _ensure_agent(tx, e.agent, e.ts)
    tx.execute(
        "UPDATE agents SET state = 'running', reason = NULL, state_since = ?, pid = ?, started_at = ?, "
        "exit_code = NULL, last_heartbeat = ?, last_progress = ?, restarts = restarts + ?, updated = ? "
        "WHERE name = ?",
        (e.ts, e.data.get("pid"), e.ts, e.ts, e.ts, 1 if e.data.get("restart") else 0, e.ts, e.agent),
    )
    return e.agent


@projection("agent.exited")
def _exited(tx: Tx, e: Event) -> str | None:
    assert e.agent
    tx.execute(
        "UPDATE agents SET pid = NULL, exit_code = ?, updated = ? WHERE name = ?",
        (e.data.get("code"), e.ts, e.agent),
    )
    return e.agent


@projection("task.added")
def _task_added(tx: Tx, e: Event) -> str | None:
    assert e.agent
    tx.execute(
        "INSERT INTO tasks (id, agent, text, state, created, meta) VALUES (?, ?, ?, 'queued', ?, ?)",
        (e.id, e.agent, e.data["text"], e.ts, json.dumps(e.data.get("meta", {}))),
    )
    return e.agent


@projection("task.started")
def _task_started(tx: Tx, e: Event) -> str | None:
    assert e.agent
    tx.execute(
        "UPDATE tasks SET state = 'started', started = ? WHERE id = ?", (e.ts, e.data["task_id"])
    )
    tx.execute(
        "UPDATE agents SET task = ?, last_progress = ?, updated = ? WHERE name = ?",
        (e.data.get("text"), e.ts, e.ts, e.agent),
    )
    return e.agent


@projection("task.done", "task.failed", "task.cancelled")
def _task_finished(tx: Tx, e: Event) -> str | None:
    assert e.agent
    state = e.kind.split(".", 1)[1]
    tx.execute("UPDATE tasks SET state = ?, finished = ? WHERE id = ?", (state, e.ts, e.data["task_id"]))
    if state == "done":
        tx.execute(
            "UPDATE agents SET task = NULL, last_task = ?, last_task_at = ?, last_progress = ?, updated = ? "
            "WHERE name = ?",
            (e.data.get("text"), e.ts, e.ts, e.ts, e.agent),
        )
    else:
        tx.execute("UPDATE agents SET task = NULL, updated = ? WHERE name = ?", (e.ts, e.agent))
    return e.agent


@projection("task.requeued")
def _task_requeued(tx: Tx, e: Event) -> str | None:
    """A started task whose agent ended before finishing it is queued again (``attempts`` so far)."""
    assert e.agent
    row = tx.execute("SELECT meta FROM tasks WHERE id = ?", (e.data["task_id"],)).fetchone()
    meta = json.loads(row[0] or "{}") if row is not None else {}
    meta["attempts"] = e.data.get("attempts", meta.get("attempts", 0) + 1)
    tx.execute("UPDATE tasks SET state = 'queued', started = NULL, meta = ? WHERE id = ?",
               (json.dumps(meta), e.data["task_id"]))
    tx.execute("UPDATE agents SET task = NULL, updated = ? WHERE name = ?", (e.ts, e.agent))
    return e.agent


@projection("files.changed")
def _files(tx: Tx, e: Event) -> str | None:
    tx.execute(
        "UPDATE agents SET files_changed = files_changed + ?, updated = ? WHERE name = ?",
        (_figure(len(paths) if isinstance(paths := e.data.get("paths"), list) else 0)
         or _figure(e.data.get("count", 1), 10**9), e.ts, e.agent),
    )
    return e.agent


@projection("command.run")
def _command(tx: Tx, e: Event) -> str | None:
    tx.execute("UPDATE agents SET commands_run = commands_run + 1, updated = ? WHERE name = ?", (e.ts, e.agent))
    return e.agent


@projection("tests.reported")
def _tests(tx: Tx, e: Event) -> str | None:
    tx.execute("UPDATE agents SET tests = ?, updated = ? WHERE name = ?", (json.dumps(e.data), e.ts, e.agent))
    return e.agent


@projection("token.created")
def _token(tx: Tx, e: Event) -> str | None:
    tx.execute(
        "INSERT INTO tokens (id, hash, role, agent, created, expires) VALUES (?, ?, ?, ?, ?, ?)",
        (e.data["token_id"], e.data["hash"], e.data["role"], e.data.get("for_agent"), e.ts, e.data.get("expires")),
    )
    return None


@projection("token.revoked")
def _token_revoked(tx: Tx, e: Event) -> str | None:
    tx.execute("UPDATE tokens SET revoked = ? WHERE id = ? AND revoked IS NULL", (e.ts, e.data["token_id"]))
    return None


@projection("incident.opened")
def _incident_opened(tx: Tx, e: Event) -> str | None:
    """One open incident per (agent, kind): a flapping signal re-opens nothing while one is open."""
    tx.execute(
        "INSERT INTO incidents (id, agent, kind, state, summary, opened, data) VALUES (?, ?, ?, 'open', ?, ?, ?)",
        (e.id, e.agent, e.data["kind"], e.data.get("summary", ""), e.ts, json.dumps(e.data)),
    )
    return e.agent


@projection("incident.resolved")
def _incident_resolved(tx: Tx, e: Event) -> str | None:
    tx.execute(
        "UPDATE incidents SET state = 'resolved', resolved = ? WHERE id = ?", (e.ts, e.data["incident_id"])
    )
    return e.agent


@projection("incident.acked")
def _incident_acked(tx: Tx, e: Event) -> str | None:
    tx.execute("UPDATE incidents SET acked = ? WHERE id = ?", (e.ts, e.data["incident_id"]))
    return e.agent


def _pending_flag(tx: Tx, agent: str | None, ts: float) -> None:
    tx.execute(
        "UPDATE agents SET approval_required = (SELECT count(*) FROM approvals WHERE agent = ? AND state = 'pending'), "
        "updated = ? WHERE name = ?",
        (agent, ts, agent),
    )


@projection("approval.requested")
def _approval_requested(tx: Tx, e: Event) -> str | None:
    d = e.data
    tx.execute(
        "INSERT INTO approvals (id, agent, state, action, classes, detail, fingerprint, rule, reason, requested, "
        "expires, escalate_at, data, session, grant_window) "
        "VALUES (?, ?, 'pending', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (e.id, e.agent, d["action"], json.dumps(d.get("classes", [])), d.get("detail", ""), d["fingerprint"],
         d.get("rule", ""), d.get("reason", ""), e.ts, d.get("expires"), d.get("escalate_at"),
         json.dumps(d.get("extra", {})), d.get("session") or "", d.get("window")),
    )
    _pending_flag(tx, e.agent, e.ts)
    return e.agent


@projection("approval.decided", "approval.expired")
def _approval_decided(tx: Tx, e: Event) -> str | None:
    state = e.data.get("state", "expired")
    tx.execute(
        "UPDATE approvals SET state = ?, decided = ?, decided_by = ?, note = ?, scope = ?, grant_until = ? "
        "WHERE id = ? AND state = 'pending'",
        (state, e.ts, e.data.get("by"), e.data.get("note"), e.data.get("scope"), e.data.get("until"),
         e.data["approval_id"]),
    )
    _pending_flag(tx, e.agent, e.ts)
    return e.agent


@projection("approval.escalated")
def _approval_escalated(tx: Tx, e: Event) -> str | None:
    tx.execute("UPDATE approvals SET escalated = ? WHERE id = ?", (e.ts, e.data["approval_id"]))
    return None


def use_approval(tx: Tx, approval_id: int, at: float, until: float | None) -> bool:
    """Use an approval's grant: one conditional UPDATE (compare-and-set), so of two identical checks at the
    same moment exactly one wins, on SQLite and PostgreSQL alike. Usable: approved, its grant not lapsed at
    ``at``. A grant for ``once`` (or from before scopes) becomes ``used``; one for ``task`` lives on until
    ``until`` (its window from this use); one for ``1h`` keeps its end. True when this call used it."""
    cur = tx.execute(
        "UPDATE approvals SET uses = uses + 1, "
        "state = CASE WHEN scope IN ('task', '1h') THEN state ELSE 'used' END, "
        "grant_until = CASE WHEN scope = 'task' THEN COALESCE(?, grant_until) ELSE grant_until END "
        "WHERE id = ? AND state = 'approved' AND grant_until >= ?",
        (until, approval_id, at),
    )
    return bool(cur.rowcount == 1)


def audit(tx: Tx, event: Event) -> None:
    """Chain an event that a store method recorded itself (``Store.use_approval``) into the audit log."""
    _audit(tx, event)


@projection("approval.used")
def _approval_used(tx: Tx, e: Event) -> str | None:
    use_approval(tx, e.data["approval_id"], e.data.get("at", e.ts), e.data.get("until"))
    return None


@projection("heartbeat.rebased")
def _rebased(tx: Tx, e: Event) -> str | None:
    """The host was suspended or its clock jumped: the agent's heartbeat and progress count from now."""
    tx.execute(
        "UPDATE agents SET last_heartbeat = ?, last_progress = ?, updated = ? WHERE name = ?",
        (e.ts, e.ts, e.ts, e.agent),
    )
    return e.agent


# -- rollback (issue 8): a task's workspace at its start and end, and the rollbacks that undid it --------------


def _task_meta(tx: Tx, task_id: Any, key: str, value: Any) -> None:
    row = tx.execute("SELECT meta FROM tasks WHERE id = ?", (task_id,)).fetchone()
    if row is None:
        return
    meta = json.loads(row[0] or "{}")
    meta[key] = value
    tx.execute("UPDATE tasks SET meta = ? WHERE id = ?", (json.dumps(meta), task_id))


@projection("rollback.base")
def _rollback_base(tx: Tx, e: Event) -> str | None:
    _task_meta(tx, e.data.get("task_id"), "workspace", {k: v for k, v in e.data.items() if k != "task_id"})
    return None


@projection("rollback.end")
def _rollback_end(tx: Tx, e: Event) -> str | None:
    _task_meta(tx, e.data.get("task_id"), "workspace_end", {k: v for k, v in e.data.items() if k != "task_id"})
    return None


@projection("rollback.done")
def _rollback_done(tx: Tx, e: Event) -> str | None:
    mark = {"id": e.data.get("id"), "event": e.id, "at": e.ts, "to": e.data.get("to"),
            "quarantine": e.data.get("quarantine"), "files_changed": e.data.get("files_changed")}
    for task_id in e.data.get("tasks", []):
        _task_meta(tx, task_id, "rolled_back", mark)
    return None


# -- signals the agent reports (issue 6): usage, errors, retries, accounts touched -------------------


def _figure(value: Any, most: float = 10**12) -> int:
    """A count an agent reported, as a whole number from 0 to ``most``: anything else (negative, not a
    number, infinite) counts 0, so a figure can never lower a total or overflow a column."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return 0
    return int(min(max(value, 0), most))


def _cost(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return 0.0
    return float(min(max(value, 0.0), 10_000.0))


@projection("usage")
def _usage(tx: Tx, e: Event) -> str | None:
    """Tokens and spend per agent, UTC day and model (the budget and /metrics read this)."""
    d = e.data
    day = time.strftime("%Y-%m-%d", time.gmtime(e.ts))
    tx.execute(
        "INSERT INTO usage (agent, day, model, input_tokens, output_tokens, cache_read_tokens, cache_write_tokens, "
        "cost_usd) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (agent, day, model) DO UPDATE SET "
        "input_tokens = usage.input_tokens + excluded.input_tokens, "
        "output_tokens = usage.output_tokens + excluded.output_tokens, "
        "cache_read_tokens = usage.cache_read_tokens + excluded.cache_read_tokens, "
        "cache_write_tokens = usage.cache_write_tokens + excluded.cache_write_tokens, "
        "cost_usd = usage.cost_usd + excluded.cost_usd",
        (e.agent, day, str(d.get("model") or "unknown")[:128], _figure(d.get("input_tokens")),
         _figure(d.get("output_tokens")), _figure(d.get("cache_read_tokens")), _figure(d.get("cache_write_tokens")),
         _cost(d.get("cost_usd"))),
    )
    return e.agent


@projection("budget.reset")
def _budget_reset(tx: Tx, e: Event) -> str | None:
    """A human started the agent's daily count afresh: today's figures are counted above these."""
    d = e.data
    tx.execute(
        "INSERT INTO budget_resets (agent, day, tokens, usd, ts, by_whom) VALUES (?, ?, ?, ?, ?, ?) "
        "ON CONFLICT (agent, day) DO UPDATE SET tokens = excluded.tokens, usd = excluded.usd, ts = excluded.ts, "
        "by_whom = excluded.by_whom",
        (e.agent, str(d.get("day"))[:10], _figure(d.get("tokens"), 2**62), _cost_total(d.get("usd")), e.ts,
         str(d.get("by") or "")[:200]),
    )
    return e.agent


def _cost_total(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return 0.0
    return float(min(max(value, 0.0), 1e15))


@projection("error")
def _error(tx: Tx, e: Event) -> str | None:
    tx.execute(
        "INSERT INTO agent_errors (agent, kind, count, last) VALUES (?, ?, 1, ?) ON CONFLICT (agent, kind) "
        "DO UPDATE SET count = agent_errors.count + 1, last = excluded.last",
        (e.agent, str(e.data.get("kind") or e.data.get("error_type") or "error")[:100], e.ts),
    )
    if e.data.get("kind") == "blocked" and e.agent:  # it cannot go on: blocked (not stuck) until its next run
        tx.execute(
            "UPDATE agents SET state = 'blocked', reason = ?, state_since = ?, updated = ? WHERE name = ? "
            "AND state IN ('starting', 'running', 'idle', 'stale', 'stuck')",
            (str(e.data.get("detail") or "it reported it cannot go on")[:500], e.ts, e.ts, e.agent),
        )
    return e.agent


@projection("wall.violation")
def _violation(tx: Tx, e: Event) -> str | None:
    """A refused connection or a denied write (``wall.violations``), counted by kind (a fixed set)."""
    kind = str(e.data.get("kind"))
    if e.agent is None or kind not in VIOLATION_KINDS:
        return None
    tx.execute(
        "INSERT INTO agent_violations (agent, kind, count, last) VALUES (?, ?, 1, ?) ON CONFLICT (agent, kind) "
        "DO UPDATE SET count = agent_violations.count + 1, last = excluded.last",
        (e.agent, kind, e.ts),
    )
    return e.agent  # the status file shows the count: rewrite it


@projection("retry")
def _retry(tx: Tx, e: Event) -> str | None:
    tx.execute("UPDATE agents SET retries = retries + 1, updated = ? WHERE name = ?", (e.ts, e.agent))
    return e.agent


@projection("accounts.touched")
def _accounts(tx: Tx, e: Event) -> str | None:
    for account in e.data.get("accounts", [])[:50]:
        tx.execute(
            "INSERT INTO agent_accounts (agent, account, count, last) VALUES (?, ?, 1, ?) "
            "ON CONFLICT (agent, account) DO UPDATE SET count = agent_accounts.count + 1, last = excluded.last",
            (e.agent, str(account)[:300], e.ts),
        )
    return e.agent  # the status file shows the accounts touched: rewrite it


# -- notifications (issue 6): each message a row, each delivery attempt an event ------------------------------


@projection("notify.queued")
def _notify_queued(tx: Tx, e: Event) -> str | None:
    d = e.data
    tx.execute(
        "INSERT INTO notifications (id, thread, subject, topic, agent, recipient, channel, title, body, state, "
        "attempts, next_try, created) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 'pending', 0, ?, ?)",
        (e.id, d["thread"], d.get("subject"), d["topic"], e.agent, d["recipient"], d.get("channel", ""),
         d.get("title", ""), d.get("body", ""), e.ts, e.ts),
    )
    return None


@projection("notify.sent")
def _notify_sent(tx: Tx, e: Event) -> str | None:
    tx.execute(
        "UPDATE notifications SET state = 'sent', attempts = ?, sent = ?, next_try = NULL WHERE id = ?",
        (int(e.data.get("attempts", 1)), e.ts, e.data["notification_id"]),
    )
    return None


@projection("notify.failed")
def _notify_failed(tx: Tx, e: Event) -> str | None:
    """A failed attempt: retried at ``next_try``, or given up (``final``)."""
    final = bool(e.data.get("final"))
    tx.execute(
        "UPDATE notifications SET state = ?, attempts = ?, next_try = ?, last_error = ? WHERE id = ?",
        ("failed" if final else "pending", int(e.data.get("attempts", 1)), None if final else e.data.get("next_try"),
         str(e.data.get("error", ""))[:2000], e.data["notification_id"]),
    )
    return None


@projection("drill.result")
def _drill_result(tx: Tx, e: Event) -> str | None:
    """The newest status of each drill on the agent's row, so status shows the last drill cheaply."""
    status = e.data.get("status")
    if e.agent is None or status not in ("pass", "fail", "degraded"):
        return None
    row = tx.execute("SELECT drills FROM agents WHERE name = ?", (e.agent,)).fetchone()
    if row is None:
        return None
    drills = json.loads(row[0] or "{}")
    drills[str(e.data.get("drill"))] = {"status": status, "at": e.ts}
    tx.execute(
        "UPDATE agents SET drills = ?, last_drill_at = ?, updated = ? WHERE name = ?",
        (json.dumps(drills, sort_keys=True), e.ts, e.ts, e.agent),
    )
    return e.agent


# -- the fleet (tether.fleet): nodes and kills waiting for their node ------------------------------
@projection("node.registered")
def _node_registered(tx: Tx, e: Event) -> str | None:
    """A daemon started on a node: the node is up, beating from now."""
    d = e.data
    tx.execute(
        "INSERT INTO nodes (name, state, pid, url, started, last_beat, state_since, info) "
        "VALUES (?, 'up', ?, ?, ?, ?, ?, ?) ON CONFLICT (name) DO UPDATE SET state = 'up', pid = excluded.pid, "
        "url = excluded.url, started = excluded.started, last_beat = excluded.last_beat, "
        "state_since = excluded.state_since, info = excluded.info",
        (d["node"], d.get("pid"), d.get("url"), e.ts, e.ts, e.ts, json.dumps(d.get("info", {}))),
    )
    return None


@projection("node.lost", "node.back", "node.stopped")
def _node_state(tx: Tx, e: Event) -> str | None:
    state = {"node.lost": "lost", "node.back": "up", "node.stopped": "stopped"}[e.kind]
    tx.execute("UPDATE nodes SET state = ?, state_since = ? WHERE name = ?", (state, e.ts, e.data["node"]))
    return None


@projection("kill.requested", "control.requested")
def _kill_requested(tx: Tx, e: Event) -> str | None:
    """A kill (or resume, start, stop, restart) for an agent on another node: pending until that node's
    daemon applies it."""
    tx.execute(
        "INSERT INTO kill_requests (record_id, agent, node, reason, requested, verb) VALUES (?, ?, ?, ?, ?, ?) "
        "ON CONFLICT (record_id) DO NOTHING",
        (e.data["record_id"], e.agent, e.data["node"], e.data.get("reason"), e.ts, e.data.get("verb", "kill")),
    )
    return None


@projection("kill.applied", "control.applied")
def _kill_applied(tx: Tx, e: Event) -> str | None:
    tx.execute("UPDATE kill_requests SET applied = ?, result = ? WHERE record_id = ?",
               (e.ts, e.data.get("error"), e.data["record_id"]))
    return None


@projection("agent.pinned")
def _pinned(tx: Tx, e: Event) -> str | None:
    """An agent moved to another node (``node``) or released (``node`` null: the next to register it)."""
    tx.execute("UPDATE agents SET node = ?, updated = ? WHERE name = ?", (e.data.get("node"), e.ts, e.agent))
    return e.agent


def _audited_only(tx: Tx, e: Event) -> str | None:
    """An audited kind with no table of its own (a verdict, a kill): the store calls ``apply`` only for
    kinds in ``PROJECTIONS``, so each needs an entry, or it never reaches the audit chain."""
    return None


#: The kinds the store projects, each to its projection: derived from the catalogue once every projection
#: above is registered (an audited kind without one gets ``_audited_only``).
PROJECTIONS: dict[str, Projection] = {
    k.name: k.projection or _audited_only for k in events.KINDS.values() if k.projection or k.audited
}
