"""The systemd notify protocol (``sd_notify(3)``), stdlib only: readiness, status, stopping and the watchdog.

systemd passes ``$NOTIFY_SOCKET`` to a ``Type=notify`` service: a unix datagram socket, in the abstract
namespace when the value starts with ``@``. Every function here is a no-op returning False when the variable
is unset, so the daemon calls them unconditionally (under launchd, in a terminal, in tests).

The watchdog: with ``WatchdogSec=`` systemd sets ``$WATCHDOG_USEC`` (and ``$WATCHDOG_PID``) and restarts the
service when no ``WATCHDOG=1`` arrives within that time. ``Watchdog`` pings at half the interval, but only
while its ``healthy()`` callback says the daemon's loops are alive, so a wedged daemon is restarted rather
than kept alive by a thread that still runs.

Linux only (systemd); tested there with a real datagram socket standing in for systemd's.
"""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Callable

__all__ = ["Watchdog", "notify", "ready", "status", "stopping", "watchdog", "watchdog_interval"]


def _address(value: str) -> str | bytes:
    if value.startswith("@"):  # abstract namespace: a leading NUL byte instead of the @
        return b"\0" + value[1:].encode()
    return value


def notify(state: str) -> bool:
    """Send ``state`` (``KEY=VALUE`` lines) to ``$NOTIFY_SOCKET``. True when sent; False when unset or failed.

    A failure to send is never raised: losing a notification must not take the daemon down (systemd
    notices a missing READY=1 or WATCHDOG=1 by itself).
    """
    target = os.environ.get("NOTIFY_SOCKET")
    if not target or not state:
        return False
    if not target.startswith(("/", "@")):  # vsock and other forms: not ours to handle
        return False
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            sock.connect(_address(target))
            sock.sendall(state.encode("utf-8"))
    except OSError:
        return False
    return True


def ready() -> bool:
    """``READY=1``: start-up is complete (the API listens, the agents are adopted or started)."""
    return notify("READY=1")


def watchdog() -> bool:
    """``WATCHDOG=1``: one keep-alive ping."""
    return notify("WATCHDOG=1")


def stopping() -> bool:
    """``STOPPING=1``: a clean shutdown has begun."""
    return notify("STOPPING=1")


def status(text: str) -> bool:
    """``STATUS=text``, shown by ``systemctl status`` (one line: newlines become spaces)."""
    return notify("STATUS=" + " ".join(text.split()))


def watchdog_interval() -> float | None:
    """The watchdog timeout in seconds from ``$WATCHDOG_USEC``, or None when there is none for this process.

    None also when ``$WATCHDOG_PID`` is set to another PID: the variables were meant for a parent and
    leaked to us through the environment.
    """
    usec = os.environ.get("WATCHDOG_USEC", "")
    pid = os.environ.get("WATCHDOG_PID")
    if pid is not None and pid.strip() != str(os.getpid()):
        return None
    try:
        value = int(usec)
    except ValueError:
        return None
    return value / 1_000_000 if value > 0 else None


class Watchdog:
    """Ping the systemd watchdog every ``interval / 2`` seconds while ``healthy()`` returns True.

    ``interval`` defaults to ``watchdog_interval()``; when there is none, ``start()`` does nothing and
    returns False. A ``healthy()`` that raises counts as unhealthy. ``start()`` and ``stop()`` are explicit
    (the daemon starts it after READY=1 and stops it before STOPPING=1); ``stop()`` joins the thread.
    """

    def __init__(self, healthy: Callable[[], bool], interval: float | None = None) -> None:
        self.healthy = healthy
        self.interval = interval if interval is not None else watchdog_interval()
        self.pings = 0  #: WATCHDOG=1 messages sent
        self.missed = 0  #: periods skipped because healthy() said no
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> bool:
        """Start the pinging thread; False (and no thread) when there is no watchdog interval."""
        if self.interval is None or self.interval <= 0:
            return False
        if self.running:
            return True
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="tether-sd-watchdog", daemon=True)
        self._thread.start()
        return True

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        thread, self._thread = self._thread, None
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)

    def _check(self) -> bool:
        try:
            return bool(self.healthy())
        except Exception:
            return False

    def _run(self) -> None:
        assert self.interval is not None
        period = self.interval / 2
        while True:
            if self._check():
                if watchdog():
                    self.pings += 1
            else:
                self.missed += 1
            if self._stop.wait(period):
                return

    def __enter__(self) -> Watchdog:
        self.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()
