"""``tether status``: reads the store directly, so it works with no daemon."""

from __future__ import annotations

import json
import sys
import time

import click

from tether.cli.context import Context


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON (the agent-status.json documents).")
@click.argument("agent", required=False)
@click.pass_obj
def status(obj: Context, as_json: bool, agent: str | None) -> None:
    """Show every agent's state, or one AGENT's."""
    from tether.heartbeat import effective_state
    from tether.status_file import document

    now = time.time()
    store = obj.store(readonly=True)
    rows = store.agents()
    if agent is not None:
        rows = [r for r in rows if r["name"] == agent]
        if not rows:
            from tether.errors import NotFound

            raise NotFound(f"no agent named {agent!r}; `tether status` lists them")
    docs = []
    for row in rows:
        row["state"], row["reason"] = effective_state(row, now)
        docs.append(document(row, now))
    if as_json:
        sys.stdout.write(json.dumps({"state_dir": str(obj.state.root), "agents": docs}, indent=1) + "\n")
        return
    from tether.cli.render import status_table

    status_table(docs, now)
