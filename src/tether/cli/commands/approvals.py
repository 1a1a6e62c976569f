"""What the store holds of the boundary, read with no daemon: ``tether approvals`` (the approvals, pending
or all) and ``tether audit verify`` (the hash-chained audit log against its seal file)."""

from __future__ import annotations

import json
import time

import click

from tether.approvals import grant_line
from tether.audit import verify
from tether.cli.context import Context
from tether.errors import TetherError
from tether.status_file import iso


@click.command()
@click.option("--all", "all_", is_flag=True, help="Every approval, not only the pending ones.")
@click.option("--agent", help="Only this agent's.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def approvals(obj: Context, all_: bool, agent: str | None, as_json: bool) -> None:
    """List approvals waiting for a human (reads the store: works with no daemon)."""
    rows = obj.store(readonly=True).approvals(None if all_ else "pending", agent)
    if as_json:
        click.echo(json.dumps(rows, default=str))
        return
    if not rows:
        click.echo("no pending approvals" if not all_ else "no approvals")
        return
    now = time.time()
    for r in rows:  # the action column is the class whose verdict held it
        click.echo(f"{r['id']:>6}  {r['state']:<8} {r['agent']:<18} {r['action']:<18} {iso(r['requested'])}")
        click.echo(f"        {r['detail'][:200]}")
        click.echo(f"        held by {r['rule']}: {r['reason']}")
        if r.get("session"):
            click.echo(f"        for {r['session'][:120]}")
        if r["state"] != "pending":
            click.echo(f"        {grant_line(r, now)}; by {r['decided_by'] or '-'}")


@click.group()
def audit() -> None:
    """The hash-chained audit log."""


@audit.command("verify")
@click.pass_obj
def audit_verify(obj: Context) -> None:
    """Recompute the audit chain and compare it with its seal file; exit 1 on any mismatch."""
    result = verify(obj.store(readonly=True), obj.state.audit_file)
    for problem in result.problems:
        click.echo(problem)
    if not result.ok:
        raise TetherError(f"audit log: {len(result.problems)} problem(s) in {result.rows} row(s)")
    click.echo(f"audit log ok: {result.rows} row(s), {result.sealed} sealed in {obj.state.audit_file}")
