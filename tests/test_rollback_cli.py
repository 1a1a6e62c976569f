"""Rollback from the shell (`tether rollback`, `tether good`, `tether task start|done|list`) and the
rollback of a running agent, which is stopped first."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from helpers import one_line_error, run_cli
from test_rollback import World, commit_all, git
from tether.cli.commands.task import task_done, task_rows, task_start
from tether.cli.context import Context
from tether.process import SpawnSpec, adopt, kill_run, spawn
from tether.rollback import Refused, rollback
from tether.rollback.rollback import is_running


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    w = World(tmp_path, "    rollback:\n      release_command: sh -c 'echo going back; exit 3'\n")
    yield w
    w.store.close()
    run = w.loaded.state.agent_dir("coder") / "run"
    if run.exists():
        kill_run(run, "KILL", grace=1.0)


def invoke(w: World, *args: str) -> str:
    group = click.Group(commands={"start": task_start, "done": task_done})
    res = CliRunner().invoke(group, list(args), obj=Context(str(w.runbook), None), catch_exceptions=False)
    assert res.exit_code == 0, res.output
    return res.output


def test_task_start_done_and_list(world: World) -> None:
    out = invoke(world, "start", "coder", "open cleanup PR")
    task_id = int(out.split()[1])
    assert f"on tether/coder/{task_id} from {world.base[:12]}" in out
    assert "ws/notes: snapshot" in out
    (world.app / "a.txt").write_text("edited\n")
    (world.app / "new.txt").write_text("new\n")
    rows = task_rows(Context(str(world.runbook), None), "coder")
    assert rows[0].split() == ["ID", "STATE", "CREATED", "BASE", "BRANCH", "FILES", "TEXT"]
    row = rows[1].split()
    assert row[0] == str(task_id) and row[1] == "started" and row[3] == world.base[:12]
    assert row[4] == f"tether/coder/{task_id}" and row[5] == "2"  # counted live while it runs
    assert invoke(world, "done", "coder") == f"task {task_id} done: 2 file(s) changed since its base\n"
    commit_all(world.app, "more")  # after the end, the recorded count stands
    row = task_rows(Context(str(world.runbook), None), "coder")[1].split()
    assert row[1] == "done" and row[5] == "2"
    rollback(world.loaded, world.store, "coder", task_id)
    row = task_rows(Context(str(world.runbook), None), "coder")[1].split()
    assert row[1] == "rolled-back"


def test_task_start_refuses_before_recording_anything(world: World) -> None:
    (world.app / ".git" / "MERGE_HEAD").write_text(world.base + "\n")
    group = click.Group(commands={"start": task_start})
    res = CliRunner().invoke(group, ["start", "coder", "t"], obj=Context(str(world.runbook), None))
    assert isinstance(res.exception, Refused)
    assert world.store.tasks("coder") == []


def test_rollback_and_good_commands(world: World) -> None:
    rb = str(world.runbook)
    proc = run_cli("-f", rb, "good", "coder")
    assert proc.returncode == 0, proc.stderr
    assert f"tether/good/coder at {world.base[:12]}" in proc.stdout
    world.task()
    (world.app / "a.txt").write_text("agent work\n")
    (world.app / "junk.txt").write_text("junk\n")
    proc = run_cli("-f", rb, "rollback", "coder", "--json")
    assert proc.returncode == 0, proc.stderr
    got = json.loads(proc.stdout)
    assert got["quarantine"].startswith("tether/quarantine/coder/")
    assert git(world.app, "status", "--porcelain") == ""
    # to last-known-good: the release command runs; its failure is one line, and its output is kept
    world.task()
    (world.app / "a.txt").write_text("more agent work\n")
    proc = run_cli("-f", rb, "rollback", "coder", "--to", "last-known-good")
    line = one_line_error(proc)
    assert "the workspace was rolled back, but the release command exited 3; its output: " in line
    assert Path(line.rsplit(" ", 1)[1]).read_text() == "going back\n"
    assert "release: `sh -c echo going back; exit 3` exited 3" in proc.stdout
    assert "| going back" in proc.stdout
    assert (world.app / "a.txt").read_text() == "hello\n"


def test_refusals_are_one_line(world: World) -> None:
    rb = str(world.runbook)
    world.task()
    git(world.app, "switch", "-q", "-c", "x")
    (world.app / ".git" / "MERGE_HEAD").write_text(world.base + "\n")
    line = one_line_error(run_cli("-f", rb, "rollback", "coder"))
    assert "a merge is in progress (the index is mid-merge)" in line
    line = one_line_error(run_cli("-f", rb, "rollback", "coder", "99"))
    assert line == "tether: error: agent 'coder' has no task 99"


def test_rollback_of_a_running_agent_stops_it_first(world: World) -> None:
    task_id, _ = world.task()
    state = world.loaded.state
    out = world.app / "agent.out"
    spec = SpawnSpec(
        agent="coder", argv=["/bin/sh", "-c", f"while :; do date >> {out}; sleep 0.02; done"],
        run_dir=state.agent_dir("coder") / "run", log_dir=state.log_dir("coder"), cwd=world.app,
    )
    handle = spawn(spec)
    deadline = time.monotonic() + 5
    while not out.exists() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert is_running(world.loaded, "coder")
    with pytest.raises(Refused, match=r"coder is running; .* or pass --stop"):
        rollback(world.loaded, world.store, "coder", task_id)
    assert git(world.app, "symbolic-ref", "--short", "HEAD") == f"tether/coder/{task_id}"  # untouched

    got = rollback(world.loaded, world.store, "coder", task_id, stop=True)

    assert got["stopped"]["signalled"] >= 1
    assert not handle.running() and not is_running(world.loaded, "coder")
    assert adopt(spec.run_dir) is not None
    time.sleep(0.2)  # had it still been running, it would have written again by now
    assert not out.exists()
    assert git(world.app, "status", "--porcelain") == ""
    assert "agent.out" in git(world.app, "ls-tree", "--name-only", got["quarantine"])
    assert world.store.agent("coder")["state"] == "stopped"
