"""``tether integrate git``: a real repository, a real bare remote, real ``git push`` through the hook, a real
daemon deciding ``git.push``."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from fakes.tether_host import host, tether
from test_integrations_claude import _free_port

GIT_ENV = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@x", "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@x"}


def git(repo: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if (not k.startswith("TETHER_") or k == "TETHER_SANDBOX")}
    return subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, timeout=60,
                          env={**base, **GIT_ENV, **(env or {})}, stdin=subprocess.DEVNULL)


def repo_with_remote(tmp: Path) -> Path:
    remote, repo = tmp / "remote.git", tmp / "repo"
    assert git(tmp, "init", "-q", "--bare", "-b", "main", str(remote)).returncode == 0
    assert git(tmp, "init", "-q", "-b", "main", str(repo)).returncode == 0
    (repo / "a.txt").write_text("a\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "one")
    git(repo, "remote", "add", "origin", str(remote))
    assert git(repo, "push", "-q", "origin", "main").returncode == 0  # before the hook
    return repo


def commit(repo: Path, text: str) -> None:
    (repo / "a.txt").write_text(text)
    git(repo, "commit", "-q", "-am", text)


def test_pre_push_gates_protected_and_force_pushes(tmp_path: Path) -> None:
    repo = repo_with_remote(tmp_path)
    with host(tmp_path, {"gx": {"cwd": str(repo)}}) as h:
        proc = tether("integrate", "git", str(repo), "--agent", "gx", "--url", h.url)
        assert proc.returncode == 0 and "installed" in proc.stdout, proc.stderr
        env = {"TETHER_TOKEN": h.token("agent", "gx")}
        # an ordinary push to a feature branch passes, asking nothing
        git(repo, "checkout", "-q", "-b", "feature")
        commit(repo, "b\n")
        assert git(repo, "push", "-q", "origin", "feature", env=env).returncode == 0
        assert not h.events("approval.requested", "gx")
        # a push to main is held: it fails with the approval id; once approved, the same push goes through
        git(repo, "checkout", "-q", "main")
        commit(repo, "c\n")
        held = git(repo, "push", "origin", "main", env=env)
        assert held.returncode != 0 and "pending" in held.stderr and "protected branch" in held.stderr, held.stderr
        [row] = h.call("GET", "/v1/approvals?agent=gx")[1]["approvals"]
        h.approve(row["id"])
        assert git(repo, "push", "origin", "main", env=env).returncode == 0
        # a force push (history rewritten) is held too, even to a feature branch
        git(repo, "checkout", "-q", "feature")
        git(repo, "commit", "-q", "--amend", "-m", "rewritten")
        forced = git(repo, "push", "-f", "origin", "feature", env=env)
        assert forced.returncode != 0 and "force push" in forced.stderr, forced.stderr
        # no token: an agent's gated push fails closed; a human's push (no agent) is not tether's business
        nothing = git(repo, "push", "-f", "origin", "feature")
        assert nothing.returncode != 0 and "fail closed" in nothing.stderr
    # the daemon down: refused
    down = git(repo, "push", "-f", "origin", "feature", env=env)
    assert down.returncode != 0 and "fail closed" in down.stderr
    assert tether("integrate", "git", str(repo), "--remove").returncode == 0
    assert git(repo, "push", "-q", "-f", "origin", "feature").returncode == 0


def test_human_push_without_agent_passes_and_own_hook_is_kept(tmp_path: Path) -> None:
    repo = repo_with_remote(tmp_path)
    hooks = repo / ".git" / "hooks"
    (hooks / "pre-push").write_text("#!/bin/sh\necho mine >> \"$(dirname \"$0\")/ran\"\n")
    (hooks / "pre-push").chmod(0o755)
    url = f"http://127.0.0.1:{_free_port()}"
    assert tether("integrate", "git", str(repo), "--url", url).returncode == 0
    assert (hooks / "pre-push.local").exists()
    commit(repo, "d\n")
    assert git(repo, "push", "-q", "origin", "main").returncode == 0  # no agent: a human's push
    assert (hooks / "ran").read_text() == "mine\n"
    again = tether("integrate", "git", str(repo), "--url", url)
    assert "already" in again.stdout
    assert tether("integrate", "git", str(repo), "--remove").returncode == 0
    assert "echo mine" in (hooks / "pre-push").read_text() and not (hooks / "pre-push.local").exists()
