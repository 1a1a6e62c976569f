"""One agent's supervision: spawn it under its keeper, wait for its exit (event-driven: ``poll`` on a pidfd
and a wake pipe, no timer), record what happened, and restart it per its policy, with backoff and the
crash-loop breaker.

Every action on the agent's processes happens in the supervisor's own thread; other threads (the API, the
monitor, reload) only change what is wanted and wake it, so a slow stop never blocks them.

Files it keeps in ``<state>/agents/<agent>/`` besides the run folder (``run/``, the process layer's):

``restarts.json``   recent start times and the backoff step, so a daemon restart keeps the crash-loop
                    budget and the backoff (best effort: a lost write only makes the breaker more lenient)
``exit-recorded``   the instance whose exit is in the store, so a daemon restart does not record it twice
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tether import process, redact, tasks
from tether.atomic import write_atomic
from tether.daemon.restarts import RestartTracker
from tether.daemon.runstate import Exit, RunState, Step, after_exit, exit_data
from tether.integrations import agents as agent_kinds
from tether.integrations import openclaw
from tether.integrations.codex import inside_wall
from tether.killswitch import arm
from tether.lifecycle import change
from tether.paths import StateDir
from tether.process import platform
from tether.runbook.model import Agent
from tether.store import NewEvent, Store

KIND_POLL = 2.0  # seconds between looks at a claude-code/codex agent's pending approval or queue
NO_PIDFD_POLL = 0.5  # seconds between liveness checks where pidfds are missing (macOS, old kernels)


@dataclass
class Hooks:
    """What a supervisor asks of the daemon."""

    env: Callable[[], dict[str, str]]
    url: Callable[[], str]  # the daemon's API, for the command lines of claude-code and codex runs
    opening: Callable[[str, str, str], NewEvent | None]  # (agent, kind, summary): None when one is open
    resolve: Callable[[str, str, str], None]  # (agent, kind, why): resolve the open one of that kind
    changed: Callable[[], None]  # an agent started or ended (the sleep inhibitor follows)
    wall: Callable[[], Any] | None = None  # the agent's wall (tether.wall.Wall) or None; raises WallError
    # claude-code/codex: (env, wall, cancel) proves the CLI's hook denies before a start; raises to refuse it
    canary: Callable[[dict[str, str], Any, threading.Event], None] | None = None


class AgentSupervisor:
    def __init__(
        self,
        spec: Agent,
        state: StateDir,
        store: Store,
        cwd: Path,
        hooks: Hooks,
        *,
        desired: str = "running",
        log_max_bytes: int = 10 * 1024 * 1024,
    ) -> None:
        self.spec = spec
        self.name = spec.name
        self.state = state
        self.store = store
        self.cwd = cwd
        self.hooks = hooks
        self.log_max_bytes = log_max_bytes
        self.tracker = RestartTracker(spec.restart)
        self.handle: process.KeeperHandle | None = None  # the run that is up
        self.run = RunState(desired=desired)  # what is wanted of its runs (daemon/runstate.py), under _lock
        self.started_at = 0.0  # wall time the current (or last) run started
        self.starts = 0  # runs started by this supervisor
        self._seen_run = False  # a run of this agent was seen before (a start is then a restart)
        self.failures = 0  # errors the loop survived
        self._deferred: tuple[list[NewEvent], str] | None = None  # an exit to record with the next start
        self._stop = threading.Event()  # set with run.stopping: cancels a canary under way
        self._lock = threading.RLock()
        self._changed = threading.Condition(self._lock)
        self._rfd, self._wfd = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self._thread: threading.Thread | None = None
        self._health: Any = None  # openclaw: the gateway's /health as its heartbeat (integrations.openclaw)
        self._load_tracker()

    @property
    def desired(self) -> str:
        return self.run.desired

    @property
    def held(self) -> str | None:
        return self.run.held

    @property
    def agent_dir(self) -> Path:
        return self.state.agent_dir(self.name)

    @property
    def run_dir(self) -> Path:
        return self.agent_dir / "run"

    # -- requests from other threads ----------------------------------------------------------------
    def wake(self) -> None:
        with contextlib.suppress(BlockingIOError, OSError):
            os.write(self._wfd, b"!")

    def set_desired(self, desired: str, wait: float | None = None, record: bool = True) -> None:
        """What a human asked for: ``running`` (a fresh restart budget), ``stopped`` or ``killed``.
        ``record`` False when the caller recorded it already (the kill switch does)."""
        with self._lock:
            if desired == "running":
                self._clear_hold("started by an operator")
            if desired != self.run.desired:
                self.run.desired = desired
                if record:
                    events = [NewEvent("agent.desired", self.name, {"desired": desired})]
                    if desired != "running" and self.handle is None:  # nothing to stop: say so now
                        events.append(NewEvent("agent.state", self.name, change(desired, "operator")))
                    self.store.append(events)
            self._changed.notify_all()
        self.wake()
        if wait is not None:
            if desired == "running":  # up, or held (crash loop, a kill file) so it will not come up
                self.wait_for(lambda: self.handle is not None or self._blocked() is not None, wait)
            else:
                self.wait_for(lambda: self.handle is None, wait)

    def restart(self, wait: float | None = None) -> None:
        """Stop the agent (its kill signal, then SIGKILL after the grace) and start it again at once."""
        with self._lock:
            self._clear_hold("restarted by an operator")
            if self.run.desired != "running":
                self.run.desired = "running"
                self.store.emit("agent.desired", self.name, desired="running")
            self.run.restart_now = True
            before = self.starts
        self.wake()
        if wait is not None:
            self.wait_for(lambda: self.starts > before or self.run.held is not None, wait)

    def _clear_hold(self, why: str) -> None:
        if self.run.held == "crashloop":
            self.hooks.resolve(self.name, "crashloop", why)
        self.run.release()
        self.tracker.recent.clear()
        self.tracker.attempt = 0
        self._save_tracker()

    def wait_for(self, predicate: Callable[[], bool], timeout: float) -> bool:
        with self._changed:
            return self._changed.wait_for(predicate, timeout)

    def _notify(self) -> None:
        with self._changed:
            self._changed.notify_all()

    # -- lifecycle ------------------------------------------------------------------------------------
    def begin(self, held: str | None = None, fresh: bool = False) -> None:
        """Re-adopt a live run (after a daemon restart) or account for how the last one ended, then
        supervise in a thread of its own. ``fresh``: a changed definition (reload) starts at once."""
        self.run.held = held
        self.run.restart_now = fresh
        arm(self.state, self.name)  # the spare kill files: a kill on a full disk needs them (best effort)
        process.CLOCK.watch(self.state.log_dir(self.name))  # when its log lines were written (`tether logs`)
        handle = process.adopt(self.run_dir)
        self._seen_run = handle is not None
        if handle is not None and not handle.running() and handle.exit_status() is None:
            handle = self._settle(handle)
        if handle is not None and handle.running():
            self.handle = handle
            self.started_at = handle.info.started_at if handle.info is not None else time.time()
            self.store.emit("agent.adopted", self.name, pid=handle.agent_pid(0), instance=handle.instance)
            self._watch_health()
        elif handle is not None and handle.info is not None and not fresh:
            self._ended(handle, adopted=True)
        self._thread = threading.Thread(target=self._loop, name=f"supervise-{self.name}", daemon=True)
        self._thread.start()

    def _settle(self, handle: process.KeeperHandle) -> process.KeeperHandle:
        """A daemon killed while spawning may find a run folder whose keeper has not written its pid yet:
        give a keeper that young a moment before calling its run lost (so the agent never runs twice)."""
        info = handle.info
        if info is None or time.time() - info.started_at > 3.0:
            return handle
        deadline = time.monotonic() + 1.0
        while time.monotonic() < deadline:
            again = process.adopt(self.run_dir)
            if again is not None and (again.running() or again.exit_status() is not None):
                return again
            time.sleep(0.02)
        return handle

    def shutdown(self, stop_agent: bool, reason: str = "the daemon stopped") -> None:
        """Stop supervising; with ``stop_agent`` the agent is stopped too (else it lives on, to be
        re-adopted by the next daemon). Returns at once; ``join`` waits."""
        with self._lock:
            self.run.stop_agent = stop_agent
            self.run.stop_reason = reason
            self.run.stopping = True
            self._stop.set()
        self.wake()

    def join(self, timeout: float | None = None) -> None:
        if self._thread is not None:
            self._thread.join(self.spec.kill.grace + 5 if timeout is None else timeout)
        process.CLOCK.unwatch(self.state.log_dir(self.name))
        for fd in (self._rfd, self._wfd):
            with contextlib.suppress(OSError):
                os.close(fd)
        self._rfd = self._wfd = -1

    @property
    def alive(self) -> bool:
        return self.handle is not None

    @property
    def thread_alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    # -- the loop -------------------------------------------------------------------------------------
    def _wait(self, fd: int | None, timeout: float | None) -> bool:
        """Sleep until ``fd`` is readable (True), the wake pipe is poked, or ``timeout`` passes."""
        poller = select.poll()
        poller.register(self._rfd, select.POLLIN)
        if fd is not None:
            poller.register(fd, select.POLLIN)
        events = poller.poll(None if timeout is None else max(0, int(timeout * 1000) + 1))
        with contextlib.suppress(BlockingIOError, OSError):
            while os.read(self._rfd, 512):
                pass
        return fd is not None and any(f == fd for f, _ in events)

    def _loop(self) -> None:
        try:
            while True:
                try:
                    if self._step():
                        return
                except Exception as err:  # the store briefly unwritable, a full disk: say so, try again
                    self.failures += 1
                    with contextlib.suppress(Exception):
                        print(f"tether: supervising {self.name}: {err!r}", file=sys.stderr, flush=True)
                        self.store.emit("agent.state", self.name, **change("blocked", f"supervisor: {err}"))
                    self._wait(None, 1.0)
        finally:
            self._notify()

    def _step(self) -> bool:
        """One turn of the loop (``RunState.step`` says which); True when supervision ends."""
        handle = self.handle
        step, delay = self.run.step(handle is not None, self._blocked, time.monotonic())
        if step is Step.START:
            self._spawn()  # records a deferred exit with the start, in one transaction
            return False
        self._flush()
        if step is Step.WATCH and handle is not None:
            self._watch(handle)
        elif step is Step.END:
            if self.run.stop_agent:  # what earlier runs left (setsid descendants of a crashed run) goes too
                process.kill_tree(self.run_dir, self.spec.kill.signal, self.spec.kill.grace)
            return True
        elif step is Step.WAIT:
            # claude-code/codex agents wait on an approval or on their queue: look again every few seconds
            self._wait(None, KIND_POLL if self.spec.kind in agent_kinds.KINDS else None)
        elif step is Step.BACKOFF:
            self._wait(None, delay)
        return False

    def _flush(self) -> None:
        """Record an exit whose record was held back for an immediate restart that is not happening."""
        deferred, self._deferred = self._deferred, None
        if deferred is not None:
            self.store.append(deferred[0])
            self._mark(deferred[1])

    def _watch(self, handle: process.KeeperHandle) -> None:
        """Wait for the run to end or for a request; act on requests (stop, restart, shutdown)."""
        with self._lock:
            terminate = self.run.terminate(self._kill_file() is not None)
            if self.run.stopping and not self.run.stop_agent:
                self.handle = None  # left running for the next daemon to adopt
                self._unwatch_health()
                return
        if terminate:
            process.kill_tree(self.run_dir, self.spec.kill.signal, self.spec.kill.grace)
        fd = handle.watch_fd()
        if fd is None:
            if not handle.running():
                self._ended(handle, adopted=False)
                return
            self._wait(None, NO_PIDFD_POLL)
            return
        try:
            self._wait(fd, None)
        finally:
            os.close(fd)
        if not handle.running():
            self._ended(handle, adopted=False)

    def _blocked(self) -> str | None:
        """Why no start may happen now, or None."""
        kind = self.spec.kind in agent_kinds.KINDS  # a deferred call waits for its human; no prompt, no task: idle
        return self.run.blocked(self._kill_file() is not None, self._waiting if kind else None)

    def _waiting(self) -> str | None:
        return agent_kinds.waiting(self.state, self.store, self.spec)

    def _kill_file(self) -> Path | None:
        return self.state.kill_engaged(self.name)

    # -- starting -------------------------------------------------------------------------------------
    def _spawn(self) -> None:
        """Start the agent. An exit held back by ``_ended`` (an immediate restart: the common crash) is
        recorded in the same transaction as what happens here, after the spawn: the restart does not
        wait for a write, and a crash loses one fsync."""
        now = time.time()
        with self._lock:
            manual = self.run.restart_now
            self.run.restart_now = False
        deferred, self._deferred = self._deferred, None
        before, recorded = (deferred[0], deferred[1]) if deferred is not None else ([], None)
        launch = None
        if self.spec.kind in agent_kinds.KINDS:  # `claude -p` / `codex exec`: a prompt, a queued task or a resume
            launch = agent_kinds.launch(self.spec, self.state, self.store, self.hooks.url())
            if launch is None:  # nothing to do (or still waiting on a human): idle, not a start
                self.run.idle = True
                if before:
                    self.store.append(before)
                self._mark(recorded)
                return
        self.tracker.record_start(now)
        if self.tracker.crashlooping(now):
            limit, window = self.spec.restart.crashloop.limit, self.spec.restart.crashloop.window
            reason = f"{limit} starts in {window:g}s; restarts stopped until `tether start {self.name}`"
            with self._lock:
                self.run.held = "crashloop"
            events = [*before, NewEvent("agent.state", self.name, change("crashloop", reason))]
            opening = self.hooks.opening(self.name, "crashloop", f"{self.name} is crash-looping: {reason}")
            self.store.append(events + ([opening] if opening is not None else []))
            self._mark(recorded)
            self._save_tracker()
            self._notify()
            return
        instance = uuid.uuid4().hex[:12]
        log_dir = self.state.log_dir(self.name)
        argv = list(self.spec.command)
        try:
            env = self.hooks.env()  # resolves the secrets: one that cannot be resolved is a failed start
            secrets = _log_secrets(env, self.spec.secrets)
            if launch is not None:
                argv, env = launch.argv, {**env, **launch.env}
            user = self.spec.run_as
            wall = self.hooks.wall() if self.hooks.wall is not None else None
            if self.spec.kind == "openclaw":  # the gateway, with tether's plugin in a config written now
                argv, env = self._gateway(env, wall)
            if launch is not None and self.hooks.canary is not None:  # the hook must hold before it starts
                self.hooks.canary(env, wall, self._stop)
                if self._stop.is_set() or self._blocked() is not None:  # stopped or killed meanwhile
                    self._gave_back(before, recorded, launch)
                    return
            if wall is not None:  # its own user inside bubblewrap: the wall's prefix drops to it
                if launch is not None and self.spec.kind == "codex":  # Codex's sandbox cannot nest: the wall is it
                    argv = inside_wall(argv)
                argv, env, user = [*wall.prefix, *argv], {**env, **wall.env}, None
            process.rotate(log_dir, self.log_max_bytes)
            handle = process.spawn(
                process.Spec(
                    agent=self.name, argv=argv, cwd=self.cwd, env=env,
                    run_dir=self.run_dir, log_dir=log_dir, user=user, instance=instance,
                    redact=secrets, loginuid=_loginuid(wall),
                )
            )
        except process.AlreadyRunning:  # a run we did not know of (started by a daemon killed mid-spawn)
            adopted = process.adopt(self.run_dir)
            if adopted is not None and adopted.running():
                self.handle = adopted
                self.started_at = adopted.info.started_at if adopted.info is not None else now
                self.store.append([*before, NewEvent("agent.adopted", self.name, {
                    "pid": adopted.agent_pid(0), "instance": adopted.instance})])
            elif before:
                self.store.append(before)
            self._mark(recorded)
            self._notify()
            return
        except Exception as err:  # a command that cannot start is a failed start, not a daemon crash
            self._failed_start([*before, *self._task_back(launch, err)], recorded, err)
            return
        self.handle = handle
        self.started_at = now
        self.starts += 1
        self.store.append([*before, NewEvent("agent.started", self.name, {
            "pid": handle.agent_pid(), "instance": instance,
            "restart": (self._seen_run or manual) and not (launch is not None and launch.resume)})])
        self._mark(recorded)
        self._save_tracker()
        self._seen_run = True
        self._watch_health()
        self._notify()
        self.hooks.changed()

    # -- openclaw: the gateway ------------------------------------------------------------------------
    def _gateway(self, env: dict[str, str], wall: Any) -> tuple[list[str], dict[str, str]]:
        home = self.agent_dir / "home"  # the wall's private HOME, the same path inside it
        home.mkdir(mode=0o700, parents=True, exist_ok=True)
        gw = openclaw.launch(self.name, self.spec.command, env, home, self.cwd, self.hooks.url())
        prof = getattr(wall, "profile", None)
        owner = (getattr(prof, "uid", None), getattr(prof, "gid", None)) if prof is not None else (None, None)
        if owner[0] is None and self.spec.run_as:
            import pwd

            with contextlib.suppress(KeyError):
                pw = pwd.getpwnam(self.spec.run_as)
                owner = (pw.pw_uid, pw.pw_gid)
        if owner[0] is not None and owner[1] is not None and os.geteuid() == 0:  # its own files, in its HOME
            for path in (home, Path(gw.env["OPENCLAW_STATE_DIR"]), gw.config):
                with contextlib.suppress(OSError):
                    if path is not None and (path == home or home in path.parents):
                        os.chown(path, owner[0], owner[1])
        self._gateway_port = gw.port
        return gw.argv, {**env, **gw.env}

    _gateway_port: int | None = None

    def _watch_health(self) -> None:
        """openclaw: beat for the gateway while its ``/health`` answers (its port from the config written at
        its start, also after a daemon restart adopted the run)."""
        if self.spec.kind != "openclaw":
            return
        self._unwatch_health()
        port = self._gateway_port
        if port is None:
            state = self.spec.env.get("OPENCLAW_STATE_DIR") or str(self.agent_dir / "home" / ".openclaw")
            config = Path(state).expanduser() / "tether-gateway.json"
            with contextlib.suppress(Exception):
                port = openclaw.gateway_port(openclaw.read_config(config), {})
        if port is None:
            return
        every = min(self.spec.heartbeat.interval, 5.0)
        self._health = openclaw.HealthWatch(port, every, self._health_beat).start()

    def _health_beat(self) -> None:
        self.store.beat(self.name, time.time())
        self.hooks.changed()  # the monitor looks again (a stale flag ends)

    def _unwatch_health(self) -> None:
        if self._health is not None:
            self._health.stop()
            self._health = None

    def _schedule_retry(self) -> None:
        delay = self.tracker.delay()
        self._save_tracker()
        self.run.due = time.monotonic() + delay
        if delay > 0:
            self.store.emit("agent.state", self.name, **change("starting", f"restarting in {delay:.2f}s"))

    def _task_back(self, launch: agent_kinds.Launch | None, why: object) -> list[NewEvent]:
        """A task claimed for a run that never started goes back to the queue (its attempts unchanged)."""
        return tasks.unstarted(self.store, self.name, launch.task_id if launch is not None else None, why)

    def _gave_back(self, before: list[NewEvent], recorded: str | None, launch: agent_kinds.Launch) -> None:
        self.store.append([*before, *self._task_back(launch, "stopped before it started")])
        self._mark(recorded)
        self._notify()

    def _failed_start(self, before: list[NewEvent], recorded: str | None, err: Exception) -> None:
        """Recorded as a run that could not start (blocked, with the one-line reason), retried with backoff."""
        self.store.append([
            *before,
            NewEvent("agent.exited", self.name, {"code": None, "error": str(err)}),
            NewEvent("agent.state", self.name, change("blocked", f"cannot start: {err}")),
        ])
        self._mark(recorded)
        self._schedule_retry()

    # -- ending ---------------------------------------------------------------------------------------
    def _ended(self, handle: process.KeeperHandle, adopted: bool) -> None:
        """Record how the run ended (once per run, even across daemon restarts) and decide what next
        (``runstate.after_exit``: the first of its rules that holds)."""
        self._unwatch_health()
        code = handle.exit_status()
        info = handle.info
        started = info.started_at if info is not None else self.started_at
        uptime = max(0.0, time.time() - started) if started else 0.0
        if adopted and info is not None:
            uptime = 0.0  # it ended while no daemon watched: when is unknown
        instance = handle.instance
        events: list[NewEvent] = []
        already = instance is not None and instance == self._recorded()
        if not already:
            data = exit_data(code, uptime, instance, adopted, handle.killed_by())
            events.append(NewEvent("agent.exited", self.name, data))
            self.tracker.stable(uptime)
        outcome = None  # claude-code/codex: "deferred" (a human decides, then --resume), "done" or "failed"
        if self.spec.kind in agent_kinds.KINDS and not already and not self._stop.is_set():
            outcome = agent_kinds.exited(self.spec, self.state, self.store, code)
        elif self.spec.kind not in agent_kinds.KINDS and not already:
            events += tasks.orphaned(self.store, self.name, code, killed=self._kill_file() is not None)
        with self._lock:
            self.handle = None
            kill = self._kill_file()
            row = self.store.agent(self.name) if kill is not None else None
            verdict = after_exit(self.run, Exit(
                agent=self.name, code=code, recorded=already,
                kill=_kill_reason(kill) if kill is not None else None,
                killed_recorded=row is not None and row["state"] == "killed",
                rebooted=code is None and _from_previous_boot(handle), outcome=outcome,
                prompt=bool(self.spec.prompt), policy=self.spec.restart.policy,
            ))
            if verdict.hold:
                self.run.held = "exited"
            if verdict.incident:  # it failed and nothing will bring it back: a human must know
                opened = self.hooks.opening(
                    self.name, "exited", f"{self.name} exited {code} and its restart policy is "
                    f"{self.spec.restart.policy}; `tether start {self.name}` brings it back",
                )
                if opened is not None:
                    events.append(opened)
            if verdict.restart == "now":  # not a crash: no backoff, and the start leaves the crash-loop count
                if self.tracker.recent:
                    self.tracker.recent.pop()
                self.run.due = time.monotonic()
            elif verdict.restart == "backoff":
                delay = 0.0 if already else self.tracker.delay()
                self.run.due = time.monotonic() + delay
                if delay > 0:
                    events.append(NewEvent("agent.state", self.name,
                                           change("starting", f"exited {code}; restarting in {delay:.2f}s")))
                elif events and instance is not None and not adopted:
                    self._deferred = (events, instance)  # recorded with the restart, right after it
                    self._notify()
                    return
            if verdict.state is not None:
                events.append(NewEvent("agent.state", self.name, change(*verdict.state)))
        if events:
            self.store.append(events)
        self._mark(instance)
        self._save_tracker()
        self._notify()
        self.hooks.changed()

    def _recorded(self) -> str | None:
        try:
            return (self.agent_dir / "exit-recorded").read_text().strip() or None
        except OSError:
            return None

    def _mark(self, instance: str | None) -> None:
        if instance is not None:
            write_atomic(self.agent_dir / "exit-recorded", instance + "\n")

    # -- the restart budget, kept across daemon restarts ----------------------------------------------
    def _load_tracker(self) -> None:
        try:
            data = json.loads((self.agent_dir / "restarts.json").read_text())
        except (OSError, ValueError):
            return
        now, window = time.time(), self.spec.restart.crashloop.window
        self.tracker.recent.extend(float(t) for t in data.get("starts", []) if now - window <= float(t) <= now)
        self.tracker.attempt = int(data.get("attempt", 0))

    def _save_tracker(self) -> None:
        data = {"starts": list(self.tracker.recent), "attempt": self.tracker.attempt}
        with contextlib.suppress(OSError):
            write_atomic(self.agent_dir / "restarts.json", json.dumps(data) + "\n")


def _log_secrets(env: dict[str, str], names: Iterable[str]) -> list[str]:
    """What the agent's log filter replaces as lines are written, besides every credential pattern: its
    secret values and its own ``TETHER_TOKEN`` as ``redact.register`` takes them (no shorter than
    ``MIN_SECRET_LEN``, also as they appear inside JSON strings), line by line. Never None: every agent's
    output goes through the filter."""
    names = [*names, "TETHER_TOKEN"]
    return sorted({p for v in redact.forms(env[n] for n in names if n in env) for p in v.split("\n")
                   if len(p) >= redact.MIN_SECRET_LEN})


def _from_previous_boot(handle: process.KeeperHandle) -> bool:
    ident = handle.keeper_id or handle.agent_id(0)
    return ident is not None and ident.boot_id not in ("-", platform.boot_id())


def _kill_reason(path: Path) -> str:
    try:
        reason = json.loads(path.read_text()).get("reason")
    except (OSError, ValueError, AttributeError):
        reason = None
    return f"kill switch: {reason}" if reason else "kill switch engaged"


def _loginuid(wall: Any) -> int | None:
    """A walled run's audit session: its login uid, the agent's (a root daemon's keeper sets it)."""
    uid = getattr(getattr(wall, "profile", None), "uid", None)
    return uid if isinstance(uid, int) and os.geteuid() == 0 else None
