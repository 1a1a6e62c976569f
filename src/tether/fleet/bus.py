"""LISTEN/NOTIFY for the fleet: ``approvals`` (a decision on any node wakes this node's waiters),
``kill`` (a kill for one of this node's agents is applied at once), ``reload`` (payload: the node
whose runbook to re-read, or empty for every node). A notification missed while the listener was
reconnecting is made up by re-reading: waiters are woken and pending kills applied on reconnect."""

from __future__ import annotations

import contextlib
import json
import sys
import threading
from typing import Any, Protocol

from tether.fleet import pending

CHANNELS = ("approvals", pending.CHANNEL, "reload")


class FleetDaemon(pending.Killer, Protocol):
    store: Any

    def wake_approvals(self) -> None: ...

    def reload(self) -> list[str]: ...


class Bus:
    def __init__(self, daemon: FleetDaemon) -> None:
        self.daemon = daemon
        self.stop = threading.Event()
        self.thread: threading.Thread | None = None
        self.heard = 0

    def start(self) -> None:
        self.thread = self.daemon.store.start_listener(CHANNELS, self._heard, self.stop, on_reconnect=self._catch_up)

    def close(self) -> None:
        self.stop.set()
        if self.thread is not None:
            self.thread.join(timeout=2)

    def _background(self, fn: Any, name: str) -> None:
        def run() -> None:
            try:
                fn()
            except Exception as err:
                with contextlib.suppress(Exception):
                    print(f"tether: fleet: {name}: {err!r}", file=sys.stderr, flush=True)

        threading.Thread(target=run, name=f"tether-fleet-{name}", daemon=True).start()

    def _heard(self, channel: str, payload: str) -> None:
        self.heard += 1
        if channel == "approvals":
            self.daemon.wake_approvals()
        elif channel == pending.CHANNEL:
            with contextlib.suppress(ValueError, TypeError):
                if json.loads(payload).get("node") != self.daemon.node:
                    return
            self._background(lambda: pending.apply_pending(self.daemon.store, self.daemon), "kill")
        elif channel == "reload" and payload in ("", self.daemon.node):
            self._background(self.daemon.reload, "reload")

    def _catch_up(self) -> None:
        self.daemon.wake_approvals()
        self._background(lambda: pending.apply_pending(self.daemon.store, self.daemon), "kill")
