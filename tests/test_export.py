"""The exporter: JSON lines to a webhook and OTLP log records, from a cursor kept in the store, to real
receivers on 127.0.0.1; a receiver that was down gets every event once it is back."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from test_notify_kit import Receiver, free_port, receiver, wait_for
from tether import redact
from tether.export import Exporter
from tether.runbook.model import Export
from tether.store import Store, open_store

__all__ = ["receiver"]


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = open_store(f"sqlite:///{tmp_path / 'tether.db'}")
    yield s
    s.close()


@pytest.fixture
def exporters() -> Iterator[list[Exporter]]:
    made: list[Exporter] = []
    yield made
    for x in made:
        x.stop()


def exported_ids(r: Receiver) -> list[int]:
    return [line["id"] for req in r.at("/events") for line in req.lines()]


def usage_event(store: Store) -> int:
    return store.emit("usage", "worker", client="claude-code", session_id="sess-1", source="transcript",
                      model="claude-sonnet-4", input_tokens=1200, output_tokens=340, cache_creation_input_tokens=100,
                      cache_read_input_tokens=5000, calls=3, tokens=6640, cost_usd=0.0123)


def test_the_webhook_gets_json_lines_with_event_ids_and_the_cursor_survives_a_restart(
    store: Store, receiver: Receiver, exporters: list[Exporter]
) -> None:
    ids = [store.emit("task.added", "worker", text=f"task {i}") for i in range(5)]
    config = Export(webhook=receiver.url("/events"), batch=2)
    x = Exporter(store, config, host="test-host")
    assert x.run_once() == 2 and x.run_once() == 2 and x.run_once() == 1 and x.run_once() == 0
    assert exported_ids(receiver) == ids
    req = receiver.at("/events")[0]
    assert req.headers["content-type"] == "application/x-ndjson"
    line = req.lines()[0]
    assert line["kind"] == "task.added" and line["agent"] == "worker" and line["host"] == "test-host"
    assert line["data"] == {"text": "task 0"} and line["time"].endswith("+00:00")
    assert store.cursor("export.webhook") == ids[-1]
    more = store.emit("task.added", "worker", text="after the restart")
    again = Exporter(store, config)  # a new daemon: starts from the cursor in the store
    assert again.run_once() == 1
    assert exported_ids(receiver) == [*ids, more]


def test_a_receiver_that_was_down_receives_every_event_once_it_is_back(
    store: Store, exporters: list[Exporter]
) -> None:
    port = free_port()
    x = Exporter(store, Export(webhook=f"http://127.0.0.1:{port}/events", batch=7), poll=0.05,
                 backoff_base=0.05, backoff_cap=0.3)
    exporters.append(x)
    x.start()
    written = []
    slowest = 0.0
    for i in range(40):  # the receiver is down: writing events is not slowed by it
        t0 = time.perf_counter()
        written.append(store.emit("command.run", "worker", argv=["step", str(i)]))
        slowest = max(slowest, time.perf_counter() - t0)
        if i % 10 == 0:
            time.sleep(0.05)
    assert slowest < 0.5
    wait_for(lambda: store.events(kinds=["export.failing"]), what="the failure recorded")
    assert x.status()[0]["failures"] >= 1 and x.status()[0]["last_error"]
    back = Receiver(port=port).start()
    try:
        everything = [e.id for e in store.events(limit=10000)]
        wait_for(lambda: set(everything) <= set(exported_ids(back)), timeout=10, what="every event delivered")
        got = exported_ids(back)
        assert set(written) <= set(got)
        assert got == sorted(got)  # in order, none lost
        wait_for(lambda: store.events(kinds=["export.recovered"]), what="the recovery recorded")
        recovered = store.events(kinds=["export.recovered"])[0]
        assert recovered.data["sink"] == "webhook" and recovered.data["failures"] >= 1
        wait_for(lambda: recovered.id in exported_ids(back), what="the recovery itself exported")
    finally:
        back.stop()


def test_an_otlp_receiver_gets_log_records_with_gen_ai_token_attributes(
    store: Store, receiver: Receiver, exporters: list[Exporter]
) -> None:
    store.emit("incident.opened", "worker", kind="budget.spent", summary="worker spent its daily budget")
    uid = usage_event(store)
    x = Exporter(store, Export(otlp=receiver.url("/collector")), host="test-host")
    assert x.run_once() == 2
    req = receiver.at("/collector/v1/logs")[0]
    assert req.headers["content-type"] == "application/json"
    payload = req.json()
    resource = payload["resourceLogs"][0]["resource"]["attributes"]
    assert {"key": "service.name", "value": {"stringValue": "tether"}} in resource
    assert {"key": "host.name", "value": {"stringValue": "test-host"}} in resource
    records = payload["resourceLogs"][0]["scopeLogs"][0]["logRecords"]
    assert records[0]["severityText"] == "WARN"
    usage = records[1]
    attrs = {a["key"]: a["value"] for a in usage["attributes"]}
    assert attrs["tether.event.id"] == {"intValue": str(uid)}
    assert attrs["gen_ai.usage.input_tokens"] == {"intValue": str(1200 + 100 + 5000)}  # cached tokens included
    assert attrs["gen_ai.usage.output_tokens"] == {"intValue": "340"}
    assert attrs["gen_ai.usage.cache_read.input_tokens"] == {"intValue": "5000"}
    assert attrs["gen_ai.request.model"] == {"stringValue": "claude-sonnet-4"}
    assert attrs["gen_ai.provider.name"] == {"stringValue": "anthropic"}
    assert attrs["gen_ai.agent.name"] == {"stringValue": "worker"}
    assert attrs["gen_ai.conversation.id"] == {"stringValue": "sess-1"}
    assert int(usage["timeUnixNano"]) > 1_600_000_000 * 10**9
    assert usage["eventName"] == "tether.usage"


def test_otlp_over_protobuf_decodes_with_the_opentelemetry_protos(
    store: Store, receiver: Receiver
) -> None:
    logs_service = pytest.importorskip("opentelemetry.proto.collector.logs.v1.logs_service_pb2")
    uid = usage_event(store)
    x = Exporter(store, Export(otlp=receiver.url("/v1/logs"), otlp_protocol="http/protobuf"))
    assert x.run_once() == 1
    req = receiver.at("/v1/logs")[0]
    assert req.headers["content-type"] == "application/x-protobuf"
    msg = logs_service.ExportLogsServiceRequest()
    msg.ParseFromString(req.body)
    record = msg.resource_logs[0].scope_logs[0].log_records[0]
    attrs = {a.key: a.value for a in record.attributes}
    assert attrs["tether.event.id"].int_value == uid
    assert attrs["gen_ai.usage.input_tokens"].int_value == 6300


def test_only_the_kinds_asked_for_are_sent_and_the_cursor_passes_the_rest(
    store: Store, receiver: Receiver
) -> None:
    store.emit("task.added", "worker", text="t")
    inc = store.emit("incident.opened", "worker", kind="stale", summary="s")
    last = store.emit("agent.state", "worker", state="running")
    x = Exporter(store, Export(webhook=receiver.url("/events"), kinds=("incident.*", "approval.*")))
    assert x.run_once() == 1
    assert exported_ids(receiver) == [inc]
    assert store.cursor("export.webhook") == last


def test_a_receiver_refusing_a_large_batch_gets_smaller_ones(store: Store, exporters: list[Exporter]) -> None:
    def small_only(req: Any) -> int:
        return 413 if len(req.lines()) > 3 else 200

    r = Receiver(status=small_only).start()
    try:
        ids = [store.emit("command.run", "worker", argv=["x", str(i)]) for i in range(10)]
        x = Exporter(store, Export(webhook=r.url("/events"), batch=10))
        for _ in range(20):
            x.run_once()
        assert exported_ids(r) == ids
    finally:
        r.stop()


def test_nothing_exported_carries_a_secret(
    store: Store, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    token = "collector-token-0f1e2d3c4b5a"
    monkeypatch.setenv("COLLECTOR_TOKEN", f"Bearer {token}")
    monkeypatch.setenv("HOOK_URL", receiver.url("/events"))
    github = "ghp_" + "Z9y8X7w6V5u4T3s2R1q0P9o8N7m6L5k4J3i2"
    store.emit("command.run", "worker", argv=["echo", token])  # written before the daemon knew the token
    store.emit("command.run", "worker", argv=["echo", github])
    usage_event(store)
    x = Exporter(store, Export(webhook="env:HOOK_URL", otlp=receiver.url("/otlp"),
                               headers={"Authorization": "env:COLLECTOR_TOKEN"}))
    assert x.run_once() == 6
    assert {req.headers["authorization"] for req in receiver.requests} == {f"Bearer {token}"}
    for req in receiver.requests:
        assert token.encode() not in req.body and github.encode() not in req.body
        assert b"REDACTED" in req.body
    assert redact.redact(token) != token
