"""``tether rollback`` (an agent's workspace put back where a task began, or to its last-known-good mark)
and ``tether good`` (that mark)."""

from __future__ import annotations

import getpass
import json
import os
from typing import Any

import click

from tether.cli.context import Context, duration
from tether.errors import DaemonUnavailable, TetherError
from tether.rollback import GOOD, mark_good
from tether.rollback import rollback as do_rollback
from tether.rollback.rollback import stop_agent


def _who() -> str:
    try:
        return os.environ.get("SUDO_USER") or getpass.getuser()
    except (KeyError, OSError):
        return f"uid {os.getuid()}"


@click.command()
@click.argument("agent")
@click.argument("task", type=int, required=False)
@click.option("--to", "to", type=click.Choice([GOOD]), help="Go back to the last-known-good mark and run the "
              "runbook's release rollback command.")
@click.option("--stop", is_flag=True, help="Stop the agent first if it runs (without it, a running agent is refused).")
@click.option("--wait", "wait_", default="0s", show_default=True,
              help="When the runbook wants an approval: how long to wait for it.")
@click.option("--release-timeout", default="30m", show_default=True, help="How long the release command may run.")
@click.option("--json", "as_json", is_flag=True, help="Print the record as JSON.")
@click.pass_obj
def rollback(obj: Context, agent: str, task: int | None, to: str | None, stop: bool, wait_: str,
             release_timeout: str, as_json: bool) -> None:
    """Put AGENT's workspace back where TASK began (default: its latest task), keeping the work.

    Everything since the base, committed or not, untracked files and branches the agent made or
    moved too, goes onto a branch tether/quarantine/AGENT/STAMP in each repository; then each
    repository is reset to the base and each snapshotted folder restored. With --to last-known-good
    it goes back to the `tether good` mark instead and runs the runbook's release_command.
    """
    spec = obj.agent(agent)
    loaded = obj.loaded
    store = obj.store()

    def stopper() -> dict[str, Any]:
        from tether.cli.client import call  # urllib: +9 ms to tether good (and a rollback with nothing to stop)

        try:  # through the daemon, so it keeps the agent stopped
            call(obj.state, "POST", f"/v1/agents/{agent}/stop", timeout=spec.kill.grace + 30)
            return {"via": "daemon"}
        except DaemonUnavailable:
            return stop_agent(loaded, store, agent)

    got = do_rollback(
        loaded, store, agent, task, to=to, stop=stop, stopper=stopper, by=_who(),
        wait=duration(wait_, "--wait"), release_timeout=duration(release_timeout, "--release-timeout"),
    )
    if as_json:
        click.echo(json.dumps(got, indent=1, default=str))
    else:
        for line in summary(agent, got):
            click.echo(line)
    release = got.get("release")
    if release is not None and not release["ok"]:
        why = release["note"] or f"exited {release['exit_code']}"
        raise TetherError(f"the workspace was rolled back, but the release command {why}; its output: {release['log']}")


def summary(agent: str, got: dict[str, Any]) -> list[str]:
    """What a rollback did, for a human."""
    out = [f"{agent}: rolled back to {got['target']} ({got['files_changed']} file(s) had changed)"]
    if got.get("stopped"):
        out.append(f"  stopped {agent} first; start it again with `tether start {agent}`")
    for r in got["repos"]:
        where = f"{r['branch']} at {r['base'][:12]}" if r["branch"] else f"detached at {r['base'][:12]}"
        if r["quarantine"]:
            bits = [f"{r['commits']} commit(s)"]
            if r["worktree"]:
                bits.append("uncommitted/untracked files")
            moved = [b for b in r["refs"] if b != r["branch"]]
            if moved:
                bits.append(f"branches {', '.join(moved)}")
            out.append(f"  {r['path']}: {' + '.join(bits)} kept on {r['quarantine']}; now {where}")
        else:
            out.append(f"  {r['path']}: nothing since the base; now {where}")
        if r["not_restored"]:
            out.append(f"    could not put back branches whose commits are gone: {', '.join(r['not_restored'])}")
    for s in got["snapshots"]:
        kept = f"; what was there is kept as snapshot {s['kept_as']}" if s.get("kept_as") else ""
        out.append(f"  {s['path']}: snapshot {s['snapshot']} restored ({s['written']} written, "
                   f"{s['removed']} removed){kept}")
        if s.get("left"):
            out.append(f"    left alone (git repositories made since): {', '.join(s['left'])}")
    release = got.get("release")
    if release is not None:
        state = "ok" if release["ok"] else (release["note"] or f"exited {release['exit_code']}")
        out.append(f"  release: `{release['command']}` {state} in {release['seconds']}s; output in {release['log']}")
        out += [f"    | {line}" for line in release["tail"].splitlines()[-10:]]
    if got.get("tasks"):
        out.append(f"  tasks rolled back: {', '.join(str(t) for t in got['tasks'])}")
    if got["quarantine"]:
        out.append(f"  see the kept work: git log {got['quarantine']}")
    return out


@click.command()
@click.argument("agent")
@click.argument("ref", required=False)
@click.pass_obj
def good(obj: Context, agent: str, ref: str | None) -> None:
    """Mark AGENT's workspace last-known-good (at REF, default HEAD).

    Tags tether/good/AGENT in each git repository in its scope and snapshots its other folders;
    `tether rollback AGENT --to last-known-good` goes back there and runs the release command.
    """
    obj.agent(agent)
    rec = mark_good(obj.loaded, obj.store(), agent, ref, by=_who())
    for r in rec["repos"]:
        note = " (uncommitted changes are not part of the mark)" if r.get("dirty") else ""
        click.echo(f"{agent}: {r['path']}: {rec['tag']} at {r['base'][:12]}{note}")
    for s in rec["snapshots"]:
        click.echo(f"{agent}: {s['path']}: snapshot {s['snapshot']} ({s['files']} files)")
    if not rec["repos"] and not rec["snapshots"]:
        click.echo(f"{agent}: nothing in scope to mark (no repositories or folders exist yet)")
