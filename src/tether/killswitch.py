"""The kill switch. Works when the daemon is dead, hung or stopped: the kill file is written and the
agent's whole tree is signalled from the recorded identities first; the event is recorded after,
and if the store cannot be written now, the record waits in a file the daemon replays at start."""

from __future__ import annotations

import json
import threading
import time
from typing import Any

from tether import process
from tether.paths import StateDir
from tether.runbook.model import KillSwitch
from tether.status_file import write_atomic
from tether.store import Store

RECORD_TIMEOUT = 3.0


def kill_agent(
    state: StateDir, agent: str, spec: KillSwitch, reason: str | None, store: Store | None = None
) -> dict[str, Any]:
    kill_file = state.agent_kill_file(agent)
    write_atomic(kill_file, json.dumps({"at": time.time(), "reason": reason}) + "\n")
    report = process.kill_tree(state.agent_dir(agent) / "run", spec.signal, spec.grace)
    record = {"reason": reason, "signalled": report.signalled, "survivors": report.survivors}
    _record(state, store, "agent.killed", agent, record)
    return record


def lift(state: StateDir, agent: str, store: Store | None = None) -> None:
    state.agent_kill_file(agent).unlink(missing_ok=True)
    _record(state, store, "agent.resumed", agent, {})


def _record(state: StateDir, store: Store | None, kind: str, agent: str, data: dict[str, Any]) -> None:
    """Record the event, but never wait on a hung store for long: park it for the daemon instead."""
    if store is not None:
        done = threading.Event()

        def write() -> None:
            try:
                store.emit(kind, agent, **data)
                if kind == "agent.killed":
                    store.emit("agent.state", agent, state="killed", reason=data.get("reason") or "kill switch")
                done.set()
            except Exception:
                pass

        threading.Thread(target=write, daemon=True).start()
        if done.wait(RECORD_TIMEOUT):
            return
    pending = state.root / "pending-events"
    pending.mkdir(parents=True, exist_ok=True)
    write_atomic(pending / f"{time.time():.6f}-{agent}.json", json.dumps({"kind": kind, "agent": agent, "data": data}))
