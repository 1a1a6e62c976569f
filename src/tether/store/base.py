"""The store's contract: what every backend (SQLite, PostgreSQL) must do, and the rows it returns.

Events are the source of truth. ``append`` writes immutable event rows and, in the same transaction,
updates the tables an operator reads (agents, tasks, ...) through ``projections``. When ``append``
returns, the events are durable: they survive a SIGKILL of any process and a power cut.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

from tether.errors import StoreError

if TYPE_CHECKING:
    import threading

# NamedTuples, not dataclasses: `tether status` imports this module and must start fast.


class NewEvent:
    """An event to append. ``ts`` defaults to now."""

    __slots__ = ("agent", "data", "kind", "ts")

    def __init__(
        self, kind: str, agent: str | None = None, data: dict[str, Any] | None = None, ts: float | None = None
    ) -> None:
        self.kind = kind
        self.agent = agent
        self.data = {} if data is None else data
        self.ts = time.time() if ts is None else ts

    def __repr__(self) -> str:
        return f"NewEvent({self.kind!r}, {self.agent!r}, {self.data!r}, {self.ts!r})"


class Event(NamedTuple):
    id: int
    ts: float
    kind: str
    agent: str | None
    data: dict[str, Any]
    node: str | None = None


class Task(NamedTuple):
    id: int
    agent: str
    text: str
    state: str  # queued | started | done | failed | cancelled
    created: float
    started: float | None
    finished: float | None
    meta: dict[str, Any]


ChangeListener = Callable[[set[str]], None]
#: ``callback(channel, payload)`` for a signal heard from another host (``listen``).
Listener = Callable[[str, str], None]


class Store(ABC):
    """A backend. Every method may raise ``StoreError`` with a one-line message naming what to do.

    Every query tether makes is a method here: no module outside ``tether.store`` writes SQL. A backend
    that lacks a feature keeps the default below (SQLite has no signals between hosts: ``fleet`` is
    False, ``notify`` does nothing, ``listen`` refuses)."""

    url: str
    #: The store is shared by several hosts' daemons and carries signals between them (PostgreSQL).
    fleet = False

    def __init__(self) -> None:
        self._listeners: list[ChangeListener] = []

    def on_change(self, listener: ChangeListener) -> None:
        """Call ``listener(agent_names)`` after each commit that changed those agents' rows."""
        self._listeners.append(listener)

    def _notify(self, agents: set[str]) -> None:
        if agents:
            for listener in self._listeners:
                listener(agents)

    def _answer(self, batch: Sequence[tuple[Any, Slot]], results: Sequence[tuple[Any, set[str]]]) -> None:
        """A group commit went through: answer each caller, then tell the listeners which agents changed."""
        changed: set[str] = set()
        for (_, slot), (value, agents) in zip(batch, results, strict=True):
            slot.done, slot.value = True, value
            changed |= agents
        try:
            self._notify(changed)
        except Exception:  # a listener must never break a writer
            pass

    @staticmethod
    def _one_by_one(batch: Sequence[tuple[Any, Slot]], commit: Callable[[list[Any]], None],
                    error: BaseException) -> None:
        """A group commit failed on a job: ``commit`` each job again alone, so one bad job fails alone (a
        batch of one fails with ``error``)."""
        if len(batch) > 1:
            for item in batch:
                commit([item])
        else:
            batch[0][1].fail(error)

    # -- writing ---------------------------------------------------------------------------------
    @abstractmethod
    def append(self, events: Sequence[NewEvent]) -> list[int]:
        """Durably append events (redacted first) and apply their projections; return their ids."""

    def emit(self, kind: str, agent: str | None = None, /, **data: Any) -> int:
        """Append one event."""
        return self.append([NewEvent(kind, agent, data)])[0]

    @abstractmethod
    def use_approval(self, approval_id: int, agent: str, at: float, until: float | None = None) -> bool:
        """Use an approval's grant if it is still usable at ``at``, and record ``approval.used`` (audited),
        in one transaction: a compare-and-set. False when it is used up, lapsed or not approved: nothing
        is recorded then."""

    @abstractmethod
    def run(self, fn: Callable[[Any], Any]) -> Any:
        """Run ``fn(tx)`` inside the writer's transaction and return what it returns (for the store
        package's own methods: ``tx.execute`` takes backend-neutral SQL with ``?`` placeholders)."""

    @abstractmethod
    def beat(self, agent: str, at: float, task: str | None = None, progress: str | None = None) -> None:
        """Record a heartbeat on the agent's row. Not an event: beats do not grow the store."""

    #: Writes go to a local file (quick, no network): a caller on an event loop may write inline.
    local = False

    @abstractmethod
    def beats(self, beats: Sequence[tuple[str, float, str | None, str | None]], block: bool = True) -> bool:
        """Record several heartbeats ``(agent, at, task, progress)``, oldest first, in one transaction.
        With ``block=False`` a local store that another writer holds writes nothing and returns False."""

    @abstractmethod
    def prune(self, events_before: float) -> int:
        """Delete events older than ``events_before`` (retention); return how many."""

    # -- reading ---------------------------------------------------------------------------------
    @abstractmethod
    def events(
        self, agent: str | None = None, after: int = 0, limit: int = 1000, kinds: Iterable[str] | None = None
    ) -> list[Event]:
        """Events with id > ``after``, oldest first."""

    @abstractmethod
    def last_events(self, agent: str | None = None, limit: int = 50) -> list[Event]:
        """The newest events, newest first."""

    @abstractmethod
    def agents(self) -> list[dict[str, Any]]:
        """Every agent's row, by name."""

    @abstractmethod
    def agent(self, name: str) -> dict[str, Any] | None: ...

    @abstractmethod
    def tasks(self, agent: str | None = None, states: Iterable[str] | None = None, *, text: str | None = None,
              limit: int | None = None) -> list[Task]:
        """Tasks in id order; ``text``: only those with that text; ``limit``: only the newest ``limit``."""

    @abstractmethod
    def queues(self, agent: str | None = None) -> dict[str, tuple[int, float]]:
        """agent -> (queued tasks, when the oldest was queued), counted in the store: a queue an agent
        filled without end costs one indexed aggregate, not a row each."""

    @abstractmethod
    def task(self, task_id: int) -> Task | None: ...

    @abstractmethod
    def claim_task(self, agent: str) -> Task | None:
        """Atomically take the agent's oldest queued task and mark it started."""

    @abstractmethod
    def last_heartbeat(self) -> float | None:
        """The newest heartbeat of any agent (None before the first)."""

    @abstractmethod
    def budget_reset(self, agent: str, day: str) -> dict[str, Any] | None:
        """The agent's budget reset on that UTC day (tokens, usd: what had been spent then), if any."""

    @abstractmethod
    def token(self, token_hash: str) -> dict[str, Any] | None:
        """The live (not revoked) token with this hash."""

    @abstractmethod
    def tokens(self) -> list[dict[str, Any]]:
        """Every token, oldest first: id, role, agent, created, expires, last_used, revoked (no hashes)."""

    @abstractmethod
    def revoked_tokens(self) -> int:
        """How many tokens were ever revoked: it only grows, so a cache compares it to see a revocation."""

    @abstractmethod
    def touch_tokens(self, used: Iterable[tuple[str, float]]) -> None:
        """Record ``(token_id, at)`` as each token's last use (a later one is kept); not an event."""

    @abstractmethod
    def incidents(self, state: str | None = None, agent: str | None = None, *,
                  limit: int | None = None) -> list[dict[str, Any]]:
        """Incidents, oldest first, filtered by state and agent; with ``limit``, only the newest that many."""

    @abstractmethod
    def approvals(
        self, state: str | None = None, agent: str | None = None, fingerprint: str | None = None,
        *, limit: int | None = None
    ) -> list[dict[str, Any]]:
        """Approvals, oldest first, filtered by state, agent and action fingerprint; with ``limit``, only the
        newest that many (still oldest first)."""

    @abstractmethod
    def approval(self, approval_id: int) -> dict[str, Any] | None: ...

    @abstractmethod
    def audit_rows(self, after: int = 0) -> list[dict[str, Any]]:
        """The hash-chained audit log, oldest first."""

    @abstractmethod
    def usage(self, agent: str | None = None, since_day: str | None = None) -> list[dict[str, Any]]:
        """Token and spend rows (agent, day ``YYYY-MM-DD`` UTC, model, tokens..., cost_usd)."""

    @abstractmethod
    def signal_counts(self, table: str) -> list[dict[str, Any]]:
        """Rows of ``agent_errors``, ``agent_violations`` or ``agent_accounts`` (agent, kind|account, count,
        last)."""

    # -- bookkeeping: readers of the log, the notifier's outbox -----------------------------------
    @abstractmethod
    def cursor(self, name: str) -> int | None:
        """The last event id the reader ``name`` (an exporter, the notifier) has handled, if it saved one.
        Readers deliver at least once: a cursor is saved after what it covers was delivered, so a crash in
        between sends those events again, never skips them."""

    @abstractmethod
    def set_cursor(self, name: str, event_id: int, at: float) -> None:
        """Save ``name``'s cursor (a row write, not an event: bookkeeping does not grow the log)."""

    @abstractmethod
    def cursors(self) -> dict[str, int]:
        """Every saved cursor: name -> event id."""

    @abstractmethod
    def notifications(self, thread: str | None = None, state: str | None = None,
                      limit: int | None = None) -> list[dict[str, Any]]:
        """Rows of the notifier's outbox in id order, filtered by thread and state; the first ``limit``."""

    @abstractmethod
    def due_notifications(self, now: float, limit: int = 20) -> list[dict[str, Any]]:
        """Pending notifications whose next try is at or before ``now``, soonest first."""

    @abstractmethod
    def next_notification_due(self) -> float | None:
        """When the soonest pending notification falls due (None: nothing pending)."""

    @abstractmethod
    def announced_resolutions(self, incident_ids: Iterable[int]) -> set[int]:
        """Which of these incidents had their resolution announced (a thread ends with that)."""

    @abstractmethod
    def unfinished_threads(self) -> list[int]:
        """Incident threads that told someone and have not said "resolved" yet: their root incident ids."""

    @abstractmethod
    def incident(self, incident_id: int) -> dict[str, Any] | None: ...

    @abstractmethod
    def recent_incidents(self, agent: str | None, kind: str, limit: int = 50) -> list[dict[str, Any]]:
        """The newest incidents of one kind for one agent (``None``: the host's own), newest first."""

    # -- the fleet: nodes, requests across hosts, signals --------------------------------------------
    @abstractmethod
    def nodes(self) -> list[dict[str, Any]]:
        """Every node that registered on this store, by name (none on a store that is no fleet's)."""

    @abstractmethod
    def beat_node(self, name: str, at: float) -> None:
        """Record a beat of the node's daemon on its row (not an event, like agent beats)."""

    @abstractmethod
    def pending_requests(self, node: str | None = None) -> list[dict[str, Any]]:
        """Requests for another node's daemon recorded and not yet applied (on ``node``, or on any),
        oldest first."""

    @abstractmethod
    def fleet_request(self, record_id: str) -> dict[str, Any] | None:
        """One request for another node's daemon, applied or not."""

    def notify(self, channel: str, payload: str = "") -> None:  # noqa: B027 - a default, not abstract
        """Send ``payload`` to every ``listen``er on ``channel`` on other hosts. A store that is no
        fleet's has no other hosts to tell: nothing is sent."""

    def listen(self, channels: Iterable[str], callback: Listener, stop_event: threading.Event, *,
               ready: threading.Event | None = None, on_reconnect: Callable[[], None] | None = None,
               poll: float = 0.1) -> None:
        """Block until ``stop_event`` is set, calling ``callback(channel, payload)`` for each signal
        another host sends on ``channels``. Only a fleet store carries signals."""
        raise self._no_fleet()

    def start_listener(self, channels: Iterable[str], callback: Listener, stop_event: threading.Event, *,
                       on_reconnect: Callable[[], None] | None = None, timeout: float = 10.0) -> threading.Thread:
        """``listen`` in a daemon thread; returns once it is listening, or raises ``StoreError``."""
        raise self._no_fleet()

    def _no_fleet(self) -> StoreError:
        return StoreError(f"{self.url}: this store carries no signals between hosts; a fleet needs a shared "
                          "PostgreSQL store (host.store: postgresql://...)")

    # -- housekeeping ----------------------------------------------------------------------------
    @abstractmethod
    def backup(self, path: str) -> None:
        """A consistent copy while others keep writing."""

    @abstractmethod
    def integrity_check(self) -> str: ...

    @abstractmethod
    def close(self) -> None: ...

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def coalesce_beats(
    beats: Sequence[tuple[str, float, str | None, str | None]],
) -> list[tuple[float, str | None, str | None, float | None, bool, str]]:
    """One row update per agent for beats applied in order: ``(at, task, progress, progress_at, moved,
    agent)``. ``progress_at`` is when the batch's last progress value appeared; ``moved`` says the batch
    itself changed progress (two different values), so that moment is progress whatever is stored; else
    it is progress only if it differs from the stored value. Applying the result equals applying each
    beat in turn (a property test checks it)."""
    merged: dict[str, list[Any]] = {}
    for agent, at, task, progress in beats:
        m = merged.get(agent)
        if m is None:
            merged[agent] = [at, task, progress, at if progress is not None else None, False, agent]
            continue
        m[0] = at
        if task is not None:
            m[1] = task
        if progress is not None and progress != m[2]:
            m[4] = m[4] or m[2] is not None
            m[2], m[3] = progress, at
    return [(m[0], m[1], m[2], m[3], m[4], m[5]) for m in merged.values()]


#: What a non-blocking write returns when another writer holds the store.
BUSY = object()


class Slot:
    """Where the leader of a group commit leaves one caller's answer (set before the lock is released).
    ``durable=False``: the caller's write needs no fsync of its own (SQLite heartbeats)."""

    __slots__ = ("done", "durable", "error", "value")

    def __init__(self, durable: bool = True) -> None:
        self.durable = durable
        self.done = False
        self.value: Any = None
        self.error: BaseException | None = None

    def fail(self, error: BaseException) -> None:
        self.done, self.error = True, error
