"""``tether token``: create, list and revoke API tokens, straight in the store (no daemon needed)."""

from __future__ import annotations

import json
import os

import click

from tether import auth
from tether.cli.context import Context
from tether.durations import parse_duration
from tether.errors import UsageError
from tether.status_file import iso


@click.group()
def token() -> None:
    """Create, list and revoke API tokens (straight in the store: no daemon needed)."""


def _not_from_an_agent(verb: str) -> None:
    if os.environ.get("TETHER_AGENT") and os.environ.get("TETHER_TOKEN"):
        raise UsageError(
            f"tether token {verb} from inside agent {os.environ['TETHER_AGENT']!r} is tether.control: blocked"
        )


@token.command("create")
@click.option("--role", type=click.Choice(["agent", "approver", "admin"]), required=True)
@click.option("--agent", help="The agent an agent token acts for.")
@click.option("--expires", metavar="DURATION", help="Refuse it after this long (30d, 12h, 90m); default never.")
@click.pass_obj
def token_create(obj: Context, role: str, agent: str | None, expires: str | None) -> None:
    """Create a token and print it once (only its hash is kept)."""
    _not_from_an_agent("create")
    seconds = None
    if expires is not None:
        try:
            seconds = parse_duration(expires)
        except ValueError:
            raise UsageError(f"--expires {expires!r} is not a duration; use a form like 30d, 12h, 90m or 45s") from None
        if seconds <= 0:
            raise UsageError("--expires must be longer than 0s; leave it out for a token that never expires")
    made = auth.create(obj.store(), role, agent, seconds)
    click.echo(made)
    until = f", expires in {expires}" if expires else ""
    click.echo(
        f"token {made.split('_')[2]} ({role}{' for ' + agent if agent else ''}{until}); "
        f"`tether token revoke {made.split('_')[2]}` cuts it off",
        err=True,
    )


@token.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def token_list(obj: Context, as_json: bool) -> None:
    """List tokens: role, agent, created, expires, last used (to the minute), revoked."""
    rows = auth.tokens(obj.store(readonly=True))
    if as_json:
        click.echo(json.dumps([{**r, **{k: iso(r[k]) for k in _TIMES}} for r in rows]))
        return
    if not rows:
        click.echo("no tokens yet: `tether up` makes the admin's and each agent's; `tether token create` others")
        return
    head = " ".join(f"{t.upper().replace('_', ' '):<25}" for t in _TIMES)
    click.echo(f"{'ID':<9} {'ROLE':<9} {'AGENT':<16} {'STATE':<8} {head}".rstrip())
    for r in rows:
        times = " ".join(f"{iso(r[k]) or '-':<25}" for k in _TIMES)
        click.echo(f"{r['id']:<9} {r['role']:<9} {r['agent'] or '-':<16} {r['state']:<8} {times}".rstrip())


_TIMES = ("created", "expires", "last_used", "revoked")


@token.command("revoke")
@click.argument("token_id", metavar="ID")
@click.pass_obj
def token_revoke(obj: Context, token_id: str) -> None:
    """Revoke a token now (by the ID `tether token list` shows): the daemon refuses it within a second."""
    _not_from_an_agent("revoke")
    row, fresh = auth.revoke(obj.store(), token_id)
    who = f" for {row['agent']}" if row["agent"] else ""
    click.echo(
        f"token {row['id']} ({row['role']}{who}) {'revoked' if fresh else 'was already revoked'} "
        f"at {iso(row['revoked'])}"
    )
