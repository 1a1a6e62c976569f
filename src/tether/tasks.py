"""An agent's task as tether moves it along: claimed or started on its own branch and snapshots (its workspace,
``tether.rollback.tasks``), ended with where the work ended. The API's views, the hooks' sessions and
``tether task start|done`` call these; they emit the events of a task's start and end. The supervisor asks
here too what becomes of the tasks of a run that ended in their middle (``orphaned``) or never started
(``unstarted``), and records those events with the run's own, in one transaction.

A workspace that cannot start a task (a repository mid-merge, ...) cancels the task: ``task.cancelled``,
and the error is raised (through the API: a ``TetherError`` saying the task was cancelled, a 409).
"""

from __future__ import annotations

from typing import Any

from tether.errors import NotFound, TetherError
from tether.runbook import LoadedRunbook
from tether.store import NewEvent, Store


def _begin_workspace(loaded: LoadedRunbook, store: Store, agent: str, task_id: int) -> dict[str, Any]:
    """The task begun in the workspace (its record); cancelled, and the error raised, when it cannot be."""
    from tether.rollback.tasks import begin  # the API imports this module: rollback loads with its first task

    try:
        return begin(loaded, store, agent, task_id)
    except Exception as err:
        cancel(store, agent, task_id, f"could not start: {err}")
        raise


def cancel(store: Store, agent: str, task_id: int, note: str) -> None:
    """The task ends without its work: its workspace could not start it, or a rollback undid it."""
    store.emit("task.cancelled", agent, task_id=task_id, note=note)


def _own(store: Store, agent: str, task_id: int) -> Any:
    task = store.task(task_id)
    if task is None or task.agent != agent:
        raise NotFound(f"agent {agent!r} has no task {task_id}")
    return task


def _api_begin(loaded: LoadedRunbook, store: Store, agent: str, task_id: int) -> None:
    try:
        _begin_workspace(loaded, store, agent, task_id)
    except TetherError as err:
        raise TetherError(f"task {task_id} cancelled: {err}") from None


def claim(loaded: LoadedRunbook, store: Store, agent: str) -> Any:
    """The agent's next queued task, started in its workspace; None when none is queued."""
    task = store.claim_task(agent)
    if task is not None:
        _api_begin(loaded, store, agent, task.id)
    return task


def start(loaded: LoadedRunbook, store: Store, agent: str, task_id: int, text: str) -> Any:
    """Start an ad-hoc task (``with agent.task("...")``) recorded under ``task_id``; the task as it now is."""
    _own(store, agent, task_id)
    store.emit("task.started", agent, task_id=task_id, text=text)
    _api_begin(loaded, store, agent, task_id)
    return store.task(task_id)


def start_new(loaded: LoadedRunbook, store: Store, agent: str, text: str, *, meta: dict[str, Any] | None = None,
              strict: bool = True) -> tuple[int, dict[str, Any] | None]:
    """Record a task and start it now (``tether task start``, a Claude Code or Codex session): its id and its
    workspace's record. A workspace that cannot start it cancels it and raises; with ``strict=False`` the
    record is None instead (a session runs on, without a task branch)."""
    task_id = store.emit("task.added", agent, text=text, **({} if meta is None else {"meta": meta}))
    store.emit("task.started", agent, task_id=task_id, text=text)
    try:
        return task_id, _begin_workspace(loaded, store, agent, task_id)
    except Exception:
        if strict:
            raise
        return task_id, None


def finish(loaded: LoadedRunbook, store: Store, task: Any, ok: bool, note: str | None = None,
           text: str | None = None) -> dict[str, Any] | None:
    """Record where ``task``'s work ended (HEADs, files changed), then the task done or failed (``text``:
    the task as the event shows it, default its own). The ``rollback.end`` record; None when it had no base."""
    from tether.rollback.tasks import end as end_workspace  # as in _begin_workspace

    rec = end_workspace(loaded, store, task.agent, task.id)
    store.emit("task.done" if ok else "task.failed", task.agent, task_id=task.id, text=text or task.text, note=note)
    return rec


def end(loaded: LoadedRunbook, store: Store, agent: str, task_id: int, ok: bool, note: str | None) -> str:
    """End the agent's task ``task_id`` (``finish``): its new state."""
    finish(loaded, store, _own(store, agent, task_id), ok, note)
    return "done" if ok else "failed"


def unstarted(store: Store, agent: str, task_id: int | None, why: object) -> list[NewEvent]:
    """A task claimed for a run that never started goes back to the queue (its attempts unchanged)."""
    task = store.task(task_id) if task_id is not None else None
    if task is None or task.state != "started":
        return []
    return [NewEvent("task.requeued", agent, {"task_id": task.id, "text": task.text, "attempts":
                     int(task.meta.get("attempts", 0)), "note": f"not started: {why}"})]


#: How many runs may end in the middle of one task before it counts as failed instead of queued again.
TASK_ATTEMPTS = 3


def orphaned(store: Store, agent: str, code: int | None, killed: bool = False) -> list[NewEvent]:
    """The agent's run ended with tasks still started: each goes back to the queue (the next run's
    ``next_task()`` takes it first), or fails once ``TASK_ATTEMPTS`` runs have ended inside it, or at
    once when the kill switch ended the run (a human stopped that work: resuming must not redo it)."""
    why = "its run was lost (killed, or the host went down)" if code is None else f"the agent exited {code}"
    if killed:
        why = "the kill switch stopped the agent"
    events = []
    for task in store.tasks(agent, states=["started"]):
        attempts = int(task.meta.get("attempts", 0)) + 1
        if killed or attempts >= TASK_ATTEMPTS:
            events.append(NewEvent("task.failed", agent, {
                "task_id": task.id, "text": task.text, "attempts": attempts,
                "note": f"{why} during this task; not queued again" if killed
                else f"{why} during this task, {attempts} times; not queued again"}))
        else:
            events.append(NewEvent("task.requeued", agent, {
                "task_id": task.id, "text": task.text, "attempts": attempts, "note": f"{why} during this task"}))
    return events
