"""Housekeeping for the PostgreSQL store: backups and the integrity check.

Backups (``backup(path)``): JSON lines, taken in one REPEATABLE READ snapshot while writers continue:
a header line ``{"tether": "backup", "format": 1, ...}``; for each table a line
``{"table": NAME, "columns": [...]}`` followed by one JSON array per row; a last line
``{"end": true, "tables": N, "rows": M}`` (a file without it is truncated). It needs no ``pg_dump``
(whose version must match the server's) and reads back with ``read_backup`` on any host.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from typing import Any

import psycopg
from psycopg import sql as pgsql
from psycopg_pool import ConnectionPool, PoolTimeout

from tether.errors import StoreError
from tether.store import schema
from tether.store.pgconnect import POOL_TIMEOUT, Target, explain

TABLES = ("events", "agents", "tasks", "tokens", "incidents", "approvals", "audit")


class PgHousekeeping:
    """The PostgreSQL store's ``backup`` and ``integrity_check`` (over its pool and its reads)."""

    target: Target
    _pool: ConnectionPool[psycopg.Connection[Any]]

    def _read(self, query: str, params: Any = ()) -> list[dict[str, Any]]:
        raise NotImplementedError

    def backup(self, path: str) -> None:
        """Write every table, in one consistent snapshot, as JSON lines (format in the module docstring)."""
        if os.path.exists(path):
            raise StoreError(f"{path}: already exists; choose a new file name")
        try:
            out = open(path, "x", encoding="utf-8")  # noqa: SIM115 - closed below, unlinked on failure
        except OSError as err:
            raise StoreError(f"{path}: cannot write the backup ({err.strerror})") from None
        ok = False
        try:
            with out, self._pool.connection() as conn:
                conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
                try:
                    self._dump(conn, out)
                finally:
                    conn.execute("ROLLBACK")
                out.flush()
                os.fsync(out.fileno())
            ok = True
        except PoolTimeout:
            raise StoreError(f"{self.target.where}: no database connection within {POOL_TIMEOUT:g}s") from None
        except psycopg.Error as err:
            raise explain(self.target, err) from None
        except OSError as err:
            raise StoreError(f"{path}: cannot write the backup ({err.strerror})") from None
        finally:
            if not ok:
                try:
                    os.unlink(path)
                except OSError:
                    pass

    def _dump(self, conn: psycopg.Connection[Any], out: Any) -> None:
        tables = [r[0] for r in conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema() "
            "AND table_type = 'BASE TABLE' ORDER BY table_name COLLATE \"C\""
        )]
        migrations = [r[0] for r in conn.execute("SELECT name FROM migrations ORDER BY name")]
        enc = json.JSONEncoder(default=str, ensure_ascii=False, separators=(",", ":")).encode
        out.write(enc({"tether": "backup", "format": 1, "backend": "postgresql", "created": time.time(),
                       "source": self.target.where, "migrations": migrations, "tables": tables}) + "\n")
        total = 0
        for table in tables:
            cur = conn.cursor(name=f"tether_backup_{table}")
            cur.itersize = 2000
            order = pgsql.SQL(" ORDER BY id") if table in ("events", "tasks", "incidents", "approvals",
                                                            "audit") else pgsql.SQL("")
            cur.execute(pgsql.SQL("SELECT * FROM {}").format(pgsql.Identifier(table)) + order)
            columns = [d.name for d in cur.description or ()]
            out.write(enc({"table": table, "columns": columns}) + "\n")
            for row in cur:
                out.write(enc(list(row)) + "\n")
                total += 1
            cur.close()
        out.write(enc({"end": True, "tables": len(tables), "rows": total}) + "\n")

    def integrity_check(self) -> str:
        """'ok', or what is wrong: missing migrations or tables, an id sequence behind its table (the next
        event would reuse an id), or a break in the audit hash chain's links."""
        problems: list[str] = []
        try:
            done = {r["name"] for r in self._read("SELECT name FROM migrations")}
        except StoreError as err:
            return f"cannot read the migrations table: {err}"
        missing = [name for name, _ in schema.MIGRATIONS if name not in done]
        if missing:
            problems.append(f"migrations not applied: {', '.join(missing)}")
        present = {r["t"] for r in self._read(
            "SELECT table_name AS t FROM information_schema.tables WHERE table_schema = current_schema()")}
        lost = [t for t in TABLES if t not in present]
        if lost:
            problems.append(f"tables missing: {', '.join(lost)}")
        if "events" in present:
            row = self._read(
                "SELECT (SELECT coalesce(max(id), 0) FROM events) AS top, "
                "pg_sequence_last_value(pg_get_serial_sequence('events', 'id')::regclass) AS last"
            )[0]
            if row["top"] > (row["last"] or 0):
                problems.append(f"the events id sequence ({row['last']}) is behind the largest id ({row['top']}): "
                                "new events would reuse ids")
        if "audit" in present:
            broken = self._read(
                "SELECT count(*) AS n FROM (SELECT prev, lag(hash) OVER (ORDER BY id) AS before FROM audit) x "
                "WHERE before IS NOT NULL AND prev <> before"
            )[0]["n"]
            if broken:
                problems.append(f"audit chain: {broken} row(s) do not link to the row before")
        return "; ".join(problems) or "ok"



def read_backup(path: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """The rows of a ``backup`` file as ``(table, {column: value})``, in file order. Raises ``StoreError``
    if the file is not a tether backup or was cut short (no end line)."""
    with open(path, encoding="utf-8") as f:
        head = json.loads(f.readline() or "null")
        if not (isinstance(head, dict) and head.get("tether") == "backup" and head.get("format") == 1):
            raise StoreError(f"{path}: not a tether backup (format 1)")
        table, columns, ended = "", list[str](), False
        for line in f:
            item = json.loads(line)
            if isinstance(item, list):
                yield table, dict(zip(columns, item, strict=True))
            elif item.get("end"):
                ended = True
            else:
                table, columns = item["table"], item["columns"]
        if not ended:
            raise StoreError(f"{path}: the backup is incomplete (no end line); take it again")

