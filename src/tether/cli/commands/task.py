"""``tether task``: queue and list an agent's tasks; start and end one by hand (a branch per task,
snapshots of its folders, for an agent that works outside the SDK)."""

from __future__ import annotations

import click

from tether.cli.context import Context
from tether.errors import NotFound, TetherError, UsageError
from tether.status_file import iso


@click.group()
def task() -> None:
    """Queue and list an agent's tasks."""


@task.command("add")
@click.argument("agent")
@click.argument("text")
@click.pass_obj
def task_add(obj: Context, agent: str, text: str) -> None:
    """Queue TEXT as a task for AGENT."""
    from tether.cli.client import call  # urllib: +15 ms to tether task list|start|done

    got = call(obj.state, "POST", f"/v1/agents/{agent}/tasks", {"text": text})
    click.echo(f"task {got['id']} queued for {agent}")


@task.command("list")
@click.argument("agent")
@click.pass_obj
def task_list(obj: Context, agent: str) -> None:
    """List AGENT's tasks with base, branch and files changed (reads the store: works with no daemon)."""
    for line in task_rows(obj, agent):
        click.echo(line)


@task.command("start")
@click.argument("agent")
@click.argument("text")
@click.pass_obj
def task_start(obj: Context, agent: str, text: str) -> None:
    """Start a task for AGENT now: a branch tether/AGENT/ID in each repository, snapshots of its folders.

    For an agent that works outside the SDK (a shell script, a human at the keyboard). Works with no
    daemon: it writes the store directly.
    """
    from tether import tasks  # with rollback.tasks: +150 ms to tether task add
    from tether.rollback.tasks import check_repo, layout  # as tether.tasks

    obj.agent(agent)
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


@task.command("done")
@click.argument("agent")
@click.argument("task", type=int, required=False)
@click.option("--failed", is_flag=True, help="The task failed (default: done).")
@click.option("--note", help="A note for the record.")
@click.pass_obj
def task_done(obj: Context, agent: str, task: int | None, failed: bool, note: str | None) -> None:
    """End AGENT's TASK (default: its latest started one); the work stays on its branch."""
    from tether import tasks  # as in task_start

    obj.agent(agent)
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
    from tether.rollback import describe  # git, snapshots: +150 ms to tether task add

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
