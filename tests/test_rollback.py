"""Rollback on real git repositories: a branch per task, quarantine of everything since the base
(commits, uncommitted and untracked files, branches made or moved), the reset, refusals."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tether.errors import NotFound
from tether.rollback import GOOD, Refused, begin, end, mark_good, rollback
from tether.rollback.tasks import layout
from tether.runbook import LoadedRunbook, load
from tether.store import Store, open_store

GIT_ENV = {
    "GIT_AUTHOR_NAME": "Agent", "GIT_AUTHOR_EMAIL": "agent@example.com",
    "GIT_COMMITTER_NAME": "Agent", "GIT_COMMITTER_EMAIL": "agent@example.com",
    "GIT_CONFIG_NOSYSTEM": "1", "HOME": "/nonexistent",
}

RUNBOOK = """\
version: 1
host:
  state_dir: ./state
agents:
  coder:
    owner: {{name: Ann, contact: "mailto:ann@example.com"}}
    backup: {{name: Bob, contact: "mailto:bob@example.com"}}
    command: sleep 60
    cwd: ./ws/app
    scope:
      folders: [./ws/notes]
{extra}"""


def git(repo: Path, *args: str, check: bool = True) -> str:
    env = {**os.environ, **GIT_ENV}
    proc = subprocess.run(["git", *args], cwd=repo, env=env, capture_output=True, text=True)
    if check and proc.returncode != 0:
        raise AssertionError(f"git {' '.join(args)}: {proc.stderr}")
    return proc.stdout.strip()


def commit_all(repo: Path, message: str) -> str:
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", message)
    return git(repo, "rev-parse", "HEAD")


def listing(root: Path, skip: tuple[str, ...] = (".git",), ignore_suffix: tuple[str, ...] = ()) -> dict[str, Any]:
    """Every file under root as git would keep it: content and executable bit, symlink targets."""
    out: dict[str, Any] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if d not in skip]
        for name in filenames + [d for d in dirnames if os.path.islink(os.path.join(dirpath, d))]:
            p = Path(dirpath) / name
            rel = str(p.relative_to(root))
            if name in skip or rel.endswith(ignore_suffix):
                continue
            if p.is_symlink():
                out[rel] = ("l", os.readlink(p))
            else:
                out[rel] = ("f", p.read_bytes(), bool(p.stat().st_mode & 0o100))
    return out


class World:
    def __init__(self, root: Path, extra: str = "") -> None:
        self.root = root
        self.app = root / "ws" / "app"
        self.notes = root / "ws" / "notes"
        self.app.mkdir(parents=True)
        self.notes.mkdir(parents=True)
        git(self.app, "init", "-q", "-b", "main")
        (self.app / ".gitignore").write_text("*.log\n")
        (self.app / "a.txt").write_text("hello\n")
        (self.app / "src").mkdir()
        (self.app / "src" / "b.py").write_text("print('b')\n")
        (self.app / "run.sh").write_text("#!/bin/sh\necho run\n")
        (self.app / "run.sh").chmod(0o755)
        os.symlink("a.txt", self.app / "link")
        self.base = commit_all(self.app, "base")
        git(self.app, "branch", "side")
        (self.notes / "n1.md").write_text("note one\n")
        self.runbook = root / "tether.yaml"
        self.runbook.write_text(RUNBOOK.format(extra=extra))
        self.loaded: LoadedRunbook = load(self.runbook)
        self.store: Store = open_store(self.loaded.store_url)

    def task(self, text: str = "open cleanup PR") -> tuple[int, dict[str, Any]]:
        task_id = self.store.emit("task.added", "coder", text=text)
        self.store.emit("task.started", "coder", task_id=task_id, text=text)
        return task_id, begin(self.loaded, self.store, "coder", task_id)


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    w = World(tmp_path)
    yield w
    w.store.close()


def test_task_start_branches_from_head_and_records_the_base(world: World) -> None:
    task_id, rec = world.task()
    assert git(world.app, "symbolic-ref", "--short", "HEAD") == f"tether/coder/{task_id}"
    assert git(world.app, "rev-parse", "HEAD") == world.base
    [repo] = rec["repos"]
    assert repo["path"] == str(world.app.resolve())
    assert (repo["base"], repo["branch"], repo["start"]) == (world.base, "main", None)
    assert repo["tips"] == {"main": world.base, "side": world.base}
    [snap] = rec["snapshots"]
    assert snap["path"] == str(world.notes.resolve()) and snap["files"] == 1
    # the record is an event and sits in the task's meta; beginning again changes nothing
    assert world.store.task(task_id).meta["workspace"]["repos"][0]["base"] == world.base
    assert [e.kind for e in world.store.events("coder", kinds=["rollback.base"])] == ["rollback.base"]
    assert begin(world.loaded, world.store, "coder", task_id)["at"] == rec["at"]


def test_rollback_quarantines_everything_and_leaves_the_base_exactly(world: World) -> None:
    app = world.app
    at_start = listing(app)
    task_id, _ = world.task()
    # the agent's work: two commits on the task branch ...
    (app / "a.txt").write_text("hello, changed\n")
    (app / "c.txt").write_text("new file\n")
    (app / "src" / "b.py").unlink()
    first = commit_all(app, "work 1")
    (app / "run.sh").chmod(0o644)
    second = commit_all(app, "work 2")
    # ... a branch of its own, and a pre-existing branch moved forward
    git(app, "switch", "-q", "-c", "agent-feature")
    (app / "feature.txt").write_text("feature\n")
    feature = commit_all(app, "feature")
    git(app, "switch", "-q", "side")
    (app / "side.txt").write_text("side\n")
    side = commit_all(app, "side work")
    git(app, "switch", "-q", f"tether/coder/{task_id}")
    # ... and work not committed: unstaged, staged, untracked (a folder too), ignored
    (app / "a.txt").write_text("hello, changed again\n")
    (app / "staged.txt").write_text("staged\n")
    git(app, "add", "staged.txt")
    (app / "untracked.txt").write_text("untracked\n")
    (app / "newdir" / "deep").mkdir(parents=True)
    (app / "newdir" / "deep" / "x.bin").write_bytes(bytes(range(256)))
    os.symlink("c.txt", app / "newlink")
    (app / "out.log").write_text("ignored output\n")
    before = listing(app, ignore_suffix=(".log",))

    got = rollback(world.loaded, world.store, "coder")

    # the workspace is exactly the base: HEAD on main at the base, nothing staged, nothing extra
    assert git(app, "symbolic-ref", "--short", "HEAD") == "main"
    assert git(app, "rev-parse", "HEAD") == world.base
    assert git(app, "status", "--porcelain") == ""
    assert listing(app, ignore_suffix=(".log",)) == at_start
    assert (app / "out.log").read_text() == "ignored output\n"  # ignored files are not the agent's work
    branches = git(app, "for-each-ref", "--format=%(refname:short)", "refs/heads/").split()
    q = got["quarantine"]
    assert q and q.startswith("tether/quarantine/coder/")
    assert sorted(branches) == sorted(["main", "side", q])
    assert git(app, "rev-parse", "side") == world.base
    # the work is reachable on the quarantine branch: the tree is the work tree as it was
    wt = world.root / "q"
    git(app, "worktree", "add", "-q", "--detach", str(wt), q)
    assert listing(wt) == before
    for commit in (first, second, feature, side):
        git(app, "merge-base", "--is-ancestor", commit, q)
    [repo] = got["repos"]
    assert repo["commits"] == 4 and repo["worktree"] and repo["index"]
    assert set(repo["refs"]) == {f"tether/coder/{task_id}", "agent-feature", "side"}
    # recorded: the event, the task's meta, and the task cancelled (it was still running)
    [done] = world.store.events("coder", kinds=["rollback.done"])
    assert done.data["quarantine"] == q and done.data["tasks"] == [task_id]
    task = world.store.task(task_id)
    assert task.state == "cancelled"
    assert task.meta["rolled_back"]["quarantine"] == q
    with pytest.raises(Refused, match="rolled back already"):
        rollback(world.loaded, world.store, "coder", task_id)


def test_a_task_started_on_a_dirty_tree_rolls_back_to_that_tree(world: World) -> None:
    app = world.app
    (app / "a.txt").write_text("edited before the task\n")
    (app / "src" / "b.py").unlink()
    (app / "notes.txt").write_text("untracked before the task\n")
    at_start = listing(app)
    task_id, rec = world.task()
    assert rec["repos"][0]["start"]
    assert listing(app) == at_start  # the branch switch carried the changes along
    (app / "a.txt").write_text("the agent's edit\n")
    (app / "notes.txt").unlink()
    commit_all(app, "agent")
    (app / "more.txt").write_text("more\n")

    got = rollback(world.loaded, world.store, "coder", task_id)

    assert listing(app) == at_start
    assert git(app, "rev-parse", "HEAD") == world.base
    assert git(app, "diff", "--cached", "--name-only") == ""  # the index is the base's
    q = got["quarantine"]
    assert git(app, "show", f"{q}:more.txt") == "more"
    assert git(app, "show", f"{q}:a.txt") == "the agent's edit"


def test_nothing_done_means_nothing_quarantined(world: World) -> None:
    task_id, _ = world.task()
    got = rollback(world.loaded, world.store, "coder", task_id)
    assert got["quarantine"] is None
    assert git(world.app, "symbolic-ref", "--short", "HEAD") == "main"
    assert f"tether/coder/{task_id}" not in git(world.app, "branch")


def test_snapshotted_folders_are_restored_and_their_state_kept(world: World) -> None:
    notes = world.notes
    (notes / "sub").mkdir()
    (notes / "sub" / "keep.md").write_text("keep\n")
    (notes / "empty").mkdir()
    before = listing(notes)
    task_id, _ = world.task()
    (notes / "n1.md").write_text("rewritten\n")
    (notes / "sub" / "keep.md").unlink()
    (notes / "added.md").write_text("added\n")
    (notes / "empty").rmdir()
    during = listing(notes)
    got = rollback(world.loaded, world.store, "coder", task_id)
    assert listing(notes) == before
    assert (notes / "empty").is_dir()
    [snap] = got["snapshots"]
    assert snap["removed"] == 1 and snap["kept_as"]
    # what was there before the restore is kept, restorable elsewhere
    from tether.rollback.tasks import store_dir

    elsewhere = world.root / "kept"
    store_dir(world.loaded).restore(snap["kept_as"], elsewhere)
    assert listing(elsewhere) == during


def test_later_tasks_are_rolled_back_with_an_earlier_one(world: World) -> None:
    first_id, _ = world.task("first")
    (world.app / "one.txt").write_text("1\n")
    commit_all(world.app, "one")
    end(world.loaded, world.store, "coder", first_id)
    world.store.emit("task.done", "coder", task_id=first_id, text="first")
    second_id, rec2 = world.task("second")
    assert rec2["repos"][0]["branch"] == f"tether/coder/{first_id}"  # from the current HEAD
    (world.app / "two.txt").write_text("2\n")
    got = rollback(world.loaded, world.store, "coder", first_id)
    assert got["tasks"] == [first_id, second_id]
    assert git(world.app, "rev-parse", "HEAD") == world.base
    assert not (world.app / "one.txt").exists() and not (world.app / "two.txt").exists()
    assert world.store.task(first_id).state == "done"  # a finished task stays done, marked rolled back
    assert world.store.task(first_id).meta["rolled_back"]
    assert world.store.task(second_id).state == "cancelled"


def test_end_records_head_and_files_changed(world: World) -> None:
    task_id, _ = world.task()
    (world.app / "a.txt").write_text("x\n")
    commit_all(world.app, "x")
    (world.app / "u.txt").write_text("u\n")
    (world.notes / "n2.md").write_text("n2\n")
    rec = end(world.loaded, world.store, "coder", task_id)
    assert rec is not None and rec["files_changed"] == 3
    assert world.store.task(task_id).meta["workspace_end"]["heads"][str(world.app.resolve())] == git(
        world.app, "rev-parse", "HEAD"
    )


def test_detached_head_at_start_comes_back_detached(world: World) -> None:
    git(world.app, "switch", "-q", "--detach", "HEAD")
    task_id, rec = world.task()
    assert rec["repos"][0]["branch"] is None
    (world.app / "a.txt").write_text("work\n")
    commit_all(world.app, "work")
    got = rollback(world.loaded, world.store, "coder", task_id)
    assert got["quarantine"]
    assert git(world.app, "rev-parse", "HEAD") == world.base
    assert git(world.app, "symbolic-ref", "-q", "HEAD", check=False) == ""


# -- refusals ----------------------------------------------------------------------------------------


def _conflict(app: Path) -> None:
    git(app, "switch", "-q", "-c", "other")
    (app / "a.txt").write_text("other\n")
    commit_all(app, "other")
    git(app, "switch", "-q", "-")
    (app / "a.txt").write_text("mine\n")
    commit_all(app, "mine")
    git(app, "merge", "-q", "other", check=False)
    assert (app / ".git" / "MERGE_HEAD").exists()


def test_refuses_to_start_mid_merge_and_changes_nothing(world: World) -> None:
    _conflict(world.app)
    task_id = world.store.emit("task.added", "coder", text="t")
    with pytest.raises(Refused, match=r"a merge is in progress \(the index is mid-merge\)"):
        begin(world.loaded, world.store, "coder", task_id)
    assert git(world.app, "symbolic-ref", "--short", "HEAD") == "main"
    assert world.store.task(task_id).meta == {}
    from tether.rollback.tasks import store_dir

    assert store_dir(world.loaded).ids() == []  # the snapshot taken before the refusal is gone


def test_refuses_to_roll_back_mid_merge(world: World) -> None:
    task_id, _ = world.task()
    _conflict(world.app)
    head = git(world.app, "rev-parse", "HEAD")
    with pytest.raises(Refused, match="merge is in progress"):
        rollback(world.loaded, world.store, "coder", task_id)
    assert git(world.app, "rev-parse", "HEAD") == head
    assert (world.app / ".git" / "MERGE_HEAD").exists()
    assert not world.store.events("coder", kinds=["rollback.done", "rollback.failed"])


def test_refuses_a_head_that_names_no_commit(tmp_path: Path) -> None:
    w = World(tmp_path)
    git(w.app, "switch", "-q", "--orphan", "fresh")
    task_id = w.store.emit("task.added", "coder", text="t")
    with pytest.raises(Refused, match="branch 'fresh' has no commit yet"):
        begin(w.loaded, w.store, "coder", task_id)
    w.store.close()


def test_refuses_a_repo_outside_the_scope(tmp_path: Path) -> None:
    extra = "    rollback: {snapshot: []}\n  outsider:\n" + (
        '    owner: {name: Ann, contact: "mailto:a@example.com"}\n'
        '    backup: {name: Bob, contact: "mailto:b@example.com"}\n'
        "    command: sleep 1\n    cwd: ./ws/notes\n    scope: {repos: [./ws/app/src]}\n"
    )
    w = World(tmp_path, extra)
    with pytest.raises(Refused, match=r"is inside the git repository .*whose work tree is not all in outsider's scope"):
        layout(w.loaded, "outsider")
    # and a recorded repository that left the scope is not reset
    task_id, _ = w.task()
    w.runbook.write_text(w.runbook.read_text().replace("cwd: ./ws/app", "cwd: ./ws/notes"))
    moved = load(w.runbook)
    with pytest.raises(Refused, match="outside coder's scope now"):
        rollback(moved, w.store, "coder", task_id)
    w.store.close()


def test_unknown_things_are_named(world: World) -> None:
    with pytest.raises(NotFound, match="no task to roll back"):
        rollback(world.loaded, world.store, "coder")
    plain = world.store.emit("task.added", "coder", text="never begun")
    with pytest.raises(Refused, match="no recorded base"):
        rollback(world.loaded, world.store, "coder", plain)
    with pytest.raises(NotFound, match="no agent named 'ghost'"):
        rollback(world.loaded, world.store, "ghost")
    with pytest.raises(Refused, match="no last-known-good mark"):
        rollback(world.loaded, world.store, "coder", to=GOOD)


def test_nested_repositories_in_a_folder_get_a_branch_too(world: World) -> None:
    nested = world.notes / "tool"
    nested.mkdir()
    git(nested, "init", "-q", "-b", "main")
    (nested / "t.txt").write_text("t\n")
    nested_base = commit_all(nested, "tool base")
    task_id, rec = world.task()
    assert {r["path"] for r in rec["repos"]} == {str(world.app.resolve()), str(nested.resolve())}
    assert git(nested, "symbolic-ref", "--short", "HEAD") == f"tether/coder/{task_id}"
    (nested / "t.txt").write_text("changed\n")
    (world.notes / "n1.md").write_text("changed\n")
    got = rollback(world.loaded, world.store, "coder", task_id)
    assert git(nested, "rev-parse", "HEAD") == nested_base and (nested / "t.txt").read_text() == "t\n"
    assert (world.notes / "n1.md").read_text() == "note one\n"
    assert not got["snapshots"][0]["left"]


# -- last-known-good and the release command ---------------------------------------------------------


def test_good_then_rollback_to_it_runs_the_release_command(tmp_path: Path) -> None:
    extra = (
        "    rollback:\n"
        "      release_command: sh -c 'echo redeploying $TETHER_GOOD_COMMIT; "
        "echo token=sk-ant-abcdefghijklmnopqrstuvwx'\n"
    )
    w = World(tmp_path, extra)
    good = mark_good(w.loaded, w.store, "coder", by="ann")
    assert git(w.app, "rev-parse", "tether/good/coder^{commit}") == w.base
    assert good["snapshots"][0]["files"] == 1
    task_id, _ = w.task()
    (w.app / "a.txt").write_text("bad\n")
    commit_all(w.app, "bad")
    (w.notes / "n1.md").write_text("bad\n")
    got = rollback(w.loaded, w.store, "coder", to=GOOD)
    assert got["to"] == GOOD and got["tasks"] == [task_id]
    assert git(w.app, "rev-parse", "HEAD") == w.base and (w.app / "a.txt").read_text() == "hello\n"
    assert (w.notes / "n1.md").read_text() == "note one\n"
    rel = got["release"]
    assert rel["ok"] and rel["exit_code"] == 0
    assert f"redeploying {w.base}" in rel["tail"]
    log = Path(rel["log"]).read_text()
    assert f"redeploying {w.base}" in log and "sk-ant-" not in log  # kept, and redacted
    [done] = w.store.events("coder", kinds=["rollback.done"])
    assert done.data["release"]["exit_code"] == 0
    w.store.close()


def test_good_at_a_ref_and_a_tag_moved_by_hand(world: World) -> None:
    (world.app / "a.txt").write_text("v2\n")
    v2 = commit_all(world.app, "v2")
    mark_good(world.loaded, world.store, "coder", "HEAD~1")
    assert git(world.app, "rev-parse", "tether/good/coder^{commit}") == world.base
    (world.app / "a.txt").write_text("v3\n")
    commit_all(world.app, "v3")
    git(world.app, "tag", "-f", "tether/good/coder", v2)  # a human says v2 is good after all
    got = rollback(world.loaded, world.store, "coder", to=GOOD)
    assert git(world.app, "rev-parse", "HEAD") == v2
    assert git(world.app, "symbolic-ref", "--short", "HEAD") == "main"
    assert got["quarantine"]  # v3 is kept aside
    with pytest.raises(Refused, match="names no commit"):
        mark_good(world.loaded, world.store, "coder", "no-such-ref")


def test_approval_required_by_the_runbook(tmp_path: Path) -> None:
    from tether.approvals import Approvals
    from tether.rollback import ApprovalPending

    w = World(tmp_path, "    rollback: {requires_approval: true}\n")
    task_id, _ = w.task()
    (w.app / "a.txt").write_text("work\n")
    with pytest.raises(ApprovalPending, match=r"approval \d+ is pending; `tether approve \d+`") as held:
        rollback(w.loaded, w.store, "coder", task_id)
    assert (w.app / "a.txt").read_text() == "work\n"  # nothing changed while it waits
    row = w.store.approval(held.value.approval_id)
    assert row["action"] == "rollback" and f"task {task_id}" in row["detail"]
    Approvals(w.store).decide(held.value.approval_id, True, by="bob")
    got = rollback(w.loaded, w.store, "coder", task_id)
    assert got["approval"] == held.value.approval_id
    assert (w.app / "a.txt").read_text() == "hello\n"
    w.store.close()


def test_without_branch_per_task_the_branch_itself_goes_back(tmp_path: Path) -> None:
    w = World(tmp_path, "    rollback: {branch_per_task: false}\n")
    task_id, rec = w.task()
    assert rec["repos"][0]["task_branch"] is None
    assert git(w.app, "symbolic-ref", "--short", "HEAD") == "main"
    (w.app / "a.txt").write_text("on main\n")
    work = commit_all(w.app, "work on main")
    got = rollback(w.loaded, w.store, "coder", task_id)
    assert git(w.app, "rev-parse", "main") == w.base
    git(w.app, "merge-base", "--is-ancestor", work, got["quarantine"])
    w.store.close()


def test_files_hidden_by_the_agents_own_gitignore_are_not_lost(world: World) -> None:
    task_id, _ = world.task()
    (world.app / ".gitignore").write_text("*.log\nsecret-notes.txt\n")
    (world.app / "secret-notes.txt").write_text("hidden by the agent's .gitignore\n")
    got = rollback(world.loaded, world.store, "coder", task_id)
    # not kept (it was ignored when the work was moved aside), so not removed either
    assert (world.app / "secret-notes.txt").read_text() == "hidden by the agent's .gitignore\n"
    assert (world.app / ".gitignore").read_text() == "*.log\n"
    assert got["quarantine"]


def test_tethers_git_calls_leave_the_index_alone_and_run_no_hooks(world: World) -> None:
    from tether.rollback import gitops

    app = world.app
    hook = app / ".git" / "hooks" / "post-checkout"
    marker = world.root / "hook-ran"
    hook.write_text(f"#!/bin/sh\ntouch {marker}\n")
    hook.chmod(0o755)
    (app / "a.txt").write_text("staged\n")
    git(app, "add", "a.txt")
    (app / "a.txt").write_text("staged, then edited\n")
    (app / "new.txt").write_text("untracked\n")
    index = (app / ".git" / "index").read_bytes()
    wt = gitops.worktree_tree(app)
    assert (app / ".git" / "index").read_bytes() == index
    assert git(app, "diff", "--cached", "--name-only") == "a.txt"
    assert git(app, "show", f"{wt}:a.txt") == "staged, then edited"
    assert git(app, "show", f"{wt}:new.txt") == "untracked"
    assert gitops.index_tree(app) != wt
    world.task()  # switches branch: a post-checkout hook would run here
    assert not marker.exists()
