"""Denied writes, seen by the kernel when the agent makes them, recorded as ``wall.violation`` events.

The wall's read-only mounts, hidden paths and the agent's own user answer a write outside scope with
EROFS, EACCES or EPERM and tell no one; the kernel's audit subsystem can (``auditrules``: rules for the
agents' uids only, every other process of the host left out of it). ``WriteWatch`` reads the records
(``auditlink.Reader``, the read-only multicast group: it never takes an audit daemon's place), gathers each
denial (``auditrecords``) and hands it on with the agent it belongs to:

- by the run's audit session: each walled run's keeper sets its login uid at its start (a root-only
  change once set), so the kernel gives the run a session number of its own that every process of the
  run inherits and none can shed; such a denial is the agent's and counts toward its incident;
- otherwise by uid, when exactly one of this daemon's agents runs as it: a process of the agent's user
  outside its runs (the sandbox drill's probe, ``tether exec`` from a shell): recorded, never counted;
  when several agents share the uid, it is not recorded (``unattributed`` in the watch's status).

An agent can make denials as fast as it likes: the same denial again (agent, call, path, errno) within
``REPEAT_S`` is counted into the next record of it (``repeated``), and each agent's records are limited
to ``RATE`` a second (``BURST`` at once); the ones over it are counted, and the next record says how
many (``suppressed``). Records the kernel sent faster than the watch read them (its socket's
buffer, ``auditlink.RCVBUF``, overflowed) are lost: the next record says so (``lost``). An ENOENT is
kept only for a path in a tree the wall hides from the agent (a write below its state dir, another
agent's workspace, ``/tmp``): anywhere else it is an everyday miss. A
denial inside the agent's own private HOME, directly (its agent CLI saving its
state there: Claude Code tries ``~/.claude.json`` at every start), is recorded but does not count toward
the incident: that HOME is the agent's, kept read-only so its hook settings stay tether's, which
(``.claude/``, ``.codex/``) still count.
The watch runs on a thread of its own; a malformed record or a failing store never ends it; every
``CHECK_S`` (``TETHER_WALL_AUDIT_CHECK``, a duration) it checks that the kernel still has its rules (an
``auditctl -D`` takes them out) and puts them back, saying so in the daemon's log. Where the
kernel's audit cannot be used (a daemon that is not root, no audit in the kernel, audit locked), the
watch is off and ``reason`` says why: denied writes are then recorded only by the sandbox drill.
``TETHER_WALL_AUDIT=off`` in the daemon's environment turns it off too (a host whose audit rules are
someone else's to set).
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Callable
from typing import Any

from tether.durations import parse_duration
from tether.wall import auditlink, auditrules, plan
from tether.wall.auditrecords import Assembler, Denial
from tether.wall.profile import SCRATCH, under
from tether.wall.violations import EVENT, key

OFF_VAR = "TETHER_WALL_AUDIT"  # "off": leave the kernel's audit alone (a host whose audit is policed)
CHECK_S = 30.0  # how often the kernel's rules are checked (and put back when someone took them out)
CHECK_VAR = "TETHER_WALL_AUDIT_CHECK"  # a duration: CHECK_S otherwise
REPEAT_S = 60.0  # the same denial (agent, call, path, errno) again within it: counted into the next record
RATE = 1.0  # records a second per agent, sustained: a hostile agent's worst is 86,400 a day
BURST = 100
SESSION_REFRESH_S = 0.2
UNSET = 4294967295

#: (agent or None, run instance or None, counted)
Owner = tuple[str | None, str | None, bool]


class WriteWatch:
    """``attribute(uid, session)`` says whose a denial is; ``record(agent, data, counted)`` stores it;
    ``uids()`` gives the uids to watch (``update`` reads it again: after a reload)."""

    def __init__(
        self,
        attribute: Callable[[int, int], Owner],
        record: Callable[[str, dict[str, Any], bool], None],
        uids: Callable[[], set[int]] = set,
        hidden: Callable[[str, str], bool] = lambda agent, path: False,
        clock: Callable[[], float] = time.monotonic,
        registry: Any = auditrules.REGISTRY,
    ) -> None:
        self._attribute = attribute
        self._record = record
        self._uids = uids
        self._hidden = hidden
        self._clock = clock
        self._registry = registry
        self._reader: auditlink.Reader | None = None
        self._thread: threading.Thread | None = None
        self._stopped = threading.Event()
        self._lock = threading.Lock()
        self._buckets: dict[str, tuple[float, float, int]] = {}  # agent -> (tokens, at, suppressed)
        self._repeats: dict[tuple[str, str, str, str], tuple[float, int]] = {}  # denial -> (recorded at, again)
        self._lost = False  # records were lost since the last record: the next one says so
        self.uids: set[int] = set()
        self.reason: str | None = "not started"
        self.counts = {"recorded": 0, "repeated": 0, "suppressed": 0, "unattributed": 0, "lost": 0, "restored": 0}

    @property
    def on(self) -> bool:
        return self.reason is None

    def update(self) -> str | None:
        """Watch the uids ``uids()`` gives now; returns why it cannot, or None."""
        return self.watch(self._uids())

    def watch(self, uids: set[int]) -> str | None:
        """Report the denied writes of these uids from now on (empty: none); returns why it cannot, or None."""
        if os.environ.get(OFF_VAR, "").lower() == "off":
            self.reason = f"{OFF_VAR}=off: the daemon leaves the kernel's audit alone"
            return self.reason
        if os.geteuid() != 0:
            self.reason = "the daemon is not root: reading the kernel's audit needs root"
            return self.reason
        if not auditrules.arches():
            self.reason = f"no audit rules for this machine's architecture ({os.uname().machine})"
            return self.reason
        try:
            if self._reader is None and uids:  # the reader first: no record of the new rules is missed
                self._reader = auditlink.Reader()
            auditrules.register(uids, self._registry)
        except OSError as err:
            self.reason = f"the kernel's audit refused: {err.strerror or err} (is audit locked: `auditctl -s`?)"
            return self.reason
        except Exception as err:  # whatever it is, the daemon goes on without the watch, and says why
            self.reason = f"the kernel's audit could not be used: {err!r}"
            return self.reason
        self.uids = set(uids)
        self.reason = None
        if self._reader is not None and self._thread is None:
            self._thread = threading.Thread(target=self._loop, name="tether-writewatch", daemon=True)
            self._thread.start()
        return None

    def stop(self) -> None:
        """Stop reading and take this daemon's rules out of the kernel."""
        self._stopped.set()
        if self._thread is not None:
            self._thread.join(timeout=2)
        if self._reader is not None:
            self._reader.close()
            print(f"tether: writewatch: {', '.join(f'{k} {v}' for k, v in self.counts.items())}", flush=True)
        if self.uids and os.geteuid() == 0:
            with contextlib.suppress(OSError):
                auditrules.register((), self._registry)
        self.uids = set()

    def _loop(self) -> None:
        assert self._reader is not None
        asm = Assembler()
        period = check_every()
        check_at = time.monotonic() + period
        while not self._stopped.is_set():
            if time.monotonic() >= check_at:
                check_at = time.monotonic() + period
                self._check()
            try:
                got = self._reader.read(0.25)
            except OSError:  # ENOBUFS: the socket's buffer overflowed, records were lost
                self.counts["lost"] += 1
                self._lost = True
                continue
            denials: list[Denial] = []
            for kind, text in got:
                denials += asm.add(kind, text)
            if not got:
                denials += asm.add(0, "")  # expire sets that never ended
            for d in denials:
                try:
                    self._handle(d)
                except Exception as err:  # a record or a store failing must not end the watch
                    print(f"tether: writewatch: a denied write was not recorded: {err!r}", flush=True)

    def _check(self) -> None:
        """Put this daemon's rules back when someone took them out of the kernel, and say so."""
        uids = set(self.uids)
        try:
            if not uids or auditrules.intact(uids):
                return
            auditrules.register(uids, self._registry)
            back = auditrules.intact(uids)  # said only once the kernel shows them
        except Exception as err:  # OSError from the kernel, or anything else: the watch goes on reading
            print(f"tether: writewatch: the kernel's audit rules could not be checked or put back: {err!r}", flush=True)
            return
        if not back:
            print("tether: writewatch: the kernel's audit rules for the agents are gone: put back, they did not hold",
                  flush=True)
            return
        self.counts["restored"] += 1
        print("tether: writewatch: the kernel's audit rules for the agents had been taken out: put back", flush=True)

    def _handle(self, d: Denial) -> None:
        if d.uid not in self.uids:
            return
        agent, instance, counted = self._attribute(d.uid, d.session)
        if agent is None:
            self.counts["unattributed"] += 1
            return
        if d.error == "ENOENT" and not self._hidden(agent, d.path):  # a plain miss, not the wall
            return
        same = (agent, d.call, d.path, d.error)
        now = self._clock()
        last, again = self._repeats.get(same, (-REPEAT_S, 0))
        if now - last < REPEAT_S:  # a loop retrying the same write: one record a minute says how often
            self._repeats[same] = (last, again + 1)
            self.counts["repeated"] += 1
            return
        if len(self._repeats) > 10_000:  # bounded
            self._repeats.clear()
        self._repeats[same] = (now, 0)
        suppressed = self._take(agent)
        if suppressed is None:
            self.counts["suppressed"] += 1
            return
        data: dict[str, Any] = {
            "kind": "write",
            "path": d.path,
            "verdict": "denied",
            "error": d.error,
            "source": "audit",
            "call": d.call,
            "pid": d.pid,
            "comm": d.comm,
            "exe": d.exe,
            "command": d.command,
            "in_run": counted,
        }
        if len(d.paths) > 1:
            data["paths"] = d.paths
        if instance is not None:
            data["instance"] = instance
        if suppressed:
            data["suppressed"] = suppressed
        if again:
            data["repeated"] = again  # times the same denial came in the minute before this record
        if self._lost:
            self._lost = False
            data["lost"] = "denials came faster than the daemon read them: some before this one were not seen"
        self._record(agent, data, counted)
        self.counts["recorded"] += 1

    def _take(self, agent: str) -> int | None:
        """A token of the agent's bucket: the count suppressed since its last record, None when empty."""
        now = self._clock()
        with self._lock:
            tokens, at, suppressed = self._buckets.get(agent, (float(BURST), now, 0))
            tokens = min(float(BURST), tokens + (now - at) * RATE)
            if tokens < 1:
                self._buckets[agent] = (tokens, now, suppressed + 1)
                return None
            self._buckets[agent] = (tokens - 1, now, 0)
            if len(self._buckets) > 10_000:  # bounded: agents come and go with reloads
                self._buckets.clear()
            return suppressed

    def status(self) -> dict[str, Any]:
        return {"on": self.on, "reason": self.reason, "uids": sorted(self.uids), **self.counts}


def check_every() -> float:
    """``TETHER_WALL_AUDIT_CHECK`` (a duration) from the daemon's environment, else ``CHECK_S``."""
    raw = os.environ.get(CHECK_VAR, "")
    try:
        return max(0.5, parse_duration(raw)) if raw else CHECK_S
    except ValueError:
        print(f"tether: writewatch: {CHECK_VAR}={raw!r} is not a duration; {CHECK_S:g}s it is", flush=True)
        return CHECK_S


def session_of(pid: int) -> int | None:
    """The audit session of a process (None: gone, or no audit)."""
    try:
        with open(f"/proc/{pid}/sessionid") as f:
            got = int(f.read().strip() or UNSET)
    except (OSError, ValueError):
        return None
    return None if got == UNSET else got


def for_daemon(daemon: Any, violations_watch: Any) -> WriteWatch:
    """The daemon's watch: runs by their keepers' sessions, records through its store and the violations
    watch (``violations.Watch``); the uids its walled agents run as. Call ``update()`` to start, and after
    a reload: the uids follow the runbook."""
    from tether.store.base import NewEvent  # lazy: the store for the daemon only (doctor reads this module)

    sessions: dict[int, tuple[str, str | None]] = {}
    refreshed = [0.0]

    def refresh() -> None:
        sessions.clear()
        for name, sup in list(daemon.supervisors.items()):
            handle = getattr(sup, "handle", None)
            kid = getattr(handle, "keeper_id", None) if handle is not None else None
            if handle is None or kid is None:
                continue
            ses = session_of(kid.pid)
            if ses is not None:
                sessions[ses] = (name, handle.instance)
        refreshed[0] = time.monotonic()

    def uid_agents(uid: int) -> list[str]:
        out = []
        for name, spec in daemon.loaded.runbook.agents.items():
            if spec.sandbox == "on" and daemon.agent_env.ids(spec)[0] == uid:
                out.append(name)
        return out

    def attribute(uid: int, session: int) -> Owner:
        if session != UNSET:
            if session not in sessions and time.monotonic() - refreshed[0] > SESSION_REFRESH_S:
                refresh()
            if session in sessions:
                agent, instance = sessions[session]
                return agent, instance, True
        names = uid_agents(uid)
        if len(names) == 1:
            return names[0], None, False
        return None, None, False

    def own_home(agent: str, path: str) -> bool:
        """Directly in the agent's private HOME: the folder itself (a create or removal there) or a file in it."""
        home = str(daemon.state.agent_dir(agent) / "home")
        return path == home + "/" or (not path.endswith("/") and os.path.dirname(path) == home)

    def record(agent: str, data: dict[str, Any], counted: bool) -> None:
        if counted and own_home(agent, str(data["path"])):
            counted, data["own_home"] = False, True
        data["counted"] = counted
        event = NewEvent(EVENT, agent, data)
        (eid,) = daemon.store.append([event])
        if counted:
            what = f"{data['call']} of {data['path']} denied ({data['error']})"
            violations_watch.saw(agent, event.ts, key(eid, data), what)

    def hidden(agent: str, path: str) -> bool:
        w = daemon.agent_env.walls.get(agent)
        return w is not None and hidden_from(w.profile, path)

    def uids() -> set[int]:
        if plan.host_off():
            return set()
        got = set()
        for spec in daemon.loaded.runbook.agents.values():
            uid = daemon.agent_env.ids(spec)[0] if spec.sandbox == "on" else None
            if uid is not None and uid > 0:
                got.add(uid)
        return got

    return WriteWatch(attribute, record, uids, hidden)


def hidden_from(profile: Any, path: str) -> bool:
    """Whether ``path`` is in a tree the wall hides from the agent (an empty read-only stand-in over it:
    a path below fails with ENOENT), and not in one of the agent's own trees bound back in below it: the
    deepest tree that holds the path decides."""
    hid = (*profile.hidden_dirs, *profile.masked, *SCRATCH, "/run")
    back = (*profile.writable, *profile.read_only, *profile.exposed, profile.home, profile.tmpdir,
            *(inside for _, inside in profile.files))
    best, verdict = -1, False
    for trees, is_hidden in ((hid, True), (back, False)):
        for t in trees:
            if t and under(path, t) and len(t) > best:
                best, verdict = len(t), is_hidden
    return verdict
