"""Commands answered without click, because they must be instant and work when all else is broken:
``tether [--home DIR] status [--json] [AGENT]`` with the state directory known from ``--home`` or
``$TETHER_HOME``. Anything else (or any other option) goes to the click group, which gives the same
answers more slowly."""

from __future__ import annotations

import os
import sys


def try_fast(args: list[str]) -> int | None:
    """Run a fast-path command and return its exit code, or None when click must handle ``args``."""
    home = os.environ.get("TETHER_HOME")
    rest = list(args)
    if rest[:1] == ["--home"] and len(rest) >= 2:
        home, rest = rest[1], rest[2:]
    if not home or os.environ.get("TETHER_STORE") or rest[:1] != ["status"]:
        return None
    words = rest[1:]
    as_json = "--json" in words
    words = [w for w in words if w != "--json"]
    if len(words) > 1 or any(w.startswith("-") for w in words):
        return None
    from tether.status_report import as_json as render_json
    from tether.status_report import report

    root = os.path.expanduser(home)  # plain strings: pathlib costs ~10 ms of start-up here
    fleet = None
    if os.path.exists(os.path.join(root, "fleet.json")):  # fleet: a node's state dir names its PostgreSQL store
        from tether.fleet.view import annotate, overview, store_url
        from tether.store import open_store

        url = store_url(root)
        if url is None:
            return None
        shared = open_store(url, readonly=True)
        try:
            docs = report(shared, words[0] if words else None)
            fleet = overview(shared)
            annotate(docs, fleet)
        finally:
            shared.close()
    else:
        from tether.store.sqlite import SQLiteStore

        store = SQLiteStore(os.path.join(root, "tether.db"), readonly=True)
        docs = report(store, words[0] if words else None)
        store.close()
    if as_json:
        sys.stdout.write(render_json(root, docs, fleet))
        return 0
    import time

    from tether.cli.render import status_table

    status_table(docs, time.time(), fleet)
    return 0
