"""Reads of databases that are not tether's own, kept here so that every SQL statement tether runs lives in
the store package: OpenClaw's state database (``integrations.openclaw_policy``)."""

from __future__ import annotations

import sqlite3
from pathlib import Path


def openclaw_exec_approvals(db: Path) -> str | None:
    """The raw JSON of OpenClaw's host exec-approvals document in its state database ``db`` (opened read
    only), or None when the database or the row is missing or unreadable."""
    try:
        conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=2)
        try:
            row = conn.execute("SELECT raw_json FROM exec_approvals_config LIMIT 1").fetchone()
        finally:
            conn.close()
    except sqlite3.Error:
        return None
    return None if row is None else str(row[0])
