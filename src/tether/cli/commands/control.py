"""``tether kill`` and ``tether resume``: the kill switch, with the daemon dead, hung or stopped too."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import click

from tether import process
from tether.cli.context import Context
from tether.daemon_state import RUNNING, probe
from tether.errors import DaemonUnavailable, NotFound, TetherError
from tether.fleet.seam import place_of
from tether.killswitch import KillSpec, engage_all, kept_specs, kill_agent, lift, lift_all, problem

if TYPE_CHECKING:
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
        kept = kept_specs(obj.home_state)
        if kept is not None:
            return kept
    return {name: spec.kill for name, spec in obj.loaded.runbook.agents.items()}


def _tell_daemon(obj: Context, name: str, reason: str | None) -> bool:
    """Ask the live daemon (over its socket) to hold NAME killed; False when none answers (at once when
    it is stopped or gone: a SIGSTOPped daemon accepts the connection and never answers)."""
    from tether.cli.client import call  # urllib: +15 ms to tether kill, which asks the daemon only on a full disk

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
    return problem(name, got)


def _runs_here(obj: Context, name: str) -> bool:
    """A live run of AGENT on this host (from its run folder alone: no store, no daemon)."""
    handle = process.adopt(obj.state.agent_dir(name) / "run")
    return handle is not None and handle.running()


def elsewhere(obj: Context, name: str, verb: str, reason: str | None = None, wait: bool = True) -> bool:
    """Ask the node AGENT is pinned to, when that is another, to apply ``verb`` (``tether.fleet.seam``: a
    kill waits for no one, pending on that node until its daemon applies it) and say what became of it;
    False when AGENT is this host's (always, alone)."""
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
            from tether.cli.client import call  # as in _tell_daemon

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
    from tether.cli.client import call  # as in _tell_daemon

    try:
        call(obj.state, "GET", "/v1/health", timeout=ANSWER_S)
    except TetherError:
        return False
    return True


ANSWER_S = 0.5  # a healthy daemon answers in milliseconds
