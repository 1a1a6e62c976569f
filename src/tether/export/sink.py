"""What an exporter sends to: a sink takes a batch of events and delivers it, or raises ``ExportError``."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from tether import redact
from tether.errors import TetherError
from tether.runbook.model import SECRET_SCHEMES
from tether.secrets import SecretError, resolve
from tether.status_file import iso
from tether.store.base import Event


class ExportError(TetherError):
    """A batch was not accepted. ``too_large``: send fewer events at once."""

    def __init__(self, message: str, too_large: bool = False) -> None:
        super().__init__(message)
        self.too_large = too_large


class Sink(Protocol):
    name: str

    def send(self, events: Sequence[Event]) -> None: ...

    def close(self) -> None: ...


def resolve_ref(value: str) -> str:
    """A literal value as is; a secret reference resolved, and the value registered for redaction."""
    if not value.startswith(SECRET_SCHEMES):
        return value
    try:
        got = resolve(value)
    except SecretError as err:
        raise ExportError(str(err)) from None
    redact.register(got, *(part for part in got.split() if len(part) >= 8))  # "Bearer TOKEN": TOKEN alone too
    return got


def record(e: Event, host: str | None) -> dict[str, Any]:
    """One event as an exported record, redacted again on the way out (a secret registered after the
    event was written is caught here). ``id`` is the event id: receivers dedupe on it."""
    data = redact.redact_obj(e.data)
    return {
        "id": e.id, "ts": e.ts, "time": iso(e.ts), "host": host, "node": e.node, "agent": e.agent,
        "kind": e.kind, "data": data,
    }


class HttpSink:
    """POST a body to a URL (or a secret reference to one), with headers whose values may be references."""

    name = "http"
    content_type = "application/json"

    def __init__(self, target: str, headers: Mapping[str, str] | None = None, timeout: float = 10.0) -> None:
        self.target = target
        self.headers = dict(headers or {})
        self.timeout = timeout
        self._client: Any = None

    def resolve(self) -> tuple[str, dict[str, str]]:
        """The URL and headers, secret references resolved (and so registered for redaction): done before
        a batch is encoded, so the batch cannot carry them."""
        return resolve_ref(self.target), {k: resolve_ref(v) for k, v in self.headers.items()}

    def post(self, url: str, headers: dict[str, str], body: bytes) -> None:
        import httpx

        headers = dict(headers)
        headers["Content-Type"] = self.content_type
        headers.setdefault("User-Agent", "tether-export")
        if self._client is None:
            self._client = httpx.Client(timeout=self.timeout, follow_redirects=False)
        try:
            resp = self._client.post(url, content=body, headers=headers)
        except httpx.HTTPError as err:
            raise ExportError(redact.redact(f"{type(err).__name__}: {err}")) from None
        if resp.status_code == 413:
            raise ExportError(f"HTTP 413: the receiver refused a batch of {len(body)} bytes", too_large=True)
        if not 200 <= resp.status_code < 300:
            raise ExportError(redact.redact(f"HTTP {resp.status_code}: {resp.text[:200]}"))

    def close(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            client.close()
