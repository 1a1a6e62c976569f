"""LISTEN/NOTIFY for the fleet: ``approvals`` (a decision on any node wakes this node's waiters),
``kill`` (a kill, resume, start, stop or restart for one of this node's agents is applied at once),
``reload`` (payload: the node whose runbook to re-read, or empty for every node; ``tether reload --node``
sends it), ``pins`` (an agent moved or released: the monitor follows at once). A notification missed
while the listener was reconnecting is made up by re-reading: waiters are woken, pending requests
applied and pins followed on reconnect (and on every monitor wake anyway)."""

from __future__ import annotations

import contextlib
import json
import sys
import threading
from typing import Any, Protocol

from tether.fleet import pending

CHANNELS = ("approvals", pending.CHANNEL, "reload", "pins")


class FleetDaemon(pending.Killer, Protocol):
    store: Any

    def wake_approvals(self) -> None: ...

    def reload(self) -> list[str]: ...

    def poke(self) -> None: ...


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
            self._background(self._reload, "reload")
        elif channel == "pins":
            self.daemon.poke()

    def _reload(self) -> None:
        """A reload asked from another node: its outcome is recorded (``tether reload --node`` waits for it)."""
        try:
            self.daemon.reload()  # records runbook.reloaded
        except Exception as err:
            self.daemon.store.emit("runbook.reload_failed", None, node=self.daemon.node, error=str(err))
            raise

    def _catch_up(self) -> None:
        self.daemon.wake_approvals()
        self.daemon.poke()
        self._background(lambda: pending.apply_pending(self.daemon.store, self.daemon), "kill")
