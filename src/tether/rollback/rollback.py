"""The rollback itself, and last-known-good.

``rollback`` puts an agent's workspace back where a task began (or where ``tether good`` marked it):

1. refuses, changing nothing, when a repository is mid-merge (or mid-rebase, ...), has a HEAD that
   names no commit, or lies outside the agent's scope; when the runbook says so
   (``rollback.requires_approval``) it waits for a human's approval first;
2. refuses while the agent runs, or stops it first (``stop=True``);
3. in each git repository, moves everything since the base onto ``tether/quarantine/<agent>/<stamp>``:
   a commit whose first parent holds the work tree as it was (uncommitted and untracked files
   included, made through a temporary index so the user's index is untouched until the reset),
   whose other parents are the staged state (where it differed) and the tip of every branch made or
   moved since the base. Then branches made since are deleted, branches moved are put back, HEAD
   goes back to the branch it was on, and the work tree is reset to the base (ignored files stay);
4. in each snapshotted folder, snapshots what is there now (cheap: deduplicated) so that is kept
   too, then restores the task's snapshot;
5. ``to="last-known-good"``: then runs the runbook's ``rollback.release_command``, output kept;
6. records ``rollback.done`` (``rollback.failed`` if it stopped half-way, with what was done).
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tether import audit, process
from tether.approvals import APPROVED, PENDING, Approvals, fingerprint
from tether.atomic import write_atomic
from tether.errors import NotFound, TetherError, UsageError
from tether.lifecycle import change
from tether.redact import redact
from tether.rollback import gitops
from tether.rollback.snapshot import SnapshotStore
from tether.rollback.tasks import (
    Refused,
    agent_lock,
    changed,
    check_repo,
    layout,
    point,
    store_dir,
    tether_files,
)
from tether.runbook import LoadedRunbook
from tether.store import Store
from tether.tasks import cancel as cancel_task

GOOD = "last-known-good"
RELEASE_TIMEOUT = 1800.0
TAIL_LINES = 40

Stopper = Callable[[], Any]


class ApprovalPending(TetherError):
    """The runbook wants an approval for this rollback and none was given yet."""

    exit_code = 3

    def __init__(self, approval_id: int, message: str) -> None:
        super().__init__(message)
        self.approval_id = approval_id


@dataclass
class Target:
    """What a rollback goes back to."""

    to: str  # "task" or GOOD
    label: str
    repos: list[dict[str, Any]]
    snapshots: list[dict[str, Any]]
    task_id: int | None = None
    tasks: list[int] = field(default_factory=list)  # every task whose work this undoes
    started_tasks: list[int] = field(default_factory=list)


def good_file(loaded: LoadedRunbook, agent: str) -> Path:
    return loaded.state.agent_dir(agent) / "rollback" / "good.json"


def good_tag(agent: str) -> str:
    return f"tether/good/{agent}"


def _stamp() -> str:
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())


def _iso(ts: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


# -- last-known-good ---------------------------------------------------------------------------------


def read_good(loaded: LoadedRunbook, agent: str) -> dict[str, Any] | None:
    try:
        data: dict[str, Any] = json.loads(good_file(loaded, agent).read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as err:
        raise TetherError(f"{good_file(loaded, agent)}: cannot read the last-known-good mark ({err})") from None
    return data


def mark_good(
    loaded: LoadedRunbook, store: Store, agent: str, ref: str | None = None, *, by: str | None = None
) -> dict[str, Any]:
    """Mark the agent's workspace last-known-good: a tag ``tether/good/<agent>`` at ``ref`` (default
    HEAD) in each git repository in scope, a snapshot of each other folder, a ``rollback.good`` event."""
    with agent_lock(loaded, agent):
        lay = layout(loaded, agent)
        snaps = store_dir(loaded)
        found: dict[Path, gitops.Head] = {repo: check_repo(repo) for repo in lay.repos}
        snapshots: list[dict[str, Any]] = []
        try:
            for folder in lay.folders:
                info = snaps.take(folder, exclude=lay.excluded(folder, tether_files(loaded)))
                snapshots.append({"path": str(folder), "snapshot": info.id, "files": info.files, "bytes": info.bytes})
                for rel in info.repos:
                    nested = Path(os.path.realpath(folder / rel))
                    if nested not in found and gitops.toplevel(nested) == nested:
                        found[nested] = check_repo(nested)
            marks = []
            for repo, h in sorted(found.items()):
                commit = gitops.resolve(repo, ref) if ref else h.commit
                if commit is None:
                    more = "; with several repositories in scope, REF must name a commit in each"
                    more = more if len(found) > 1 else ""
                    raise Refused(f"{repo}: {ref!r} names no commit here{more}")
                branch = ref if ref and gitops.branch_exists(repo, ref) else h.branch
                assert h.commit is not None
                dirty = gitops.worktree_tree(repo) != gitops.tree(repo, h.commit)
                marks.append((repo, commit, branch, dirty))
        except BaseException:
            snaps.forget(s["snapshot"] for s in snapshots)
            raise
        now = time.time()
        repos = []
        for repo, commit, branch, dirty in marks:
            note = f"last known good for agent {agent} ({_iso(now)}, by {by or '?'})\n"
            gitops.tag(repo, good_tag(agent), commit, note)
            rec = point(repo, commit, branch)
            rec["dirty"] = dirty
            repos.append(rec)
        record = {"at": now, "ref": ref, "by": by, "tag": good_tag(agent), "repos": repos, "snapshots": snapshots}
        write_atomic(good_file(loaded, agent), json.dumps(record, indent=1) + "\n")
        store.emit("rollback.good", agent, **record)
    return record


# -- what to go back to ------------------------------------------------------------------------------


def target(
    loaded: LoadedRunbook, store: Store, agent: str, task_id: int | None = None, to: str | None = None
) -> Target:
    if agent not in loaded.runbook.agents:
        raise NotFound(f"no agent named {agent!r} in {loaded.path}")
    if to is not None and to != GOOD:
        raise UsageError(f"--to: expected {GOOD!r}, got {to!r}")
    tasks = [t for t in store.tasks(agent) if isinstance((t.meta or {}).get("workspace"), dict)]
    live = [t for t in tasks if not t.meta.get("rolled_back")]
    if to == GOOD:
        if task_id is not None:
            raise UsageError(f"give a TASK or --to {GOOD}, not both")
        good = read_good(loaded, agent)
        if good is None:
            raise Refused(f"{agent} has no last-known-good mark; make one with `tether good {agent}`")
        repos = []
        for rec in good["repos"]:  # the tag wins over the record: a human may have moved it by hand
            repo = Path(rec["path"])
            tagged = gitops.resolve(repo, f"refs/tags/{good['tag']}") if repo.is_dir() else None
            repos.append({**rec, "base": tagged or rec["base"], "start": None})
        since = [t for t in live if t.meta["workspace"].get("at", 0) >= good["at"]]
        return Target(GOOD, f"last-known-good of {_iso(good['at'])}", repos, good.get("snapshots", []),
                      tasks=[t.id for t in since], started_tasks=[t.id for t in since if t.state == "started"])
    if task_id is None:
        if not live:
            raise NotFound(f"{agent} has no task to roll back (none was started with a recorded base)")
        task = live[-1]
    else:
        found = next((t for t in tasks if t.id == task_id), None)
        if found is None:
            other = store.task(task_id)
            if other is None or other.agent != agent:
                raise NotFound(f"agent {agent!r} has no task {task_id}")
            raise Refused(
                f"task {task_id} of {agent} has no recorded base (it was not started through tether's task "
                "start), so there is nothing to roll back to"
            )
        if found.meta.get("rolled_back"):
            q = found.meta["rolled_back"].get("quarantine")
            raise Refused(f"task {task_id} of {agent} was rolled back already" + (f"; its work is on {q}" if q else ""))
        task = found
    ws = task.meta["workspace"]
    later = [t for t in live if t.id >= task.id]
    return Target("task", f"task {task.id} ({task.text[:80]})", ws.get("repos", []), ws.get("snapshots", []),
                  task_id=task.id, tasks=[t.id for t in later],
                  started_tasks=[t.id for t in later if t.state == "started"])


def preflight(loaded: LoadedRunbook, agent: str, tgt: Target) -> dict[str, gitops.Head]:
    """Every reason to refuse, found before anything changes."""
    lay = layout(loaded, agent)
    heads: dict[str, gitops.Head] = {}
    for rec in tgt.repos:
        repo = Path(rec["path"])
        if not lay.in_scope(repo):
            raise Refused(
                f"{repo} is outside {agent}'s scope now (the runbook changed since {tgt.label}); tether will "
                "not reset a repository outside the scope: put it back in scope, or reset it by hand"
            )
        if not repo.is_dir():
            raise Refused(f"{repo}: the repository is gone; nothing there to roll back")
        heads[str(repo)] = check_repo(repo)
        for key in ("base", "start"):
            sha = rec.get(key)
            if sha and not gitops.exists(repo, sha):
                raise Refused(f"{repo}: the {key} commit {sha[:12]} is no longer in the repository; cannot go back")
    snaps = store_dir(loaded)
    for s in tgt.snapshots:
        folder = Path(s["path"])
        if not lay.may_restore(folder):
            raise Refused(f"{folder} is outside {agent}'s scope now; tether will not restore a folder outside it")
        try:
            snaps.manifest(s["snapshot"])
        except NotFound:
            raise Refused(f"{folder}: snapshot {s['snapshot']} is gone from {snaps.root}; cannot restore it") from None
    return heads


# -- stopping ----------------------------------------------------------------------------------------


def run_dir(loaded: LoadedRunbook, agent: str) -> Path:
    return loaded.state.agent_dir(agent) / "run"


def is_running(loaded: LoadedRunbook, agent: str) -> bool:
    handle = process.adopt(run_dir(loaded, agent))
    return handle is not None and handle.running()


def stop_agent(loaded: LoadedRunbook, store: Store, agent: str) -> dict[str, Any]:
    """Stop the agent's whole tree with its kill signal and grace (no daemon needed), and record it
    stopped so a daemon that starts later leaves it stopped."""
    spec = loaded.runbook.agents[agent]
    report = process.kill_tree(run_dir(loaded, agent), spec.kill.signal, spec.kill.grace)
    store.emit("agent.desired", agent, desired="stopped")
    store.emit("agent.state", agent, **change("stopped", "stopped for a rollback"))
    return {"signalled": len(report.signalled), "survivors": report.survivors}


# -- approval ----------------------------------------------------------------------------------------


def _approval(loaded: LoadedRunbook, store: Store, agent: str, tgt: Target, wait: float) -> int | None:
    spec = loaded.runbook.agents[agent]
    if not spec.rollback.requires_approval:
        return None
    bases = ", ".join(f"{Path(r['path']).name}@{r['base'][:12]}" for r in tgt.repos)
    snaps = ", ".join(Path(s["path"]).name for s in tgt.snapshots)
    what = f"tether rollback {agent} " + (f"--to {GOOD}" if tgt.to == GOOD else f"task {tgt.task_id}")
    detail = f"{what}: reset {bases or 'no repositories'}; restore {snaps or 'no folders'}"
    release = tgt.to == GOOD and bool(spec.rollback.release_command)
    if release:
        detail += f"; then run `{' '.join(spec.rollback.release_command)}`"
    classes = ["deploy.production"] if release else []
    cwd = str(loaded.agent_cwd(agent))
    fp = fingerprint(agent, classes, [], cwd, detail)
    approvals = Approvals(store)
    grant = approvals.grant_for(agent, fp)  # a human's rollback: no agent session; a compare-and-set use
    if grant is not None:
        audit.seal(store, loaded.state.audit_file)
        return int(grant["id"])
    row = approvals.request(
        agent, "rollback", fp, classes=classes, detail=detail, rule="rollback.requires_approval",
        reason="the runbook wants a human's approval before a rollback", timeout=spec.approvals.timeout,
        escalate_after=spec.approvals.escalate_after, window=spec.approvals.retry_window,
        extra={"cwd": cwd, "target": tgt.label},
    )
    audit.seal(store, loaded.state.audit_file)
    if wait > 0 and row["state"] == PENDING:
        row = approvals.wait(row["id"], wait)
        if row["state"] == APPROVED and approvals.use(row, row["decided"]):
            audit.seal(store, loaded.state.audit_file)
            return int(row["id"])
    if row["state"] == PENDING:
        raise ApprovalPending(
            row["id"],
            f"the runbook wants an approval for this rollback: approval {row['id']} is pending; "
            f"`tether approve {row['id']}`, then run the same rollback again (or pass --wait)",
        )
    if row["state"] == APPROVED:
        raise Refused(f"approval {row['id']} went to an identical rollback run at the same moment; "
                      "run it again to ask anew")
    raise Refused(f"approval {row['id']} for this rollback was {row['state']}: {row.get('note') or 'no reason given'}")


# -- the rollback ------------------------------------------------------------------------------------


def rollback(
    loaded: LoadedRunbook,
    store: Store,
    agent: str,
    task_id: int | None = None,
    *,
    to: str | None = None,
    stop: bool = False,
    stopper: Stopper | None = None,
    by: str | None = None,
    wait: float = 0.0,
    release_timeout: float = RELEASE_TIMEOUT,
) -> dict[str, Any]:
    """Roll ``agent``'s workspace back to a task's base (default: its latest task) or, with
    ``to="last-known-good"``, to its good mark, then run the release command. See the module doc."""
    started = time.monotonic()
    tgt = target(loaded, store, agent, task_id, to)
    preflight(loaded, agent, tgt)
    approval = _approval(loaded, store, agent, tgt, wait)
    stopped: Any = None
    if is_running(loaded, agent):
        if not stop:
            raise Refused(
                f"{agent} is running; a rollback will not reset a workspace under a running agent: stop it "
                f"(`tether stop {agent}`) or pass --stop"
            )
        stopped = stopper() if stopper is not None else stop_agent(loaded, store, agent)
        if is_running(loaded, agent):
            process.kill_tree(run_dir(loaded, agent), "KILL", 2.0)
            if is_running(loaded, agent):
                raise Refused(f"{agent} could not be stopped; nothing was rolled back (`tether kill {agent}`)")
    spec = loaded.runbook.agents[agent]
    with agent_lock(loaded, agent):
        heads = preflight(loaded, agent, tgt)  # again: things may have moved while we waited
        ident = _stamp()
        qname = _free_name(agent, ident, [Path(r["path"]) for r in tgt.repos])
        files = changed(loaded, {"repos": tgt.repos, "snapshots": tgt.snapshots})
        result: dict[str, Any] = {
            "id": ident, "to": tgt.to, "target": tgt.label, "task_id": tgt.task_id, "tasks": tgt.tasks,
            "by": by, "approval": approval, "stopped": stopped, "files_changed": len(files),
            "quarantine": None, "repos": [], "snapshots": [], "release": None,
        }
        try:
            header = f"tether quarantine: {agent}, {tgt.label}"
            for rec in tgt.repos:
                got = _rollback_repo(Path(rec["path"]), rec, heads[rec["path"]], qname, header)
                result["repos"].append(got)
                if got["quarantine"]:
                    result["quarantine"] = qname
            snaps = store_dir(loaded)
            for s in tgt.snapshots:
                result["snapshots"].append(_restore_folder(snaps, s))
            if tgt.to == GOOD and spec.rollback.release_command:
                result["release"] = _release(loaded, agent, ident, tgt, release_timeout)
        except BaseException as err:
            result["error"] = f"{type(err).__name__}: {err}"
            result["seconds"] = round(time.monotonic() - started, 3)
            store.emit("rollback.failed", agent, **result)
            raise
        result["seconds"] = round(time.monotonic() - started, 3)
        store.emit("rollback.done", agent, **result)
        for tid in tgt.started_tasks:
            cancel_task(store, agent, tid, f"rolled back ({ident})")
    return result


def _free_name(agent: str, stamp: str, repos: list[Path]) -> str:
    base = f"tether/quarantine/{agent}/{stamp}"
    name, n = base, 1
    while any(r.is_dir() and gitops.branch_exists(r, name) for r in repos):
        n += 1
        name = f"{base}-{n}"
    return name


def _rollback_repo(repo: Path, rec: dict[str, Any], head: gitops.Head, qname: str, header: str) -> dict[str, Any]:
    base: str = rec["base"]
    back: str | None = rec.get("branch")  # the branch to come back to (None: detached at the base)
    start_tips: dict[str, str] = rec.get("tips", {})
    assert head.commit is not None
    now_tips = gitops.branches(repo)
    wt = gitops.worktree_tree(repo)
    head_tree = gitops.tree(repo, head.commit)
    worktree = None
    if wt != head_tree:
        note = "tether: the work tree at rollback (uncommitted and untracked)\n"
        worktree = gitops.commit_tree(repo, wt, [head.commit], note)
    it = gitops.index_tree(repo)
    index = None
    if it not in (head_tree, wt):
        index = gitops.commit_tree(repo, it, [head.commit], "tether: the index (staged) at rollback\n")
    # what every branch becomes, and what it is now
    after = {b: sha for b, sha in start_tips.items()}
    if back is not None:
        after[back] = base
    moved: dict[str, tuple[str | None, str | None]] = {}
    for b in sorted(set(now_tips) | set(after)):
        if now_tips.get(b) != after.get(b):
            moved[b] = (after.get(b), now_tips.get(b))
    first = worktree or head.commit  # the quarantine commit's tree is this one's: the work tree as it was
    others = [c for c in dict.fromkeys([*([index] if index else []), *[n for _, n in moved.values() if n]])
              if c != first]
    parents = [first, *[c for c in gitops.independent(repo, [first, *others]) if c != first]]
    present = gitops.existing(repo, list(dict.fromkeys(after.values())))
    keep_from = [base, *[sha for sha in after.values() if sha in present]]
    lost = gitops.count_commits(repo, parents, keep_from)  # commits no branch would reach after the reset
    commits = gitops.count_commits(repo, [head.commit, *[n for _, n in moved.values() if n]], keep_from)
    out: dict[str, Any] = {
        "path": str(repo), "base": base, "branch": back, "head_was": {"branch": head.branch, "commit": head.commit},
        "worktree": worktree, "index": index, "commits": commits,
        "refs": {b: {"was": new, "now": old} for b, (old, new) in moved.items()},
        "quarantine": None, "quarantine_commit": None, "not_restored": [],
    }
    if lost:
        lines = [
            header, "",
            f"What `tether rollback` moved off the workspace at {_iso(time.time())}, so that nothing is lost.",
            f"Base: {base}" + (f" (branch {back})" if back else " (detached)"),
            f"HEAD was: {head.branch or 'detached'} at {head.commit}",
            f"Work tree (uncommitted and untracked files): {worktree or 'as HEAD'}",
        ]
        if index:
            lines.append(f"Index (staged): {index}")
        if moved:
            lines.append("Branches made, moved or deleted since the base:")
            lines += [f"  {b}: {new or '(deleted)'} (goes back to {old or 'nothing: deleted'})"
                      for b, (old, new) in moved.items()]
        lines.append("")
        lines.append("The first parent holds the work tree as it was; the others the staged state and branch tips.")
        q = gitops.commit_tree(repo, gitops.tree(repo, parents[0]), parents, "\n".join(lines) + "\n")
        gitops.set_ref(repo, f"refs/heads/{qname}", q, "", message="tether rollback: quarantine")
        out["quarantine"], out["quarantine_commit"] = qname, q
    # back to the base: HEAD first (so no branch we delete is checked out), then the branches, then the files
    if back is not None:
        gitops.set_ref(repo, f"refs/heads/{back}", base, now_tips.get(back, ""), message="tether rollback")
        gitops.point_head(repo, back, base)
    else:
        gitops.point_head(repo, None, base)
    for b, (old, new) in moved.items():
        if b == back:
            continue
        if old is None:
            gitops.delete_ref(repo, f"refs/heads/{b}", new)
        elif old in present:
            gitops.set_ref(repo, f"refs/heads/{b}", old, new or "", message="tether rollback")
        else:
            out["not_restored"].append(b)
    gitops.reset_hard(repo, base)
    if rec.get("start"):
        gitops.restore_worktree(repo, rec["start"])
    return out


def _restore_folder(snaps: SnapshotStore, s: dict[str, Any]) -> dict[str, Any]:
    folder = Path(s["path"])
    kept = None
    if folder.is_dir():
        manifest = snaps.manifest(s["snapshot"])
        kept = snaps.take(folder, exclude=manifest.excluded).id  # what is there now, kept as a snapshot
    info = snaps.restore(s["snapshot"], folder)
    return {"path": str(folder), "snapshot": s["snapshot"], "kept_as": kept, **info.to_dict()}


def _release(loaded: LoadedRunbook, agent: str, ident: str, tgt: Target, timeout: float) -> dict[str, Any]:
    """Run the runbook's release rollback command in the agent's cwd; keep its whole output in a file."""
    spec = loaded.runbook.agents[agent]
    argv = list(spec.rollback.release_command)
    cwd = loaded.agent_cwd(agent)
    if not cwd.is_dir():
        cwd = loaded.path.parent
    env = {**os.environ, "TETHER_ROLLBACK_AGENT": agent, "TETHER_ROLLBACK_ID": ident,
           "TETHER_GOOD_COMMIT": tgt.repos[0]["base"] if tgt.repos else ""}
    log = loaded.state.agent_dir(agent) / "rollback" / f"{ident}-release.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    try:
        proc = subprocess.run(argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, timeout=timeout)
        code: int | None = proc.returncode
        text = proc.stdout.decode(errors="replace")
        note = None
    except subprocess.TimeoutExpired as err:
        code, text = None, (err.stdout or b"").decode(errors="replace") if isinstance(err.stdout, bytes) else ""
        note = f"timed out after {timeout:g}s"
    except OSError as err:
        code, text, note = None, "", f"could not run: {err.strerror}"
    text = redact(text)
    log.write_text(text)
    tail = "\n".join(text.rstrip().splitlines()[-TAIL_LINES:])
    return {"command": " ".join(argv), "cwd": str(cwd), "exit_code": code, "ok": code == 0, "note": note,
            "log": str(log), "tail": tail[-4000:], "seconds": round(time.monotonic() - started, 3)}
