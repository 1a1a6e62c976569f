"""Events as OTLP log records (OTLP/HTTP to ``/v1/logs``, JSON by default, protobuf with ``tether[otel]``).

Each record carries the event id (``tether.event.id``) so a receiver can dedupe the at-least-once
delivery; a ``usage`` event carries the OpenTelemetry GenAI token attributes (``gen_ai.usage.*``).
"""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Mapping, Sequence
from typing import Any

from tether import __version__, redact
from tether.export.sink import ExportError, HttpSink
from tether.store.base import Event

INFO, WARN, ERROR = 9, 13, 17
_WARN_KINDS = frozenset({"incident.opened", "agent.killed", "approval.expired", "approval.escalated", "notify.failed"})
_PROVIDERS = {"claude-code": "anthropic", "claude": "anthropic", "codex": "openai"}


def severity(kind: str) -> tuple[int, str]:
    if kind in _WARN_KINDS:
        return WARN, "WARN"
    if kind == "error" or kind.endswith((".failed", ".error", ".failing", ".rejected")):
        return ERROR, "ERROR"
    return INFO, "INFO"


def value(v: Any) -> dict[str, Any]:
    """An OTLP ``AnyValue``; 64-bit integers are strings in OTLP/JSON."""
    if isinstance(v, bool):
        return {"boolValue": v}
    if isinstance(v, int):
        return {"intValue": str(v)}
    if isinstance(v, float):
        return {"doubleValue": v}
    if isinstance(v, str):
        return {"stringValue": v}
    return {"stringValue": json.dumps(v, separators=(",", ":"), sort_keys=True, default=str)}


def _attrs(pairs: Mapping[str, Any]) -> list[dict[str, Any]]:
    return [{"key": k, "value": value(v)} for k, v in pairs.items() if v is not None]


def _int(v: Any) -> int:
    try:
        return int(v or 0)
    except (TypeError, ValueError):
        return 0


def gen_ai(data: Mapping[str, Any]) -> dict[str, Any]:
    """The GenAI semantic-convention attributes of a ``usage`` event. ``gen_ai.usage.input_tokens`` counts
    every input token, cached ones included; the cache reads and writes are also given on their own."""
    cache_read = _int(data.get("cache_read_input_tokens", data.get("cache_read_tokens")))
    cache_write = _int(data.get("cache_creation_input_tokens", data.get("cache_write_tokens")))
    model = data.get("model") or None
    client = str(data.get("client") or "")
    return {
        "gen_ai.provider.name": data.get("provider") or _PROVIDERS.get(client),
        "gen_ai.request.model": model,
        "gen_ai.response.model": model,
        "gen_ai.conversation.id": data.get("session_id") or None,
        "gen_ai.usage.input_tokens": _int(data.get("input_tokens")) + cache_read + cache_write,
        "gen_ai.usage.output_tokens": _int(data.get("output_tokens")),
        "gen_ai.usage.cache_read.input_tokens": cache_read,
        "gen_ai.usage.cache_creation.input_tokens": cache_write,
        "tether.usage.cost_usd": float(data["cost_usd"]) if isinstance(data.get("cost_usd"), int | float) else None,
    }


def log_record(e: Event, observed: float) -> dict[str, Any]:
    data = redact.redact_obj(e.data)
    assert isinstance(data, dict)
    number, text = severity(e.kind)
    attrs: dict[str, Any] = {
        "tether.event.id": e.id, "tether.event.kind": e.kind, "tether.agent": e.agent, "tether.node": e.node,
        "gen_ai.agent.name": e.agent,
    }
    if e.kind == "usage":
        attrs.update(gen_ai(data))
    return {
        "timeUnixNano": str(int(e.ts * 1e9)),
        "observedTimeUnixNano": str(int(observed * 1e9)),
        "severityNumber": number,
        "severityText": text,
        "eventName": f"tether.{e.kind}",
        "body": {"stringValue": json.dumps(data, separators=(",", ":"), sort_keys=True, default=str)},
        "attributes": _attrs(attrs),
    }


def encode(events: Sequence[Event], host: str | None = None, now: float | None = None) -> dict[str, Any]:
    """An ``ExportLogsServiceRequest`` in the OTLP/JSON mapping."""
    observed = time.time() if now is None else now
    resource = {"service.name": "tether", "service.version": __version__, "host.name": host or socket.gethostname()}
    return {"resourceLogs": [{
        "resource": {"attributes": _attrs(resource)},
        "scopeLogs": [{
            "scope": {"name": "tether", "version": __version__},
            "logRecords": [log_record(e, observed) for e in events],
        }],
    }]}


def to_protobuf(payload: dict[str, Any]) -> bytes:
    try:
        from google.protobuf import json_format
        from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
    except ImportError:
        raise ExportError("OTLP over protobuf needs opentelemetry-proto: pip install 'tether[otel]'") from None
    msg = json_format.ParseDict(payload, ExportLogsServiceRequest(), ignore_unknown_fields=True)
    data: bytes = msg.SerializeToString()
    return data


def logs_url(endpoint: str) -> str:
    """``http://collector:4318`` → ``http://collector:4318/v1/logs``; a URL already ending so is kept."""
    endpoint = endpoint.rstrip("/")
    return endpoint if endpoint.endswith("/v1/logs") else endpoint + "/v1/logs"


class OtlpSink(HttpSink):
    name = "otlp"

    def __init__(self, target: str, headers: Mapping[str, str] | None = None, timeout: float = 10.0,
                 host: str | None = None, protocol: str = "http/json") -> None:
        super().__init__(target, headers, timeout)
        self.host = host
        self.protocol = protocol
        self.content_type = "application/x-protobuf" if protocol == "http/protobuf" else "application/json"

    def send(self, events: Sequence[Event]) -> None:
        url, headers = self.resolve()
        payload = encode(events, self.host)
        if self.protocol == "http/protobuf":
            body = to_protobuf(payload)
        else:
            body = json.dumps(payload, separators=(",", ":")).encode()
        self.post(logs_url(url), headers, body)
