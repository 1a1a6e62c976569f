"""Commands answered without click, because they must be instant and work when all else is broken:
``tether [--home DIR] status [--json] [AGENT]`` with the state directory known from ``--home``, or from
``$TETHER_HOME`` when there is no runbook (no ``$TETHER_RUNBOOK``, no ./tether.yaml: a runbook's
``host.state_dir`` outranks ``$TETHER_HOME``). Anything else (or any other option) goes to the click
group, which gives the same answers more slowly."""

from __future__ import annotations

import os
import sys


def try_fast(args: list[str]) -> int | None:
    """Run a fast-path command and return its exit code, or None when click must handle ``args``."""
    home = None
    rest = list(args)
    if rest[:1] == ["--home"] and len(rest) >= 2:
        home, rest = rest[1], rest[2:]
    elif not os.environ.get("TETHER_RUNBOOK") and not os.path.exists("tether.yaml"):
        home = os.environ.get("TETHER_HOME")
    if not home or os.environ.get("TETHER_STORE") or rest[:1] != ["status"]:
        return None
    words = rest[1:]
    as_json = "--json" in words
    words = [w for w in words if w != "--json"]
    if len(words) > 1 or any(w.startswith("-") for w in words):
        return None
    import time

    from tether.fleet.seam import local_store, seen  # +15 ms (with status_report) to every other command
    from tether.status_report import as_json as render_json  # as fleet.seam: every command loads this module
    from tether.status_report import daemon, daemon_line, report, unsupervised  # as fleet.seam

    root = os.path.abspath(os.path.expanduser(home))  # plain strings: pathlib costs ~10 ms of start-up here
    now = time.time()
    opened = local_store(root)  # its SQLite file, or the PostgreSQL store a node's fleet.json names
    if opened is None:
        return None
    store, here = opened
    try:
        docs = report(store, words[0] if words else None, now)
        place = seen(store, now)
        place.annotate(docs)
        alive = daemon(store, root, now)
    finally:
        store.close()
    unsupervised(docs, root, alive, here)
    if as_json:
        sys.stdout.write(render_json(root, docs, alive, place.json()))
        return 0
    from tether.cli.render import status_table, width  # rich: +22 ms to status --json

    sys.stdout.write(daemon_line(alive, width()))
    if alive["state"] == "running":  # a phone channel that is not up (issue 21)
        from tether.notify.health import status_lines  # +9 ms to every other command

        sys.stdout.write(status_lines(root, now))
    sys.stdout.flush()
    status_table(docs, now, place)
    return 0
