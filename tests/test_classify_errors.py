"""A classifier exception is a bug made visible: still answered ``unknown`` (fail safe), but logged with
its traceback (the input named by its sha256, never its text), counted, and shown in /metrics. The
suite's autouse fixture (conftest.py) fails any test during which the count grew; these tests expect it."""

from __future__ import annotations

import logging

import pytest
from prometheus_client.parser import text_string_to_metric_families

import tether.classify.api as api
from tether.classify import classify_shell, classify_tool, errors_total, input_hash
from tether.metrics import Snapshot, render

SECRET_COMMAND = "deploy --token hunter2-very-secret"


def _boom(*args: object) -> None:
    raise ZeroDivisionError("injected")


def _metric() -> float:
    snap = Snapshot([], {}, {"host_uptime_s": 1.0, "disk": {}}, [], [])
    families = {f.name: f for f in text_string_to_metric_families(render(snap).decode())}
    return families["tether_classifier_errors"].samples[0].value


@pytest.mark.classifier_errors
def test_an_injected_exception_is_logged_counted_shown_and_unknown(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    before = errors_total()
    monkeypatch.setattr(api, "walk_text", _boom)
    with caplog.at_level(logging.ERROR, logger="tether.classify"):
        result = classify_shell(SECRET_COMMAND)
    assert result.classes == {"unknown"} and not result.parsed
    assert result.actions[0].reason == "classifier error: ZeroDivisionError"
    assert errors_total() == before + 1
    assert _metric() == errors_total()
    [record] = [r for r in caplog.records if r.name == "tether.classify"]
    assert record.exc_info is not None and record.exc_info[0] is ZeroDivisionError
    assert f"sha256:{input_hash(SECRET_COMMAND)}" in record.getMessage()
    assert "hunter2" not in caplog.text and "_boom" in caplog.text  # the traceback, not the input


@pytest.mark.classifier_errors
def test_every_entry_point_counts(monkeypatch: pytest.MonkeyPatch) -> None:
    before = errors_total()
    monkeypatch.setattr(api, "classify_tool_into", _boom)
    assert classify_tool("Bash", {"command": "ls"}).classes == {"unknown"}
    assert errors_total() == before + 1


def test_metrics_show_the_count_without_errors() -> None:
    assert _metric() == errors_total()
