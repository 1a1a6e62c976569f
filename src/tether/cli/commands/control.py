"""``tether kill``, ``resume``, ``token``, ``beat``, ``task``."""

from __future__ import annotations

import click

from tether.cli.context import Context
from tether.errors import DaemonUnavailable, NotFound


@click.command()
@click.argument("agent", required=False)
@click.option("--all", "all_", is_flag=True, help="Kill every agent in the runbook.")
@click.option("--reason", help="Why (recorded, and shown to the owner).")
@click.pass_obj
def kill(obj: Context, agent: str | None, all_: bool, reason: str | None) -> None:
    """Stop AGENT's whole process tree now and keep it stopped until `tether resume`.

    Works with the daemon dead or hung: signals first, from the recorded process identities, and
    records afterwards.
    """
    from tether.killswitch import kill_agent

    if not agent and not all_:
        raise click.UsageError("name an AGENT or pass --all")
    names = list(obj.loaded.runbook.agents) if all_ else [agent or ""]
    for name in names:
        spec = obj.loaded.runbook.agents.get(name)
        if spec is None:
            raise NotFound(f"no agent named {name!r} in {obj.loaded.path}")
        store = None
        try:
            store = obj.store()
        except Exception:  # the store may be locked by a hung daemon: kill anyway
            store = None
        got = kill_agent(obj.state, name, spec.kill, reason, store=store)
        click.echo(f"{name}: killed ({len(got['signalled'])} process(es) signalled); `tether resume {name}` lifts it")


@click.command()
@click.argument("agent")
@click.pass_obj
def resume(obj: Context, agent: str) -> None:
    """Lift AGENT's kill switch and start it again."""
    from tether.cli.client import call
    from tether.killswitch import lift

    try:
        call(obj.state, "POST", f"/v1/agents/{agent}/resume")
    except DaemonUnavailable:
        lift(obj.state, agent, store=obj.store())
    click.echo(f"{agent}: resumed")


@click.group()
def token() -> None:
    """Manage API tokens."""


@token.command("create")
@click.option("--role", type=click.Choice(["agent", "approver", "admin"]), required=True)
@click.option("--agent", help="The agent an agent token acts for.")
@click.pass_obj
def token_create(obj: Context, role: str, agent: str | None) -> None:
    """Create a token and print it once (only its hash is kept)."""
    from tether import auth

    click.echo(auth.create(obj.store(), role, agent))


@click.command()
@click.option("--task", help="What the agent is working on.")
@click.option("--progress", help="A progress note; when it stops changing, the agent is stuck.")
def beat(task: str | None, progress: str | None) -> None:
    """Send a heartbeat for the agent this runs in ($TETHER_AGENT, $TETHER_URL, $TETHER_TOKEN)."""
    from tether.sdk import Agent, TetherUnavailable

    try:
        Agent.from_env().heartbeat(task, progress)
    except TetherUnavailable as err:
        raise DaemonUnavailable(str(err)) from None


@click.group()
def task() -> None:
    """Queue and list an agent's tasks."""


@task.command("add")
@click.argument("agent")
@click.argument("text")
@click.pass_obj
def task_add(obj: Context, agent: str, text: str) -> None:
    """Queue TEXT as a task for AGENT."""
    from tether.cli.client import call

    got = call(obj.state, "POST", f"/v1/agents/{agent}/tasks", {"text": text})
    click.echo(f"task {got['id']} queued for {agent}")


@task.command("list")
@click.argument("agent")
@click.pass_obj
def task_list(obj: Context, agent: str) -> None:
    """List AGENT's tasks (reads the store: works with no daemon)."""
    from tether.status_file import iso

    for t in obj.store(readonly=True).tasks(agent):
        click.echo(f"{t.id:>7} {t.state:<9} {iso(t.created)} {t.text}")
