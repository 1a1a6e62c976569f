"""The daemon's core: the runbook's agents, their supervisors, the heartbeat monitor and the control
verbs the API and CLI call. Holds no HTTP: ``tether.api.app`` serves it, ``daemon.server`` runs it."""

from __future__ import annotations

import asyncio
import contextlib
import os
import pwd
import stat
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, TypeVar

from tether import heartbeat, redact, status_file, waiting
from tether.approvals import Approvals
from tether.daemon import hostreload, memory
from tether.daemon.agentenv import AgentEnv
from tether.daemon.beats import BeatWriter
from tether.daemon.canarywatch import CanaryWatch
from tether.daemon.channels import Channels
from tether.daemon.liveness import Liveness
from tether.daemon.supervisor import AgentSupervisor, Hooks
from tether.deadman import DeadMan, open_incidents
from tether.errors import NotFound, RunbookError, StoreError, UsageError
from tether.export import Exporter
from tether.fleet.seam import place
from tether.killswitch import keep_specs, kill_agent, lift, replay_pending
from tether.lifecycle import change
from tether.notify.notifier import Notifier
from tether.process import sleep_inhibitor
from tether.runbook import LoadedRunbook, load
from tether.runbook.model import Agent
from tether.runbook.summary import boundary
from tether.secrets import resolve_all
from tether.signals import status_signals
from tether.store import NewEvent, Store, open_store

#: Environment variables an agent inherits from the daemon; everything else is dropped, so no
#: approver or admin credential (nor any other TETHER_* setting of the daemon) can leak into an agent.
#: Wall clock and monotonic clock drifting apart by more than this between two monitor wake-ups means
#: the host was suspended (or its clock was set): agents are re-baselined instead of all going stale.
CLOCK_JUMP = 5.0
#: The monitor wakes at least this often (pending kill records, the clock-jump check, the inhibitor).
MONITOR_MAX_SLEEP = 5.0
#: How long the sleep inhibitor is kept after the last agent ended.
INHIBIT_LINGER = 2.0
#: How long a control verb (stop, restart) waits for the agent before answering.
VERB_WAIT_EXTRA = 5.0


_F = TypeVar("_F", Future[None], asyncio.Future[None])


class Clock:
    """The daemon's two clocks; tests pass their own to fake a suspend or a clock jump."""

    def wall(self) -> float:
        return time.time()

    def mono(self) -> float:
        return time.monotonic()


class Daemon:
    def __init__(self, loaded: LoadedRunbook, clock: Clock | None = None) -> None:
        vet(loaded)
        self.loaded = loaded
        self.state = loaded.state
        self.clock = clock or Clock()
        self._prepare_state_dir()
        self.place = place(loaded.store_url, loaded.runbook.host.name)  # alone, or a node of a fleet
        self.node = self.place.node
        self.store: Store = open_store(loaded.store_url, node=self.place.store_node)
        self.store.on_change(self._write_status)
        self.beats = BeatWriter(self.store)
        self.liveness = Liveness(self)  # beats for agents whose heartbeat.source is not the SDK
        self.on_host_change: list[Callable[[], None]] = []
        self.approvals = Approvals(self.store, on_change=lambda: self._monitor_wake.set())
        self.url = ""
        self.supervisors: dict[str, AgentSupervisor] = {}
        self._lock = threading.RLock()
        self._reload_lock = threading.Lock()
        self._monitor_wake = threading.Event()
        self._stopping = threading.Event()
        self._monitor_thread: threading.Thread | None = None
        self._flags: dict[str, set[str]] = {}  # agent -> open stale/stuck incident kinds
        self._inhibitor: contextlib.ExitStack | None = None
        self._idle_since: float | None = None
        self.inhibitor_message: str | None = None
        self.store_failing = False  # the monitor's last wake failed on the store (logged once, not every wake)
        self.last_jump: float | None = None
        self.shutdown_requested = threading.Event()
        self.agent_uids: set[int] = set()
        self.proxy: Any = None  # tether.wall.proxy.EgressProxy, started by server.serve before boot
        self.writewatch: Any = None  # tether.wall.writewatch.WriteWatch, started by server.serve before boot
        self.started = time.time()
        self.probe_results: list[Any] = []  # set by the host watch (disk, network probes)
        self._failed_incidents: set[int] = set()
        self.agent_env = AgentEnv(self)  # what each agent runs with: environment, token, TMPDIR, wall
        self.canaries = CanaryWatch(self)  # claude-code/codex: the hook proven at each start and daily
        self._delivery()

    def _delivery(self) -> None:
        """Notifications (owner, then backup), the event exporter and the dead-man's switch: each with its
        own worker, so a slow receiver never slows supervision."""
        host = self.loaded.runbook.host
        self.notifier = Notifier(self.store, lambda: self.loaded.runbook)
        self.channels = Channels(self)  # Telegram, ntfy and signed links: deciding from a phone (issue 21)
        self.notifier.signed_link = self.channels.link
        self.exporter = Exporter(self.store, host.export, host=host.name)
        self.deadman = (
            DeadMan(host.deadman.url, host.deadman.period, check=open_incidents(self.store), healthy=self.healthy)
            if host.deadman is not None else None
        )

    # -- start and stop --------------------------------------------------------------------------
    def _prepare_state_dir(self) -> None:
        root = self.state.root
        root.mkdir(parents=True, exist_ok=True)
        os.chmod(root, stat.S_IRWXU)  # 0700: agents running as other users cannot read or write it

    def boot(self, url: str) -> None:
        self.url = url
        self.state.write_runbook_copy(self.loaded.path, self.loaded.text)  # for recovery commands
        keep_specs(self.state, self.loaded.runbook.agents)  # `tether --home DIR kill` reads no runbook
        replayed = replay_pending(self.state, self.store)
        self.store.emit("daemon.started", None, pid=os.getpid(), url=url, runbook=str(self.loaded.path),
                        replayed=replayed)
        for inc in self.store.incidents("open"):
            if inc["agent"] and inc["kind"] in heartbeat.FLAGGED_STATES:
                self._flags.setdefault(inc["agent"], set()).add(inc["kind"])
        self.place.boot(self, url)
        for name, spec in self.loaded.runbook.agents.items():
            self._add(name, spec)
        self.place.booted(self)
        self._monitor_thread = threading.Thread(target=self._monitor, name="tether-monitor", daemon=True)
        self._monitor_thread.start()
        self.notifier.base_url = url.rstrip("/")
        self.exporter.start()
        if self.deadman is not None:
            self.deadman.start()
        self.canaries.start()
        self.channels.start()

    def _add(self, name: str, spec: Agent, fresh: bool = False) -> None:
        if self.place.refuses(self, name, spec):  # never on two nodes at once
            return
        row = self.store.agent(name)
        registered: dict[str, Any] = {"info": self._info(spec), **self.place.registration()}
        events = [NewEvent("agent.registered", name, registered)]
        if row is None:
            desired = "running" if spec.autostart else "stopped"
            events.append(NewEvent("agent.desired", name, {"desired": desired}))
        else:
            desired = row["desired"] if row["desired"] in ("running", "stopped", "killed") else "running"
        self.store.append(events)
        if self.place.refuses(self, name, spec):  # another node registered it first
            return
        held = "crashloop" if row is not None and row["state"] == "crashloop" and desired == "running" else None
        cwd = self.loaded.agent_cwd(name)
        if spec.cwd is None:  # the default workspace is ours to make; an explicit cwd must exist
            cwd.mkdir(parents=True, exist_ok=True)
            if spec.run_as:
                with contextlib.suppress(KeyError, OSError):
                    pw = pwd.getpwnam(spec.run_as)
                    os.chown(cwd, pw.pw_uid, pw.pw_gid)
        if spec.run_as:
            with contextlib.suppress(KeyError):
                uid = pwd.getpwnam(spec.run_as).pw_uid
                if uid != os.geteuid():  # same_user: the daemon's own CLI must keep its socket
                    self.agent_uids.add(uid)
        with contextlib.suppress(Exception):  # unresolvable now: the start fails and says why
            redact.register(*resolve_all(spec.secrets).values())  # also for agents adopted, not spawned
        with contextlib.suppress(Exception):  # a run adopted from the last daemon needs its proxy's sockets (in
            self.agent_env.proxy_socket(name)  # the wall, its only way out); a failure here is told by the next start
        sup = AgentSupervisor(
            spec, self.state, self.store, cwd,
            Hooks(env=lambda: self.agent_env.env(spec), url=lambda: self.url, opening=self._opening,
                  resolve=self.resolve, changed=self.poke, wall=lambda: self.agent_env.wall(spec.name),
                  canary=lambda env, wall, cancel: self.canaries.before_start(spec.name, env, wall, cancel)),
            desired=desired, log_max_bytes=self.loaded.runbook.host.retention.log_file_size,
        )
        with self._lock:
            self.supervisors[name] = sup
        sup.begin(held=held, fresh=fresh)
        self.poke()

    def halt(self, stop_agents: bool = True) -> None:
        """Stop supervising (and, with ``stop_agents``, stop every agent, all at once), then close."""
        self._stopping.set()
        self.canaries.stop()
        self.poke()
        sups = list(self.supervisors.values())
        for sup in sups:
            sup.shutdown(stop_agent=stop_agents)
        for sup in sups:
            sup.join()
        if self._monitor_thread is not None:
            self._monitor_thread.join(timeout=10)
        self._release_inhibitor()
        self.place.stop(self)  # a clean stop is no lost node
        self.beats.close()
        self.store.emit("daemon.stopped", None, pid=os.getpid(), agents_stopped=stop_agents)
        for part in (self.channels.stop, self.notifier.close, self.exporter.stop,
                     self.deadman.stop if self.deadman else None):
            if part is not None:
                with contextlib.suppress(Exception):
                    part()
        self.store.close()

    @staticmethod
    def _info(spec: Agent) -> dict[str, Any]:
        return {
            "kind": spec.kind,
            "owner": spec.owner.model_dump(),
            "backup": spec.backup.model_dump(),
            "heartbeat": spec.heartbeat.model_dump(),
            "restart": spec.restart.policy,
            "run_as": spec.run_as,
        }

    def _write_status(self, names: set[str]) -> None:
        now = self.clock.wall()
        for name in names:
            row = self.store.agent(name)
            if row is not None:
                row["state"], row["reason"] = heartbeat.judge(row, now)
                row["queue_depth"], row["oldest_queued"] = self.store.queues(name).get(name, (0, None))
                row["signals"] = status_signals(self.store, now, name).get(name)
                status_file.write(self.state, row, now)

    # -- control verbs (API and CLI) ---------------------------------------------------------------
    def agent_names(self) -> list[str]:
        return list(self.supervisors)

    def _sup(self, agent: str) -> AgentSupervisor:
        sup = self.supervisors.get(agent)
        if sup is None:
            raise NotFound(f"no agent named {agent!r} in {self.loaded.path}")
        return sup

    def _wait(self, agent: str) -> float:
        return self._sup(agent).spec.kill.grace + VERB_WAIT_EXTRA

    def beat(self, agent: str, task: str | None, progress: str | None) -> None:
        """Record a beat (with the others that arrive meanwhile, in one write); return once it is on disk."""
        self._beat(agent, task, progress, self.beats.submit).result()

    def beat_soon(self, agent: str, task: str | None, progress: str | None) -> asyncio.Future[None]:
        """As ``beat``, from the event loop: returns at once the future the HTTP API awaits."""
        return self._beat(agent, task, progress, self.beats.submit_async)

    def _beat(self, agent: str, task: str | None, progress: str | None, submit: Callable[..., _F]) -> _F:
        self._sup(agent)
        task = None if task is None else redact.redact(task)  # beats are no events: redact them here
        progress = None if progress is None else redact.redact(progress)
        done = submit(agent, self.clock.wall(), task, progress)
        if self._flags.get(agent):  # stale or stuck: the monitor judges it again once it is written
            done.add_done_callback(lambda _: self.poke())
        return done

    def touched(self, agent: str) -> None:
        """Something the agent did (a task started or ended) may end a stuck state."""
        if self._flags.get(agent):
            self.poke()

    def start(self, agent: str) -> None:
        if self.state.kill_engaged(agent):
            raise UsageError(f"{agent} is killed; `tether resume {agent}` lifts the kill switch and starts it")
        self._sup(agent).set_desired("running", wait=self._wait(agent))

    def stop(self, agent: str) -> None:
        self._sup(agent).set_desired("stopped", wait=self._wait(agent))

    def restart(self, agent: str) -> None:
        if self.state.kill_engaged(agent):
            raise UsageError(f"{agent} is killed; `tether resume {agent}` lifts the kill switch and starts it")
        self._sup(agent).restart(wait=self._wait(agent))

    def kill(self, agent: str, reason: str | None, by: str | None = None) -> dict[str, Any]:
        """The kill switch for one agent; the answer is the kill's record (what was found, what survived)."""
        sup = self._sup(agent)
        got = kill_agent(self.state, agent, sup.spec.kill, reason, store=self.store, by=by)
        sup.set_desired("killed", record=False)
        return got

    def resume(self, agent: str) -> None:
        sup = self._sup(agent)
        lift(self.state, agent, store=self.store)
        sup.set_desired("running", record=False, wait=self._wait(agent))

    def reload(self) -> list[str]:
        """Re-read the runbook: an invalid one is rejected (``RunbookError``) and the old one stays;
        changed agents restart gracefully; new ones start; removed ones stop; the rest are untouched.
        One reload at a time (SIGHUP and the API may ask together)."""
        with self._reload_lock:
            return self._reload()

    def _reload(self) -> list[str]:
        new = load(self.loaded.path)
        vet(new)
        host_changed = hostreload.check(self.loaded, new)
        changed = []
        old = {n: a for n, a in self.loaded.runbook.agents.items() if n in self.supervisors}  # not refused ones
        stopping: list[AgentSupervisor] = []
        for name, spec in new.runbook.agents.items():
            if name not in old:
                changed.append(name)
            elif spec != old[name] or new.agent_cwd(name) != self.loaded.agent_cwd(name):
                changed.append(name)
                stopping.append(self.supervisors[name])
        removed = [name for name in old if name not in new.runbook.agents]
        stopping += [self.supervisors[name] for name in removed]
        for sup in stopping:  # all at once: each waits its own grace
            sup.shutdown(stop_agent=True, reason="the runbook changed")
        for sup in stopping:
            sup.join()
        with self._lock:
            for name in removed:
                self.supervisors.pop(name)
        for name in removed:
            self.store.emit("agent.state", name, **change("stopped", "removed from the runbook"))
        self.loaded = new
        if self.writewatch is not None:  # the uids whose denied writes are recorded follow the runbook
            self.writewatch.update()
        self.state.write_runbook_copy(new.path, new.text)
        keep_specs(self.state, new.runbook.agents)
        for name in changed:
            self._add(name, new.runbook.agents[name], fresh=name in old)
        if host_changed:
            self._apply_host(host_changed)
        self.store.emit("runbook.reloaded", None, restarted=changed, removed=removed, host=host_changed)
        return changed

    def _apply_host(self, fields: list[str]) -> None:
        """The new ``host:`` settings, live (``fields``: those that changed; ``hostreload`` says which may)."""
        host = self.loaded.runbook.host
        if "export" in fields:
            self.exporter.stop()
            self.exporter = Exporter(self.store, host.export, host=host.name)
            self.exporter.start()
        if "deadman" in fields:
            if self.deadman is not None:
                self.deadman.stop()
            self.deadman = (DeadMan(host.deadman.url, host.deadman.period, check=open_incidents(self.store),
                                    healthy=self.healthy) if host.deadman is not None else None)
            if self.deadman is not None:
                self.deadman.start()
        for sup in list(self.supervisors.values()):
            sup.log_max_bytes = host.retention.log_file_size
        for wake in self.on_host_change:  # the host watch probes and checks the disk again now
            wake()

    def shutdown(self) -> None:
        self.shutdown_requested.set()

    # -- incidents --------------------------------------------------------------------------------
    def incident(self, agent: str | None, kind: str, summary: str, **data: Any) -> bool:
        """Open an incident unless one of this kind is already open for this agent (no storms)."""
        event = self._opening(agent, kind, summary, **data)
        if event is not None:
            self.store.append([event])
            self.poke()  # the notifier tells the owner, the dead-man's switch says /fail
        return event is not None

    def resolve(self, agent: str | None, kind: str, why: str) -> None:
        events = self._resolving(agent, kind, why)
        if events:
            self.store.append(events)

    def _opening(self, agent: str | None, kind: str, summary: str, **data: Any) -> NewEvent | None:
        for inc in self.store.incidents("open", agent):
            if inc["kind"] == kind and inc["agent"] == agent:
                return None
        return NewEvent("incident.opened", agent, {"kind": kind, "summary": summary, **data})

    def _resolving(self, agent: str | None, kind: str, why: str) -> list[NewEvent]:
        return [
            NewEvent("incident.resolved", agent, {"incident_id": inc["id"], "kind": kind, "why": why})
            for inc in self.store.incidents("open", agent)
            if inc["kind"] == kind and inc["agent"] == agent
        ]

    # -- the monitor ---------------------------------------------------------------------------------
    def poke(self) -> None:
        self._monitor_wake.set()

    def _monitor(self) -> None:
        """Deadline-driven: sleep until the earliest moment some agent's state would change (or a poke,
        or ``MONITOR_MAX_SLEEP``), judge every agent as of one ``now``, act on what changed."""
        last_wall, last_mono = self.clock.wall(), self.clock.mono()
        while not self._stopping.is_set():
            self._monitor_wake.clear()
            try:
                wall, mono = self.clock.wall(), self.clock.mono()
                jump = (wall - last_wall) - (mono - last_mono)
                last_wall, last_mono = wall, mono
                wait = self._monitor_once(wall, jump)
            except StoreError as err:  # corrupt, full, unreachable: its one line once, then try again soon
                if not self.store_failing:
                    self.store_failing = True
                    _log(f"tether: monitor: the store is failing: {err}")
                wait = 1.0
            except Exception as err:
                _log(f"tether: monitor: {err!r}")
                wait = 1.0
            else:
                if self.store_failing:
                    self.store_failing = False
                    _log("tether: monitor: the store is back")
            memory.trim()  # free pages of the request threads' heaps back to the kernel, once a minute
            self._monitor_wake.wait(wait)

    def _monitor_once(self, now: float, jump: float) -> float:
        if abs(jump) > CLOCK_JUMP:
            self._clock_jumped(now, jump)
        replay_pending(self.state, self.store)
        deadlines = []
        beat_deadline = self.liveness.wake(now)  # process, output, status file: beats written before judging
        if beat_deadline is not None:
            deadlines.append(beat_deadline)
        with self._lock:
            names = set(self.supervisors)
        rows = [row for row in self.store.agents() if row["name"] in names]
        if waiting.lift_settled(self.store, rows):  # judge them as they are now
            rows = [row for row in self.store.agents() if row["name"] in names]
        for row in rows:
            self._judge(row, now)
            deadline = heartbeat.next_change(row, now)
            if deadline is not None:
                deadlines.append(deadline + 0.001)  # states flip strictly after their deadline
        fleet_deadline = self.place.wake(self, now)  # a node: beat, lost nodes, requests pending here, pins
        if fleet_deadline is not None:
            deadlines.append(fleet_deadline)
        approval_deadline = self.approvals.tick(now)
        if approval_deadline is not None:
            deadlines.append(approval_deadline)
        if self.deadman is not None:  # any newly opened incident: /fail now, not at the next period
            open_ = self.store.incidents("open")
            fresh = [i for i in open_ if i["id"] not in self._failed_incidents]
            self._failed_incidents = {i["id"] for i in open_}  # resolved ones drop out: the set stays small
            if fresh:
                self.deadman.fail(fresh[-1]["summary"])
        try:
            notify_deadline = self.notifier.process(now)  # decides and queues; delivery is on its worker
        except Exception as err:
            print(f"tether: notifier: {err!r}", file=sys.stderr, flush=True)
            notify_deadline = now + 1.0
        if notify_deadline is not None:
            deadlines.append(notify_deadline)
        release_at = self._follow_inhibitor()
        if release_at is not None:
            deadlines.append(now + max(0.0, release_at - self.clock.mono()))
        wait = min(deadlines) - now if deadlines else MONITOR_MAX_SLEEP
        return min(max(wait, 0.0), MONITOR_MAX_SLEEP)

    # -- what tether.fleet asks of the daemon (through fleet/seam.py) -----------------------------------
    def local_agents(self) -> list[str]:
        return self.agent_names()

    def wake_approvals(self) -> None:
        """A decision recorded on another node: this node's waiters re-read the store now."""
        self.approvals._notify()

    def _clock_jumped(self, now: float, jump: float) -> None:
        """A suspend (or a clock set): one ``host.suspended`` incident, and every live agent's
        heartbeat and progress re-baselined to ``now`` instead of every agent going stale."""
        self.last_jump = jump
        what = f"the host was suspended for about {jump:.0f}s" if jump > 0 else f"the clock went back {-jump:.0f}s"
        with self._lock:
            names = list(self.supervisors)
        self.store.append([NewEvent("heartbeat.rebased", n, {"jump_s": round(jump, 3)}, ts=now) for n in names])
        self.incident(None, "host.suspended", f"{what}; heartbeats re-baselined", jump_s=round(jump, 3))

    def _judge(self, row: dict[str, Any], now: float) -> None:
        """Compare the agent's judged state with the recorded one; record a change together with the
        incidents it opens or resolves (one transaction), then act (``on_stale``/``on_stuck``)."""
        name = row["name"]
        stored = str(row["state"])
        state, reason = heartbeat.judge(row, now)
        flags = self._flags.setdefault(name, set())
        events: list[NewEvent] = []
        restart = False
        if state in heartbeat.FLAGGED_STATES:
            if state != stored:
                events.append(NewEvent("agent.state", name, change(state, reason)))
            for kind in sorted(flags - {state}):  # stale -> stuck or back
                events += self._resolving(name, kind, f"now {state}")
                flags.discard(kind)
            if state not in flags:
                flags.add(state)
                opening = self._opening(name, state, f"{name} is {state}: {reason}")
                if opening is not None:
                    events.append(opening)
                sup = self.supervisors.get(name)
                if sup is not None:
                    action = sup.spec.heartbeat.on_stale if state == "stale" else sup.spec.heartbeat.on_stuck
                    restart = action == "restart"
        else:
            if stored in heartbeat.FLAGGED_STATES:
                events.append(NewEvent("agent.state", name, change(state, reason)))
            if flags and state in heartbeat.LIVE_STATES:
                for kind in sorted(flags):
                    events += self._resolving(name, kind, reason or f"{state} again (restarted)")
                flags.clear()
        if events:
            self.store.append(events)
        if restart:
            sup = self.supervisors.get(name)
            if sup is not None:
                sup.restart()

    # -- the sleep inhibitor --------------------------------------------------------------------------
    def _follow_inhibitor(self) -> float | None:
        """Hold a sleep inhibitor while any agent runs, and ``INHIBIT_LINGER`` seconds after the last
        ended (a restarting agent does not churn it). Monitor thread only; returns when (monotonic) the
        monitor should look again to release it, if it should."""
        running = any(sup.alive for sup in list(self.supervisors.values()))
        mono = self.clock.mono()
        if running:
            self._idle_since = None
        elif self._idle_since is None:
            self._idle_since = mono
        if running and self._inhibitor is None and not self._stopping.is_set():
            stack = contextlib.ExitStack()
            got = stack.enter_context(sleep_inhibitor("tether: agents are running"))
            self._inhibitor = stack
            if got.message != self.inhibitor_message:
                self.inhibitor_message = got.message
                self.store.emit("host.inhibitor", None, active=got.active, message=got.message)
        elif not running and self._inhibitor is not None and self._idle_since is not None:
            if mono - self._idle_since >= INHIBIT_LINGER:
                self._release_inhibitor()
            else:
                return self._idle_since + INHIBIT_LINGER
        return None

    def _release_inhibitor(self) -> None:
        stack, self._inhibitor = self._inhibitor, None
        if stack is not None:
            with contextlib.suppress(Exception):
                stack.close()

    def healthy(self) -> bool:
        """For the systemd watchdog: the monitor thread is alive and no supervisor thread died."""
        if self._monitor_thread is None or not self._monitor_thread.is_alive():
            return False
        return all(sup.thread_alive for sup in list(self.supervisors.values()))


def vet(loaded: LoadedRunbook) -> None:
    """Refuse what ``tether check`` refuses: an agent whose run_as is the daemon's own user without
    ``same_user: true``."""
    errors, _ = boundary(loaded)
    if errors:
        raise RunbookError(errors)


def _log(line: str) -> None:
    with contextlib.suppress(Exception):  # stderr may be gone (a closed pipe): the monitor goes on
        print(line, file=sys.stderr, flush=True)
