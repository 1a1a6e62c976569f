"""`tether status` as a person reads it: one line per agent in 80 columns, WHY on one line, ages never
negative. The table is rich's, printed to a real (captured) console of the width COLUMNS says."""

from __future__ import annotations

from typing import Any

import pytest

from tether.cli.render import ago, status_table
from tether.status_file import document

LONG_WHY = (
    "waiting for approval 17 (`tether approve 17`): git push --force origin main in "
    "/srv/agents/workspaces/billing, where the branch is protected"
)


def _doc(agent: str, state: str, **over: Any) -> dict[str, Any]:
    doc = {
        "agent": agent,
        "state": state,
        "heartbeat_age_s": 3.2,
        "task": None,
        "restarts": 0,
        "files_changed": 0,
        "violations": {"connect": 0, "write": 0},
        "reason": None,
    }
    return {**doc, **over}


DOCS = [
    _doc(
        "billing-refactorer",
        "waiting_for_approval",
        task="refactor the billing module and its tests",
        restarts=3,
        files_changed=12,
        reason=LONG_WHY,
    ),
    _doc("repo-maintainer", "running", heartbeat_age_s=-0.746),
    _doc("data-deleter", "blocked", heartbeat_age_s=4000, task="cleanup", reason="blocked: data.delete rm -rf data"),
]


def _table(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], width: int, docs: list[dict[str, Any]] = DOCS
) -> list[str]:
    monkeypatch.setenv("COLUMNS", str(width))
    status_table(docs, 0.0)
    return capsys.readouterr().out.splitlines()


def test_eighty_columns_names_and_states_whole_why_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    lines = _table(monkeypatch, capsys, 80)
    assert all(len(line) <= 80 for line in lines), "\n".join(lines)
    assert lines[0].split() == ["AGENT", "STATE", "HEARTBEAT", "TASK", "RESTARTS", "FILES"]
    rows = {line.split()[0]: line for line in lines[1:] if not line.startswith(" ")}
    assert set(rows) == {"billing-refactorer", "repo-maintainer", "data-deleter"}, "names are not cut"
    assert rows["billing-refactorer"].split()[1] == "waiting_for_approval", "a state is never cut"
    assert " refactor …" in rows["billing-refactorer"], "a long task ends in an ellipsis"
    # WHY: its own line under its row, one line, cut with an ellipsis; none for an agent without one
    at = lines.index(rows["billing-refactorer"])
    assert lines[at + 1].startswith("  why: waiting for approval 17 (`tether approve 17`): git push")
    assert lines[at + 1].endswith("…") and len(lines[at + 1]) == 80
    assert lines[lines.index(rows["repo-maintainer"]) + 1] == rows["data-deleter"]
    assert lines[-1] == "  why: blocked: data.delete rm -rf data"
    assert len(lines) == 6
    assert "-0s" not in "\n".join(lines) and " 0s ago" in rows["repo-maintainer"]
    assert " 1h ago" in rows["data-deleter"]


def test_a_wide_terminal_has_a_why_column(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    lines = _table(monkeypatch, capsys, 160)
    assert lines[0].split()[-1] == "WHY" and len(lines) == 4, "one line per agent"
    assert lines[1].endswith("…") and len(lines[1]) == 160
    assert lines[3].rstrip().endswith(" blocked: data.delete rm -rf data")
    lines = _table(monkeypatch, capsys, 300)
    assert lines[1].rstrip().endswith("where the branch is protected"), "whole when it fits"
    assert all(len(line) <= 300 for line in lines) and len(lines) == 4


def test_violations_column_only_when_there_are_some(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    docs = [*DOCS[:2], {**DOCS[2], "violations": {"connect": 5, "write": 1}}]
    lines = _table(monkeypatch, capsys, 80, docs)
    assert lines[0].split() == ["AGENT", "STATE", "BEAT", "TASK", "RESTARTS", "FILES", "VIOLATIONS"]
    assert all(len(line) <= 80 for line in lines), "\n".join(lines)
    row = next(line for line in lines if line.startswith("data-deleter"))
    assert row.split()[-1] == "6" and row.split()[0] == "data-deleter"


def test_long_names_end_in_an_ellipsis(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    name = "an-agent-name-far-longer-than-anyone-should-choose-for-a-terminal"
    lines = _table(monkeypatch, capsys, 80, [_doc(name, "crashloop", reason="restarted 6 times in 10m")])
    assert all(len(line) <= 80 for line in lines), "\n".join(lines)
    first = lines[1].split()[0]
    assert first.endswith("…") and name.startswith(first[:-1]) and len(first) >= 12
    assert lines[1].split()[1] == "crashloop"


@pytest.mark.parametrize(
    ("seconds", "shown"),
    [
        (None, "-"),
        (-0.746, "0s ago"),
        (0.4, "0s ago"),
        (59.9, "59s ago"),
        (61, "1m ago"),
        (7200, "2h ago"),
        (3 * 86400, "3d ago"),
    ],
)
def test_ago(seconds: float | None, shown: str) -> None:
    assert ago(seconds) == shown


def test_ages_in_the_status_document_are_never_negative() -> None:
    """`now` is read before the store: a beat recorded in between is in the future of `now`."""
    now = 1_800_000_000.0
    row = {"name": "a", "state": "running", "last_heartbeat": now + 0.746, "queue_depth": 1, "oldest_queued": now + 0.2}
    doc = document(row, now)
    assert doc["heartbeat_age_s"] == 0.0 and doc["queue_age_s"] == 0.0
    later = document(row, now + 10)
    assert later["heartbeat_age_s"] == pytest.approx(9.254) and later["queue_age_s"] == pytest.approx(9.8)


def test_ages_on_the_dashboard_are_never_negative() -> None:
    """The dashboard's approval and incident ages (its JSON too) are read against a `now` taken before the row."""
    from tether.web.views import approval_view, incident_view

    now = 1_800_000_000.0
    asked = approval_view({"id": 1, "requested": now + 0.7, "expires": now + 60, "state": "pending", "data": {}}, now)
    assert asked["age_s"] == 0.0 and asked["expires_in_s"] == 60.0
    assert incident_view({"id": 1, "opened": now + 0.7, "resolved": None, "state": "open"}, now)["age_s"] == 0.0
    assert incident_view({"id": 1, "opened": now - 5, "resolved": None, "state": "open"}, now)["age_s"] == 5.0
