"""The ``tether`` command group. Subcommands live in ``tether.cli.commands`` and load on first use,
so ``tether --help`` and light commands never import what heavy ones need."""

from __future__ import annotations

import importlib
from typing import Any

import click

from tether import __version__
from tether.cli.context import Context

# name -> (module in tether.cli.commands, short help). Order is the order `tether --help` shows.
COMMANDS: dict[str, tuple[str, str]] = {
    "demo": ("demo", "Run a demo host with scripted agents, every feature live."),
    "init": ("runbook", "Write a commented example runbook (tether.yaml)."),
    "check": ("runbook", "Validate a runbook and summarise what each agent may do."),
    "status": ("status", "Show every agent's state (works with no daemon)."),
    "top": ("top", "The overview as a live terminal view: agents, host, approvals, incidents."),
    "events": ("events", "Print the event log, optionally following it."),
    "backup": ("backup", "Copy the store consistently, even while the daemon writes."),
    "prune": ("backup", "Delete events past the runbook's retention."),
    "up": ("daemon", "Start the daemon (one per state directory)."),
    "down": ("daemon", "Stop the daemon and its agents cleanly."),
    "reload": ("daemon", "Re-read the runbook; an invalid one is rejected."),
    "start": ("daemon", "Start an agent."),
    "stop": ("daemon", "Stop an agent gracefully."),
    "restart": ("daemon", "Restart an agent."),
    "logs": ("daemon", "Print an agent's log from disk."),
    "kill": ("control", "Kill an agent's whole tree now; works with the daemon dead."),
    "resume": ("control", "Lift an agent's kill switch."),
    "token": ("tokens", "Create, list and revoke API tokens (agent, approver, admin)."),
    "budget": ("budget", "Today's spend against each agent's daily budget; reset one."),
    "beat": ("inside", "Send a heartbeat from inside an agent."),
    "task": ("task", "Queue and list an agent's tasks."),
    "rollback": ("rollback", "Put an agent's workspace back where a task began; the work is kept aside."),
    "good": ("rollback", "Mark an agent's workspace last-known-good (a tag, snapshots)."),
    "approvals": ("approvals", "List approvals waiting for a human."),
    "approve": ("approve", "Approve a pending request; the agent proceeds."),
    "deny": ("approve", "Deny a pending request, with a reason."),
    "ask": ("inside", "From inside an agent: ask for an action and wait."),
    "explain": ("explain", "Show how the runbook treats a command, tool call, path or URL."),
    "exec": ("inside", "From inside an agent: run a command only if the boundary allows it."),
    "audit": ("approvals", "Verify the hash-chained audit log."),
    "fleet": ("fleet", "List the fleet's nodes; move an agent to another node (PostgreSQL store)."),
    "incidents": ("incidents", "List open incidents (stale, stuck, crash-looping, ...)."),
    "ack": ("incidents", "Acknowledge an incident so its backup is not paged."),
    "service": ("host", "Install, remove or inspect the service that starts the daemon at boot."),
    "doctor": ("host", "Check this host for unattended agents: service, sleep, disk, storage, users."),
    "drill": ("drill", "Run the incident drills: kill, break-test, network, protected-file, sandbox, reboot."),
    "integrate": ("integrate", "Install tether's hooks into Claude Code, Codex CLI, OpenClaw or git."),
}

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100, "terminal_width": 100}


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        entry = COMMANDS.get(cmd_name)
        if entry is None:
            return None
        module = importlib.import_module(f"tether.cli.commands.{entry[0]}")
        command: click.Command = getattr(module, cmd_name.replace("-", "_"), None) or getattr(module, cmd_name + "_")
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, short) for name, (_, short) in COMMANDS.items()]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(cls=LazyGroup, context_settings=CONTEXT)
@click.version_option(__version__, "-V", "--version", prog_name="tether", message="%(prog)s %(version)s")
@click.option("-f", "--file", "runbook", metavar="RUNBOOK", envvar="TETHER_RUNBOOK",
              help="The runbook file (default: ./tether.yaml, or $TETHER_RUNBOOK).")
@click.option("--home", metavar="DIR",  # not envvar: $TETHER_HOME ranks below the runbook (cli/context.py)
              help="The state directory (default: the runbook's, $TETHER_HOME, or the user state dir).")
@click.pass_context
def cli(ctx: click.Context, runbook: str | None, home: str | None) -> None:
    """tether: the runbook runtime for AI agents.

    Supervise agents on an always-on host: heartbeats, approvals, monitoring, rollback and drills,
    all described by one runbook file.
    """
    ctx.obj = Context(runbook, home)


def run(args: list[str] | None = None) -> Any:
    return cli.main(args=args, prog_name="tether", standalone_mode=True)
