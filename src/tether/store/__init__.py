"""The store: the only package that speaks SQL. ``open_store`` picks the backend from a URL."""

from __future__ import annotations

from tether.errors import StoreError
from tether.store.base import Event, NewEvent, Store, Task

__all__ = ["Event", "NewEvent", "Store", "Task", "open_store"]


def open_store(url: str, *, node: str | None = None, readonly: bool = False) -> Store:
    """``sqlite:///path`` (default) or ``postgresql://...`` (needs ``pip install 'tether[postgres]'``)."""
    if url.startswith("sqlite:///"):
        from tether.store.sqlite import SQLiteStore  # here: `import tether.store` costs ~2 ms, the backend ~25

        return SQLiteStore(url.removeprefix("sqlite:///"), node=node, readonly=readonly)
    if url.startswith(("postgresql://", "postgres://")):
        try:
            import psycopg  # noqa: F401 - here: psycopg is optional, and only a PostgreSQL store needs it
        except ImportError:
            raise StoreError(
                "the PostgreSQL store needs psycopg: pip install 'tether[postgres]'"
            ) from None
        from tether.store.postgres import PostgresStore  # here: psycopg stays out of every SQLite process

        return PostgresStore(url, node=node, readonly=readonly)
    raise StoreError(f"{url}: unknown store URL; expected sqlite:///PATH or postgresql://...")
