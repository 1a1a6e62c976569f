"""What the fake model APIs share: a threaded HTTP server on 127.0.0.1 answering from a script of steps,
recording every request body, used as a context manager."""

from __future__ import annotations

import itertools
import threading
from typing import Any

from fakes.service import LocalServer


class ScriptedServer(LocalServer):
    def __init__(self, steps: list[dict[str, Any]], model: str) -> None:
        self.steps = steps
        self.model = model
        self.requests: list[dict[str, Any]] = []
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        super().__init__()

    def record(self, body: dict[str, Any]) -> int:
        """Keep the request; return its number (1, 2, ...)."""
        with self._lock:
            self.requests.append(body)
            return next(self._ids)
