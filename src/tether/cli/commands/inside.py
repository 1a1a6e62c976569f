"""Commands run from inside an agent, which find their daemon and token in its environment
(``$TETHER_AGENT``, ``$TETHER_URL``, ``$TETHER_TOKEN``) and talk to it through the SDK: ``tether beat``,
``ask`` and ``exec``."""

from __future__ import annotations

import os
import sys

import click

from tether.cli.context import duration
from tether.errors import DaemonUnavailable, TetherError
from tether.sdk import Agent, TetherUnavailable


@click.command()
@click.option("--task", help="What the agent is working on.")
@click.option("--progress", help="A progress note; when it stops changing, the agent is stuck.")
def beat(task: str | None, progress: str | None) -> None:
    """Send a heartbeat for the agent this runs in ($TETHER_AGENT, $TETHER_URL, $TETHER_TOKEN)."""
    try:
        Agent.from_env().heartbeat(task, progress)
    except TetherUnavailable as err:
        raise DaemonUnavailable(str(err)) from None


@click.command()
@click.argument("action")
@click.option("--detail", default="", help="What exactly, for the human who decides.")
@click.option("--wait", "wait_", default="10m", show_default=True, help="How long to wait for a decision.")
def ask(action: str, detail: str, wait_: str) -> None:
    """From inside an agent: ask for ACTION (an action class) and wait for the decision.

    Exit status 0 when allowed, 1 when denied or expired, 3 when still pending after --wait.
    """
    try:
        got = Agent.from_env().check(action=action, detail=detail, wait=duration(wait_, "--wait"))
    except TetherUnavailable as err:
        raise DaemonUnavailable(str(err)) from None
    click.echo(f"{got['decision']}: {got['reason']}")
    sys.exit({"allow": 0, "deny": 1}.get(got["decision"], 3))


@click.command(name="exec", context_settings={"ignore_unknown_options": True})
@click.option("--wait", "wait_", default=None, help="How long to wait for a human (default: the approval timeout).")
@click.argument("command", nargs=-1, required=True, type=click.UNPROCESSED)
def exec_(wait_: str | None, command: tuple[str, ...]) -> None:
    """From inside an agent: run COMMAND only after the boundary allows it.

    tether exec -- terraform apply

    Exit status: the command's own, or 126 when it was denied or not decided in time.
    """
    import shlex  # with subprocess: +2 ms to tether beat and ask
    import subprocess

    try:
        agent = Agent.from_env()
        wait = duration(wait_, "--wait") if wait_ else 600.0
        got = agent.check(command=shlex.join(command), cwd=os.getcwd(), wait=wait)
    except TetherUnavailable as err:
        raise DaemonUnavailable(f"{err}; refusing to run unchecked") from None
    if got["decision"] != "allow":
        click.echo(f"tether: {got['decision']}: {got['reason']}", err=True)
        sys.exit(126)
    try:
        code = subprocess.run(list(command)).returncode
    except OSError as err:
        raise TetherError(f"{command[0]}: {err.strerror}") from None
    sys.exit(code)
