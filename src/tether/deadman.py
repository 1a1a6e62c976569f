"""The dead-man's switch: an external check (Healthchecks-compatible) that alerts when this host goes
quiet. ``/start`` at boot, a plain ping each period, ``/fail`` on an incident. If the daemon dies, hangs
or loses the network, the pings stop and the external service raises the alarm: the one failure the
daemon cannot report itself.

Everything is sent from the switch's own thread: a slow or unreachable endpoint never blocks the caller.
"""

from __future__ import annotations

import collections
import contextlib
import threading
import time
import urllib.request
from collections.abc import Callable
from urllib.parse import urlsplit, urlunsplit

from tether import redact
from tether.export.sink import resolve_ref
from tether.store.base import Store

Check = Callable[[], "str | None"]


def signal_url(url: str, signal: str) -> str:
    """``https://hc-ping.com/UUID`` + ``start`` → ``https://hc-ping.com/UUID/start`` (a query is kept)."""
    if not signal:
        return url
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=parts.path.rstrip("/") + "/" + signal))


def open_incidents(store: Store) -> Check:
    """A check for ``DeadMan``: the first open incident's summary, or None when none is open."""

    def check() -> str | None:
        got = store.incidents("open")
        if not got:
            return None
        first = got[0]
        more = f" (and {len(got) - 1} more)" if len(got) > 1 else ""
        return f"incident #{first['id']}: {first['summary'] or first['kind']}{more}"

    return check


class DeadMan:
    def __init__(
        self,
        url: str,
        period: float,
        *,
        check: Check | None = None,
        healthy: Callable[[], bool] | None = None,
        timeout: float = 10.0,
    ) -> None:
        """``url`` is the check's ping URL or a secret reference to it. Each period: nothing if ``healthy()``
        is false (a hung daemon must let the switch fire), else ``/fail`` with ``check()``'s reason when it
        gives one (or after ``fail()`` until ``ping()``), else a plain ping."""
        self.target = url
        self.period = period
        self.check = check
        self.healthy = healthy
        self.timeout = timeout
        self.sent = 0
        self.errors = 0
        self.last_error: str | None = None
        self.last_ok: float | None = None
        self._failing: str | None = None
        self._queue: collections.deque[tuple[str, str | None]] = collections.deque()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- the caller's side: never waits on the network ------------------------------------------------
    def start(self) -> None:
        """Signal ``/start`` (the daemon booted) and ping each period from now on."""
        self._queue.append(("start", None))
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="tether-deadman", daemon=True)
            self._thread.start()
        self._wake.set()

    def ping(self) -> None:
        """A plain ping now; clears a ``fail()``."""
        self._failing = None
        self._queue.append(("", None))
        self._wake.set()

    def fail(self, reason: str) -> None:
        """``/fail`` now, with the reason as the body; the periodic ping stays ``/fail`` until ``ping()``."""
        self._failing = reason
        self._queue.append(("fail", reason))
        self._wake.set()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)

    # -- the switch's thread --------------------------------------------------------------------------
    def _run(self) -> None:
        next_at = time.monotonic() + self.period
        while not self._stop.is_set():
            while self._queue and not self._stop.is_set():
                signal, body = self._queue.popleft()
                self._send(signal, body)
                if signal in ("", "fail", "start"):
                    next_at = time.monotonic() + self.period
            wait = next_at - time.monotonic()
            if wait <= 0:
                self._tick()
                next_at = time.monotonic() + self.period
                continue
            self._wake.wait(wait)
            self._wake.clear()

    def _tick(self) -> None:
        try:
            if self.healthy is not None and not self.healthy():
                return
            reason = self.check() if self.check is not None else self._failing
        except Exception as err:  # a check that cannot look (the store unreadable) is itself a failure
            reason = f"tether cannot check its incidents: {err!r}"
        self._send("fail" if reason else "", reason)

    def _send(self, signal: str, body: str | None) -> bool:
        try:
            url = resolve_ref(self.target)
            redact.register(url)
            data = redact.redact(body).encode()[:10000] if body else None
            req = urllib.request.Request(signal_url(url, signal), data=data, method="POST" if data else "GET",
                                         headers={"User-Agent": "tether-deadman"})
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                resp.read(1024)
        except Exception as err:  # unreachable, refused, a reference that does not resolve: the next try may work
            self.errors += 1
            with contextlib.suppress(Exception):
                self.last_error = redact.redact(f"{signal or 'ping'}: {err}")[:300]
            return False
        self.sent += 1
        self.last_ok = time.time()
        return True
