"""An agent's task as the API moves it along: claimed or started on its own branch and snapshots (its workspace,
``tether.rollback.tasks``), ended with where the work ended. The views call these; they emit the events.

A workspace that cannot start a task (a repository mid-merge, ...) cancels the task: ``task.cancelled``, and a
``TetherError`` (a 409 through the API's error map) saying so.
"""

from __future__ import annotations

from typing import Any

from tether.errors import NotFound, TetherError
from tether.runbook import LoadedRunbook
from tether.store import Store


def _begin_workspace(loaded: LoadedRunbook, store: Store, agent: str, task_id: int) -> None:
    from tether.rollback.tasks import begin

    try:
        begin(loaded, store, agent, task_id)
    except TetherError as err:
        store.emit("task.cancelled", agent, task_id=task_id, note=f"could not start: {err}")
        raise TetherError(f"task {task_id} cancelled: {err}") from None


def _own(store: Store, agent: str, task_id: int) -> Any:
    task = store.task(task_id)
    if task is None or task.agent != agent:
        raise NotFound(f"agent {agent!r} has no task {task_id}")
    return task


def claim(loaded: LoadedRunbook, store: Store, agent: str) -> Any:
    """The agent's next queued task, started in its workspace; None when none is queued."""
    task = store.claim_task(agent)
    if task is not None:
        _begin_workspace(loaded, store, agent, task.id)
    return task


def start(loaded: LoadedRunbook, store: Store, agent: str, task_id: int, text: str) -> Any:
    """Start an ad-hoc task (``with agent.task("...")``) recorded under ``task_id``; the task as it now is."""
    _own(store, agent, task_id)
    store.emit("task.started", agent, task_id=task_id, text=text)
    _begin_workspace(loaded, store, agent, task_id)
    return store.task(task_id)


def end(loaded: LoadedRunbook, store: Store, agent: str, task_id: int, ok: bool, note: str | None) -> str:
    """Record where the work ended (HEADs, files changed), then the task done or failed: its new state."""
    from tether.rollback.tasks import end as end_workspace

    task = _own(store, agent, task_id)
    end_workspace(loaded, store, agent, task_id)
    state = "done" if ok else "failed"
    store.emit(f"task.{state}", agent, task_id=task_id, text=task.text, note=note)
    return state
