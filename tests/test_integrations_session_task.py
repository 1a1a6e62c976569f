"""A Claude Code (or Codex) session is a task: SessionStart puts the agent's repository on a branch
tether/<agent>/<task> from the current HEAD (rollback), SessionEnd records where it ended and the task done."""

from __future__ import annotations

import subprocess
from pathlib import Path
from types import SimpleNamespace

import pytest

from tether.api.hooks import session_task
from tether.integrations.monitor import Monitor
from tether.runbook import load
from tether.store import Store, open_store


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, check=True).stdout.strip()


def _host(tmp_path: Path, name: str, kind: str) -> tuple[Path, Store, Monitor]:
    """A git repository with one commit, a runbook with one agent of ``kind`` working in it, its store and a
    monitor whose sessions are tasks."""
    repo = tmp_path / "repo"
    repo.mkdir()
    _git(repo, "init", "-q", "-b", "main")
    (repo / "a.txt").write_text("one\n")
    _git(repo, "add", ".")
    _git(repo, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "one")
    rb = tmp_path / "tether.yaml"
    rb.write_text(
        f"host: {{state_dir: {tmp_path / 'state'}}}\nagents:\n  {name}:\n"
        "    owner: {name: A, contact: \"json://127.0.0.1:9/a\"}\n    backup: {name: B, contact: \"json://127.0.0.1:9/b\"}\n"
        f"    kind: {kind}\n    prompt: tidy up\n    cwd: {repo}\n    scope: {{repos: [{repo}]}}\n"
    )
    loaded = load(rb)
    store = open_store(loaded.store_url)
    control = SimpleNamespace(store=store, loaded=loaded)
    monitor = Monitor(store, loaded.state, lambda agent, task: None,
                      session_task=lambda agent, sid, started: session_task(control, agent, sid, started))
    return repo, store, monitor


def test_a_session_is_a_task_on_its_own_branch(tmp_path: Path) -> None:
    repo, store, monitor = _host(tmp_path, "coder", "claude-code")
    base = _git(repo, "rev-parse", "HEAD")
    monitor.event("claude-code", "coder", {"hook_event_name": "SessionStart", "session_id": "s-1",
                                          "source": "startup", "cwd": str(repo)})
    assert monitor.drain()
    [task] = store.tasks("coder")
    assert task.state == "started" and task.text == "session s-1"
    assert _git(repo, "rev-parse", "--abbrev-ref", "HEAD") == f"tether/coder/{task.id}"
    assert _git(repo, "rev-parse", "HEAD") == base
    monitor.event("claude-code", "coder", {"hook_event_name": "SessionStart", "session_id": "s-1",
                                          "source": "resume", "cwd": str(repo)})  # a resume is the same task
    monitor.event("claude-code", "coder", {"hook_event_name": "SessionEnd", "session_id": "s-1", "cwd": str(repo)})
    assert monitor.drain()
    [task] = store.tasks("coder")
    assert task.state == "done"
    assert any(e.kind == "rollback.end" for e in store.events(limit=1000))
    monitor.stop()
    store.close()


def test_a_codex_turn_ends_its_task(tmp_path: Path) -> None:
    """Codex sends no SessionEnd: its turn's end (Stop) ends the session's task (every one stayed started),
    and a next prompt in the same session starts another."""
    repo, store, monitor = _host(tmp_path, "cx", "codex")
    try:
        base = {"session_id": "t-1", "cwd": str(repo)}
        monitor.event("codex", "cx", {"hook_event_name": "SessionStart", "source": "startup", **base})
        monitor.event("codex", "cx", {"hook_event_name": "UserPromptSubmit", "prompt": "tidy up", **base})
        assert monitor.drain()
        assert [t.state for t in store.tasks("cx")] == ["started"]  # the prompt of the first turn: the same task
        monitor.event("codex", "cx", {"hook_event_name": "Stop", "last_assistant_message": "done", **base})
        assert monitor.drain()
        assert [t.state for t in store.tasks("cx")] == ["done"]
        monitor.event("codex", "cx", {"hook_event_name": "UserPromptSubmit", "prompt": "and the docs", **base})
        assert monitor.drain()
        assert sorted(t.state for t in store.tasks("cx")) == ["done", "started"]
        monitor.event("codex", "cx", {"hook_event_name": "Stop", "last_assistant_message": "done", **base})
        assert monitor.drain()
        assert [t.state for t in store.tasks("cx")] == ["done", "done"]
    finally:
        monitor.stop()
        store.close()


def test_a_session_in_a_repository_mid_merge_runs_without_a_task(tmp_path: Path) -> None:
    """A workspace that cannot start the session's task (a merge in progress) cancels it, saying why; the
    session goes on (the hook never fails), and ``tether task start``'s way (strict) raises instead."""
    from tether import tasks
    from tether.rollback import Refused

    repo, store, monitor = _host(tmp_path, "coder", "claude-code")
    try:
        (repo / ".git" / "MERGE_HEAD").write_text(_git(repo, "rev-parse", "HEAD") + "\n")
        monitor.event("claude-code", "coder", {"hook_event_name": "SessionStart", "session_id": "s-1",
                                              "source": "startup", "cwd": str(repo)})
        assert monitor.drain()
        [task] = store.tasks("coder")
        assert task.state == "cancelled"
        [note] = [e.data["note"] for e in store.events(limit=1000) if e.kind == "task.cancelled"]
        assert note.startswith("could not start: ") and "merge is in progress" in note
        assert _git(repo, "rev-parse", "--abbrev-ref", "HEAD") == "main"
        loaded = load(tmp_path / "tether.yaml")
        with pytest.raises(Refused, match="merge is in progress"):
            tasks.start_new(loaded, store, "coder", "by hand")
        assert sorted(t.state for t in store.tasks("coder")) == ["cancelled", "cancelled"]
    finally:
        monitor.stop()
        store.close()
