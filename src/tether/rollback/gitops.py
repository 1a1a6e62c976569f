"""Git through its command line (no GitPython).

Every call runs with the caller's ``GIT_*`` variables removed (so a hook or a shell inside another
repository cannot point us elsewhere), with hooks and fsmonitor switched off (the repository belongs
to an agent; tether must not run code the agent planted), and with tether's own identity for the
commits it makes. Tether's commits are made with plumbing (``commit-tree``, ``update-ref``) and a
temporary index (``GIT_INDEX_FILE``), so the user's index is untouched until a reset means to.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tether.errors import TetherError

CONFIG = (
    "-c", "core.hooksPath=/dev/null",
    "-c", "core.fsmonitor=false",
    "-c", "user.name=tether",
    "-c", "user.email=tether@localhost",
    "-c", "commit.gpgSign=false",
    "-c", "tag.gpgSign=false",
    "-c", "gc.auto=0",
    "-c", "maintenance.auto=false",
    "-c", "advice.detachedHead=false",
    "-c", "core.quotePath=false",
)
TIMEOUT = 600.0


class GitError(TetherError):
    """A git command failed, or a repository is in a state tether will not touch."""


@dataclass(frozen=True)
class Head:
    commit: str | None  # None: no commit yet (an unborn branch)
    branch: str | None  # short name ("main"); None when detached


def _env(extra: Mapping[str, str] | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env.update({"LC_ALL": "C", "GIT_TERMINAL_PROMPT": "0", "GIT_OPTIONAL_LOCKS": "0"})
    env.update(extra or {})
    return env


def run(
    repo: Path | str,
    *args: str,
    env: Mapping[str, str] | None = None,
    check: bool = True,
    input: bytes | None = None,
) -> subprocess.CompletedProcess[bytes]:
    try:
        proc = subprocess.run(
            ["git", *CONFIG, *args], cwd=repo, env=_env(env), capture_output=True, input=input,
            timeout=TIMEOUT, stdin=None if input is not None else subprocess.DEVNULL,
        )
    except FileNotFoundError:
        raise GitError("git is not installed (or not on PATH); rollback needs it") from None
    except subprocess.TimeoutExpired:
        raise GitError(f"{repo}: `git {' '.join(args[:3])}` took longer than {TIMEOUT:g}s") from None
    except NotADirectoryError:
        raise GitError(f"{repo}: not a folder") from None
    if check and proc.returncode != 0:
        msg = proc.stderr.decode(errors="replace").strip().splitlines()
        last = msg[-1] if msg else f"exit {proc.returncode}"
        why = next((m for m in msg if m.startswith(("fatal:", "error:"))), last)
        raise GitError(f"{repo}: `git {' '.join(args[:3])}` failed: {why}")
    return proc


def out(repo: Path | str, *args: str, env: Mapping[str, str] | None = None) -> str:
    return os.fsdecode(run(repo, *args, env=env).stdout).strip()


def ok(repo: Path | str, *args: str) -> bool:
    return run(repo, *args, check=False).returncode == 0


# -- what a repository is and where it stands --------------------------------------------------------


def toplevel(path: Path | str) -> Path | None:
    """The work tree's top folder containing ``path``, or None when ``path`` is in no git work tree."""
    if not os.path.isdir(path):
        return None
    proc = run(path, "rev-parse", "--show-toplevel", check=False)
    if proc.returncode != 0:
        return None
    text = os.fsdecode(proc.stdout).strip()
    return Path(os.path.realpath(text)) if text else None


def git_dir(repo: Path) -> Path:
    return Path(out(repo, "rev-parse", "--absolute-git-dir"))


def head(repo: Path) -> Head:
    proc = run(repo, "symbolic-ref", "-q", "HEAD", check=False)
    ref = os.fsdecode(proc.stdout).strip() if proc.returncode == 0 else ""
    branch = ref.removeprefix("refs/heads/") if ref.startswith("refs/heads/") else None
    got = run(repo, "rev-parse", "-q", "--verify", "HEAD^{commit}", check=False)
    commit = os.fsdecode(got.stdout).strip() if got.returncode == 0 else None
    return Head(commit or None, branch)


def in_progress(repo: Path) -> str | None:
    """What unfinished operation the repository is in the middle of, if any (one line, with what to do)."""
    gd = git_dir(repo)
    if (gd / "MERGE_HEAD").exists():
        return ("a merge is in progress (the index is mid-merge); finish it (`git merge --continue`) "
                "or `git merge --abort`")
    if (gd / "rebase-merge").exists() or (gd / "rebase-apply").exists():
        return "a rebase is in progress; finish it (`git rebase --continue`) or `git rebase --abort`"
    if (gd / "CHERRY_PICK_HEAD").exists():
        return "a cherry-pick is in progress; finish it or `git cherry-pick --abort`"
    if (gd / "REVERT_HEAD").exists():
        return "a revert is in progress; finish it or `git revert --abort`"
    if (gd / "BISECT_LOG").exists():
        return "a bisect is in progress; end it with `git bisect reset`"
    if run(repo, "ls-files", "--unmerged", "-z").stdout:
        return "the index has unmerged paths (a conflict was left); resolve them and commit, or reset them"
    return None


def branches(repo: Path) -> dict[str, str]:
    """Every local branch and the commit at its tip."""
    text = out(repo, "for-each-ref", "--format=%(objectname) %(refname)", "refs/heads/")
    tips = {}
    for line in text.splitlines():
        sha, _, ref = line.partition(" ")
        tips[ref.removeprefix("refs/heads/")] = sha
    return tips


def resolve(repo: Path, rev: str) -> str | None:
    proc = run(repo, "rev-parse", "-q", "--verify", "--end-of-options", f"{rev}^{{commit}}", check=False)
    if proc.returncode != 0:
        return None
    return os.fsdecode(proc.stdout).strip() or None


def exists(repo: Path, sha: str) -> bool:
    return ok(repo, "cat-file", "-e", f"{sha}^{{commit}}")


def is_ancestor(repo: Path, commit: str, of: str) -> bool:
    return ok(repo, "merge-base", "--is-ancestor", commit, of)


def tree(repo: Path, commit: str) -> str:
    return out(repo, "rev-parse", f"{commit}^{{tree}}")


def count_commits(repo: Path, tips: list[str], excluding: list[str]) -> int:
    """How many commits ``tips`` reach that none of ``excluding`` does."""
    if not tips:
        return 0
    return int(out(repo, "rev-list", "--count", *dict.fromkeys(tips), "--not", *dict.fromkeys(excluding)) or 0)


def independent(repo: Path, commits: list[str]) -> list[str]:
    """Those of ``commits`` no other of them reaches (``git merge-base --independent``), in the given order."""
    if len(commits) < 2:
        return commits
    keep = set(out(repo, "merge-base", "--independent", *commits).split())
    return [c for c in commits if c in keep]


def existing(repo: Path, shas: list[str]) -> set[str]:
    """Which of ``shas`` are commits present in the repository (one git call for all)."""
    if not shas:
        return set()
    got = run(repo, "cat-file", "--batch-check=%(objectname) %(objecttype)", input="\n".join(shas).encode() + b"\n")
    found = set()
    for line in os.fsdecode(got.stdout).splitlines():
        sha, _, kind = line.partition(" ")
        if kind == "commit":
            found.add(sha)
    return found


def branch_exists(repo: Path, name: str) -> bool:
    return ok(repo, "show-ref", "--verify", "--quiet", f"refs/heads/{name}")


def valid_branch_name(repo: Path, name: str) -> bool:
    return ok(repo, "check-ref-format", "--branch", name)


# -- tether's own commits ------------------------------------------------------------------------------


@contextmanager
def _temp_index(repo: Path) -> Iterator[dict[str, str]]:
    """A copy of the repository's index (its stat data makes ``add -A`` fast), removed afterwards."""
    gd = git_dir(repo)
    tmpdir = tempfile.mkdtemp(prefix="tether-index-", dir=gd)
    try:
        idx = os.path.join(tmpdir, "index")
        if (gd / "index").exists():
            shutil.copyfile(gd / "index", idx)
        yield {"GIT_INDEX_FILE": idx}
    finally:
        shutil.rmtree(tmpdir, ignore_errors=True)


def worktree_tree(repo: Path) -> str:
    """The tree of the work tree as it is: tracked changes, deletions and untracked (not ignored) files."""
    with _temp_index(repo) as env:
        run(repo, "add", "-A", "--", ":/", env=env)
        return out(repo, "write-tree", env=env)


def index_tree(repo: Path) -> str:
    """The tree of what is staged, computed on a copy (``write-tree`` may rewrite the index it reads)."""
    with _temp_index(repo) as env:
        return out(repo, "write-tree", env=env)


def commit_tree(repo: Path, tree_sha: str, parents: list[str], message: str) -> str:
    args = ["commit-tree", tree_sha]
    for p in parents:
        args += ["-p", p]
    return os.fsdecode(run(repo, *args, input=message.encode()).stdout).strip()


def set_ref(repo: Path, ref: str, new: str, old: str | None = None, message: str = "tether") -> None:
    """Point ``ref`` at ``new``; ``old`` "" means it must not exist yet, a sha that it must be there."""
    args = ["update-ref", "-m", message, ref, new]
    if old is not None:
        args.append(old)
    run(repo, *args)


def delete_ref(repo: Path, ref: str, old: str | None = None) -> None:
    args = ["update-ref", "-d", ref]
    if old is not None:
        args.append(old)
    run(repo, *args)


def point_head(repo: Path, branch: str | None, commit: str) -> None:
    """HEAD on ``branch`` (which must exist), or detached at ``commit``; the work tree is not touched."""
    if branch is not None:
        run(repo, "symbolic-ref", "-m", "tether rollback", "HEAD", f"refs/heads/{branch}")
    else:
        run(repo, "update-ref", "--no-deref", "-m", "tether rollback", "HEAD", commit)


def reset_hard(repo: Path, commit: str) -> None:
    """Index and work tree to ``commit``, untracked (not ignored) files removed. Ignored files stay.

    ``clean`` goes first, under the ignore rules the work tree has now (the ones the quarantine
    followed): after the reset, a file the agent's own ``.gitignore`` hid would count as untracked
    and be removed without having been kept anywhere."""
    run(repo, "clean", "-f", "-d", "-q")
    run(repo, "reset", "-q", "--hard", commit)


def restore_worktree(repo: Path, source: str) -> None:
    """The work tree as in ``source`` (tracked, untracked and deleted files), the index left as it is."""
    run(repo, "restore", f"--source={source}", "--worktree", "--", ":/")


def switch_new(repo: Path, branch: str) -> None:
    """A new branch at HEAD, checked out; uncommitted changes come along."""
    run(repo, "switch", "-q", "-c", branch)


def tag(repo: Path, name: str, commit: str, message: str) -> None:
    run(repo, "tag", "-f", "-a", "-m", message, name, commit)


def changed_paths(repo: Path, since: str) -> list[str]:
    """Paths of the work tree (committed or not, untracked too) that differ from commit ``since``."""
    tracked = run(repo, "diff", "--name-only", "-z", "--no-renames", since, "--").stdout
    names = {os.fsdecode(p) for p in tracked.split(b"\0") if p}
    untracked = run(repo, "ls-files", "--others", "--exclude-standard", "-z").stdout
    fresh = {os.fsdecode(p) for p in untracked.split(b"\0") if p}
    if fresh:
        before = run(repo, "ls-tree", "-r", "--name-only", "-z", since).stdout
        known = {os.fsdecode(p) for p in before.split(b"\0") if p}
        names |= {p for p in fresh if p not in known}
    return sorted(names)
