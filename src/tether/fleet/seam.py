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

import json
import os
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


def place(store_url: str, host_name: str | None) -> Place:
    """A node of a fleet on a PostgreSQL store; alone on SQLite (nothing of the fleet runs then)."""
    if store_url.startswith("sqlite"):
        return Alone(host_name or socket_name())  # alone, nothing of the fleet is imported
    from tether.fleet.node import Node  # a fleet only: a host alone never loads the fleet

    return Node(host_name or socket_name())


def place_of(store_url: str, host_name: Callable[[], str | None]) -> Place:
    """``place`` for a command: the host's name (from its runbook) is asked only of a node, so that a kill
    given only the state directory parses no runbook."""
    if store_url.startswith("sqlite"):
        return Alone(socket_name())
    return place(store_url, host_name())


def socket_name() -> str:
    """This host's name as the fleet knows it when its runbook names none."""
    import socket

    return socket.gethostname()


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


ALONE = Seen()


def seen(store: Any, now: float | None = None) -> Seen:
    """The nodes' rows for the views: ``ALONE`` on a store that is no fleet's."""
    if not store.fleet:
        return ALONE
    from tether.fleet.node import SeenFleet  # a fleet's only: a host alone never imports it

    return SeenFleet.of(store, now) or ALONE


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
        from tether.fleet.view import store_url as named_in  # a fleet's state dir only (its fleet.json)

        named = named_in(root)
    return named or f"sqlite:///{sqlite_file}"


def local_store(root: str) -> tuple[Any, str | None] | None:
    """The store state directory ``root``'s daemon keeps, opened read-only, and the node it is (None alone):
    its SQLite file, or the PostgreSQL store a node's ``fleet.json`` names (None when it names none)."""
    if not os.path.exists(os.path.join(root, MARKER)):
        from tether.store.sqlite import SQLiteStore  # the status fast path: its state dir's backend, ~25 ms

        return SQLiteStore(os.path.join(root, "tether.db"), readonly=True), None
    from tether.fleet.view import store_url as named_in  # a fleet's state dir only (its fleet.json)
    from tether.store import open_store  # with the line above: PostgreSQL, psycopg

    url = named_in(root)
    return None if url is None else (open_store(url, readonly=True), here(root))
