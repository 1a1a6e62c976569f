"""Approval propagation across the fleet: an agent waiting on node B (``Approvals.wait`` in B's daemon) is
released by a decision taken on node A, carried by PostgreSQL LISTEN/NOTIFY (``tether.fleet.bus``). Two
stores on one database and schema, one per node, each with its own pooled connections and listener, as two
daemons would have. Measured: from A's call to ``decide`` to B's waiter returning. Baseline: the same
decision taken on B itself (a local wake). Goal: median ≤ 200 ms. The server: ``$TETHER_BENCH_PG`` or
``postgresql://postgres@127.0.0.1:5432/test``; the run uses a schema of its own and drops it."""

from __future__ import annotations

import os
import secrets
import threading
import time
from collections.abc import Callable
from typing import Any

from common import median, row

SERVER = os.environ.get("TETHER_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/test")
GOAL_S = 0.200


def _url(schema: str) -> str:
    return f"{SERVER}{'&' if '?' in SERVER else '?'}schema={schema}"


def _skip(why: str) -> list[dict[str, object]]:
    return [row(f"fleet approval propagation: skipped, {why}", float("nan"), float("nan"), "ms", "≤ 200 ms", False)]


def _once(waiting: Any, deciding: Any, notify: Callable[[int], None] | None, n: int) -> float:
    """One approval asked on B, decided on ``deciding``; seconds from the decision to B's waiter returning."""
    fp = f"bench-{n}-{secrets.token_hex(4)}"
    req = waiting.request("bench-agent", "deploy.production", fp, classes=["deploy.production"], detail="bench",
                          rule="bench", reason="bench", timeout=60, escalate_after=60)
    done: dict[str, float] = {}
    ready = threading.Event()

    def wait() -> None:
        ready.set()
        got = waiting.wait(req["id"], 10)
        done["at"] = time.perf_counter()
        done["state"] = 1.0 if got["state"] == "approved" else 0.0

    t = threading.Thread(target=wait)
    t.start()
    ready.wait()
    time.sleep(0.02)  # the waiter is inside its condition wait
    start = time.perf_counter()
    deciding.decide(req["id"], True, "bench")
    if notify is not None:
        notify(req["id"])
    t.join(15)
    if done.get("state") != 1.0:
        raise RuntimeError("the waiter was not released by the approval")
    return done["at"] - start


def run(quick: bool) -> list[dict[str, object]]:
    try:
        import psycopg
    except ImportError:
        return _skip("psycopg is not installed (pip install 'tether[postgres]')")
    try:
        admin = psycopg.connect(SERVER, autocommit=True, connect_timeout=5)
    except psycopg.Error as err:
        where = SERVER.rsplit("@", 1)[-1]
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        return _skip(f"PostgreSQL is unreachable at {where} ({first})")
    from tether.approvals import Approvals
    from tether.fleet.bus import Bus
    from tether.store import open_store

    schema = f"bench_{secrets.token_hex(4)}"
    rounds = 15 if quick else 60
    try:
        node_a = open_store(_url(schema), node="bench-a")
        node_b = open_store(_url(schema), node="bench-b")
        approvals_a, approvals_b = Approvals(node_a), Approvals(node_b)

        class NodeB:  # what the bus needs of B's daemon
            node = "bench-b"
            store = node_b

            def wake_approvals(self) -> None:
                approvals_b._notify()

            def local_agents(self) -> list[str]:
                return []

            def kill(self, agent: str, reason: str | None) -> None:
                pass

            def reload(self) -> list[str]:
                return []

            def poke(self) -> None:
                pass

        bus = Bus(NodeB())
        bus.start()
        try:
            notify: Callable[[int], None] = lambda i: node_a.notify("approvals", str(i))  # noqa: E731 - as the API
            remote, local = [], []
            for n in range(rounds):
                remote.append(_once(approvals_b, approvals_a, notify, 2 * n))
                local.append(_once(approvals_b, approvals_b, None, 2 * n + 1))
            got, base = median(remote) * 1000, median(local) * 1000
            return [row("approval decided on node A releases the agent waiting on node B (ms, median) "
                        "vs decided on B", got, base, "ms", "≤ 200 ms", got <= GOAL_S * 1000)]
        finally:
            bus.close()
            approvals_a.close()
            approvals_b.close()
            node_a.close()
            node_b.close()
    finally:
        admin.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        admin.close()


if __name__ == "__main__":
    for r in run(quick=False):
        print(r)
