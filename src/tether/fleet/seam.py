"""The fleet seam: what a daemon asks of its place in the world, at named points, without a branch of its own.

``Alone`` is a host on its own (a SQLite store): every point is a no-op. ``Node`` is a node of a fleet (a
PostgreSQL store shared by several hosts' daemons): it registers and beats, hears other nodes over
LISTEN/NOTIFY, applies what they ask of its agents, and refuses agents pinned to another node.

    boot(daemon, url)      before the agents are added: register the node
    booted(daemon)         after: requests recorded while away, then listen
    registration()         what ``agent.registered`` carries (the node the agent is pinned to)
    refuses(daemon, n, s)  True when this daemon must not supervise agent ``n`` (pinned elsewhere)
    wake(daemon, now)      on every monitor wake: beat, lost nodes, pending requests, pins; the next deadline
    stop(daemon)           on a clean stop (a stopped node is not a lost one)
    listening              True while the node hears other nodes (another node's agent then exists here)

What the delivery layer (API, dashboard, CLI) asks, with the same two answers:

    elsewhere(control, a)  who runs this agent: True when another node's daemon does (the API's view)
    route(control, v, a)   send this verb from the API: None when this daemon runs ``a``, else its node's answer
    send(store, a, v)      send this verb from the CLI: None when this host runs ``a``, else the line saying
                           what became of it on its node
    seen(store, now)       the nodes' rows for the views (``Seen``): nothing alone; a fleet's nodes, pending
                           requests and refusals, each agent's node and notes
    local_store(root)      the store a state directory's daemon keeps (a fleet node's ``fleet.json`` names its
                           PostgreSQL store), and the node it is
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
from collections.abc import Callable
from typing import Any, Protocol

#: A node's state directory names its store in this file (``tether.fleet.view`` writes it; defined here, in the
#: module ``tether status``'s fast path imports).
MARKER = "fleet.json"


class Place(Protocol):
    node: str
    store_node: str | None  # what the store records as the writer's node (None alone)

    @property
    def listening(self) -> bool: ...

    def boot(self, daemon: Any, url: str) -> None: ...
    def booted(self, daemon: Any) -> None: ...
    def registration(self) -> dict[str, Any]: ...
    def refuses(self, daemon: Any, name: str, spec: Any) -> bool: ...
    def wake(self, daemon: Any, now: float) -> float | None: ...
    def stop(self, daemon: Any) -> None: ...
    def elsewhere(self, control: Any, agent: str) -> bool: ...
    def route(self, control: Any, verb: str, agent: str, reason: str | None = None) -> dict[str, Any] | None: ...
    def send(self, store: Callable[[], Any], agent: str, verb: str, reason: str | None = None,
             wait: bool = True) -> str | None: ...


class Alone:
    """One host, its own store: nothing to share."""

    store_node: str | None = None
    listening = False

    def __init__(self, node: str) -> None:
        self.node = node

    def boot(self, daemon: Any, url: str) -> None:
        pass

    def booted(self, daemon: Any) -> None:
        pass

    def registration(self) -> dict[str, Any]:
        return {}

    def refuses(self, daemon: Any, name: str, spec: Any) -> bool:
        return False

    def wake(self, daemon: Any, now: float) -> float | None:
        return None

    def stop(self, daemon: Any) -> None:
        pass

    def elsewhere(self, control: Any, agent: str) -> bool:
        return False

    def route(self, control: Any, verb: str, agent: str, reason: str | None = None) -> dict[str, Any] | None:
        return None

    def send(self, store: Callable[[], Any], agent: str, verb: str, reason: str | None = None,
             wait: bool = True) -> str | None:
        return None


class Node:
    """A node of a fleet sharing one PostgreSQL store."""

    def __init__(self, node: str) -> None:
        self.node = node
        self.store_node: str | None = node
        self.bus: Any = None  # tether.fleet.bus.Bus once booted

    @property
    def listening(self) -> bool:
        return self.bus is not None

    def boot(self, daemon: Any, url: str) -> None:
        from tether.fleet import nodes, view

        nodes.register(daemon.store, self.node, pid=os.getpid(), url=url, agents=list(daemon.loaded.runbook.agents),
                       now=daemon.clock.wall())  # back after being lost: resolves its incident
        view.mark(daemon.state.root, daemon.loaded.store_url, self.node)

    def booted(self, daemon: Any) -> None:
        from tether.fleet import bus, pending

        pending.apply_pending(daemon.store, daemon)  # kills and verbs recorded while this node was away
        self.bus = bus.Bus(daemon)
        self.bus.start()

    def registration(self) -> dict[str, Any]:
        return {"node": self.node}  # the agent is pinned to this node (the first to register it)

    def refuses(self, daemon: Any, name: str, spec: Any) -> bool:
        """An agent pinned to another node is refused here: recorded, shown, its leftover run stopped."""
        from tether.fleet import pins
        from tether.fleet.remote import node_of

        pinned_to = node_of(daemon.store, name, self.node)
        if pinned_to is None:
            return False
        pins.refuse(daemon.store, name, self.node, pinned_to)
        pins.stop_leftover(daemon, name, spec)
        return True

    def wake(self, daemon: Any, now: float) -> float | None:
        if self.bus is None:
            return None
        from tether.fleet import nodes, pending, pins

        try:
            nodes.beat(daemon.store, self.node, now)
            if nodes.check_lost(daemon.store, self.node, now):
                daemon.poke()
            pending.apply_soon(daemon.store, daemon)
            pins.reconcile(daemon)
        except Exception as err:
            print(f"tether: fleet: {err!r}", file=sys.stderr, flush=True)
        return now + nodes.BEAT_EVERY

    def stop(self, daemon: Any) -> None:
        if self.bus is None:
            return
        from tether.fleet import nodes

        self.bus.close()
        with contextlib.suppress(Exception):
            nodes.stopped(daemon.store, self.node, daemon.clock.wall())

    def elsewhere(self, control: Any, agent: str) -> bool:
        """Another node's agent: one this daemon does not run while it hears the other nodes."""
        return self.listening and agent not in control.agent_names()

    def route(self, control: Any, verb: str, agent: str, reason: str | None = None) -> dict[str, Any] | None:
        """An agent of another node is asked of its node's daemon (a refusal there raised here); None: ours."""
        if not self.listening:
            return None
        from tether.fleet.remote import check, route

        got = route(control, verb, agent, reason)
        return None if got is None else check(got)

    def send(self, store: Callable[[], Any], agent: str, verb: str, reason: str | None = None,
             wait: bool = True) -> str | None:
        """Ask the node ``agent`` is pinned to, when that is another (recorded, NOTIFYed; pending while that
        node is away; waited for when ``wait`` and it is up) and say what became of it. None when it is
        this host's, or when the store cannot be reached: what can be done here still is."""
        from tether.errors import StoreError
        from tether.fleet.remote import WAIT, check, message, node_of
        from tether.fleet.remote import send as send_to

        try:
            shared = store()
            node = node_of(shared, agent, self.node)
        except StoreError:  # unreachable: act here
            return None
        if node is None:
            return None
        return message(check(send_to(shared, agent, node, verb, reason, wait=WAIT if wait else None)))


def place(store_url: str, host_name: str | None) -> Place:
    """A node of a fleet on a PostgreSQL store; alone on SQLite (nothing of the fleet runs then)."""
    from tether.fleet.nodes import node_name

    node = node_name(host_name)
    return Alone(node) if store_url.startswith("sqlite") else Node(node)


def place_of(store_url: str, host_name: Callable[[], str | None]) -> Place:
    """``place`` for a command: the host's name (from its runbook) is asked only of a node, so that a kill
    given only the state directory parses no runbook."""
    if store_url.startswith("sqlite"):
        import socket

        return Alone(socket.gethostname())
    return place(store_url, host_name())


class Seen:
    """The nodes' rows for the views (``tether status``, its JSON, the dashboard): alone, nothing."""

    fleet: dict[str, Any] | None = None  # tether.fleet.view.overview: the nodes, pending requests, refusals
    columns: tuple[str, ...] = ()  # the agents table's columns beyond the host's own

    def annotate(self, docs: list[dict[str, Any]], key: str = "agent", note: str | None = None) -> list[dict[str, Any]]:
        """Each agent's document (its name under ``key``) with what the place knows of it, and its notes
        under ``note`` when given."""
        return docs

    def note(self, doc: dict[str, Any]) -> str:
        """What WHY adds for an agent (its node is away, a request pending, a node that refused it)."""
        return ""

    def cells(self, doc: dict[str, Any]) -> dict[str, str]:
        """The agent's values in ``columns``."""
        return {}

    def json(self) -> dict[str, Any]:
        """What ``tether status --json`` adds."""
        return {}

    def sections(self) -> list[dict[str, Any]]:
        """What is printed after the agents: a fleet's nodes table."""
        return []


class SeenFleet(Seen):
    columns = ("NODE",)

    def __init__(self, fleet: dict[str, Any]) -> None:
        self.fleet = fleet

    def annotate(self, docs: list[dict[str, Any]], key: str = "agent", note: str | None = None) -> list[dict[str, Any]]:
        from tether.fleet.view import annotate

        annotate(docs, self.fleet, key=key)
        for d in docs:
            if note is not None:
                d[note] = self.note(d)
        return docs

    def note(self, doc: dict[str, Any]) -> str:
        from tether.fleet.view import why

        return why(doc)

    def cells(self, doc: dict[str, Any]) -> dict[str, str]:
        return {"NODE": doc.get("node") or "-"}

    def json(self) -> dict[str, Any]:
        assert self.fleet is not None
        return {"nodes": self.fleet["nodes"], "pending": self.fleet["pending"]}

    def sections(self) -> list[dict[str, Any]]:
        assert self.fleet is not None
        return [self.fleet]


ALONE = Seen()


def seen(store: Any, now: float | None = None) -> Seen:
    """The nodes' rows for the views: ``ALONE`` on a store that is no fleet's."""
    if not store.fleet:
        return ALONE
    from tether.fleet.view import overview

    got = overview(store, now)
    return ALONE if got is None else SeenFleet(got)


def here(root: str) -> str | None:
    """The node whose daemon keeps state directory ``root`` (its ``fleet.json``), else None."""
    try:
        with open(os.path.join(root, MARKER), encoding="utf-8") as f:
            node = json.load(f).get("node")
    except (OSError, ValueError, AttributeError):
        return None
    return str(node) if node else None


def store_url(root: str, sqlite_file: str) -> str:
    """The store state directory ``root``'s daemon keeps: the PostgreSQL store a node's ``fleet.json`` names,
    else its SQLite file ``sqlite_file``."""
    named = None
    if os.path.exists(os.path.join(root, MARKER)):
        from tether.fleet.view import store_url as named_in

        named = named_in(root)
    return named or f"sqlite:///{sqlite_file}"


def local_store(root: str) -> tuple[Any, str | None] | None:
    """The store state directory ``root``'s daemon keeps, opened read-only, and the node it is (None alone):
    its SQLite file, or the PostgreSQL store a node's ``fleet.json`` names (None when it names none)."""
    if not os.path.exists(os.path.join(root, MARKER)):
        from tether.store.sqlite import SQLiteStore

        return SQLiteStore(os.path.join(root, "tether.db"), readonly=True), None
    from tether.fleet.view import store_url as named_in
    from tether.store import open_store

    url = named_in(root)
    return None if url is None else (open_store(url, readonly=True), here(root))
