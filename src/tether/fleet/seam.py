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
"""

from __future__ import annotations

import contextlib
import os
import sys
from typing import Any, Protocol

from tether.fleet.nodes import node_name


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


def place(store_url: str, host_name: str | None) -> Place:
    """A node of a fleet on a PostgreSQL store; alone on SQLite (nothing of the fleet runs then)."""
    node = node_name(host_name)
    return Alone(node) if store_url.startswith("sqlite") else Node(node)
