"""``tether kill``, ``resume``, ``token``, ``beat``, ``task``."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import click

from tether.cli.context import Context
from tether.errors import DaemonUnavailable, NotFound, TetherError, UsageError

if TYPE_CHECKING:
    from tether.killswitch import KillSpec
    from tether.runbook.model import KillSwitch


@click.command()
@click.argument("agent", required=False)
@click.option("--all", "all_", is_flag=True, help="Kill every agent in the runbook (and keep all from starting).")
@click.option("--reason", help="Why (recorded, and shown to the owner).")
@click.pass_obj
def kill(obj: Context, agent: str | None, all_: bool, reason: str | None) -> None:
    """Stop AGENT's whole process tree now and keep it stopped until `tether resume`.

    Works with the daemon dead, hung or stopped: the kill file is written and the tree signalled
    from the recorded process identities first; the record is written afterwards (or parked for the
    daemon when the store is locked).
    """
    from tether.killswitch import engage_all, kill_agent

    if not agent and not all_:
        raise click.UsageError("name an AGENT or pass --all")
    kill_specs = _kill_specs(obj)
    names = list(kill_specs) if all_ else [agent or ""]
    specs = []
    for name in names:
        spec = kill_specs.get(name)
        # An agent another node runs is asked of that node. One that runs here is killed here, without asking
        # a store that may be unreachable: the kill switch never waits on the network.
        if not all_ and not (spec is not None and _runs_here(obj, name)) and elsewhere(obj, name, "kill", reason,
                                                                                      wait=False):
            return
        if spec is None:
            raise NotFound(f"no agent named {name!r} in {obj.loaded.path}")
        specs.append((name, spec))
    if all_ and engage_all(obj.state, reason) is None:
        click.echo(f"the global kill file could not be made in {obj.state.root}; each agent is killed", err=True)
    problems = []
    for name, spec in specs:
        ran_here = obj.state.agent_dir(name).exists()
        # the store is opened in the recording thread: a hung daemon may hold its write lock
        got = kill_agent(obj.state, name, spec, reason, store=lambda: obj.store())
        if got["marked"] is None:  # no kill file (a full disk): the live daemon holds it killed instead
            got["told"] = _tell_daemon(obj, name, reason)
        click.echo(kill_message(obj, name, got, ran_here))
        problem = kill_problem(name, got)
        if problem:
            problems.append(problem)
    if problems:
        raise TetherError("; ".join(problems))


def _kill_specs(obj: Context) -> Mapping[str, KillSpec | KillSwitch]:
    """Each agent's kill signal and grace, by name in runbook order. Given only the state directory (no
    runbook here), from the record the daemon keeps beside its runbook copy (``kill-specs.json``): the same
    values without parsing the runbook, whose models alone cost a kill ~0.1 s of CPU."""
    if not obj.has_runbook:
        from tether.killswitch import kept_specs

        kept = kept_specs(obj.home_state)
        if kept is not None:
            return kept
    return {name: spec.kill for name, spec in obj.loaded.runbook.agents.items()}


def _tell_daemon(obj: Context, name: str, reason: str | None) -> bool:
    """Ask the live daemon (over its socket) to hold NAME killed; False when none answers (at once when
    it is stopped or gone: a SIGSTOPped daemon accepts the connection and never answers)."""
    from tether.cli.client import call
    from tether.daemon_state import RUNNING, probe

    if probe(obj.state.root)["state"] != RUNNING:
        return False
    try:
        call(obj.state, "POST", f"/v1/agents/{name}/kill", {"reason": reason}, timeout=ANSWER_S * 4)
    except TetherError:
        return False
    return True


def kill_message(obj: Context, name: str, got: dict[str, Any], ran_here: bool) -> str:
    """What the kill did, as it was: what it found and signalled (and in how many runs), what survived,
    or that nothing was running, or that AGENT never ran with this state directory (a kill file in the
    wrong one stops nothing); and where the kill file could not be made, who holds it killed instead."""
    line = _kill_line(obj, name, got, ran_here)
    if got.get("marked") is None:
        line += " (no kill file could be made: " + (
            "the daemon holds it killed until it restarts)" if got.get("told") else "nothing keeps it from a restart)"
        )
    return line


def _kill_line(obj: Context, name: str, got: dict[str, Any], ran_here: bool) -> str:
    lift = f"`tether resume {name}` lifts it"
    if got["signalled"]:
        runs = f" of {got['runs']} runs" if got.get("runs", 1) > 1 else ""
        forced = f", {len(got['escalated'])} SIGKILLed after the grace" if got["escalated"] else ""
        left = (
            f"; {len(got['survivors'])} SURVIVED: pids {', '.join(map(str, got['survivors']))}"
            if got["survivors"]
            else ""
        )
        return f"{name}: killed ({len(got['signalled'])} process(es){runs} signalled{forced}{left}); {lift}"
    if not ran_here:
        return (
            f"{name}: kill switch engaged, but {name} never ran with state directory {obj.state.root}: "
            f"nothing was signalled; if it runs under another state directory, name that with --home DIR"
        )
    if got.get("expected"):
        return f"{name}: kill switch engaged, but NOTHING WAS FOUND: {got['note']}"
    return f"{name}: kill switch engaged; no process of it was running, none will start; {lift}"


def kill_problem(name: str, got: dict[str, Any]) -> str | None:
    from tether.killswitch import problem

    return problem(name, got)


def _runs_here(obj: Context, name: str) -> bool:
    """A live run of AGENT on this host (from its run folder alone: no store, no daemon)."""
    from tether import process

    handle = process.adopt(obj.state.agent_dir(name) / "run")
    return handle is not None and handle.running()


def elsewhere(obj: Context, name: str, verb: str, reason: str | None = None, wait: bool = True) -> bool:
    """Ask the node AGENT is pinned to, when that is another, to apply ``verb`` (``tether.fleet.seam``: a
    kill waits for no one, pending on that node until its daemon applies it) and say what became of it;
    False when AGENT is this host's (always, alone)."""
    from tether.fleet.seam import place_of

    said = place_of(obj.store_url, lambda: obj.loaded.runbook.host.name).send(obj.store, name, verb, reason, wait)
    if said is None:
        return False
    click.echo(said)
    return True


@click.command()
@click.argument("agent", required=False)
@click.option("--all", "all_", is_flag=True, help="Lift every kill switch, the global one too.")
@click.pass_obj
def resume(obj: Context, agent: str | None, all_: bool) -> None:
    """Lift AGENT's kill switch and start it again."""
    from tether.daemon_state import RUNNING, probe
    from tether.killswitch import lift, lift_all

    if not agent and not all_:
        raise click.UsageError("name an AGENT or pass --all")
    if all_:
        lift_all(obj.state)
    names = list(_kill_specs(obj)) if all_ else [agent or ""]
    alive = probe(obj.state.root)
    for name in names:
        if not all_ and elsewhere(obj, name, "resume"):  # another node's agent: asked of that node
            return
        if alive["state"] == RUNNING and _answers(obj):
            from tether.cli.client import call

            try:
                call(obj.state, "POST", f"/v1/agents/{name}/resume")
                click.echo(f"{name}: resumed")
                continue
            except DaemonUnavailable:
                pass
        lift(obj.state, name, store=lambda: obj.store())  # no daemon to ask: lift the kill switch here
        if alive["state"] == "stopped":
            why = (
                f"the daemon (pid {alive['pid']}) is stopped (SIGSTOP), so {name} is not started; "
                f"`tether start {name}` once it answers"
            )
        elif alive["state"] == RUNNING:
            why = f"the daemon does not answer, so {name} is not started; `tether start {name}` once it does"
        else:
            why = f"no daemon runs: {name} starts with it (`tether up`)"
        click.echo(f"{name}: kill switch lifted; {why}")
    if obj.state.kill_file.exists():
        click.echo("note: the global kill switch is still engaged; `tether resume --all` lifts it", err=True)


def _answers(obj: Context) -> bool:
    """The daemon answers its health check within ANSWER_S (a hung daemon must not hold the CLI up)."""
    from tether.cli.client import call

    try:
        call(obj.state, "GET", "/v1/health", timeout=ANSWER_S)
    except TetherError:
        return False
    return True


ANSWER_S = 0.5  # a healthy daemon answers in milliseconds


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
    from tether import auth
    from tether.durations import parse_duration

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
    from tether import auth
    from tether.status_file import iso

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
    from tether import auth
    from tether.status_file import iso

    _not_from_an_agent("revoke")
    row, fresh = auth.revoke(obj.store(), token_id)
    who = f" for {row['agent']}" if row["agent"] else ""
    click.echo(
        f"token {row['id']} ({row['role']}{who}) {'revoked' if fresh else 'was already revoked'} "
        f"at {iso(row['revoked'])}"
    )


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
    """List AGENT's tasks with base, branch and files changed (reads the store: works with no daemon)."""
    from tether.cli.commands.rollback import task_rows

    for line in task_rows(obj, agent):
        click.echo(line)


def _task_subcommands() -> None:
    """`tether task start|done` live with rollback (a branch per task, snapshots)."""
    from tether.cli.commands.rollback import task_done, task_start

    task.add_command(task_start)
    task.add_command(task_done)


_task_subcommands()
