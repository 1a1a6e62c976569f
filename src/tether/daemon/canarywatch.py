"""The canary (``integrations.canary``) from the daemon: before each ``claude-code``/``codex`` agent starts,
and daily while it is meant to run.

- **At a start** (the supervisor's ``Hooks.canary``, after the agent's environment and wall are ready and
  before anything is spawned): a canary that does not pass refuses the start. The supervisor records it
  as a failed start (``blocked``, "cannot start: the hook did not deny the canary: ...; fix: ...", retried
  with backoff, then the crash-loop breaker), a claimed task goes back to the queue, and a ``canary``
  incident tells the owner. A start re-uses a pass of this daemon's from the last ``EVERY`` seconds only
  while the CLI's binary and every settings file it reads are unchanged (``canary.fingerprint``): a CLI
  that updated itself, or hooks someone edited, are proven again before the next run.
- **Daily**: an agent whose last canary is ``EVERY`` old gets another, on this thread, whether it runs now
  or waits for work. One that does not pass opens the ``canary`` incident for its owner (a running agent
  is not stopped: the owner decides); the next start runs the canary again. A pass resolves the incident.

Canaries of one agent never overlap, and at most ``SLOTS`` run at once. In the daemon's environment,
``TETHER_CANARY_EVERY`` changes the period (a duration, ``24h`` by default) and ``TETHER_CANARY=off`` turns
canaries off host-wide.
"""

from __future__ import annotations

import os
import threading
import time
from typing import Any

from tether.durations import parse_duration
from tether.errors import TetherError
from tether.integrations import canary

EVERY = 24 * 3600.0  # seconds between canaries of one agent
LOOK = 600.0  # the watch looks for due canaries at least this often
FIRST = 30.0  # its first look, after the daemon's boot
SLOTS = 2  # canaries running at once (each is a CLI process)


class CanaryRefused(TetherError):
    """A start refused because the agent's canary did not pass (the one-line reason and fix)."""


def every() -> float:
    """``TETHER_CANARY_EVERY`` (a duration, like ``12h``) from the daemon's environment, else ``EVERY``."""
    raw = os.environ.get("TETHER_CANARY_EVERY", "")
    try:
        return max(1.0, parse_duration(raw)) if raw else EVERY
    except ValueError:
        print(f"tether: canaries: TETHER_CANARY_EVERY={raw!r} is not a duration; daily it is", flush=True)
        return EVERY


class CanaryWatch:
    def __init__(self, daemon: Any, period: float | None = None) -> None:
        self.daemon = daemon
        self.every = every() if period is None else period
        self._passed: dict[str, tuple[float, str]] = {}  # agent -> (when, fingerprint) of this daemon's pass
        self._ran: dict[str, float] = {}  # agent -> when this daemon last ran its canary
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()
        self._slots = threading.BoundedSemaphore(SLOTS)
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="tether-canaries", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()

    def _lock(self, name: str) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault(name, threading.Lock())

    # -- at a start (the supervisor's thread) --------------------------------------------------------------
    def before_start(self, name: str, env: dict[str, str], wall: Any, cancel: threading.Event) -> None:
        """Return when the agent may start (its canary passed, now or recently and unchanged since), or when
        ``cancel`` was set; raise ``CanaryRefused`` otherwise."""
        d = self.daemon
        spec = d.loaded.runbook.agents.get(name)
        if spec is None or spec.kind not in canary.KINDS or canary.off():
            return
        target = self._target(name, env, wall)
        with self._lock(name):
            fp = canary.fingerprint(target)
            got = self._passed.get(name)
            if got is not None and got[1] == fp and time.time() - got[0] < self.every:
                return
            result = self._run(target, "start", cancel)
        if result is not None and not result.passed:
            raise CanaryRefused(result.line())

    # -- daily (this thread) --------------------------------------------------------------------------------
    def _loop(self) -> None:
        self._wake.wait(min(FIRST, self.every))  # the starts at boot run theirs first
        while not self._stop.is_set():
            try:
                wait = self.check_once(time.time())
            except Exception as err:  # watching must never take the daemon down
                print(f"tether: canaries: {err!r}", flush=True)
                wait = LOOK
            self._wake.wait(wait)
            self._wake.clear()

    def check_once(self, now: float) -> float:
        """Run the canary of every agent meant to run whose last one is due; return seconds to the next due."""
        d = self.daemon
        if canary.off():
            return LOOK
        soonest = now + LOOK
        for name in d.local_agents():
            if self._stop.is_set():
                break
            spec = d.loaded.runbook.agents.get(name)
            sup = d.supervisors.get(name)
            if (
                spec is None
                or spec.kind not in canary.KINDS
                or sup is None
                or sup.desired != "running"
                or d.state.kill_engaged(name) is not None
            ):
                continue
            if self._due(name) <= now:
                self._daily(name, spec, sup.alive)
            soonest = min(soonest, self._due(name))
        return max(1.0, soonest - time.time())

    def _daily(self, name: str, spec: Any, running: bool) -> None:
        d = self.daemon
        with self._lock(name):
            if self._due(name) > time.time():  # a start ran one meanwhile
                return
            try:
                env, wall = d.agent_env.env(spec), d.agent_env.wall(name)
            except Exception as err:  # a secret that cannot be resolved, a wall that cannot be built
                result = canary.Result(
                    name, spec.kind, "error", f"{type(err).__name__}: {err}", "", "daily", time.time()
                )
                self._recorded(result, None, running)
                return
            self._run(self._target(name, env, wall), "daily", self._stop, running)

    def _due(self, name: str) -> float:
        """When the agent's next canary is due: from its ``canary.json`` (so a daemon restart keeps the rhythm),
        or this daemon's own last run of it where that file could not be written."""
        got = canary.last(self.daemon.state, name)
        return max(got.at if got is not None else 0.0, self._ran.get(name, 0.0)) + self.every

    # -- running and recording --------------------------------------------------------------------------------
    def _target(self, name: str, env: dict[str, str], wall: Any) -> canary.Target:
        d = self.daemon
        spec = d.loaded.runbook.agents[name]
        return canary.Target(
            spec,
            {**env, **(wall.env if wall is not None else {})},
            d.loaded.agent_cwd(name),
            tuple(wall.prefix) if wall is not None else (),
            spec.run_as if wall is None else None,
            passing=(lambda port: d.proxy.passing(name, "127.0.0.1", port))
            if wall is not None and wall.net is not None and d.proxy is not None
            else None,
        )

    def _run(
        self, target: canary.Target, trigger: str, cancel: threading.Event, running: bool = False
    ) -> canary.Result | None:
        d = self.daemon
        with self._slots:
            if cancel.is_set():
                return None
            fp = canary.fingerprint(target)  # what this run proves: a start may re-use its pass while unchanged
            result = canary.run(d.loaded, d.store, d.url, target, trigger=trigger, cancel=cancel)
        if result is None:
            return None
        self._recorded(result, fp, running)
        return result

    def _recorded(self, result: canary.Result, fp: str | None, running: bool) -> None:
        d, name = self.daemon, result.agent
        self._ran[name] = result.at
        canary.record(d.store, d.state, result)
        if result.passed:
            if fp is not None:
                self._passed[name] = (result.at, fp)
            d.resolve(name, "canary", "the canary passed")
            return
        self._passed.pop(name, None)
        if result.trigger == "start":
            summary = f"{name} was not started: {result.line()}"
        elif running:
            summary = f"{name} runs, but {result.line()}; it is not stopped: `tether stop {name}` until it is fixed"
        else:
            summary = f"{name}: {result.line()}; its next start will be refused until the canary passes"
        d.incident(name, "canary", summary)
        print(f"tether: canary: {name}: {result.line()}", flush=True)
