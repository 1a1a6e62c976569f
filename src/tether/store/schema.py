"""Migrations, in order, shared by every backend. ``{id}`` and ``{real}`` are filled per dialect.

Add a migration by appending to ``MIGRATIONS``; never edit one that has shipped.
"""

from __future__ import annotations

import time
from typing import Any

DIALECTS: dict[str, dict[str, str]] = {
    "sqlite": {"id": "INTEGER PRIMARY KEY AUTOINCREMENT", "real": "REAL", "bigint": "INTEGER"},
    "postgresql": {"id": "BIGSERIAL PRIMARY KEY", "real": "DOUBLE PRECISION", "bigint": "BIGINT"},
}

MIGRATIONS: list[tuple[str, list[str]]] = [
    (
        "0001_events_agents_tasks",
        [
            """CREATE TABLE events (
                id {id},
                ts {real} NOT NULL,
                node TEXT,
                agent TEXT,
                kind TEXT NOT NULL,
                data TEXT NOT NULL
            )""",
            "CREATE INDEX events_agent_id ON events (agent, id)",
            "CREATE INDEX events_ts ON events (ts)",
            """CREATE TABLE agents (
                name TEXT PRIMARY KEY,
                node TEXT,
                desired TEXT NOT NULL DEFAULT 'running',
                state TEXT NOT NULL DEFAULT 'stopped',
                reason TEXT,
                state_since {real},
                task TEXT,
                progress TEXT,
                last_heartbeat {real},
                last_progress {real},
                pid {bigint},
                started_at {real},
                restarts {bigint} NOT NULL DEFAULT 0,
                exit_code {bigint},
                last_task TEXT,
                last_task_at {real},
                files_changed {bigint} NOT NULL DEFAULT 0,
                commands_run {bigint} NOT NULL DEFAULT 0,
                tests TEXT,
                approval_required {bigint} NOT NULL DEFAULT 0,
                info TEXT NOT NULL DEFAULT '{{}}',
                updated {real}
            )""",
            """CREATE TABLE tasks (
                id {id},
                agent TEXT NOT NULL,
                text TEXT NOT NULL,
                state TEXT NOT NULL,
                created {real} NOT NULL,
                started {real},
                finished {real},
                meta TEXT NOT NULL DEFAULT '{{}}'
            )""",
            "CREATE INDEX tasks_agent_state ON tasks (agent, state, id)",
        ],
    ),
    (
        "0002_tokens_incidents",
        [
            """CREATE TABLE tokens (
                id TEXT PRIMARY KEY,
                hash TEXT NOT NULL UNIQUE,
                role TEXT NOT NULL,
                agent TEXT,
                created {real} NOT NULL,
                revoked {real}
            )""",
            """CREATE TABLE incidents (
                id {id},
                agent TEXT,
                kind TEXT NOT NULL,
                state TEXT NOT NULL,
                summary TEXT NOT NULL,
                opened {real} NOT NULL,
                resolved {real},
                acked {real},
                data TEXT NOT NULL DEFAULT '{{}}'
            )""",
            "CREATE INDEX incidents_open ON incidents (state, agent, kind)",
        ],
    ),
    (
        "0003_approvals_audit",
        [
            """CREATE TABLE approvals (
                id {id},
                agent TEXT NOT NULL,
                state TEXT NOT NULL,
                action TEXT NOT NULL,
                classes TEXT NOT NULL DEFAULT '[]',
                detail TEXT NOT NULL DEFAULT '',
                fingerprint TEXT NOT NULL,
                rule TEXT NOT NULL DEFAULT '',
                reason TEXT NOT NULL DEFAULT '',
                requested {real} NOT NULL,
                expires {real},
                escalate_at {real},
                escalated {real},
                decided {real},
                decided_by TEXT,
                note TEXT,
                uses {bigint} NOT NULL DEFAULT 0,
                data TEXT NOT NULL DEFAULT '{{}}'
            )""",
            "CREATE INDEX approvals_state ON approvals (state, agent)",
            "CREATE INDEX approvals_fingerprint ON approvals (fingerprint, state)",
            """CREATE TABLE audit (
                id {id},
                event_id {bigint} NOT NULL,
                ts {real} NOT NULL,
                agent TEXT,
                kind TEXT NOT NULL,
                data TEXT NOT NULL,
                prev TEXT NOT NULL,
                hash TEXT NOT NULL
            )""",
        ],
    ),
    (
        "0004_signals",
        [
            """CREATE TABLE usage (
                agent TEXT NOT NULL,
                day TEXT NOT NULL,
                model TEXT NOT NULL,
                input_tokens {bigint} NOT NULL DEFAULT 0,
                output_tokens {bigint} NOT NULL DEFAULT 0,
                cache_read_tokens {bigint} NOT NULL DEFAULT 0,
                cache_write_tokens {bigint} NOT NULL DEFAULT 0,
                cost_usd {real} NOT NULL DEFAULT 0,
                PRIMARY KEY (agent, day, model)
            )""",
            """CREATE TABLE agent_errors (
                agent TEXT NOT NULL,
                kind TEXT NOT NULL,
                count {bigint} NOT NULL DEFAULT 0,
                last {real},
                PRIMARY KEY (agent, kind)
            )""",
            """CREATE TABLE agent_accounts (
                agent TEXT NOT NULL,
                account TEXT NOT NULL,
                count {bigint} NOT NULL DEFAULT 0,
                last {real},
                PRIMARY KEY (agent, account)
            )""",
            "ALTER TABLE agents ADD COLUMN retries {bigint} NOT NULL DEFAULT 0",
        ],
    ),
    (
        "0005_notifications_export",
        [
            """CREATE TABLE notifications (
                id {id},
                thread TEXT NOT NULL,
                subject {bigint},
                topic TEXT NOT NULL,
                agent TEXT,
                recipient TEXT NOT NULL,
                channel TEXT NOT NULL,
                title TEXT NOT NULL,
                body TEXT NOT NULL,
                state TEXT NOT NULL,
                attempts {bigint} NOT NULL DEFAULT 0,
                next_try {real},
                last_error TEXT,
                created {real} NOT NULL,
                sent {real}
            )""",
            "CREATE INDEX notifications_thread ON notifications (thread, topic)",
            "CREATE INDEX notifications_due ON notifications (state, next_try)",
            """CREATE TABLE export_cursors (
                name TEXT PRIMARY KEY,
                event_id {bigint} NOT NULL,
                updated {real} NOT NULL
            )""",
        ],
    ),
    (
        "0006_fleet_nodes",
        [
            """CREATE TABLE nodes (
                name TEXT PRIMARY KEY,
                state TEXT NOT NULL DEFAULT 'up',
                pid {bigint},
                url TEXT,
                started {real},
                last_beat {real},
                state_since {real},
                info TEXT NOT NULL DEFAULT '{{}}'
            )""",
            """CREATE TABLE kill_requests (
                record_id TEXT PRIMARY KEY,
                agent TEXT NOT NULL,
                node TEXT NOT NULL,
                reason TEXT,
                requested {real} NOT NULL,
                applied {real}
            )""",
            "CREATE INDEX kill_requests_node ON kill_requests (node, applied)",
        ],
    ),
    (
        "0007_drills",
        [
            "ALTER TABLE agents ADD COLUMN drills TEXT",
            "ALTER TABLE agents ADD COLUMN last_drill_at {real}",
        ],
    ),
    (
        "0008_fleet_requests",
        [
            # a request for another node's daemon: kill (as before), resume, start, stop, restart
            "ALTER TABLE kill_requests ADD COLUMN verb TEXT NOT NULL DEFAULT 'kill'",
            "ALTER TABLE kill_requests ADD COLUMN result TEXT",
        ],
    ),
    (
        "0009_token_expiry_last_use",
        [
            "ALTER TABLE tokens ADD COLUMN expires {real}",
            # written at most once a minute per token (``auth``), not an event: uses do not grow the store
            "ALTER TABLE tokens ADD COLUMN last_used {real}",
        ],
    ),
    (
        "0010_budget_resets",
        [
            # what had been spent on the UTC day when a human last reset the agent's budget (``budgets``)
            "CREATE TABLE budget_resets (agent TEXT NOT NULL, day TEXT NOT NULL, tokens {bigint} NOT NULL, "
            "usd {real} NOT NULL, ts {real} NOT NULL, by_whom TEXT, PRIMARY KEY (agent, day))",
        ],
    ),
    (
        "0011_approval_grants",
        [
            # an approval's grant (``approvals``): the session or task it was asked for, how long an unused
            # grant lives (the runbook's retry_window), the approver's scope (once | task | 1h) and until when
            "ALTER TABLE approvals ADD COLUMN session TEXT NOT NULL DEFAULT ''",
            "ALTER TABLE approvals ADD COLUMN grant_window {real}",
            "ALTER TABLE approvals ADD COLUMN scope TEXT",
            "ALTER TABLE approvals ADD COLUMN grant_until {real}",
        ],
    ),
    (
        "0012_wall_violations",
        [
            # wall.violation events counted per agent and kind (connect | write: vocabulary.VIOLATION_KINDS)
            """CREATE TABLE agent_violations (
                agent TEXT NOT NULL,
                kind TEXT NOT NULL,
                count {bigint} NOT NULL DEFAULT 0,
                last {real},
                PRIMARY KEY (agent, kind)
            )""",
        ],
    ),
]


def statements(dialect: str, migration: list[str]) -> list[str]:
    words = DIALECTS[dialect]
    return [sql.format(**words) for sql in migration]


def migrate(tx: Any, dialect: str) -> None:
    """Apply, in order, every migration ``tx``'s database has not recorded, and record it: inside the
    caller's transaction, which each backend opens under its own lock (SQLite ``BEGIN IMMEDIATE``,
    PostgreSQL an advisory lock) so two processes starting at once do not both apply one.
    ``tx.execute`` takes backend-neutral SQL (``?`` placeholders)."""
    real = DIALECTS[dialect]["real"]
    tx.execute(f"CREATE TABLE IF NOT EXISTS migrations (name TEXT PRIMARY KEY, applied {real} NOT NULL)")
    done = {r[0] for r in tx.execute("SELECT name FROM migrations").fetchall()}
    for name, stmts in MIGRATIONS:
        if name not in done:
            for sql in statements(dialect, stmts):
                tx.execute(sql)
            tx.execute("INSERT INTO migrations VALUES (?, ?)", (name, time.time()))
