"""What the fake model APIs share: a threaded HTTP server on 127.0.0.1 answering from a script of steps,
recording every request body, used as a context manager."""

from __future__ import annotations

import itertools
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class ScriptedServer:
    #: The path the client is pointed at under the server's root (e.g. "/v1").
    PREFIX = ""

    def __init__(self, steps: list[dict[str, Any]], model: str) -> None:
        self.steps = steps
        self.model = model
        self.requests: list[dict[str, Any]] = []
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self.handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def handler(self) -> type[BaseHTTPRequestHandler]:
        raise NotImplementedError

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}{self.PREFIX}"

    def __enter__(self) -> Any:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def record(self, body: dict[str, Any]) -> int:
        """Keep the request; return its number (1, 2, ...)."""
        with self._lock:
            self.requests.append(body)
            return next(self._ids)
