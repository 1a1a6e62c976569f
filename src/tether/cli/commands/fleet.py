"""``tether fleet``: the nodes of a fleet (several hosts' daemons sharing one PostgreSQL store), and moving
an agent from one node to another (``move``, ``unpin``; admin only)."""

from __future__ import annotations

import json
import sys
import time
from typing import Any

import click

from tether.cli.context import Context
from tether.errors import NotFound, TetherError


def _fleet_store(obj: Context) -> Any:
    if obj.store_url.startswith("sqlite"):
        raise TetherError("no fleet here: nodes share a PostgreSQL store (host.store in each node's runbook)")
    return obj.store()


def _admin(obj: Context, store: Any) -> str:
    """Moving agents between nodes takes this host's admin token (``STATE/admin.token``)."""
    from tether import auth  # +1 ms to tether fleet (the listing)

    path = obj.state.root / "admin.token"
    try:
        token = path.read_text().strip()
    except OSError:
        raise TetherError(f"moving agents needs an admin token; cannot read {path}") from None
    who = auth.identify(store, token)
    if who is None or who.role != "admin":
        raise TetherError(f"moving agents needs an admin token; the one in {path} is not (revoked?)")
    return f"admin:{who.token_id}"


@click.group(invoke_without_command=True)
@click.option("--json", "json_", is_flag=True, help="Print JSON: nodes, pending requests, refused pins.")
@click.pass_context
def fleet(ctx: click.Context, json_: bool) -> None:
    """List the fleet's nodes: state (up, lost, stopped), last beat, their agents, what is pending there."""
    if ctx.invoked_subcommand is not None:
        return
    from tether.fleet.view import overview  # +2 ms to tether fleet move|unpin

    got = overview(_fleet_store(ctx.obj), time.time())
    assert got is not None
    if json_:
        sys.stdout.write(json.dumps(got, separators=(",", ":")) + "\n")
        return
    from tether.cli.render import nodes_table  # rich: +21 ms to tether fleet --json, move, unpin

    nodes_table(got)


@fleet.command("move")
@click.argument("agent")
@click.option("--to", "to", metavar="NODE", required=True, help="The node to run AGENT from now on.")
@click.pass_obj
def move(obj: Context, agent: str, to: str) -> None:
    """Pin AGENT to node NODE (admin): its old node stops it, then NODE (whose runbook must name it) starts it.
    Never on both at once: NODE waits for the old run to end, unless the old node is lost or stopped."""
    from tether.fleet import nodes, pins  # +1 ms to tether fleet (the listing)

    store = _fleet_store(obj)
    by = _admin(obj, store)
    row = store.agent(agent)
    if row is None:
        raise NotFound(f"no agent named {agent!r} in this fleet; `tether status` lists them")
    target = nodes.node(store, to)
    if target is None:
        known = ", ".join(n["name"] for n in nodes.nodes(store)) or "none"
        raise NotFound(f"no node named {to!r} in this fleet (nodes: {known})")
    if row.get("node") == to:
        click.echo(f"{agent}: already pinned to node {to}")
        return
    pins.pin(store, agent, to, by, f"moved by `tether fleet move` from node {row.get('node') or 'none'}")
    names = target["info"].get("agents") or []
    note = "" if agent in names else f"; note: node {to}'s runbook did not name {agent} when it started"
    click.echo(f"{agent}: pinned to node {to} (was {row.get('node') or 'none'}); node {to} starts it once "
               f"the old run has ended{note}")


@fleet.command("unpin")
@click.argument("agent")
@click.pass_obj
def unpin(obj: Context, agent: str) -> None:
    """Release AGENT's pin (admin) when its node is lost or stopped: the next node whose runbook names it
    takes it. While its node is up, use `tether fleet move` (or drop it from that node's runbook)."""
    from tether.fleet import nodes, pins  # +1 ms to tether fleet (the listing)

    store = _fleet_store(obj)
    by = _admin(obj, store)
    row = store.agent(agent)
    if row is None:
        raise NotFound(f"no agent named {agent!r} in this fleet; `tether status` lists them")
    node = row.get("node")
    if not node:
        click.echo(f"{agent}: not pinned")
        return
    owner = nodes.node(store, str(node))
    if owner is not None and owner["state"] == "up":
        raise TetherError(f"{agent} is pinned to node {node}, which is up: `tether fleet move {agent} --to NODE` "
                          f"moves it, or drop it from {node}'s runbook and reload")
    pins.pin(store, agent, None, by, f"released by `tether fleet unpin` (node {node} not up)")
    click.echo(f"{agent}: released from node {node}; the next node whose runbook names it takes it")
