"""What the stand-in services share: a threaded HTTP server on 127.0.0.1 used as a context manager
(``LocalServer``), and for the stateful ones (ntfy, Telegram) one condition that guards their state and is
notified on every change, so a test waits on it with a deadline, and ``down()``/``up()`` (``FakeService``)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self


class LocalServer:
    #: The path the client is pointed at under the server's root (e.g. "/v1").
    PREFIX = ""

    def __init__(self) -> None:
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self.handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def handler(self) -> type[BaseHTTPRequestHandler]:
        raise NotImplementedError

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}{self.PREFIX}"

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()


class FakeService(LocalServer):
    def __init__(self) -> None:
        self._down = False
        self._cond = threading.Condition()  # re-entrant: a subclass's down() may extend this one's
        super().__init__()

    def __exit__(self, *exc: object) -> None:
        self.down()  # ends the requests held open (long polls, streams)
        super().__exit__(*exc)

    def down(self) -> None:
        """Every call fails (502) until ``up()``: the connection drops and comes back."""
        with self._cond:
            self._down = True
            self._cond.notify_all()

    def up(self) -> None:
        with self._cond:
            self._down = False
            self._cond.notify_all()

    def recent(self) -> str:
        """What a wait that timed out reports: the service's last few calls."""
        return ""

    def wait_for(self, what: Callable[[], Any], timeout: float = 15.0) -> Any:
        """Wait (on the service's condition, woken by every change) until ``what()`` is truthy; return it."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                got = what()
                if got:
                    return got
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"timed out after {timeout}s; {self.recent()}")
                self._cond.wait(min(left, 0.5))
