"""What every drill needs: the host under drill (its runbook, store, daemon and run folders), a way to
wait for events, and the result each drill returns."""

from __future__ import annotations

import hashlib
import json
import socket
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from tether.cli.client import call
from tether.process import ProcessId
from tether.runbook import LoadedRunbook
from tether.runbook.model import Agent
from tether.store import Event, Store, open_store

T = TypeVar("T")

#: Event kinds of the notifier (``tether.notify``): when the store holds any, the notifier runs on this host
#: and "the owner is notified" means a message was queued for them.
NOTIFY_KINDS = ("notify.queued", "notify.sent", "notify.failed")
#: What became of a queued notification: one event per delivery attempt (``notification_id``: the queued id).
DELIVERY_KINDS = ("notify.sent", "notify.failed")
#: How far back a notification of the same incident thread still counts (the notifier's flap window is 2m).
THREAD_WINDOW = 600.0


@dataclass
class Result:
    """One drill of one agent. ``evidence``: ids of the events that show the outcome (in the store the drill
    ran against); ``timings``: what was measured, in seconds."""

    agent: str
    drill: str
    status: str
    seconds: float
    detail: str
    evidence: list[int] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "agent": self.agent, "drill": self.drill, "status": self.status, "seconds": self.seconds,
            "detail": self.detail, "evidence": list(self.evidence), "timings": dict(self.timings),
        }


class Trace:
    """A drill in progress: its clock, the evidence gathered so far, and the result it comes to."""

    def __init__(self, agent: str, drill: str) -> None:
        self.agent = agent
        self.drill = drill
        self.started = time.monotonic()
        self.evidence: list[int] = []
        self.timings: dict[str, float] = {}

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def mark(self, name: str, seconds: float | None = None) -> float:
        """Record a timing (default: the time since the drill began)."""
        value = round(self.elapsed() if seconds is None else seconds, 3)
        self.timings[name] = value
        return value

    def cite(self, *ids: int | None) -> None:
        for i in ids:
            if i is not None and i not in self.evidence:
                self.evidence.append(i)

    def result(self, status: str, detail: str) -> Result:
        return Result(self.agent, self.drill, status, round(self.elapsed(), 3), detail, sorted(self.evidence),
                      dict(self.timings))

    def passed(self, detail: str) -> Result:
        return self.result("pass", detail)

    def failed(self, detail: str) -> Result:
        return self.result("fail", detail)

    def degraded(self, detail: str) -> Result:
        return self.result("degraded", detail)

    def skipped(self, detail: str) -> Result:
        return self.result("skipped", detail)


class Host:
    """The host under drill: the runbook as loaded, its store (opened read-write: drills record what they
    did), its daemon's API (with the host's admin token) and the agents' run folders."""

    def __init__(self, loaded: LoadedRunbook, *, run_id: str | None = None, label: str | None = None) -> None:
        self.loaded = loaded
        self.state = loaded.state
        self.run_id = run_id or uuid.uuid4().hex[:12]
        self.label = label  # "sandbox" when drilling a sandbox copy
        self.daemon_env: dict[str, str] | None = None  # the environment to start its daemon in (None: ours)
        self._store: Store | None = None
        self._notifier: bool | None = None

    # -- the runbook --------------------------------------------------------------------------------
    @property
    def name(self) -> str:
        return self.loaded.runbook.host.name or socket.gethostname()

    @property
    def agents(self) -> list[str]:
        return list(self.loaded.runbook.agents)

    def spec(self, agent: str) -> Agent:
        return self.loaded.runbook.agents[agent]

    def cwd(self, agent: str) -> Path:
        return self.loaded.agent_cwd(agent)

    def run_dir(self, agent: str) -> Path:
        return self.state.agent_dir(agent) / "run"

    def runbook_hash(self, agent: str) -> str:
        return entry_hash(self.spec(agent))

    # -- the store ----------------------------------------------------------------------------------
    @property
    def store(self) -> Store:
        if self._store is None:
            self._store = open_store(self.loaded.store_url)
        return self._store

    def close(self) -> None:
        if self._store is not None:
            self._store.close()
            self._store = None

    def cursor(self) -> int:
        """The id of the newest event: what happens next has a greater one."""
        last = self.store.last_events(limit=1)
        return last[0].id if last else 0

    def events(self, after: int, agent: str | None = None, kinds: Iterable[str] | None = None) -> list[Event]:
        kinds = None if kinds is None else list(kinds)
        out: list[Event] = []
        while True:
            got = self.store.events(agent, after=after, limit=1000, kinds=kinds)
            out += got
            if len(got) < 1000:
                return out
            after = got[-1].id

    def wait_event(
        self, after: int, agent: str | None, kinds: Iterable[str], timeout: float,
        match: Callable[[Event], bool] = lambda e: True, interval: float = 0.05,
    ) -> Event | None:
        """The first event after ``after`` of these kinds that ``match``es, waiting up to ``timeout`` s."""
        kinds = list(kinds)
        found: Event | None = None

        def look() -> bool:
            nonlocal after, found
            for e in self.events(after, agent, kinds):
                after = e.id
                if match(e):
                    found = e
                    return True
            return False

        wait_until(look, timeout, interval)
        return found

    def emit(self, kind: str, agent: str | None = None, /, **data: Any) -> int:
        return self.store.emit(kind, agent, **data)

    def notifier_runs(self) -> bool:
        """Whether notifications are recorded on this host (any ``notify.*`` event ever; asked again until
        there is one: a host's first incident may be the first thing its notifier tells anyone)."""
        if not self._notifier:
            self._notifier = bool(self.store.events(None, after=0, limit=1, kinds=list(NOTIFY_KINDS)))
        return self._notifier

    def owner_told(self, agent: str, kind: str, cursor: int, timeout: float) -> Event | None:
        """The notification that tells ``agent``'s people of its incident of this ``kind``: one of that
        incident thread already queued in the last ``THREAD_WINDOW`` s (an incident that re-opens soon after
        the last one joins its thread and notifies nobody again), else a new one after ``cursor``."""
        kinds = {int(i["id"]): str(i["kind"]) for i in self.store.incidents(None, agent)}

        def of_kind(e: Event) -> bool:
            thread = str(e.data.get("thread") or "")
            root = thread.removeprefix("incident:")
            return (e.data.get("topic") == "incident.opened" and thread.startswith("incident:") and root.isdigit()
                    and kinds.get(int(root)) == kind)

        recent = [e for e in self.store.last_events(agent, limit=500)
                  if e.kind == "notify.queued" and e.id <= cursor and e.ts >= time.time() - THREAD_WINDOW]
        for e in recent:
            if of_kind(e):
                return e

        def fresh(e: Event) -> bool:
            kinds.update({int(i["id"]): str(i["kind"]) for i in self.store.incidents(None, agent)})
            return of_kind(e)

        return self.wait_event(cursor, agent, ["notify.queued"], timeout, match=fresh)

    def delivery(self, note: Event, timeout: float) -> Event | None:
        """What became of notification ``note`` (its ``notify.queued``): its ``notify.sent``, else its latest
        ``notify.failed``, waiting up to ``timeout`` s for a first attempt to end; None while none has."""

        def ours(e: Event) -> bool:
            return e.data.get("notification_id") == note.id

        seen = [e for e in self.events(note.id, note.agent, DELIVERY_KINDS) if ours(e)]
        if not seen:
            got = self.wait_event(note.id, note.agent, DELIVERY_KINDS, timeout, match=ours)
            seen = [got] if got is not None else []
        return next((e for e in seen if e.kind == "notify.sent"), seen[-1] if seen else None)

    def tell_owner(self, t: Trace, note: Event, timeout: float) -> tuple[bool, str]:
        """Whether ``note`` reached its recipient, and what to say of it: "owner notified" only once it was
        delivered (``notify.sent``); else that it failed, with the channel's error, or is still undelivered.
        The outcome is cited as evidence."""
        who = note.data.get("recipient")
        got = self.delivery(note, timeout)
        if got is None:
            return False, f"a notification to {who} was queued but not delivered within {timeout:g}s"
        t.cite(got.id)
        if got.kind == "notify.sent":
            return True, f"owner notified ({who})"
        later = "given up" if got.data.get("final") else "to be retried"
        error = first_line(str(got.data.get("error") or "no error given"), 160)
        return False, f"the notification to {who} failed ({error}; attempt {got.data.get('attempts')}, {later})"

    # -- the daemon ---------------------------------------------------------------------------------
    def daemon(self) -> dict[str, Any] | None:
        """``daemon.json`` when its daemon is alive and answers, else None."""
        try:
            info: dict[str, Any] = json.loads((self.state.root / "daemon.json").read_text())
        except (OSError, ValueError):
            return None
        if not pid_alive(info.get("pid")):
            return None
        try:
            with urllib.request.urlopen(str(info["url"]) + "/v1/health", timeout=5) as resp:
                if resp.status != 200:
                    return None
        except (OSError, ValueError, KeyError):
            return None
        return info

    def api(self, method: str, path: str, body: dict[str, Any] | None = None, timeout: float = 15) -> Any:
        return call(self.state, method, path, body, timeout=timeout)


def entry_hash(spec: Agent) -> str:
    """What an agent's runbook entry says, hashed: a drill speaks for this entry and no later one."""
    text = json.dumps(spec.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def pid_alive(pid: object) -> bool:
    """The process runs (a zombie has stopped running)."""
    if not isinstance(pid, int) or pid <= 1:
        return False
    ident = ProcessId.of(pid)
    return ident is not None and ident.alive()


def wait_until(pred: Callable[[], T], timeout: float, interval: float = 0.05) -> T:
    """``pred()`` until it is truthy or ``timeout`` s passed; its last value."""
    deadline = time.monotonic() + max(0.0, timeout)
    while True:
        got = pred()
        if got or time.monotonic() >= deadline:
            return got
        time.sleep(min(interval, max(0.0, deadline - time.monotonic())))


def expected_restart_delay(state_agent_dir: Path, agent: Agent, uptime: float | None) -> float:
    """The longest the supervisor should wait before the next start, by the agent's backoff and the step
    it has reached (``restarts.json``; a run longer than ``stable_after`` starts the backoff afresh)."""
    b = agent.restart.backoff
    try:
        attempt = int(json.loads((state_agent_dir / "restarts.json").read_text()).get("attempt", 0))
    except (OSError, ValueError, AttributeError, TypeError):
        attempt = 0
    if uptime is not None and uptime >= agent.restart.stable_after:
        attempt = 0
    delay = min(b.cap, b.base * (b.factor ** min(attempt, 64)))
    return min(b.cap, delay * (1 + b.jitter))


def first_line(text: str, limit: int = 300) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
