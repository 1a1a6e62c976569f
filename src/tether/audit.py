"""The hash-chained audit log and its seal outside the database.

Every verdict on a gated action and every decision is an audited event: the store chains it (each
row's hash covers the previous hash and the event) in the same transaction. ``seal`` appends each
new ``id hash`` line to ``<state>/audit.chain``, a file the daemon only ever appends to, so
``verify`` detects an edited, deleted or truncated row even when the database was rewritten whole.
"""

from __future__ import annotations

import json
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tether.events.words import line as event_line
from tether.redact import redact_obj
from tether.store import Store
from tether.store.projections import GENESIS, audit_hash

_seal_lock = threading.Lock()


def _read_seal(path: Path) -> list[tuple[int, str]]:
    try:
        lines = path.read_text().splitlines()
    except FileNotFoundError:
        return []
    out = []
    for line in lines:
        parts = line.split()
        if len(parts) == 2 and parts[0].isdigit():
            out.append((int(parts[0]), parts[1]))
    return out


def _last_sealed(path: Path) -> int:
    """The id on the seal file's last line, reading only its tail (the file only grows)."""
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - 256))
            lines = f.read().decode(errors="replace").splitlines()
    except FileNotFoundError:
        return 0
    for line in reversed(lines):
        parts = line.split()
        if len(parts) == 2 and parts[0].isdigit():
            return int(parts[0])
    return 0


def seal(store: Store, path: Path) -> int:
    """Append the audit rows not yet sealed; return how many were appended."""
    with _seal_lock:
        last = _last_sealed(path)
        rows = store.audit_rows(after=last)
        if not rows:
            return 0
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, "".join(f"{r['id']} {r['hash']}\n" for r in rows).encode())
            os.fsync(fd)
        finally:
            os.close(fd)
        return len(rows)


@dataclass
class Verification:
    rows: int = 0
    sealed: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def verify(store: Store, path: Path) -> Verification:
    """Recompute the chain and compare it with the seal file."""
    result = Verification()
    rows = store.audit_rows()
    result.rows = len(rows)
    prev = GENESIS
    by_id: dict[int, str] = {}
    for r in rows:
        expected = audit_hash(prev, r["event_id"], r["ts"], r["agent"], r["kind"], r["data"])
        if r["prev"] != prev:
            result.problems.append(f"audit row {r['id']}: does not follow the row before it (a row was deleted?)")
        if r["hash"] != expected:
            result.problems.append(f"audit row {r['id']}: its contents do not match its hash (edited?)")
        prev = r["hash"]
        by_id[r["id"]] = r["hash"]
    sealed = _read_seal(path)
    result.sealed = len(sealed)
    for sid, shash in sealed:
        got = by_id.get(sid)
        if got is None:
            result.problems.append(
                f"audit row {sid}: sealed in {path.name} but missing from the store (deleted or truncated)"
            )
        elif got != shash:
            result.problems.append(f"audit row {sid}: differs from its seal in {path.name} (rewritten)")
    return result


def page(store: Store, seal_file: Path, limit: int = 200) -> dict[str, Any]:
    """The newest ``limit`` audit rows (newest first, each with its event's line) and the chain's verification
    against ``seal_file``, redacted: ``/v1/audit`` and the dashboard's audit page."""
    result = verify(store, seal_file)
    shown = []
    for r in reversed(store.audit_rows()[-limit:]):
        try:
            data = json.loads(r["data"]) if isinstance(r["data"], str) else r["data"]
        except ValueError:
            data = {}
        shown.append({"id": r["id"], "event_id": r["event_id"], "ts": r["ts"], "agent": r["agent"],
                      "kind": r["kind"], "text": event_line(str(r["kind"]), data if isinstance(data, dict) else {}),
                      "hash": str(r["hash"])[:16]})
    out = redact_obj({
        "verification": {"ok": result.ok, "rows": result.rows, "sealed": result.sealed,
                         "problems": result.problems[:100], "seal_file": str(seal_file)},
        "rows": shown,
    })
    assert isinstance(out, dict)
    return out
