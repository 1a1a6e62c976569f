"""Wall violations: what an agent tried that its wall stopped, as ``wall.violation`` events, and the
incident that repeated ones open for its owner.

Two kinds (``vocabulary.VIOLATION_KINDS``), each recorded only where tether saw it happen:

- ``connect``: a connection the egress proxy refused (verdict ``deny``, or ``pending``: held for an
  approval), recorded by the proxy's recorder (``wall.egress.for_daemon``) with the connection event;
- ``write``: a write the wall denied (EROFS, EACCES, EPERM; ENOENT below a tree hidden from the agent),
  as the kernel's audit reports it to the daemon (``wall.writewatch``; counted when a run of the agent
  made it); or, where the daemon cannot see it (a daemon without the kernel's audit), the sandbox drill's
  own record of its probe's try (``drills/wall.py``). An agent's own stderr naming such an error is not
  evidence, so it is never read as one.

``Watch`` counts each agent's violations in its runbook's ``violations.window`` and opens one
``wall.violation`` incident at ``violations.limit`` (the daemon's usual incident path: deduplicated while one
is open, the owner notified); the incident is resolved once a whole window passes with no violation. A
retry of a connection held for approval is the same ask (one approval), so it counts once. The drill's own
writes are not the agent's doing and never count (nor does any write of the agent's user outside its runs).
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from tether.durations import format_duration

EVENT = "wall.violation"
INCIDENT = "wall.violation"
#: The proxy's verdicts that are a refused connection (``refused``: a malformed request or too many open;
#: ``failed``: allowed, but the host did not answer; neither is the wall stopping anything).
REFUSED = frozenset({"deny", "pending"})
DEFAULT_LIMIT = 5
DEFAULT_WINDOW = 600.0


def from_connection(data: dict[str, Any]) -> dict[str, Any] | None:
    """The violation for one ``network.connection`` record, or None when it was no refusal."""
    verdict = data.get("verdict")
    if verdict not in REFUSED:
        return None
    out: dict[str, Any] = {
        "kind": "connect",
        "host": data.get("host", ""),
        "port": data.get("port", 0),
        "verdict": verdict,
        "reason": str(data.get("reason") or "")[:300],
        "source": "proxy",
    }
    if data.get("approval") is not None:
        out["approval"] = data["approval"]
    return out


def write(path: str, error: str, source: str, **extra: Any) -> dict[str, Any]:
    """The violation for a denied write: ``error`` is the errno's name (EROFS, EACCES, ...)."""
    return {"kind": "write", "path": path[:1000], "verdict": "denied", "error": error, "source": source, **extra}


def key(event_id: int, data: dict[str, Any]) -> str:
    """What makes two violations one: the approval a held connection asked for, else the event itself."""
    approval = data.get("approval")
    return f"approval:{approval}" if approval is not None else f"event:{event_id}"


class Watch:
    """Each agent's violations in its window; ``open`` opens the incident (``Daemon.incident``: one per agent
    while open), ``resolve`` ends it. ``limits(agent)`` gives ``(limit, window)`` from the runbook as loaded
    now. A thread of its own resolves incidents whose window went by quiet."""

    def __init__(
        self,
        limits: Callable[[str], tuple[int, float]],
        open_incident: Callable[[str, str, dict[str, Any]], bool],
        resolve: Callable[[str, str], None],
        open_now: Callable[[], list[str]] = list,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.limits = limits
        self._open = open_incident
        self._resolve = resolve
        self._clock = clock
        self._recent: dict[str, deque[tuple[float, str]]] = {}
        self._quiet_at: dict[str, float] = {}  # agent with an incident open -> when it is quiet long enough
        self._cond = threading.Condition()
        self._opening = threading.Lock()  # the proxy records batches on several threads: one opener at a time
        self._stopped = False
        now = clock()
        for agent in open_now():  # incidents a previous daemon left open: quiet from now, unless more come
            self._quiet_at[agent] = now + limits(agent)[1]
        self._thread = threading.Thread(target=self._loop, name="tether-violations", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        with self._cond:
            self._stopped = True
            self._cond.notify()

    def saw(self, agent: str, ts: float, what: str, summary: str) -> bool:
        """Count one violation (``what``: its ``key``); True when it opened the agent's incident."""
        limit, window = self.limits(agent)
        with self._cond:
            recent = self._recent.setdefault(agent, deque())
            if not any(k == what for _, k in recent):
                recent.append((ts, what))
            while recent and recent[0][0] < ts - window:
                recent.popleft()
            while len(recent) > limit:  # only the newest ``limit`` matter
                recent.popleft()
            count = len(recent)
            if agent in self._quiet_at:
                self._quiet_at[agent] = ts + window
                self._cond.notify()
        if count < limit:
            return False
        data = {"count": count, "window_s": window, "limit": limit}
        with self._opening:
            opened = self._open(agent, f"{agent}: {count} wall violations in {_span(window)}: {summary}", data)
        with self._cond:
            self._quiet_at[agent] = ts + window
            self._cond.notify()
        return opened

    def _loop(self) -> None:
        while True:
            with self._cond:
                if self._stopped:
                    return
                now = self._clock()
                due = [a for a, at in self._quiet_at.items() if at <= now]
                for agent in due:
                    del self._quiet_at[agent]
                    self._recent.pop(agent, None)
                if not due:
                    nxt = min(self._quiet_at.values(), default=None)
                    self._cond.wait(None if nxt is None else max(0.05, nxt - now))
                    continue
            for agent in due:
                with self._opening:
                    with self._cond:
                        if agent in self._quiet_at:  # a violation came meanwhile: not quiet after all
                            continue
                    try:
                        self._resolve(agent, f"no wall violation for {_span(self.limits(agent)[1])}")
                    except Exception as err:  # the store failing must not end the watch
                        print(f"tether: violations: {agent}: the incident was not resolved: {err!r}", flush=True)


def for_daemon(daemon: Any) -> Watch:
    """The daemon's watch (started): limits from the runbook it has loaded now, incidents through
    ``Daemon.incident`` / ``Daemon.resolve``."""

    def limits(agent: str) -> tuple[int, float]:
        spec = daemon.loaded.runbook.agents.get(agent)
        if spec is None:
            return DEFAULT_LIMIT, DEFAULT_WINDOW
        return spec.violations.limit, spec.violations.window

    def open_incident(agent: str, summary: str, data: dict[str, Any]) -> bool:
        return bool(daemon.incident(agent, INCIDENT, summary, **data))

    def resolve(agent: str, why: str) -> None:
        daemon.resolve(agent, INCIDENT, why)

    def open_now() -> list[str]:  # this daemon's agents only (a fleet's store holds every node's)
        mine = daemon.loaded.runbook.agents
        return [str(i["agent"]) for i in daemon.store.incidents("open") if i["kind"] == INCIDENT and i["agent"] in mine]

    watch = Watch(limits, open_incident, resolve, open_now)
    watch.start()
    return watch


def _span(seconds: float) -> str:
    return format_duration(round(seconds))
