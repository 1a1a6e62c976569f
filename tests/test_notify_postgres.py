"""The notifier and the exporter on the PostgreSQL store: the same tests as on SQLite, each in a schema
of its own (skipped when no server answers, except in CI)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

pytest.importorskip("psycopg")

from test_deadman import receiver
from test_export import (
    exporters,
    test_a_receiver_that_was_down_receives_every_event_once_it_is_back,
    test_the_webhook_gets_json_lines_with_event_ids_and_the_cursor_survives_a_restart,
)
from test_notify import (
    kits,
    test_a_flapping_signal_is_one_thread_and_resolved_is_said_once,
    test_an_unacknowledged_incident_escalates_to_the_backup_and_an_acknowledged_one_does_not,
    test_approvals_kills_and_restarts_notify_the_right_people,
)
from test_store_postgres import _url, admin, schema
from tether.store import Store, open_store

__all__ = [
    "admin", "exporters", "kits", "receiver", "schema",
    "test_a_flapping_signal_is_one_thread_and_resolved_is_said_once",
    "test_a_receiver_that_was_down_receives_every_event_once_it_is_back",
    "test_an_unacknowledged_incident_escalates_to_the_backup_and_an_acknowledged_one_does_not",
    "test_approvals_kills_and_restarts_notify_the_right_people",
    "test_the_webhook_gets_json_lines_with_event_ids_and_the_cursor_survives_a_restart",
]


@pytest.fixture
def store(schema: str) -> Iterator[Store]:
    s = open_store(_url(schema))
    yield s
    s.close()
