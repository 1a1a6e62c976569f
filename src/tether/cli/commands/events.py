"""``tether events``."""

from __future__ import annotations

import json
import time

import click

from tether.cli.context import Context
from tether.status_file import iso
from tether.store import Event


@click.command()
@click.option("--agent", "-a", help="Only this agent's events.")
@click.option("--follow", "-F", is_flag=True, help="Keep printing new events as they arrive (Ctrl-C stops).")
@click.option("--limit", "-n", default=50, show_default=True, help="How many recent events to show first.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
@click.pass_obj
def events(obj: Context, agent: str | None, follow: bool, limit: int, as_json: bool) -> None:
    """Print the event log (newest last)."""
    store = obj.store(readonly=True)
    recent = list(reversed(store.last_events(agent, limit)))
    last = recent[-1].id if recent else 0
    for ev in recent:
        _print(ev, as_json)
    while follow:
        time.sleep(0.2)
        for ev in store.events(agent, after=last, limit=1000):
            _print(ev, as_json)
            last = ev.id


def _print(ev: Event, as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps({"id": ev.id, "ts": ev.ts, "agent": ev.agent, "kind": ev.kind, "data": ev.data}))
    else:
        data = " ".join(f"{k}={v}" for k, v in ev.data.items())
        click.echo(f"{ev.id:>7} {iso(ev.ts)} {ev.agent or '-':<16} {ev.kind:<20} {data}")
