"""A node of a fleet: the fleet seam's (``seam.py``) implementation for a daemon that shares one PostgreSQL
store with other hosts' daemons, and the nodes' rows as the views show them. Only ``seam.place`` and
``seam.seen`` import it, and only for a fleet: a host alone never loads this module."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable
from typing import Any

from tether.errors import StoreError
from tether.fleet import bus, nodes, pending, pins, remote, view
from tether.fleet.seam import Seen


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
        nodes.register(daemon.store, self.node, pid=os.getpid(), url=url, agents=list(daemon.loaded.runbook.agents),
                       now=daemon.clock.wall())  # back after being lost: resolves its incident
        view.mark(daemon.state.root, daemon.loaded.store_url, self.node)

    def booted(self, daemon: Any) -> None:
        pending.apply_pending(daemon.store, daemon)  # kills and verbs recorded while this node was away
        self.bus = bus.Bus(daemon)
        self.bus.start()

    def registration(self) -> dict[str, Any]:
        return {"node": self.node}  # the agent is pinned to this node (the first to register it)

    def refuses(self, daemon: Any, name: str, spec: Any) -> bool:
        """An agent pinned to another node is refused here: recorded, shown, its leftover run stopped."""
        pinned_to = remote.node_of(daemon.store, name, self.node)
        if pinned_to is None:
            return False
        pins.refuse(daemon.store, name, self.node, pinned_to)
        pins.stop_leftover(daemon, name, spec)
        return True

    def wake(self, daemon: Any, now: float) -> float | None:
        if self.bus is None:
            return None
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
        got = remote.route(control, verb, agent, reason)
        return None if got is None else remote.check(got)

    def send(self, store: Callable[[], Any], agent: str, verb: str, reason: str | None = None,
             wait: bool = True) -> str | None:
        """Ask the node ``agent`` is pinned to, when that is another (recorded, NOTIFYed; pending while that
        node is away; waited for when ``wait`` and it is up) and say what became of it. None when it is
        this host's, or when the store cannot be reached: what can be done here still is."""
        try:
            shared = store()
            node = remote.node_of(shared, agent, self.node)
        except StoreError:  # unreachable: act here
            return None
        if node is None:
            return None
        sent = remote.send(shared, agent, node, verb, reason, wait=remote.WAIT if wait else None)
        return remote.message(remote.check(sent))


class SeenFleet(Seen):
    columns = ("NODE",)

    def __init__(self, fleet: dict[str, Any]) -> None:
        self.fleet = fleet

    @classmethod
    def of(cls, store: Any, now: float | None = None) -> SeenFleet | None:
        """The fleet's rows as the views show them, or None when the store holds no nodes' rows."""
        got = view.overview(store, now)
        return None if got is None else cls(got)

    def annotate(self, docs: list[dict[str, Any]], key: str = "agent", note: str | None = None) -> list[dict[str, Any]]:
        view.annotate(docs, self.fleet, key=key)
        for d in docs:
            if note is not None:
                d[note] = self.note(d)
        return docs

    def note(self, doc: dict[str, Any]) -> str:
        return view.why(doc)

    def cells(self, doc: dict[str, Any]) -> dict[str, str]:
        return {"NODE": doc.get("node") or "-"}

    def json(self) -> dict[str, Any]:
        assert self.fleet is not None
        return {"nodes": self.fleet["nodes"], "pending": self.fleet["pending"]}

    def sections(self) -> list[dict[str, Any]]:
        assert self.fleet is not None
        return [self.fleet]
