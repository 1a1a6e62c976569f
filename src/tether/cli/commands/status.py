"""``tether status``: reads the store directly, so it works with no daemon (and then says so)."""

from __future__ import annotations

import sys
import time

import click

from tether.cli.context import Context
from tether.fleet.seam import here, seen
from tether.notify.health import status_lines
from tether.status_report import as_json, daemon, daemon_line, report, unsupervised


@click.command()
@click.option("--json", "json_", is_flag=True, help="Print JSON (the agent-status.json documents).")
@click.argument("agent", required=False)
@click.pass_obj
def status(obj: Context, json_: bool, agent: str | None) -> None:
    """Show every agent's state, or one AGENT's."""
    now = time.time()
    root = str(obj.state.root)
    store = obj.store(readonly=True)
    docs = report(store, agent, now)
    place = seen(store, now)  # several nodes: each agent's node and notes, the nodes, pending requests
    place.annotate(docs)
    alive = daemon(store, root, now)
    unsupervised(docs, root, alive, here(root))
    if json_:
        sys.stdout.write(as_json(root, docs, alive, place.json()))
        return
    from tether.cli.render import status_table, width  # rich: +22 ms to tether status --json

    sys.stdout.write(daemon_line(alive, width()))
    if alive["state"] == "running":  # a phone channel that is not up (issue 21)
        sys.stdout.write(status_lines(root, now))
    sys.stdout.flush()
    status_table(docs, now, place)
