"""Task start and end: what an agent's workspace was when a task began, so it can be put back.

At ``begin`` each git repository in the agent's scope gets a branch ``tether/<agent>/<task-id>`` from
its current HEAD, and its base is recorded: the commit, the branch that was checked out, every local
branch's tip (to know later which branches the agent made or moved) and, when the work tree was
not clean, a commit of it as it was (kept under ``refs/tether/start/...``). Folders in scope that
are not git repositories are snapshotted. One ``rollback.base`` event records it all; its projection
keeps it in the task's ``meta["workspace"]``.

Which repositories and folders: every local ``scope.repos`` entry, the agent's cwd, every
``scope.folders`` entry and every ``rollback.snapshot`` entry. A folder that is a git work tree (or
inside one that is in scope) is a repository; any other folder is snapshotted, and git repositories
found inside it are handled as repositories (never stored in the snapshot).
"""

from __future__ import annotations

import contextlib
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tether.errors import NotFound, TetherError
from tether.filelock import flock_within
from tether.integrations.owned import Owned
from tether.rollback import gitops
from tether.rollback.gitops import GitError
from tether.rollback.snapshot import SnapshotStore
from tether.runbook import LoadedRunbook
from tether.store import Store

LOCK_TIMEOUT = 60.0


class Refused(TetherError):
    """tether will not start a task or roll back in this state; the message says why and what to do."""


@dataclass
class Layout:
    """An agent's scope as rollback sees it."""

    roots: tuple[Path, ...]  # everything in scope (cwd, folders, local repos), real paths
    repos: list[Path] = field(default_factory=list)  # git work trees
    folders: list[Path] = field(default_factory=list)  # other folders, to snapshot
    missing: list[str] = field(default_factory=list)  # entries that do not exist (yet)
    snapshot_roots: tuple[Path, ...] = ()  # rollback.snapshot entries (may lie outside the scope)

    def in_scope(self, path: Path) -> bool:
        return any(_inside(path, r) for r in self.roots)

    def may_restore(self, folder: Path) -> bool:
        return self.in_scope(folder) or any(_inside(folder, r) for r in self.snapshot_roots)

    def excluded(self, folder: Path, skip: list[Path]) -> list[str]:
        """What a snapshot of ``folder`` leaves out: repositories inside it and tether's own files."""
        out = []
        for p in (*self.repos, *skip):
            if p != folder and _inside(p, folder):
                out.append(os.path.relpath(p, folder))
        return sorted(set(out))


def _inside(path: Path, root: Path) -> bool:
    return path == root or root in path.parents


def _real(p: Path | str) -> Path:
    return Path(os.path.realpath(p))


def store_dir(loaded: LoadedRunbook) -> SnapshotStore:
    return SnapshotStore(loaded.state.root / "snapshots")


def tether_files(loaded: LoadedRunbook) -> list[Path]:
    """Paths a snapshot must never hold or restore: the state directory and the runbook."""
    return [_real(loaded.state.root), _real(loaded.path)]


def _remote(repo: str) -> bool:
    return "://" in repo or repo.startswith("git@") or (repo.count("/") == 2 and "." in repo.split("/")[0])


def layout(loaded: LoadedRunbook, agent: str) -> Layout:
    """The git repositories and the other folders in ``agent``'s scope. Raises ``Refused`` for a
    ``scope.repos`` entry inside a repository whose work tree reaches outside the scope."""
    spec = loaded.runbook.agents.get(agent)
    if spec is None:
        raise NotFound(f"no agent named {agent!r} in {loaded.path}")
    cwd = _real(loaded.agent_cwd(agent))
    repo_entries = [_real(loaded.resolve(r)) for r in spec.scope.repos if not _remote(r)]
    folder_entries = [_real(loaded.resolve(f)) for f in spec.scope.folders]
    snap_entries = [_real(loaded.resolve(f)) for f in spec.rollback.snapshot]
    lay = Layout(roots=tuple(dict.fromkeys([cwd, *folder_entries, *repo_entries])), snapshot_roots=tuple(snap_entries))
    repos: dict[Path, None] = {}
    folders: dict[Path, None] = {}
    for p in repo_entries:
        if not p.is_dir():
            lay.missing.append(str(p))
            continue
        top = gitops.toplevel(p)
        if top is None:
            folders[p] = None
        elif top == p or lay.in_scope(top):
            repos[top] = None
        else:
            raise Refused(
                f"{p} (scope.repos of {agent}) is inside the git repository {top}, whose work tree is not all "
                f"in {agent}'s scope; tether will not branch or reset a repository outside the scope: list {top} "
                f"itself, or list {p} under scope.folders to snapshot it instead"
            )
    for p in (cwd, *folder_entries, *snap_entries):
        if not p.is_dir():
            if p != cwd:
                lay.missing.append(str(p))
            continue
        top = gitops.toplevel(p)
        if top is not None and (top == p or lay.in_scope(top)):
            repos[top] = None
        else:
            folders[p] = None
    lay.repos = sorted(repos)
    # a folder inside another folder, or inside a repository, is covered already
    kept = [f for f in folders if not any(o != f and _inside(f, o) for o in folders)]
    lay.folders = sorted(f for f in kept if not any(_inside(f, r) for r in lay.repos))
    return lay


def agent_lock(
    loaded: LoadedRunbook, agent: str, timeout: float = LOCK_TIMEOUT
) -> contextlib.AbstractContextManager[None]:
    """One task start, task end or rollback of an agent at a time, across processes."""
    path = loaded.state.agent_dir(agent) / "rollback.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    return flock_within(path, timeout, 0.05, lambda: Refused(
        f"another task start or rollback of {agent} has held its lock for {timeout:g}s; try again when it is done"
    ))


def check_repo(repo: Path) -> gitops.Head:
    """The repository's HEAD, or ``Refused`` when it is mid-merge (or mid-anything) or HEAD names no commit."""
    if gitops.toplevel(repo) != repo:
        raise Refused(f"{repo}: no longer a git work tree's top folder; tether will not touch it")
    busy = gitops.in_progress(repo)
    if busy is not None:
        raise Refused(f"{repo}: {busy}")
    h = gitops.head(repo)
    if h.commit is None:
        where = f"branch {h.branch!r}" if h.branch else "HEAD"
        raise Refused(
            f"{repo}: {where} has no commit yet, so there is no base to name; make a first commit, then try again"
        )
    return h


def point(repo: Path, commit: str, branch: str | None) -> dict[str, Any]:
    """A repository's state to come back to: the commit, the branch then checked out, every branch tip."""
    return {"path": str(repo), "base": commit, "branch": branch, "tips": gitops.branches(repo)}


def begin(loaded: LoadedRunbook, store: Store, agent: str, task_id: int, *, text: str | None = None) -> dict[str, Any]:
    """Start task ``task_id`` in the workspace: a branch per git repository, a snapshot per other folder,
    the base recorded as a ``rollback.base`` event. Idempotent: a task begun already returns its record.

    Raises ``Refused`` (nothing changed) for a repository mid-merge, with no commit, or outside the scope.
    """
    spec = loaded.runbook.agents.get(agent)
    if spec is None:
        raise NotFound(f"no agent named {agent!r} in {loaded.path}")
    task = store.task(task_id)
    if task is None or task.agent != agent:
        raise NotFound(f"agent {agent!r} has no task {task_id}")
    if task.meta.get("workspace"):
        recorded: dict[str, Any] = task.meta["workspace"]
        return recorded
    started = time.monotonic()
    with agent_lock(loaded, agent):
        lay = layout(loaded, agent)
        heads = {repo: check_repo(repo) for repo in lay.repos}
        snaps = store_dir(loaded)
        skip = tether_files(loaded)
        snapshots: list[dict[str, Any]] = []
        try:
            for folder in lay.folders:
                info = snaps.take(folder, exclude=lay.excluded(folder, skip))
                snapshots.append({"path": str(folder), "snapshot": info.id, "files": info.files,
                                  "bytes": info.bytes, "new_bytes": info.new_bytes})
                for rel in info.repos:  # git repositories inside a folder are in scope too
                    nested = _real(folder / rel)
                    if nested not in heads and gitops.toplevel(nested) == nested:
                        heads[nested] = check_repo(nested)
        except BaseException:
            snaps.forget(s["snapshot"] for s in snapshots)
            raise
        repos: list[dict[str, Any]] = []
        try:
            for repo, h in sorted(heads.items()):
                repos.append(_begin_repo(repo, h, agent, task_id, spec.rollback.branch_per_task))
        except BaseException:
            for rec in repos:
                _undo_begin(rec, agent, task_id)
            snaps.forget(s["snapshot"] for s in snapshots)
            raise
        record = {
            "task_id": task_id, "text": text if text is not None else task.text, "at": time.time(),
            "repos": repos, "snapshots": snapshots, "missing": lay.missing,
            "seconds": round(time.monotonic() - started, 3),
        }
        store.emit("rollback.base", agent, **record)
    return record


def _begin_repo(repo: Path, h: gitops.Head, agent: str, task_id: int, branch_per_task: bool) -> dict[str, Any]:
    assert h.commit is not None
    rec = point(repo, h.commit, h.branch)
    rec["start"] = None
    rec["task_branch"] = None
    gitops.set_ref(repo, f"refs/tether/base/{agent}/{task_id}", h.commit)  # the base survives any gc
    wt = gitops.worktree_tree(repo)
    if wt != gitops.tree(repo, h.commit):
        start = gitops.commit_tree(
            repo, wt, [h.commit], f"tether: the work tree when task {task_id} of {agent} began (not committed)\n"
        )
        gitops.set_ref(repo, f"refs/tether/start/{agent}/{task_id}", start)
        rec["start"] = start
    if branch_per_task:
        name = f"tether/{agent}/{task_id}"
        if gitops.branch_exists(repo, name):
            raise Refused(
                f"{repo}: branch {name} exists already (a task id is used once); delete it "
                f"(`git branch -D {name}`) or start a new task"
            )
        gitops.switch_new(repo, name)
        rec["task_branch"] = name
    return rec


def _undo_begin(rec: dict[str, Any], agent: str, task_id: int) -> None:
    """Best effort: put a repository back as it was before a ``begin`` that failed elsewhere."""
    repo = Path(rec["path"])
    with contextlib.suppress(TetherError):
        if rec.get("task_branch"):
            gitops.point_head(repo, rec["branch"], rec["base"])
            gitops.delete_ref(repo, f"refs/heads/{rec['task_branch']}")
        for kind in ("base", "start"):
            if gitops.ok(repo, "show-ref", "--verify", "--quiet", f"refs/tether/{kind}/{agent}/{task_id}"):
                gitops.delete_ref(repo, f"refs/tether/{kind}/{agent}/{task_id}")


def workspace(store: Store, task_id: int) -> dict[str, Any] | None:
    task = store.task(task_id)
    ws = task.meta.get("workspace") if task is not None else None
    return ws if isinstance(ws, dict) else None


def changed(loaded: LoadedRunbook, ws: dict[str, Any]) -> list[str]:
    """Every path changed since the task's base: in its repositories (committed or not, untracked
    too, never ignored) and in its snapshotted folders, but tether's own files (``integrations.owned``:
    its hook settings, the state directory, the runbook). Paths are absolute."""
    out: list[str] = []
    for rec in ws.get("repos", []):
        repo = Path(rec["path"])
        try:
            since = rec.get("start") or rec["base"]
            out += [str(repo / p) for p in gitops.changed_paths(repo, since)]
        except GitError:
            continue
    snaps = store_dir(loaded)
    for s in ws.get("snapshots", []):
        with contextlib.suppress(TetherError, OSError):
            out += [str(Path(s["path"]) / p) for p in snaps.diff(s["snapshot"], s["path"])]
    return sorted(set(Owned(tether_files(loaded)).drop(out)))


def end(loaded: LoadedRunbook, store: Store, agent: str, task_id: int) -> dict[str, Any] | None:
    """Record where a task ended: each repository's HEAD and the files changed since the base
    (``rollback.end``). The work stays where it is, on the task branch. None when the task has no base."""
    ws = workspace(store, task_id)
    if ws is None:
        return None
    with agent_lock(loaded, agent):
        heads = {}
        for rec in ws.get("repos", []):
            with contextlib.suppress(GitError):
                heads[rec["path"]] = gitops.head(Path(rec["path"])).commit
        files = changed(loaded, ws)
        record = {"task_id": task_id, "at": time.time(), "heads": heads, "files_changed": len(files),
                  "files": files[:200]}
        store.emit("rollback.end", agent, **record)
    return record


def describe(loaded: LoadedRunbook | None, task: Any, live: bool = True) -> dict[str, Any]:
    """One task for ``tether task list``: base, branch, files changed and state.

    ``files_changed`` is counted now for a running task (``live``), else as recorded at its end."""
    meta = task.meta or {}
    ws = meta.get("workspace") if isinstance(meta.get("workspace"), dict) else None
    end_rec = meta.get("workspace_end") or {}
    rolled = meta.get("rolled_back")
    state = "rolled-back" if rolled else task.state
    base = branch = None
    files: int | None = None
    if ws is not None:
        repos = ws.get("repos", [])
        if repos:
            base = repos[0]["base"][:12] + (f" +{len(repos) - 1}" if len(repos) > 1 else "")
            branch = repos[0].get("task_branch") or repos[0].get("branch")
        if rolled and "files_changed" in rolled:
            files = int(rolled["files_changed"])
        elif "files_changed" in end_rec:
            files = int(end_rec["files_changed"])
        elif live and loaded is not None and task.state == "started":
            files = len(changed(loaded, ws))
    return {"id": task.id, "state": state, "text": task.text, "base": base, "branch": branch,
            "files_changed": files, "snapshots": len(ws.get("snapshots", [])) if ws else 0,
            "quarantine": (rolled or {}).get("quarantine")}
