"""One agent's supervision: spawn it under its keeper, wait for its exit (event-driven, via pidfd),
record what happened, and restart it per its policy, with backoff and the crash-loop breaker."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tether import process
from tether.daemon.restarts import RestartTracker, should_restart
from tether.paths import StateDir
from tether.runbook.model import Agent
from tether.store import Store


class AgentSupervisor:
    def __init__(
        self,
        spec: Agent,
        state: StateDir,
        store: Store,
        cwd: Path,
        env: Callable[[], dict[str, str]],
        on_incident: Callable[[str, str, str], None],
    ) -> None:
        self.spec = spec
        self.name = spec.name
        self.state = state
        self.store = store
        self.cwd = cwd
        self._env = env
        self._incident = on_incident
        self.tracker = RestartTracker(spec.restart)
        self.handle: process.KeeperHandle | None = None
        self.desired = "running" if spec.autostart else "stopped"
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._lock = threading.RLock()
        self._thread: threading.Thread | None = None
        self.started_at = 0.0
        self.log_max_bytes = 10 * 1024 * 1024

    @property
    def run_dir(self) -> Path:
        return self.state.agent_dir(self.name) / "run"

    # -- lifecycle -----------------------------------------------------------------------------------
    def begin(self) -> None:
        """Re-adopt a live instance (after a daemon restart) or note how the last one ended, then
        supervise in a thread of its own."""
        handle = process.adopt(self.run_dir)
        if handle is not None and handle.running():
            self.handle = handle
            self.started_at = time.time()
            self.store.emit("agent.adopted", self.name, pid=handle.agent_pid())
        elif handle is not None:
            code = handle.exit_status()
            self._record_exit(code, adopted=True)
        self._thread = threading.Thread(target=self._loop, name=f"supervise-{self.name}", daemon=True)
        self._thread.start()

    def shutdown(self, stop_agent: bool) -> None:
        """Stop supervising; with ``stop_agent`` the agent is stopped too (else it lives on, to be
        re-adopted by the next daemon)."""
        self._stop.set()
        if stop_agent:
            self._terminate("daemon stopping")
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=self.spec.kill.grace + 5)

    def set_desired(self, desired: str) -> None:
        with self._lock:
            if desired == "running" and self.desired != "running":  # a human said start: a fresh budget
                self.tracker.recent.clear()
                self.tracker.attempt = 0
            self.desired = desired
            self.store.emit("agent.desired", self.name, desired=desired)
            if desired != "running":
                self._terminate(f"desired {desired}")
        self._wake.set()

    def restart(self) -> None:
        with self._lock:
            self.tracker.attempt = 0
            self._terminate("restart requested")
            self.desired = "running"
        self._wake.set()

    def _terminate(self, why: str) -> None:
        handle = self.handle
        if handle is not None and handle.running():
            process.kill_tree(self.run_dir, self.spec.kill.signal, self.spec.kill.grace)

    # -- the loop ------------------------------------------------------------------------------------
    def _loop(self) -> None:
        while not self._stop.is_set():
            handle = self.handle
            if handle is not None:
                code = handle.wait_exit(timeout=None, cancel=self._wake)
                if code is None and handle.running():
                    self._wake.clear()
                    continue  # woken for a desired-state change
                self.handle = None
                self._record_exit(handle.exit_status(), adopted=False)
                continue
            if self._stop.is_set():
                return
            if self.desired != "running" or self._kill_file_present():
                self._wake.wait()
                self._wake.clear()
                continue
            self._spawn()

    def _kill_file_present(self) -> bool:
        return self.state.kill_file.exists() or self.state.agent_kill_file(self.name).exists()

    def _spawn(self) -> None:
        now = time.time()
        self.tracker.record_start(now)
        if self.tracker.crashlooping(now):
            limit, window = self.spec.restart.crashloop.limit, self.spec.restart.crashloop.window
            reason = f"more than {limit} starts in {window:g}s; restarts stopped (`tether start {self.name}`)"
            self.store.emit("agent.state", self.name, state="crashloop", reason=reason)
            self._incident(self.name, "crashloop", reason)
            self.desired = "crashloop"
            return
        instance = uuid.uuid4().hex[:12]
        log_dir = self.state.log_dir(self.name)
        process.rotate(log_dir, self.log_max_bytes)
        try:
            handle = process.spawn(
                process.Spec(
                    agent=self.name, argv=list(self.spec.command), cwd=self.cwd, env=self._env(),
                    run_dir=self.run_dir, log_dir=log_dir, user=self.spec.run_as,
                    instance=instance,
                )
            )
        except Exception as err:  # a command that cannot start is a failed start, not a daemon crash
            self.store.emit("agent.exited", self.name, code=None, error=str(err))
            self.store.emit("agent.state", self.name, state="blocked", reason=f"cannot start: {err}")
            self._backoff_then_retry()
            return
        restart = self.started_at > 0
        self.handle = handle
        self.started_at = time.time()
        self.store.emit("agent.started", self.name, pid=handle.agent_pid(), instance=instance, restart=restart)

    def _record_exit(self, code: int | None, adopted: bool) -> None:
        uptime = time.time() - self.started_at if self.started_at else 0.0
        data: dict[str, Any] = {"code": code, "uptime_s": round(uptime, 3)}
        if adopted:
            data["adopted"] = True
        self.store.emit("agent.exited", self.name, **data)
        self.tracker.stable(uptime)
        if self._stop.is_set():
            if not adopted:
                self.store.emit("agent.state", self.name, state="stopped", reason="the daemon stopped")
            return
        if self._kill_file_present():
            self.store.emit("agent.state", self.name, state="killed", reason="kill switch engaged")
            return
        if self.desired != "running":
            self.store.emit("agent.state", self.name, state="stopped", reason=f"exited {code}")
            return
        if not should_restart(self.spec.restart.policy, code):
            self.store.emit("agent.state", self.name, state="stopped",
                            reason=f"exited {code}; restart policy {self.spec.restart.policy}")
            self.desired = "stopped"
            return
        self._backoff_then_retry()

    def _backoff_then_retry(self) -> None:
        delay = self.tracker.delay()
        if delay > 0:
            self.store.emit("agent.state", self.name, state="starting", reason=f"restarting in {delay:.2f}s")
            self._wake.wait(delay)
            self._wake.clear()
