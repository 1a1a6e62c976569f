"""The approval boundary from the shell: ``approvals``, ``approve``, ``deny``, ``ask``, ``explain``,
``exec`` and ``audit verify``."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import click

from tether.cli.context import Context
from tether.durations import format_duration, parse_duration
from tether.errors import DaemonUnavailable, TetherError, UsageError


def _duration(value: str, flag: str) -> float:
    try:
        return parse_duration(value)
    except ValueError:
        raise UsageError(f'{flag}: expected a duration like "10m", got {value!r}') from None


@click.command()
@click.option("--all", "all_", is_flag=True, help="Every approval, not only the pending ones.")
@click.option("--agent", help="Only this agent's.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def approvals(obj: Context, all_: bool, agent: str | None, as_json: bool) -> None:
    """List approvals waiting for a human (reads the store: works with no daemon)."""
    from tether.status_file import iso

    rows = obj.store(readonly=True).approvals(None if all_ else "pending", agent)
    if as_json:
        click.echo(json.dumps(rows, default=str))
        return
    if not rows:
        click.echo("no pending approvals" if not all_ else "no approvals")
        return
    import time

    from tether.approvals import grant_line

    now = time.time()
    for r in rows:  # the action column is the class whose verdict held it
        click.echo(f"{r['id']:>6}  {r['state']:<8} {r['agent']:<18} {r['action']:<18} {iso(r['requested'])}")
        click.echo(f"        {r['detail'][:200]}")
        click.echo(f"        held by {r['rule']}: {r['reason']}")
        if r.get("session"):
            click.echo(f"        for {r['session'][:120]}")
        if r["state"] != "pending":
            click.echo(f"        {grant_line(r, now)}; by {r['decided_by'] or '-'}")


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
    from tether.cli.client import call

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
    from tether.cli.client import call

    _refuse_inside_agent("tether deny")
    row = call(obj.state, "POST", f"/v1/approvals/{approval_id}/deny", {"reason": reason})
    click.echo(f"approval {row['id']} denied: {reason}")


def _refuse_inside_agent(what: str) -> None:
    """An agent running `tether approve` is the tether.control action: never allowed."""
    if os.environ.get("TETHER_AGENT") and os.environ.get("TETHER_TOKEN"):
        raise UsageError(f"{what} from inside agent {os.environ['TETHER_AGENT']!r} is tether.control: blocked")


@click.command()
@click.argument("action")
@click.option("--detail", default="", help="What exactly, for the human who decides.")
@click.option("--wait", "wait_", default="10m", show_default=True, help="How long to wait for a decision.")
def ask(action: str, detail: str, wait_: str) -> None:
    """From inside an agent: ask for ACTION (an action class) and wait for the decision.

    Exit status 0 when allowed, 1 when denied or expired, 3 when still pending after --wait.
    """
    from tether.sdk import Agent, TetherUnavailable

    try:
        got = Agent.from_env().check(action=action, detail=detail, wait=_duration(wait_, "--wait"))
    except TetherUnavailable as err:
        raise DaemonUnavailable(str(err)) from None
    click.echo(f"{got['decision']}: {got['reason']}")
    sys.exit({"allow": 0, "deny": 1}.get(got["decision"], 3))


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
    from pathlib import Path

    from tether.boundary import Boundary, Request
    from tether.redact import redact, redact_obj
    from tether.runbook.starter import default_runbook

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
    import shlex

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


@click.command(name="exec", context_settings={"ignore_unknown_options": True})
@click.option("--wait", "wait_", default=None, help="How long to wait for a human (default: the approval timeout).")
@click.argument("command", nargs=-1, required=True, type=click.UNPROCESSED)
def exec_(wait_: str | None, command: tuple[str, ...]) -> None:
    """From inside an agent: run COMMAND only after the boundary allows it.

    tether exec -- terraform apply

    Exit status: the command's own, or 126 when it was denied or not decided in time.
    """
    import shlex

    from tether.sdk import Agent, TetherUnavailable

    try:
        agent = Agent.from_env()
        wait = _duration(wait_, "--wait") if wait_ else 600.0
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


@click.group()
def audit() -> None:
    """The hash-chained audit log."""


@audit.command("verify")
@click.pass_obj
def audit_verify(obj: Context) -> None:
    """Recompute the audit chain and compare it with its seal file; exit 1 on any mismatch."""
    from tether.audit import verify

    result = verify(obj.store(readonly=True), obj.state.audit_file)
    for problem in result.problems:
        click.echo(problem)
    if not result.ok:
        raise TetherError(f"audit log: {len(result.problems)} problem(s) in {result.rows} row(s)")
    click.echo(f"audit log ok: {result.rows} row(s), {result.sealed} sealed in {obj.state.audit_file}")
