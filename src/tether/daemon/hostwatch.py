"""The host's own signals, watched on a thread of their own: network reachability of each endpoint in
``host.probes`` (TCP/HTTP with timeouts, never ping) and free disk in the state directory and the
workspaces. Each turns into one incident while it lasts (``network.unreachable`` per target,
``disk.low`` per path), resolved when it recovers.

The state directory's filesystem is always watched, under ``MIN_FREE`` even when ``host.disk_low_bytes`` is
0: when it is full the store cannot record the incident, so the owners (the host channels that hear
``disk.low``, else every owner) are told at once through their channels, which need no disk, and the
incident is recorded, noting that, as soon as the store takes it."""

from __future__ import annotations

import contextlib
import threading
import time
from typing import Any

from tether.notify.channels import describe, send
from tether.probes import ProbeResult, probe

MIN_FREE = 64 * 1024  # the state directory's filesystem with less free is full, whatever disk_low_bytes says


class HostWatch:
    def __init__(self, daemon: Any, timeout: float = 3.0) -> None:
        self.daemon = daemon
        self.timeout = timeout
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="tether-hostwatch", daemon=True)
        self.daemon.probe_results = []
        self._unrecorded: dict[str, dict[str, Any]] = {}  # path -> the disk.low incident the store refused

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
        state = str(loaded.state.root)
        for path in dict.fromkeys([state, str(loaded.workspace_root)]):
            try:
                free = psutil.disk_usage(path).free
            except OSError:
                continue
            limit = max(low, MIN_FREE) if path == state else low
            subject = f"disk at {path}"
            open_ = [i for i in self.daemon.store.incidents("open")
                     if i["kind"] == "disk.low" and subject in i["summary"]]
            if (free < limit or path in self._unrecorded) and not open_:
                self._open(path, subject, free)
            elif free >= limit:
                for inc in open_:
                    self.daemon.store.emit("incident.resolved", None, incident_id=inc["id"], kind="disk.low",
                                           why=f"{free / 1024**2:.0f} MiB free again")

    def _open(self, path: str, subject: str, free: int) -> None:
        """Record the incident; when the store cannot take it (the disk is full), tell the owners now through
        their channels (no disk needed) and record it once the store takes it."""
        pending = self._unrecorded.get(path)
        data = pending or {"summary": f"{subject}: {free / 1024**2:.1f} MiB free", "noticed_at": time.time()}
        try:
            self.daemon.store.emit("incident.opened", None, kind="disk.low", path=path, **data)
        except Exception as err:
            if pending is None:
                self._unrecorded[path] = {**data, "told_directly": self._tell(data["summary"], err)}
            return
        self._unrecorded.pop(path, None)
        self.daemon.poke()

    def _tell(self, summary: str, err: Exception) -> list[str]:
        """Tell who hears of a host disk.low incident, straight through their channels (a thread each: a
        slow channel never holds the watch); return the channels asked."""
        rb = self.daemon.loaded.runbook
        targets = list(dict.fromkeys(r.target for r in self.daemon.notifier._first(rb, None, "incident.opened",
                                                                                   "disk.low")))
        host = rb.host.name or "this host"
        title = f"[tether] disk full on {host}: {summary}"
        body = (f"{summary}. The store cannot be written ({err}); this incident is recorded once space "
                "returns. Agents keep running; `tether kill` still works.")

        def deliver(target: str) -> None:
            try:
                send(target, title, body)
            except Exception as failure:
                _say(f"telling {describe(target)} failed: {failure}")

        for target in targets:
            threading.Thread(target=deliver, args=(target,), name="tether-disk-full", daemon=True).start()
        _say(f"{summary}; the store cannot record it: told {len(targets)} channel(s)")
        return [describe(t) for t in targets]


def _say(line: str) -> None:
    """One line in the daemon's log, unless that log is on the full disk too."""
    with contextlib.suppress(OSError, ValueError):
        print(f"tether: host watch: {line}", flush=True)
