"""``tether incidents`` and ``tether ack``."""

from __future__ import annotations

import getpass
import json
import os
import time
from typing import Any

import click

from tether.cli.context import Context
from tether.durations import format_duration
from tether.errors import DaemonUnavailable, RouteMissing, UsageError
from tether.notify.incidents import ack as ack_in_store
from tether.status_file import iso


@click.command()
@click.option("--all", "all_", is_flag=True, help="Resolved incidents too, not only the open ones.")
@click.option("--agent", help="Only this agent's.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def incidents(obj: Context, all_: bool, agent: str | None, as_json: bool) -> None:
    """List open incidents (reads the store: works with no daemon)."""
    rows = obj.store(readonly=True).incidents(None if all_ else "open", agent)
    if as_json:
        click.echo(json.dumps(rows, default=str))
        return
    if not rows:
        click.echo("no incidents" if all_ else "no open incidents")
        return
    now = time.time()
    for r in rows:
        state = r["state"] if r["state"] != "open" or not r["acked"] else "acked"
        age = format_duration(round(max(0.0, (r["resolved"] or now) - r["opened"])))
        click.echo(f"{r['id']:>6}  {state:<8} {r['agent'] or '(host)':<18} {r['kind']:<16} {iso(r['opened'])}  {age}")
        click.echo(f"        {str(r['summary'])[:200]}")


@click.command()
@click.argument("incident_id", type=int)
@click.option("--note", help="A note for the record.")
@click.pass_obj
def ack(obj: Context, incident_id: int, note: str | None) -> None:
    """Acknowledge an incident: you have it, so its backup is not paged.

    Through the daemon when it runs; straight into the store when it does not (or does not answer).
    """
    if os.environ.get("TETHER_AGENT") and os.environ.get("TETHER_TOKEN"):
        raise UsageError(f"tether ack from inside agent {os.environ['TETHER_AGENT']!r} is tether.control: blocked")
    row = _ack_via_daemon(obj, incident_id, note)
    if row is None:
        row = ack_in_store(obj.store(), incident_id, by=f"{getpass.getuser()} (cli)", note=note)
    who = f"{row['agent']}: " if row.get("agent") else ""
    click.echo(f"incident {row['id']} acknowledged at {iso(row['acked'])}: {who}{row['kind']}"
               + (" (already resolved)" if row.get("state") == "resolved" else ""))


def _ack_via_daemon(obj: Context, incident_id: int, note: str | None) -> dict[str, Any] | None:
    from tether.cli.client import call  # urllib: +21 ms to tether incidents

    try:
        got = call(obj.state, "POST", f"/v1/incidents/{incident_id}/ack", {"note": note})
    except DaemonUnavailable:
        return None
    except RouteMissing:  # a daemon without the endpoint
        return None
    return got if isinstance(got, dict) and "id" in got else None
