"""``tether explain``: how the runbook treats a command, tool call, path or URL, decided here as the
boundary would decide it (no daemon, nothing recorded)."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import click

from tether.boundary import Boundary, Request
from tether.cli.context import Context
from tether.durations import format_duration
from tether.errors import UsageError
from tether.redact import redact, redact_obj
from tether.runbook.starter import default_runbook


@click.command(context_settings={"ignore_unknown_options": True})
@click.option("--agent", help="Decide for this agent (default: the runbook's only/first agent).")
@click.option("--tool", help="A tool call's name (Bash, Write, Edit, WebFetch, mcp__x__y, exec_command...).")
@click.option("--input", "tool_input", help="The tool call's input as JSON.")
@click.option("--path", help="A file path.")
@click.option("--op", default="write", type=click.Choice(["read", "write", "delete", "exec"]), show_default=True)
@click.option("--url", help="A URL.")
@click.option("--method", default="GET", show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.argument("command", nargs=-1, type=click.UNPROCESSED)
@click.pass_obj
def explain(
    obj: Context,
    agent: str | None,
    tool: str | None,
    tool_input: str | None,
    path: str | None,
    op: str,
    url: str | None,
    method: str,
    as_json: bool,
    command: tuple[str, ...],
) -> None:
    """Show how the runbook would treat an action, before any agent gets power:

    tether explain -- git push --force origin main

    Prints the action classes, the resources touched, the verdict and the rule that decided it.
    Runs locally: no daemon needed, nothing is recorded. Credentials in the action are printed redacted.
    """
    default = not obj.has_runbook and obj.home_state.runbook_source() is None
    loaded = default_runbook(Path.cwd()) if default else obj.loaded  # no runbook yet: the default table
    names = list(loaded.runbook.agents)
    if not names:
        raise UsageError(f"{loaded.path} has no agents to explain for")
    name = agent or names[0]
    if default and agent is not None:
        raise UsageError(f"no runbook here, so no agent named {agent!r}: pass -f RUNBOOK (or run `tether init`)")
    if name not in loaded.runbook.agents:
        raise UsageError(f"no agent named {name!r}; the runbook has {', '.join(names)}")
    try:
        parsed_input = json.loads(tool_input) if tool_input else None
    except ValueError as err:
        raise UsageError(f"--input: not valid JSON ({err})") from None
    req = Request(
        command=shlex.join(command) if command and len(command) > 1 else (command[0] if command else None),
        tool=tool,
        input=parsed_input,
        path=path,
        op=op,
        url=url,
        method=method,
    )
    c, d = Boundary(loaded).evaluate(name, req)
    if as_json:
        click.echo(
            json.dumps(
                redact_obj(
                    {
                        "agent": name,
                        "runbook": None if default else str(loaded.path),
                        "verdict": d.verdict,
                        "rule": d.rule,
                        "reason": d.reason,
                        "classes": list(d.classes),
                        "parsed": d.parsed,
                        "gates": list(d.gates),
                        "resources": [
                            {"kind": r.kind, "value": r.value, "op": r.op, "protected": r.protected}
                            for r in d.resources
                        ],
                    }
                )
            )
        )
        return

    def echo(line: str) -> None:
        click.echo(redact(line))

    echo(f"agent     {name}")
    if default:
        echo(f"runbook   none here: the default table, for an agent working in {Path.cwd()} (`tether init` writes one)")
    echo(f"action    {req.describe()}")
    for a in c.actions:
        echo(f"class     {a.klass:<18} {a.reason}")
    for klass in d.classes:
        if klass not in c.classes:
            echo(f"scope     {klass}")
    for r in d.resources:
        op = f" ({r.op})" if r.op else ""
        echo(f"touches   {r.kind}: {r.value}{op}{' PROTECTED' if r.protected else ''}")
    if not d.parsed:
        echo("parsed    no: what cannot be parsed is `unknown` and never allowed without a human")
    if d.gates:
        echo(f"gates     {', '.join(d.gates)} (their checks run before the action)")
    spec = loaded.runbook.agents[name]
    verdict = {"allow": "allowed", "log": "allowed and recorded", "ask": "held for a human", "block": "blocked"}
    echo(f"verdict   {d.verdict}: {verdict[d.verdict]}, by {d.rule}")
    if d.verdict == "ask":
        echo(
            f"          (expires after {format_duration(spec.approvals.timeout)}, escalates to "
            f"{spec.backup.name} after {format_duration(spec.approvals.escalate_after)})"
        )
