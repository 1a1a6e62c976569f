"""``tether budget``: today's spend against each agent's daily budget; a human's reset."""

from __future__ import annotations

import json
import os
import time

import click

from tether import budgets
from tether.cli.context import Context
from tether.daemon.budgetwatch import BY
from tether.errors import UsageError


@click.group()
def budget() -> None:
    """Today's spend against each agent's daily budget (UTC day); reset one."""


@budget.command("show")
@click.argument("agent", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def budget_show(obj: Context, agent: str | None, as_json: bool) -> None:
    """Show today's spend, the budget and whether it is spent."""
    agents = obj.loaded.runbook.agents
    if agent is not None and agent not in agents:
        raise UsageError(f"no agent named {agent!r} in {obj.loaded.path}")
    store, now = obj.store(readonly=True), time.time()
    rows = []
    for name in [agent] if agent else list(agents):
        b = agents[name].budgets
        spend = budgets.today(store, name, now)
        rows.append({"agent": name, "tokens": spend.tokens, "usd": round(spend.usd, 6),
                     "tokens_per_day": b.tokens_per_day, "usd_per_day": b.usd_per_day,
                     "spent": budgets.over(b, spend)})
    if as_json:
        click.echo(json.dumps(rows))
        return
    click.echo(f"{'AGENT':<16} {'TOKENS TODAY':>14} {'BUDGET':>14} {'USD TODAY':>10} {'BUDGET':>10}  STATE")
    for r in rows:
        tb = f"{r['tokens_per_day']:,}" if r["tokens_per_day"] is not None else "-"
        ub = f"${r['usd_per_day']:.2f}" if r["usd_per_day"] is not None else "-"
        state = f"SPENT: {r['spent']}" if r["spent"] else "ok"
        usd = f"${r['usd']:.2f}"
        click.echo(f"{r['agent']:<16} {r['tokens']:>14,} {tb:>14} {usd:>10} {ub:>10}  {state}")


@budget.command("reset")
@click.argument("agent")
@click.pass_obj
def budget_reset(obj: Context, agent: str) -> None:
    """Count AGENT's spend afresh from now (today's figures are kept), and lift a pause for its budget."""
    from tether.boundary import killed_line  # +87 ms to tether budget show
    from tether.killswitch import whoami  # +10 ms to tether budget show

    if os.environ.get("TETHER_AGENT") and os.environ.get("TETHER_TOKEN"):
        raise UsageError(f"tether budget reset from inside agent {os.environ['TETHER_AGENT']!r} is "
                         "tether.control: blocked")
    if agent not in obj.loaded.runbook.agents:
        raise UsageError(f"no agent named {agent!r} in {obj.loaded.path}")
    before = budgets.reset(obj.store(), agent, by=whoami())
    click.echo(f"{agent}: budget reset: {before.tokens:,} tokens and ${before.usd:.2f} spent today before it, "
               "not counted from now on")
    kill_file = obj.state.agent_kill_file(agent)
    if kill_file.exists() and killed_line(kill_file).startswith(f"killed by {BY} "):
        from tether.cli.commands.control import resume  # +14 ms to tether budget show (the kill switch)

        click.get_current_context().invoke(resume, agent=agent, all_=False)

