"""``tether rollback``, ``tether good``, and the ``start``/``done`` subcommands of ``tether task``.

``cli/commands/control.py`` loads this module for all its commands (``tether kill``, ``beat``, ...), so
``tether.rollback`` and ``tether.tasks`` (~130 ms: the runbook's models, git, snapshots) are imported by
the commands that use them, not here at the top.
"""

from __future__ import annotations

import getpass
import json
import os
from typing import Any

import click

from tether.cli.context import Context
from tether.durations import parse_duration
from tether.errors import DaemonUnavailable, NotFound, TetherError, UsageError
from tether.status_file import iso

GOOD = "last-known-good"  # tether.rollback.GOOD, repeated so --help does not import the package


def _who() -> str:
    try:
        return os.environ.get("SUDO_USER") or getpass.getuser()
    except (KeyError, OSError):
        return f"uid {os.getuid()}"


def _duration(value: str, flag: str) -> float:
    try:
        return parse_duration(value)
    except ValueError:
        raise UsageError(f'{flag}: expected a duration like "10m", got {value!r}') from None


def _spec(obj: Context, agent: str) -> Any:
    spec = obj.loaded.runbook.agents.get(agent)
    if spec is None:
        raise NotFound(f"no agent named {agent!r} in {obj.loaded.path}")
    return spec


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
    from tether.rollback import rollback as do_rollback  # lazy: see the module's note
    from tether.rollback.rollback import stop_agent

    spec = _spec(obj, agent)
    loaded = obj.loaded
    store = obj.store()

    def stopper() -> dict[str, Any]:
        from tether.cli.client import call  # urllib (~20 ms): only when the agent is to be stopped

        try:  # through the daemon, so it keeps the agent stopped
            call(obj.state, "POST", f"/v1/agents/{agent}/stop", timeout=spec.kill.grace + 30)
            return {"via": "daemon"}
        except DaemonUnavailable:
            return stop_agent(loaded, store, agent)

    got = do_rollback(
        loaded, store, agent, task, to=to, stop=stop, stopper=stopper, by=_who(),
        wait=_duration(wait_, "--wait"), release_timeout=_duration(release_timeout, "--release-timeout"),
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
    from tether.rollback import mark_good  # lazy: see the module's note

    _spec(obj, agent)
    rec = mark_good(obj.loaded, obj.store(), agent, ref, by=_who())
    for r in rec["repos"]:
        note = " (uncommitted changes are not part of the mark)" if r.get("dirty") else ""
        click.echo(f"{agent}: {r['path']}: {rec['tag']} at {r['base'][:12]}{note}")
    for s in rec["snapshots"]:
        click.echo(f"{agent}: {s['path']}: snapshot {s['snapshot']} ({s['files']} files)")
    if not rec["repos"] and not rec["snapshots"]:
        click.echo(f"{agent}: nothing in scope to mark (no repositories or folders exist yet)")


@click.command("start")
@click.argument("agent")
@click.argument("text")
@click.pass_obj
def task_start(obj: Context, agent: str, text: str) -> None:
    """Start a task for AGENT now: a branch tether/AGENT/ID in each repository, snapshots of its folders.

    For an agent that works outside the SDK (a shell script, a human at the keyboard). Works with no
    daemon: it writes the store directly.
    """
    from tether import tasks  # lazy: see the module's note
    from tether.rollback.tasks import check_repo, layout

    _spec(obj, agent)
    for repo in layout(obj.loaded, agent).repos:  # refuse before a task is even recorded
        check_repo(repo)
    task_id, rec = tasks.start_new(obj.loaded, obj.store(), agent, text)
    assert rec is not None  # strict: a workspace that cannot start the task raised
    click.echo(f"task {task_id} started for {agent}")
    for r in rec["repos"]:
        on = f"on {r['task_branch']}" if r["task_branch"] else f"on {r['branch'] or 'a detached HEAD'}"
        dirty = " (uncommitted changes were there already; kept as the base)" if r["start"] else ""
        click.echo(f"  {r['path']}: {on} from {r['base'][:12]}{dirty}")
    for s in rec["snapshots"]:
        click.echo(f"  {s['path']}: snapshot {s['snapshot']} ({s['files']} files, {s['new_bytes']} new bytes)")


@click.command("done")
@click.argument("agent")
@click.argument("task", type=int, required=False)
@click.option("--failed", is_flag=True, help="The task failed (default: done).")
@click.option("--note", help="A note for the record.")
@click.pass_obj
def task_done(obj: Context, agent: str, task: int | None, failed: bool, note: str | None) -> None:
    """End AGENT's TASK (default: its latest started one); the work stays on its branch."""
    from tether import tasks  # lazy: see the module's note

    _spec(obj, agent)
    store = obj.store()
    if task is None:
        started = store.tasks(agent, ["started"])
        if not started:
            raise NotFound(f"{agent} has no started task")
        t = started[-1]
    else:
        found = store.task(task)
        if found is None or found.agent != agent:
            raise NotFound(f"agent {agent!r} has no task {task}")
        if found.state != "started":
            raise UsageError(f"task {task} of {agent} is {found.state}, not started")
        t = found
    rec = tasks.finish(obj.loaded, store, t, ok=not failed, note=note)
    files = f": {rec['files_changed']} file(s) changed since its base" if rec else ""
    click.echo(f"task {t.id} {'failed' if failed else 'done'}{files}")


def task_rows(obj: Context, agent: str) -> list[str]:
    """``tether task list AGENT``: each task with its state, base, branch and files changed."""
    from tether.rollback import describe  # lazy: see the module's note

    try:
        loaded = obj.loaded
    except TetherError:
        loaded = None  # no runbook here: list what the store knows, without live counts
    rows = [f"{'ID':>7} {'STATE':<11} {'CREATED':<25} {'BASE':<15} {'BRANCH':<28} {'FILES':>5}  TEXT"]
    for t in obj.store(readonly=True).tasks(agent):
        d = describe(loaded, t)
        files = "-" if d["files_changed"] is None else str(d["files_changed"])
        rows.append(f"{t.id:>7} {d['state']:<11} {iso(t.created) or '':<25} {d['base'] or '-':<15} "
                    f"{d['branch'] or '-':<28} {files:>5}  {t.text}")
    return rows
