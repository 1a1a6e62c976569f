"""``tether status``: reads the store directly, so it works with no daemon."""

from __future__ import annotations

import sys
import time

import click

from tether.cli.context import Context


@click.command()
@click.option("--json", "json_", is_flag=True, help="Print JSON (the agent-status.json documents).")
@click.argument("agent", required=False)
@click.pass_obj
def status(obj: Context, json_: bool, agent: str | None) -> None:
    """Show every agent's state, or one AGENT's."""
    from tether.status_report import as_json, report

    now = time.time()
    docs = report(obj.store(readonly=True), agent, now)
    if json_:
        sys.stdout.write(as_json(str(obj.state.root), docs))
        return
    from tether.cli.render import status_table

    status_table(docs, now)
