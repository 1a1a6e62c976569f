"""Events as JSON lines (``application/x-ndjson``) POSTed to a webhook URL, one event per line."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence

from tether.export.sink import HttpSink, record
from tether.store.base import Event


def encode(events: Sequence[Event], host: str | None = None) -> bytes:
    lines = [json.dumps(record(e, host), separators=(",", ":"), default=str) for e in events]
    return ("\n".join(lines) + "\n").encode()


class WebhookSink(HttpSink):
    name = "webhook"
    content_type = "application/x-ndjson"

    def __init__(self, target: str, headers: Mapping[str, str] | None = None, timeout: float = 10.0,
                 host: str | None = None) -> None:
        super().__init__(target, headers, timeout)
        self.host = host

    def send(self, events: Sequence[Event]) -> None:
        url, headers = self.resolve()
        self.post(url, headers, encode(events, self.host))
