"""``tether drill``: the incident drills, run for real."""

from __future__ import annotations

import click

from tether.cli.context import Context


@click.command()
@click.option("--agent", "agents", multiple=True, metavar="AGENT", help="Drill only this agent (repeatable).")
@click.option("--only", metavar="NAME,...",
              help="Only these drills: kill, break-test, network, protected-file, sandbox, reboot.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.option("--sandbox", is_flag=True,
              help="Drill a copy of each agent's workspace with a stand-in agent, under a daemon of its own.")
@click.pass_obj
def drill(obj: Context, agents: tuple[str, ...], only: str | None, as_json: bool, sandbox: bool) -> None:
    """Run the incident drills against this host's daemon and agents, and report.

    kill: SIGKILL the agent; it is restarted per its policy, or reported stopped and its owner told.
    break-test: a failing test on a drill branch (a temporary worktree); the pr.open gate denies the PR.
    network: its endpoints probed with no network (unshare -n); recorded, and an incident raised.
    protected-file: ask to write .env in its workspace; held for approval. sandbox: inside its wall, an
    outside write and an outside connection fail and are recorded; fails when the wall is off. reboot:
    SIGKILL the daemon and every agent, start the daemon as the service would; nothing is lost, every
    agent runs again.

    Live agents are really crashed and the daemon really restarted; --sandbox drills copies instead.
    Each drill cleans up after itself and is recorded (drill.result events). Exit status 1 when a
    drill fails; degraded (checked only approximately, or safe another way) does not fail.
    """
    from tether.drills import report, runner  # cycle: tether.drills.base imports tether.cli.client
    from tether.drills.base import Result  # as above

    loaded = obj.loaded
    drills = runner.parse_only(only)
    chosen = runner.pick_agents(loaded, agents)

    def progress(r: Result) -> None:
        click.echo(report.line(r), err=True)

    got = runner.run_host(loaded, chosen, drills, sandbox=sandbox, progress=None if as_json else progress)
    click.echo(got.to_json() if as_json else report.table(got), nl=False)
    if got.failed:
        raise SystemExit(1)
