"""Run drills against a host (or a sandbox copy of it) and record each result as a ``drill.result`` event.

Per agent, in order: kill, break-test, network, protected-file, sandbox; then the reboot, once for the whole host
(it takes every agent down), with a result for each agent. A drill that raises is a failed drill.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from tether.drills import DRILLS, RESULT_EVENT, break_test, kill, network, protected_file, reboot, wall
from tether.drills.base import Host, Result, Trace
from tether.drills.report import Report
from tether.drills.sandbox import Sandbox
from tether.errors import NotFound, UsageError
from tether.runbook import LoadedRunbook

Progress = Callable[[Result], None]


def parse_only(only: str | None) -> list[str]:
    """``--only kill,network`` → the drills in their running order; every drill when None."""
    if not only:
        return list(DRILLS)
    wanted = [w.strip() for w in only.split(",") if w.strip()]
    unknown = [w for w in wanted if w not in DRILLS]
    if unknown:
        raise UsageError(f"unknown drill {unknown[0]!r}; the drills are {', '.join(DRILLS)}")
    return [d for d in DRILLS if d in wanted]


def pick_agents(loaded: LoadedRunbook, agents: list[str] | tuple[str, ...] | None) -> list[str]:
    if not agents:
        names = list(loaded.runbook.agents)
        if not names:
            raise UsageError(f"{loaded.path} has no agents to drill")
        return names
    for name in agents:
        if name not in loaded.runbook.agents:
            raise NotFound(f"no agent named {name!r} in {loaded.path}")
    return list(dict.fromkeys(agents))


def run(host: Host, agents: list[str], drills: list[str], progress: Progress | None = None,
        record: Host | None = None) -> Report:
    """Run ``drills`` for ``agents`` on ``host``; each result is recorded in ``record``'s store (default:
    the host's own) and passed to ``progress`` as it comes."""
    results: list[Result] = []
    book = record or host

    def done(r: Result) -> None:
        save(book, host, r)
        results.append(r)
        if progress is not None:
            progress(r)

    for drill in drills:
        if drill == "reboot":
            for r in _guarded_many(host, agents):
                done(r)
            continue
        for agent in agents:
            done(_guarded(drill, host, agent))
    sandbox = None if host.label is None else str(host.state.root.parent)
    return Report(host=book.name, run=host.run_id, results=results, sandbox=sandbox)


def _one(drill: str, host: Host, agent: str) -> Result:
    if drill == "kill":
        return kill.run(host, agent)
    if drill == "break-test":
        return break_test.run(host, agent)
    if drill == "network":
        return network.run(host, agent)
    if drill == "sandbox":
        return wall.run(host, agent)
    return protected_file.run(host, agent)


def _guarded(drill: str, host: Host, agent: str) -> Result:
    t = Trace(agent, drill)
    try:
        return _one(drill, host, agent)
    except Exception as err:
        if os.environ.get("TETHER_DEBUG"):
            raise
        return t.failed(f"the drill itself failed: {type(err).__name__}: {err}")


def _guarded_many(host: Host, agents: list[str]) -> list[Result]:
    traces = [Trace(a, "reboot") for a in agents]
    try:
        return reboot.run(host, agents)
    except Exception as err:
        if os.environ.get("TETHER_DEBUG"):
            raise
        return [t.failed(f"the drill itself failed: {type(err).__name__}: {err}") for t in traces]


def save(book: Host, host: Host, r: Result) -> int:
    """The ``drill.result`` event: what ``tether status`` reads to tell when an agent was last drilled."""
    data = {
        "drill": r.drill, "status": r.status, "seconds": r.seconds, "detail": r.detail[:4000],
        "runbook_hash": book.runbook_hash(r.agent), "run": host.run_id, "evidence": r.evidence,
        "timings": r.timings,
    }
    if host.label is not None:
        data["sandbox"] = str(host.state.root.parent)
    return book.emit(RESULT_EVENT, r.agent, **data)


def run_host(
    loaded: LoadedRunbook, agents: list[str], drills: list[str], *, sandbox: bool = False,
    progress: Progress | None = None, sandbox_root: Path | None = None,
) -> Report:
    """Drill the host the runbook describes, or (``sandbox``) a copy of the chosen agents' workspaces run by
    a daemon of its own with a stand-in agent each; results go to the host's store either way."""
    host = Host(loaded)
    try:
        if not sandbox:
            return run(host, agents, drills, progress)
        root = sandbox_root or (loaded.state.root / "drills")
        with Sandbox(loaded, agents, root, host.run_id) as box:
            return run(box.host, agents, drills, progress, record=host)
    finally:
        host.close()
