"""The status of every agent as of one ``now``: what ``tether status`` prints and the API serves.

Light on purpose (no click, no pydantic): ``tether status --json`` must answer fast even on a host
with a million events, and it must work when the daemon is down. Then it says so, and since when, and
no agent is shown by the daemon's last word: each one's state is what its run folder shows now.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

from tether.daemon_state import RUNNING, probe
from tether.errors import NotFound
from tether.heartbeat import judge
from tether.signals import status_signals
from tether.status_file import document, iso
from tether.store import Store


def report(store: Store, agent: str | None = None, now: float | None = None) -> list[dict[str, Any]]:
    now = time.time() if now is None else now
    rows = store.agents() if agent is None else [r for r in [store.agent(agent)] if r is not None]
    if agent is not None and not rows:
        raise NotFound(f"no agent named {agent!r}; `tether status` lists them")
    queued = store.queues(agent)
    signals = status_signals(store, now, agent)
    docs = []
    pending: dict[str, list[dict[str, Any]]] | None = None
    for row in rows:
        row["state"], row["reason"] = judge(row, now)
        if row["state"] == "stopped" and row.get("approval_required"):  # a session run by hand waits on a human
            if pending is None:
                pending = {}
                for a in store.approvals("pending", agent):
                    pending.setdefault(a["agent"], []).append(a)
            if pending.get(row["name"]):
                row["state"], row["reason"] = waiting_reason(pending[row["name"]])
        if row["state"] == "starting" and row.get("pid") is None:  # a backoff: after a start that failed?
            failed = failed_start(store, row["name"])
            if failed:
                row["reason"] = f"{failed}; {row['reason'] or 'retrying'}"
        row["queue_depth"], row["oldest_queued"] = queued.get(row["name"], (0, None))
        row["signals"] = signals.get(row["name"])
        doc = document(row, now)
        if row.get("node"):  # the node the agent is pinned to, where the store records one
            doc["node"] = row["node"]
        docs.append(doc)
    return docs


def failed_start(store: Store, agent: str, look: int = 20) -> str | None:
    """Why the agent's last start failed (``cannot start: ...``), when no run started since; else None."""
    for e in store.last_events(agent, limit=look):
        if e.kind == "agent.started":
            return None
        if e.kind == "agent.state" and str(e.data.get("reason") or "").startswith("cannot start: "):
            return str(e.data["reason"])
    return None


def waiting_reason(pending: list[dict[str, Any]]) -> tuple[str, str]:
    """An agent no daemon runs (``stopped``) whose session, run by hand, waits on ``pending`` approvals
    (oldest first): ``waiting_for_approval``, naming the oldest and the command that decides it."""
    first = pending[0]
    more = f" (and {len(pending) - 1} more: `tether approvals`)" if len(pending) > 1 else ""
    what = " ".join(str(first.get("detail") or first["action"]).split())
    return "waiting_for_approval", f"waiting for approval {first['id']} (`tether approve {first['id']}`){more}: {what}"


def daemon(store: Store, root: str, now: float) -> dict[str, Any]:
    """The daemon of state directory ``root``: ``state`` (running, stopped: SIGSTOPped, down), ``pid``,
    ``since`` (running: when it started; else when it was last heard from: its clean stop, or its
    newest record or heartbeat), ``clean`` (down after ``tether down``), and ``since_s`` ago."""
    got = probe(root)
    out: dict[str, Any] = {"state": got["state"], "pid": got["pid"], "since": got["started"], "clean": None}
    if got["state"] != RUNNING:
        last = store.last_events(None, limit=1)
        beat = store.last_heartbeat()
        heard = max([e.ts for e in last] + ([beat] if beat is not None else []), default=None)
        out["clean"] = bool(last) and last[0].kind == "daemon.stopped" and got["pid"] is None
        out["since"] = last[0].ts if out["clean"] else heard
    out["since_s"] = None if out["since"] is None else round(max(0.0, now - out["since"]), 3)
    out["since"] = iso(out["since"])
    return out


def unsupervised(docs: list[dict[str, Any]], root: str, daemon: dict[str, Any], here: str | None = None) -> None:
    """With no daemon to supervise them, each agent's state is what its keeper's run folder shows now:
    ``unsupervised`` while its process lives, ``killed`` while a kill file holds it, else ``stopped``.
    Agents pinned to another node (``node`` not ``here``) are that node's daemon's."""
    if daemon["state"] == RUNNING:
        return
    join, exists = os.path.join, os.path.exists  # plain strings: 1,000 agents must not cost pathlib's parsing
    held = exists(join(root, "KILL"))
    why = "the daemon is stopped (SIGSTOP)" if daemon["state"] != "down" else "the daemon is down"
    for doc in docs:
        if doc.get("node") not in (None, here):
            continue
        folder = join(root, "agents", doc["agent"])
        run = None
        if os.path.isdir(join(folder, "run")):  # the process layer is imported only for a folder with a run
            from pathlib import Path

            from tether import process  # +18 ms to tether status

            run = process.adopt(Path(folder) / "run")
        if run is not None and run.running():
            doc["state"], doc["pid"] = "unsupervised", run.agent_pid(timeout=0)
            who = f"pid {doc['pid']}" if doc["pid"] else "its keeper"
            doc["reason"] = f"{who} runs, but {why}: no heartbeat is received, no restart, no approval"
        elif held or exists(join(folder, "KILL")):
            doc["pid"] = None
            if doc["state"] != "killed":
                doc["state"], doc["reason"] = "killed", "kill switch engaged"
        else:
            code = run.exit_status() if run is not None else None
            doc["state"], doc["pid"] = "stopped", None
            doc["reason"] = f"not running ({why}{'; it exited ' + str(code) if code is not None else ''})"


def daemon_line(d: dict[str, Any], width: int = 80) -> str:
    """``d`` (``daemon()``) in one line for the table, at most ``width`` columns (its time of day only when
    that fits), or "" while the daemon runs."""
    if d["state"] == "running":
        return ""
    ago = "never" if d["since_s"] is None else f"{_ago(d['since_s'])} ago"
    if d["state"] == "stopped":
        head, tail = f"daemon: pid {d['pid']} is stopped (SIGSTOP), answers nothing; last heard {ago}", ""
    elif d["clean"]:
        head, tail = f"daemon: not running since it was stopped {ago}", "; `tether up` starts it"
    else:
        gone = f"pid {d['pid']} is gone" if d["pid"] else "not running"
        head, tail = f"daemon: {gone}; last heard from {ago}", "; `tether up` starts it"
    when = f" ({d['since']})" if d["since"] else ""
    whole = head + when + tail
    return (whole if len(whole) <= width else head + tail) + "\n"


def _ago(seconds: float) -> str:
    """``59s``, ``1m``, ``3h``, ``2d``: whole units, rounded down (as the table's ages)."""
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size:.0f}{unit}"
    return f"{max(0, int(seconds))}s"


def as_json(state_dir: str, docs: list[dict[str, Any]], daemon: dict[str, Any] | None = None,
            more: dict[str, Any] | None = None) -> str:
    """``daemon``: whether this state directory's daemon runs (``daemon()``); ``more``: what the place adds
    (``tether.fleet.seam.Seen.json``: several nodes' and their pending requests). ``channels`` in the output:
    the phone channels as the daemon last saw them (``notify.health``)."""
    from tether.notify import health  # +0.4 ms (two modules) to tether status's table, which reads no channels

    out: dict[str, Any] = {"state_dir": state_dir, "daemon": daemon, "agents": docs,
                           "channels": health.read(state_dir), **(more or {})}
    return json.dumps(out, separators=(",", ":")) + "\n"
