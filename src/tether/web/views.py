"""What the dashboard pages, their JSON twins and ``tether top`` show, built from the store as of one
``now``. Plain dicts of JSON-able values (secrets redacted), so a page, an API answer and the terminal
view are the same data. Reads only indexed rows (agents, tasks, usage, approvals, incidents, the newest
events): the overview's cost does not grow with the event log."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from tether import audit
from tether.approvals import grant_line
from tether.events.words import age as age
from tether.events.words import count as count
from tether.events.words import line as event_line
from tether.events.words import money as money
from tether.fleet.seam import seen
from tether.notify import health as channel_health
from tether.process.logs import read_logs
from tether.redact import redact, redact_obj
from tether.signals import host_signals
from tether.status_file import age as elapsed
from tether.status_report import report
from tether.store import Event, Store

GOOD = frozenset({"running", "idle", "starting"})
BAD = frozenset({"stuck", "crashloop", "killed", "blocked"})
#: How many of an agent's newest events its page reads for the timeline, files and commands.
AGENT_EVENTS = 1000
TIMELINE = 100
USAGE_DAYS = 14
TASKS_SHOWN = 100  # the newest tasks on an agent's page (an agent can add tasks without end)


def tone(state: str | None) -> str:
    """The CSS tone of an agent state: ok, warn or bad."""
    if state in GOOD:
        return "ok"
    if state in BAD:
        return "bad"
    return "warn"


# -- formatting (Jinja filters and the terminal view) ------------------------------------------------
def clock(ts: float | None) -> str:
    """UTC time of day for today's stamps, the date too for older ones."""
    if not ts:
        return "—"
    if time.gmtime(ts)[:3] == time.gmtime()[:3]:
        return time.strftime("%H:%M:%S", time.gmtime(ts))
    return time.strftime("%Y-%m-%d %H:%M", time.gmtime(ts))


def iso(ts: float | None) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts)) if ts else ""


def size(n: float | None) -> str:
    if n is None:
        return "—"
    value = float(n)
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if abs(value) < 1024 or unit == "TB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} PB"


# -- the host ------------------------------------------------------------------------------------------
_net_lock = threading.Lock()
_net_last: tuple[float, int, int] | None = None


def network(now: float) -> dict[str, Any]:
    """Bytes sent and received since boot, and the rate since the previous call (any caller)."""
    global _net_last
    import psutil

    try:
        c = psutil.net_io_counters()
    except (OSError, RuntimeError):
        return {"bytes_sent": None, "bytes_recv": None, "sent_per_s": None, "recv_per_s": None}
    sent, recv = int(c.bytes_sent), int(c.bytes_recv)
    with _net_lock:
        last, _net_last = _net_last, (now, sent, recv)
    rate_s = rate_r = None
    if last is not None and now - last[0] >= 0.5:
        rate_s = max(0.0, (sent - last[1]) / (now - last[0]))
        rate_r = max(0.0, (recv - last[2]) / (now - last[0]))
    return {"bytes_sent": sent, "bytes_recv": recv, "sent_per_s": rate_s, "recv_per_s": rate_r}


def host(paths: Iterable[str], started: float | None, now: float, probes: Iterable[Any] = ()) -> dict[str, Any]:
    sig = host_signals(paths, started, now)
    disks: dict[tuple[int, int], dict[str, Any]] = {}
    for p, d in sig["disk"].items():  # folders on one file system are one disk
        key = (d["total_bytes"], d["used_bytes"])
        if key in disks:
            disks[key]["path"] += f", {p}"
        else:
            disks[key] = {"path": p, **d}
    return {
        "uptime_s": sig["host_uptime_s"],
        "daemon_uptime_s": sig["daemon_uptime_s"],
        "disk": list(disks.values()),
        "network": network(now),
        "probes": [{"target": p.target, "up": p.up, "latency_s": p.latency_s, "detail": p.detail} for p in probes],
        "name": os.uname().nodename,
    }


# -- the overview --------------------------------------------------------------------------------------
def _today(now: float) -> str:
    return time.strftime("%Y-%m-%d", time.gmtime(now))


def agents_overview(store: Store, now: float) -> tuple[list[dict[str, Any]], list[dict[str, Any]],
                                                        list[dict[str, Any]]]:
    """Every agent's overview row, the pending approvals and the open incidents."""
    docs = report(store, now=now)
    pending = store.approvals("pending")
    incidents = store.incidents("open")
    waiting: dict[str, dict[str, Any]] = {}
    for a in pending:
        waiting.setdefault(a["agent"], a)
    spend: dict[str, float] = {}
    tokens: dict[str, int] = {}
    for u in store.usage(since_day=_today(now)):
        if u["day"] != _today(now):
            continue
        spend[u["agent"]] = spend.get(u["agent"], 0.0) + float(u["cost_usd"] or 0)
        tokens[u["agent"]] = tokens.get(u["agent"], 0) + sum(
            int(u[k] or 0) for k in ("input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens")
        )
    errors: dict[str, int] = {}
    blocked_at: dict[str, float] = {}
    for e in store.signal_counts("agent_errors"):
        errors[e["agent"]] = errors.get(e["agent"], 0) + int(e["count"] or 0)
        if e["kind"] == "blocked" and e["last"]:
            blocked_at[e["agent"]] = float(e["last"])
    open_by_agent: dict[str, int] = {}
    for inc in incidents:
        if inc["agent"]:
            open_by_agent[inc["agent"]] = open_by_agent.get(inc["agent"], 0) + 1
    rows = []
    for d in docs:
        name = d["agent"]
        state = d["state"]
        blocked = None
        ask = waiting.get(name)
        if ask is not None:
            blocked = f"waiting for approval #{ask['id']}: {ask['action']}"
        elif state not in GOOD and d.get("reason"):
            blocked = str(d["reason"])
        elif name in blocked_at and now - blocked_at[name] < 3600:
            blocked = f"an action was blocked {age(now - blocked_at[name])} ago"
        rows.append({
            "name": name,
            "state": state,
            "tone": tone(state),
            "reason": d.get("reason"),
            "heartbeat_age_s": d.get("heartbeat_age_s"),
            "task": d.get("task"),
            "progress": d.get("progress"),
            "queue_depth": d.get("queue_depth", 0),
            "queue_age_s": d.get("queue_age_s"),
            "blocked": blocked,
            "approval_id": ask["id"] if ask is not None else None,
            "spend_today_usd": round(spend.get(name, 0.0), 6),
            "spend_note": d.get("spend_note"),  # "unpriced model NAME": tokens with no cost, never "$0"
            "tokens_today": tokens.get(name, 0),
            "errors": errors.get(name, 0),
            "restarts": d.get("restarts", 0),
            "incidents": open_by_agent.get(name, 0),
            "pid": d.get("pid"),
            "desired": d.get("desired"),
            "node": d.get("node"),  # the node it is pinned to (None alone)
        })
    return rows, pending, incidents


def channel_line(c: dict[str, Any], now: float) -> str:
    return channel_health.line(c, now).removeprefix("channel ")


def overview(
    store: Store, *, paths: Iterable[str] = (), started: float | None = None, probes: Iterable[Any] = (),
    now: float | None = None, recent: int = 15, channels: Iterable[dict[str, Any]] = (),
) -> dict[str, Any]:
    now = time.time() if now is None else now
    rows, pending, incidents = agents_overview(store, now)
    states: dict[str, int] = {}
    for r in rows:
        states[r["tone"]] = states.get(r["tone"], 0) + 1
    latest = store.last_events(None, recent) if recent else []
    place = seen(store, now)  # the nodes and what is pending on them: None alone
    place.annotate(rows, key="name", note="fleet_note")
    return redact_any({
        "now": now,
        "fleet": place.fleet,
        "agents": rows,
        "totals": {
            "agents": len(rows),
            "ok": states.get("ok", 0),
            "warn": states.get("warn", 0),
            "bad": states.get("bad", 0),
            "spend_today_usd": round(sum(r["spend_today_usd"] for r in rows), 6),
            "errors": sum(r["errors"] for r in rows),
            "pending_approvals": len(pending),
            "open_incidents": len(incidents),
        },
        "host": host(paths, started, now, probes),
        "channels": [{**c, "line": channel_line(c, now)} for c in channels],  # phone channels (notify.health)
        "approvals": [approval_view(a, now) for a in pending],
        "incidents": [incident_view(i, now) for i in reversed(incidents)],
        "events": [event_view(e) for e in latest],
    })


# -- one of each -------------------------------------------------------------------------------------
def approval_view(a: dict[str, Any], now: float) -> dict[str, Any]:
    data = a.get("data") or {}
    diff = data.get("diff") or (data.get("extra") or {}).get("diff")
    return {
        **a,
        "age_s": elapsed(now, a["requested"]),  # never negative: `now` may be read before the row
        "expires_in_s": round(a["expires"] - now, 3) if a.get("expires") and a["state"] == "pending" else None,
        "diff": diff,
        "diff_lines": diff_lines(diff) if diff else [],
        "cwd": data.get("cwd"),
        "resources": data.get("resources") or [],
        "grant": grant_line(a, now),  # what the decision grants now: once, task, 1h; lapsed, used
    }


def diff_lines(diff: str, limit: int = 2000) -> list[tuple[str, str]]:
    """(css class, line) for a unified diff, for colouring it."""
    out = []
    for line in str(diff).splitlines()[:limit]:
        if line.startswith(("+++", "---")):
            cls = "file"
        elif line.startswith("@@"):
            cls = "hunk"
        elif line.startswith("+"):
            cls = "add"
        elif line.startswith("-"):
            cls = "del"
        else:
            cls = ""
        out.append((cls, line))
    return out


def incident_view(i: dict[str, Any], now: float) -> dict[str, Any]:
    end = i.get("resolved") or now
    return {**i, "age_s": elapsed(end, i["opened"]), "acked_state": "acked" if i.get("acked") else i["state"]}


def describe(e: Event) -> str:
    """One line saying what an event was: its kind's sentence (``tether.events``), else its data."""
    return event_line(e.kind, e.data)


def event_view(e: Event) -> dict[str, Any]:
    return {"id": e.id, "ts": e.ts, "kind": e.kind, "agent": e.agent, "text": describe(e),
            "tone": "bad" if e.kind in ("error", "incident.opened", "agent.killed") or e.kind.endswith("failed")
            else ("warn" if e.kind.startswith("approval") else "")}


# -- an agent ------------------------------------------------------------------------------------------
def usage_days(rows: list[dict[str, Any]], now: float, days: int = USAGE_DAYS) -> list[dict[str, Any]]:
    by_day: dict[str, dict[str, Any]] = {}
    for i in range(days - 1, -1, -1):
        day = _today(now - i * 86400)
        by_day[day] = {"day": day, "tokens": 0, "input": 0, "output": 0, "cost_usd": 0.0}
    for u in rows:
        slot = by_day.get(u["day"])
        if slot is None:
            continue
        slot["input"] += int(u["input_tokens"] or 0) + int(u["cache_read_tokens"] or 0) + int(
            u["cache_write_tokens"] or 0)
        slot["output"] += int(u["output_tokens"] or 0)
        slot["tokens"] = slot["input"] + slot["output"]
        slot["cost_usd"] = round(slot["cost_usd"] + float(u["cost_usd"] or 0), 6)
    return list(by_day.values())


def chart(days: list[dict[str, Any]], width: int = 560, height: int = 140) -> dict[str, Any]:
    """Bar geometry (SVG user units) for tokens per day, with the spend as a line."""
    n = max(1, len(days))
    top_t = max((d["tokens"] for d in days), default=0) or 1
    top_c = max((d["cost_usd"] for d in days), default=0.0) or 1.0
    slot = width / n
    bars, points = [], []
    plot = height - 20
    for i, d in enumerate(days):
        h = plot * d["tokens"] / top_t
        x = i * slot + slot * 0.15
        bars.append({"x": round(x, 1), "y": round(plot - h, 1), "w": round(slot * 0.7, 1), "h": round(h, 1),
                     "label": d["day"][5:], "tokens": d["tokens"], "cost": d["cost_usd"],
                     "lx": round(x + slot * .35, 1)})
        points.append(f"{x + slot * 0.35:.1f},{plot - plot * d['cost_usd'] / top_c:.1f}")
    return {"width": width, "height": height, "bars": bars, "line": " ".join(points), "max_tokens": top_t,
            "max_cost": top_c if top_c != 1.0 or any(d["cost_usd"] for d in days) else 0.0,
            "label_every": max(1, n // 7)}


def agent_detail(
    store: Store, name: str, *, spec: Any = None, log_dir: Path | None = None, killed: bool = False,
    now: float | None = None, log_lines: int = 100,
) -> dict[str, Any]:
    """Everything the agent page shows. ``NotFound`` when the store has no such agent."""
    now = time.time() if now is None else now
    doc = report(store, name, now)[0]
    row = store.agent(name) or {}
    info = row.get("info") or {}
    latest = store.last_events(name, AGENT_EVENTS)
    files: list[dict[str, Any]] = []
    commands: list[dict[str, Any]] = []
    for e in latest:
        if e.kind == "files.changed" and len(files) < 200:
            for p in e.data.get("paths") or []:
                files.append({"ts": e.ts, "path": str(p), "event": e.id})
        elif e.kind == "command.run" and len(commands) < 200:
            commands.append({"ts": e.ts, "command": str(e.data.get("command", "")),
                             "exit_code": e.data.get("exit_code"), "event": e.id})
    tasks = store.tasks(name, limit=TASKS_SHOWN)
    use = usage_days(store.usage(name, since_day=_today(now - (USAGE_DAYS - 1) * 86400)), now)
    logs = {}
    if log_dir is not None:
        for stream in ("stdout", "stderr"):
            try:
                logs[stream] = [redact(line) for line in read_logs(log_dir, stream, log_lines)]
            except OSError:
                logs[stream] = []
    owner = info.get("owner") or {}
    backup = info.get("backup") or {}
    scope: dict[str, Any] = {}
    if spec is not None:
        scope = {k: list(v) for k, v in spec.scope.model_dump().items() if v}
    state = doc["state"]
    return redact_any({
        "now": now,
        "name": name,
        "status": doc,
        "state": state,
        "tone": tone(state),
        "killed": killed,
        "kind": info.get("kind") or (spec.kind if spec is not None else None),
        "owner": owner.get("name"),
        "backup": backup.get("name"),
        "scope": scope,
        "heartbeat": info.get("heartbeat") or {},
        "timeline": [event_view(e) for e in latest[:TIMELINE]],
        "files": files[:200],
        "commands": commands[:200],
        "tasks": [t._asdict() for t in reversed(tasks)],
        "usage": use,
        "usage_total": {"tokens": sum(d["tokens"] for d in use),
                        "cost_usd": round(sum(d["cost_usd"] for d in use), 6)},
        "chart": chart(use),
        "logs": logs,
        "approvals": [approval_view(a, now) for a in store.approvals("pending", name)],
        "incidents": [incident_view(i, now) for i in store.incidents("open", name)],
        "last_event": latest[0].id if latest else 0,
    })


def audit_page(store: Store, audit_file: Path, limit: int = 200) -> dict[str, Any]:
    return audit.page(store, audit_file, limit)


def redact_any(value: dict[str, Any]) -> dict[str, Any]:
    out = redact_obj(value)
    assert isinstance(out, dict)
    return out
