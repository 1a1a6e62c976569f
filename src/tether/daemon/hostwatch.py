"""The host's own signals, watched on a thread of their own: network reachability of each endpoint in
``host.probes`` (TCP/HTTP with timeouts, never ping) and free disk in the state directory and the
workspaces. Each turns into one incident while it lasts (``network.unreachable`` per target,
``disk.low`` per path), resolved when it recovers."""

from __future__ import annotations

import threading
from typing import Any

from tether.probes import ProbeResult, probe


class HostWatch:
    def __init__(self, daemon: Any, timeout: float = 3.0) -> None:
        self.daemon = daemon
        self.timeout = timeout
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="tether-hostwatch", daemon=True)
        self.daemon.probe_results = []

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()

    def wake(self) -> None:
        """Check again now (the runbook's host section changed)."""
        self._wake.set()

    def _loop(self) -> None:
        while not self._stop.is_set():
            host = self.daemon.loaded.runbook.host
            try:
                self.check_once()
            except Exception as err:  # watching must never take the daemon down
                print(f"tether: host watch: {err!r}", flush=True)
            self._wake.wait(max(1.0, host.probe_interval))
            self._wake.clear()

    def check_once(self) -> list[ProbeResult]:
        host = self.daemon.loaded.runbook.host
        results = [probe(target, self.timeout) for target in host.probes]
        self.daemon.probe_results = results
        for r in results:
            kind, subject = "network.unreachable", f"probe {r.target}"
            open_ = [i for i in self.daemon.store.incidents("open") if i["kind"] == kind and subject in i["summary"]]
            if not r.up and not open_:
                self.daemon.store.emit("incident.opened", None, kind=kind, summary=f"{subject}: {r.detail}",
                                       target=r.target)
                self.daemon.poke()
            elif r.up:
                for inc in open_:
                    self.daemon.store.emit("incident.resolved", None, incident_id=inc["id"], kind=kind,
                                           why=f"{r.target} answers again ({r.detail})")
        self._disk(host.disk_low_bytes)
        return results

    def _disk(self, low: int) -> None:
        import psutil

        loaded = self.daemon.loaded
        for path in dict.fromkeys([str(loaded.state.root), str(loaded.workspace_root)]):
            try:
                free = psutil.disk_usage(path).free
            except OSError:
                continue
            subject = f"disk at {path}"
            open_ = [i for i in self.daemon.store.incidents("open")
                     if i["kind"] == "disk.low" and subject in i["summary"]]
            if free < low and not open_:
                self.daemon.store.emit("incident.opened", None, kind="disk.low",
                                       summary=f"{subject}: {free / 1024**2:.0f} MiB free", path=path)
                self.daemon.poke()
            elif free >= low:
                for inc in open_:
                    self.daemon.store.emit("incident.resolved", None, incident_id=inc["id"], kind="disk.low",
                                           why=f"{free / 1024**2:.0f} MiB free again")
