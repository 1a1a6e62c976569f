"""The kill switch. Works when the daemon is dead, hung or stopped: the kill file is written and the
agent's whole tree is signalled from the recorded identities first; the event is recorded after,
and if the store cannot be written now (a daemon SIGSTOPped while it holds the write lock), the record
waits in ``<state>/pending-events/`` for the daemon to replay (at start, and whenever its monitor wakes).

Every record carries an id, so a record that landed late and was also parked is replayed once only.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tether import process
from tether.atomic import write_atomic
from tether.paths import StateDir
from tether.runbook.model import KillSwitch
from tether.store import NewEvent, Store

RECORD_TIMEOUT = 2.0  # a healthy daemon holds the write lock for milliseconds
PENDING = "pending-events"

StoreLike = Store | Callable[[], Store] | None


def engaged(state: StateDir, agent: str) -> Path | None:
    """The kill file that holds this agent (the global one first), or None."""
    return state.kill_engaged(agent)


def whoami() -> str:
    """The name of the user this process runs as (who engaged a kill from the command line)."""
    import pwd

    try:
        return pwd.getpwuid(os.geteuid()).pw_name
    except KeyError:
        return f"uid {os.geteuid()}"


def kill_agent(
    state: StateDir, agent: str, spec: KillSwitch, reason: str | None, store: StoreLike = None, by: str | None = None
) -> dict[str, Any]:
    """Write the agent's kill file, stop its whole tree (signal, grace, SIGKILL), then record it."""
    record_id = uuid.uuid4().hex
    kill_file = state.agent_kill_file(agent)
    note = {"at": time.time(), "reason": reason, "id": record_id, "by": by or whoami()}
    write_atomic(kill_file, json.dumps(note) + "\n")
    report = process.kill_tree(state.agent_dir(agent) / "run", spec.signal, spec.grace)
    record = {
        "reason": reason, "signalled": sorted(report.signalled), "survivors": report.survivors,
        "escalated": report.escalated, "elapsed_s": round(report.elapsed, 3), "record_id": record_id,
    }
    why = f"kill switch: {reason}" if reason else "kill switch engaged"
    _record(state, store, agent, record_id, [
        ("agent.killed", record),
        ("agent.desired", {"desired": "killed", "record_id": record_id}),
        ("agent.state", {"state": "killed", "reason": why, "record_id": record_id}),
    ])
    return record


def engage_all(state: StateDir, reason: str | None) -> None:
    """The global kill file: no agent starts while it exists (``tether resume --all`` lifts it)."""
    write_atomic(state.kill_file, json.dumps({"at": time.time(), "reason": reason, "by": whoami()}) + "\n")


def lift(state: StateDir, agent: str, store: StoreLike = None) -> None:
    state.agent_kill_file(agent).unlink(missing_ok=True)
    record_id = uuid.uuid4().hex
    _record(state, store, agent, record_id, [
        ("agent.resumed", {"record_id": record_id}),
        ("agent.desired", {"desired": "running", "record_id": record_id}),
    ])


def lift_all(state: StateDir) -> None:
    state.kill_file.unlink(missing_ok=True)


def _record(
    state: StateDir, store: StoreLike, agent: str, record_id: str, events: list[tuple[str, dict[str, Any]]]
) -> None:
    """Record the events, but never wait on a hung store for long: park them for the daemon instead.

    Opening the store happens in the recording thread too: opening takes the write lock briefly, and
    a SIGSTOPped daemon may hold it."""
    now = time.time()
    if store is not None:
        done = threading.Event()

        def write() -> None:
            try:
                target = store() if callable(store) else store
                target.append([NewEvent(kind, agent, data, ts=now) for kind, data in events])
                done.set()
            except Exception:
                pass

        threading.Thread(target=write, name="tether-record", daemon=True).start()
        if done.wait(RECORD_TIMEOUT):
            return
    pending = state.root / PENDING
    pending.mkdir(parents=True, exist_ok=True)
    body = {"id": record_id, "agent": agent, "events": [{"kind": k, "data": d, "ts": now} for k, d in events]}
    write_atomic(pending / f"{now:.6f}-{agent}-{record_id[:8]}.json", json.dumps(body) + "\n")


def replay_pending(state: StateDir, store: Store) -> int:
    """Append every parked record not already in the store, oldest first, and delete its file; return
    how many were appended. A file that cannot be read is left for a human (and reported once)."""
    folder = state.root / PENDING
    try:
        names = sorted(n for n in os.listdir(folder) if n.endswith(".json"))
    except FileNotFoundError:
        return 0
    count = 0
    for name in names:
        path = folder / name
        try:
            body = json.loads(path.read_text())
        except (OSError, ValueError):
            with contextlib.suppress(OSError):
                path.rename(path.with_suffix(".bad"))
            continue
        if "events" not in body:  # the first format: one event
            body = {"id": None, "agent": body.get("agent"), "events": [
                {"kind": body["kind"], "data": body.get("data", {}), "ts": None}]}
        agent, record_id = body.get("agent"), body.get("id")
        if record_id is None or not _landed(store, agent, record_id):
            events = body["events"]
            first = min((e.get("ts") or 0 for e in events), default=0)
            if _superseded(store, agent, first):  # a later decision landed first: keep this as history only
                events = [e for e in events if e["kind"] not in ("agent.desired", "agent.state")]
            store.append([NewEvent(e["kind"], agent, e.get("data") or {}, ts=e.get("ts")) for e in events])
            count += 1
        path.unlink(missing_ok=True)
    return count


def _landed(store: Store, agent: str | None, record_id: str) -> bool:
    return any(e.data.get("record_id") == record_id for e in store.last_events(agent, limit=500))


def _superseded(store: Store, agent: str | None, ts: float) -> bool:
    return any(
        e.ts > ts and e.kind in ("agent.desired", "agent.resumed", "agent.killed")
        for e in store.last_events(agent, limit=500)
    )
