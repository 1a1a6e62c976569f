"""A demo host's recorded history: what the store holds after a morning of four agents at work.

Used by ``tether demo`` until the daemon runs the agents for real, and by benchmarks to fill a store.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict
from typing import Any

from tether.lifecycle import change
from tether.runbook import LoadedRunbook
from tether.store import NewEvent, Store


def agent_info(loaded: LoadedRunbook, name: str) -> dict[str, Any]:
    """What the agents table keeps about an agent's runbook entry (owner, heartbeat intervals)."""
    agent = loaded.runbook.agents[name]
    return {
        "kind": agent.kind,
        "owner": agent.owner.model_dump(),
        "backup": agent.backup.model_dump(),
        "heartbeat": agent.heartbeat.model_dump(),
    }


def fill(store: Store, loaded: LoadedRunbook, now: float | None = None) -> None:
    now = time.time() if now is None else now
    t0 = now - 3600
    for name in loaded.runbook.agents:
        store.append([NewEvent("agent.registered", name, {"info": agent_info(loaded, name)}, t0)])
        store.append([NewEvent("agent.started", name, {"pid": 0}, t0 + 1)])
    add = store.append([NewEvent("task.added", "repo-maintainer", {"text": "open cleanup PR"}, t0 + 5)])[0]
    store.append(
        [
            NewEvent("task.started", "repo-maintainer", {"task_id": add, "text": "open cleanup PR"}, t0 + 6),
            NewEvent("command.run", "repo-maintainer", {"command": "git checkout -b cleanup"}, t0 + 7),
            NewEvent("files.changed", "repo-maintainer", {"paths": ["src/util.py", "README.md"]}, t0 + 60),
            NewEvent("tests.reported", "repo-maintainer", {"passed": 42, "failed": 0}, t0 + 90),
            NewEvent(
                "agent.state",
                "repo-maintainer",
                change("waiting_for_approval", "pr.merge asks first (approvals.verdicts)"),
                t0 + 120,
            ),
        ]
    )
    for i in range(3):
        store.append(
            [
                NewEvent("agent.exited", "flaky-worker", {"code": 1}, t0 + 300 + i * 60),
                NewEvent("agent.started", "flaky-worker", {"pid": 0, "restart": True}, t0 + 301 + i * 60),
            ]
        )
    store.append(
        [
            NewEvent(
                "agent.state",
                "data-deleter",
                change("blocked", "data.delete is blocked: rm -rf ./data"),
                t0 + 200,
            )
        ]
    )
    store.beat("stuck-agent", now - 1, task="reindex", progress="step 3/10")
    store.beat("flaky-worker", now - 2, task="process queue")
    store.beat("repo-maintainer", now - 3)


def raw_rows(n: int, agents: int, now: float) -> list[tuple[float, str | None, str, str]]:
    """``n`` synthetic log events spread over ``agents`` agents (for benchmarks)."""
    data = json.dumps({"line": "worked on item", "n": 1})
    return [(now - n + i, f"agent-{i % agents:04d}", "log", data) for i in range(n)]


__all__ = ["agent_info", "asdict", "fill", "raw_rows"]
