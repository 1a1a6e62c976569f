"""``tether approve`` and ``tether deny``: a human's decision on a pending request, through the daemon,
which wakes the waiting agent at once."""

from __future__ import annotations

import os

import click

from tether.cli.client import call
from tether.cli.context import Context
from tether.errors import UsageError


@click.command()
@click.argument("approval_id", type=int)
@click.option("--note", help="A note for the record (and the agent).")
@click.option(
    "--for",
    "scope",
    type=click.Choice(["once", "task", "1h"]),
    default="once",
    show_default=True,
    help="once: this call, once; task: every identical call of its session or task; "
    "1h: every identical call of its session or task for one hour.",
)
@click.pass_obj
def approve(obj: Context, approval_id: int, note: str | None, scope: str) -> None:
    """Approve a pending request; the waiting agent proceeds at once."""
    _refuse_inside_agent("tether approve")
    row = call(obj.state, "POST", f"/v1/approvals/{approval_id}/approve", {"note": note, "scope": scope})
    what = {"once": "once", "task": "for this session or task", "1h": "for one hour"}[scope]
    click.echo(f"approval {row['id']} approved {what}: {row['agent']} may {row['action']}: {row['detail'][:200]}")


@click.command()
@click.argument("approval_id", type=int)
@click.option("--reason", required=True, help="Why (recorded, and told to the agent).")
@click.pass_obj
def deny(obj: Context, approval_id: int, reason: str) -> None:
    """Deny a pending request, with a reason."""
    _refuse_inside_agent("tether deny")
    row = call(obj.state, "POST", f"/v1/approvals/{approval_id}/deny", {"reason": reason})
    click.echo(f"approval {row['id']} denied: {reason}")


def _refuse_inside_agent(what: str) -> None:
    """An agent running `tether approve` is the tether.control action: never allowed."""
    if os.environ.get("TETHER_AGENT") and os.environ.get("TETHER_TOKEN"):
        raise UsageError(f"{what} from inside agent {os.environ['TETHER_AGENT']!r} is tether.control: blocked")
