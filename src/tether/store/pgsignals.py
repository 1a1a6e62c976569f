"""Signals across hosts for the PostgreSQL store: ``notify(channel, payload)`` and ``listen(...)`` /
``start_listener(...)`` wrap LISTEN/NOTIFY, namespaced by schema so stores sharing a database do not
hear each other."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

import psycopg
from psycopg import sql as pgsql
from psycopg_pool import ConnectionPool, PoolTimeout

from tether.errors import StoreError
from tether.store.base import Listener
from tether.store.pgconnect import POOL_TIMEOUT, Target, explain, explain_connect

MAX_PAYLOAD = 7999  # NOTIFY payloads must be shorter than 8000 bytes


class PgSignals:
    """The PostgreSQL store's ``notify``, ``listen`` and ``start_listener`` (over its pool and target)."""

    target: Target
    schema: str
    _pool: ConnectionPool[psycopg.Connection[Any]]
    _closed: bool
    _stopping: threading.Event  # set by close(): listeners end
    _app: Callable[[str], str]

    def _channel(self, channel: str) -> str:
        full = f"{self.schema}.{channel}"
        if not channel or len(full.encode()) > 63:
            raise StoreError(
                f"{self.target.where}: channel {channel!r} must be non-empty and, with the schema, "
                "at most 63 bytes"
            )
        return full

    def notify(self, channel: str, payload: str = "") -> None:
        """Send ``payload`` to every ``listen``er on ``channel`` (any host on this database and schema).
        Delivered at once (autocommit); a listener that is not connected at that moment misses it."""
        full = self._channel(channel)
        if len(payload.encode()) > MAX_PAYLOAD:
            raise StoreError(f"{self.target.where}: a notification payload must be under 8000 bytes")
        if self._closed:
            raise StoreError(f"{self.target.where}: the store is closed")
        try:
            with self._pool.connection() as conn:
                conn.execute("SELECT pg_notify(%s, %s)", (full, payload))
        except PoolTimeout:
            raise StoreError(f"{self.target.where}: no database connection within {POOL_TIMEOUT:g}s") from None
        except psycopg.Error as err:
            raise explain(self.target, err) from None

    def listen(
        self,
        channels: Iterable[str],
        callback: Listener,
        stop_event: threading.Event,
        *,
        ready: threading.Event | None = None,
        on_reconnect: Callable[[], None] | None = None,
        poll: float = 0.1,
    ) -> None:
        """Block until ``stop_event`` is set (or the store is closed), calling ``callback(channel, payload)``
        for each notification on ``channels``, on a connection of its own. ``ready`` is set once LISTEN is
        in effect. The first connection failing raises ``StoreError``; a connection lost later is reopened
        (backing off up to 5 s) and ``on_reconnect()`` is called: notifications sent meanwhile are lost, so
        the caller re-reads what it watches. A callback that raises is ignored (the listener keeps going)."""
        names = {self._channel(c): c for c in channels}
        delay, first = 0.2, True
        while not (stop_event.is_set() or self._stopping.is_set()):
            try:
                conn = psycopg.connect(self.target.conninfo(application_name=self._app("listen")), autocommit=True)
                try:
                    for full in names:
                        conn.execute(pgsql.SQL("LISTEN {}").format(pgsql.Identifier(full)))
                except BaseException:
                    conn.close()
                    raise
            except psycopg.Error as err:
                if first:
                    raise explain_connect(self.target, err) from None
                stop_event.wait(delay)
                delay = min(delay * 2, 5.0)
                continue
            try:
                if not first and on_reconnect is not None:
                    try:
                        on_reconnect()
                    except Exception:
                        pass
                first, delay = False, 0.2
                if ready is not None:
                    ready.set()
                while not (stop_event.is_set() or self._stopping.is_set()):
                    for n in conn.notifies(timeout=poll):
                        original = names.get(n.channel)
                        if original is not None:
                            try:
                                callback(original, n.payload)
                            except Exception:
                                pass
            except psycopg.Error:
                stop_event.wait(delay)
                delay = min(delay * 2, 5.0)
            finally:
                conn.close()

    def start_listener(
        self,
        channels: Iterable[str],
        callback: Listener,
        stop_event: threading.Event,
        *,
        on_reconnect: Callable[[], None] | None = None,
        timeout: float = 10.0,
    ) -> threading.Thread:
        """``listen`` in a daemon thread; returns once LISTEN is in effect, or raises ``StoreError``."""
        chans = list(channels)
        for c in chans:
            self._channel(c)  # a bad name fails here, in the caller
        ready = threading.Event()
        failure: list[BaseException] = []

        def run() -> None:
            try:
                self.listen(chans, callback, stop_event, ready=ready, on_reconnect=on_reconnect)
            except BaseException as err:
                failure.append(err)

        thread = threading.Thread(target=run, name="tether-listen", daemon=True)
        thread.start()
        deadline = time.monotonic() + timeout
        while not ready.wait(0.02):
            if time.monotonic() > deadline or not thread.is_alive():
                if failure:
                    raise failure[0]
                stop_event.set()
                raise StoreError(f"{self.target.where}: could not start listening within {timeout:g}s")
        return thread

