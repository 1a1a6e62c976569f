"""The policy, in process: a runbook written as text, a real workspace on disk, the real classifier.

What an action *is* comes from the classifier (tested on its own); these tests prove what it means for
one agent: the default table, the runbook's overrides, unparseable input, protected paths, scope (with
symlinks and ``..`` resolved first), hosts, accounts and repos, the kill files and a spent budget.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tether.boundary import Boundary, Request
from tether.classify import Action, Classification, Resource
from tether.errors import RunbookError, UsageError
from tether.policy import Scope, decide
from tether.runbook import LoadedRunbook, load
from tether.vocabulary import ACTION_CLASSES, DEFAULT_VERDICTS

PEOPLE = """\
    owner: {name: Olive Owner, contact: "json://127.0.0.1/owner"}
    backup: {name: Bob Backup, contact: "json://127.0.0.1/backup"}
    command: python -c pass
"""

RUNBOOK = """\
version: 1
host: {state_dir: ./state, workspace_root: ./ws, listen: "127.0.0.1:0"}
agents:
  a:
PEOPLE
    scope:
      hosts: [api.github.com, github.com, "*.example.com"]
      accounts: ["aws:dev"]
      repos: [github.com/me/proj]
    approvals:
      protected_paths: ["deploy/**"]
  b:
PEOPLE
    approvals:
      verdicts: {git.push: allow, deps.install: block, pr.open: log, unknown: block, data.delete: ask}
"""


def write_runbook(root: Path, text: str) -> LoadedRunbook:
    """A runbook from text, its agents' workspaces made on disk, loaded as the daemon would."""
    root.mkdir(parents=True, exist_ok=True)
    path = root / "tether.yaml"
    path.write_text(text.replace("PEOPLE\n", PEOPLE), encoding="utf-8")
    loaded = load(path)
    for name in loaded.runbook.agents:
        loaded.agent_cwd(name).mkdir(parents=True, exist_ok=True)
    loaded.state.root.mkdir(parents=True, exist_ok=True)
    return loaded


@pytest.fixture
def loaded(tmp_path: Path) -> LoadedRunbook:
    return write_runbook(tmp_path / "host", RUNBOOK)


@pytest.fixture
def boundary(loaded: LoadedRunbook) -> Boundary:
    return Boundary(loaded)


def verdict(b: Boundary, command: str, agent: str = "a", **kw: object) -> tuple[str, tuple[str, ...], str]:
    _, d = b.evaluate(agent, Request(command=command), **kw)  # type: ignore[arg-type]
    return d.verdict, d.classes, d.rule


# --- the default table ------------------------------------------------------------------------


@pytest.mark.parametrize("klass", ACTION_CLASSES)
def test_every_class_gets_its_default_verdict(boundary: Boundary, klass: str) -> None:
    _, d = boundary.evaluate("a", Request(action=klass, detail="asked for directly"))
    assert d.verdict == DEFAULT_VERDICTS[klass]
    assert d.rule == f"default table: {klass}: {DEFAULT_VERDICTS[klass]}"
    assert d.classes == (klass,)


@pytest.mark.parametrize(
    ("command", "expected", "klass"),
    [
        ("ls -la", "allow", "repo.read"),
        ("python -m pytest -q", "allow", "tests.run"),
        ("git commit -m wip", "allow", "pr.draft"),
        ("pip install requests", "log", "deps.install"),
        ("gh pr create --fill", "ask", "pr.open"),
        ("gh pr merge 3", "ask", "pr.merge"),
        ("git push --force origin main", "ask", "git.push"),
        ("terraform apply", "ask", "deploy.production"),
        ("rm -rf data", "block", "data.delete"),
        ("tether approve 5", "block", "tether.control"),
    ],
)
def test_commands_follow_the_default_table(boundary: Boundary, command: str, expected: str, klass: str) -> None:
    got, classes, rule = verdict(boundary, command)
    assert klass in classes
    assert got == expected, (command, classes, rule)
    assert rule == f"default table: {klass}: {expected}"


def test_the_strictest_class_decides(boundary: Boundary) -> None:
    got, classes, rule = verdict(boundary, "git status && git push --force origin main && rm -rf data")
    assert {"repo.read", "git.push", "data.delete"} <= set(classes)
    assert (got, rule) == ("block", "default table: data.delete: block")


def test_unknown_action_class_is_a_usage_error(boundary: Boundary) -> None:
    with pytest.raises(UsageError, match="unknown action class"):
        boundary.evaluate("a", Request(action="deploy.everything"))
    with pytest.raises(UsageError, match="no agent named"):
        boundary.evaluate("nobody", Request(command="ls"))


# --- per-agent overrides ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("command", "for_a", "for_b", "klass"),
    [
        ("git push --force origin main", "ask", "allow", "git.push"),
        ("pip install requests", "log", "block", "deps.install"),
        ("gh pr create --fill", "ask", "log", "pr.open"),
        ("rm -rf data", "block", "ask", "data.delete"),
        ("frobnicate --now", "ask", "block", "unknown"),
    ],
)
def test_per_agent_overrides(boundary: Boundary, command: str, for_a: str, for_b: str, klass: str) -> None:
    got_a, _, rule_a = verdict(boundary, command, "a")
    got_b, classes_b, rule_b = verdict(boundary, command, "b")
    assert (got_a, got_b) == (for_a, for_b)
    assert rule_a == f"default table: {klass}: {for_a}"
    assert klass in classes_b
    assert rule_b == f"agents.b.approvals.verdicts.{klass}: {for_b}"


@pytest.mark.parametrize("klass", ["unknown", "tether.control"])
@pytest.mark.parametrize("loosened", ["allow", "log"])
def test_a_runbook_cannot_loosen_unknown_or_control(tmp_path: Path, klass: str, loosened: str) -> None:
    text = RUNBOOK.replace("{git.push: allow,", f"{{{klass}: {loosened}, git.push: allow,").replace(
        "unknown: block, ", ""
    )
    with pytest.raises(RunbookError, match=f"{klass} can only be ask or block"):
        write_runbook(tmp_path / "host", text)


# --- unparseable and unknown: ask, never allow -------------------------------------------------


@pytest.mark.parametrize("command", ["echo $(", "if then fi ((", "cat <<EOF", "frobnicate --now", "'unterminated"])
def test_unknown_or_unparseable_asks(boundary: Boundary, command: str) -> None:
    got, classes, _ = verdict(boundary, command)
    assert "unknown" in classes
    assert got == "ask"


def test_unparsed_classification_is_never_allowed_even_without_actions(loaded: LoadedRunbook) -> None:
    """The policy does not trust the classifier to have said `unknown`: parsed=False alone asks."""
    spec = loaded.runbook.agents["a"]
    scope = Scope.of(spec, loaded.agent_cwd("a"), loaded.resolve)
    d = decide(Classification((), (), False), spec, scope)
    assert (d.verdict, d.classes, d.parsed) == ("ask", ("unknown",), False)
    d = decide(Classification((Action("repo.read", "reads"),), (), False), spec, scope)
    assert d.verdict == "ask"


# --- protected paths --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "command",
    [
        "echo x > .github/workflows/ci.yml",  # a default protected path
        "echo x > .env",  # a default protected path
        "echo x > deploy/prod.sh",  # the runbook's own protected path
        "cp notes.txt deploy/notes.txt",
    ],
)
def test_protected_paths_escalate_to_at_least_ask(boundary: Boundary, command: str) -> None:
    got, _, rule = verdict(boundary, command)
    assert got in ("ask", "block"), rule
    _, d = boundary.evaluate("a", Request(command=command))
    assert any(r.protected for r in d.resources)
    # the same write to an unprotected path in the workspace is allowed
    assert verdict(boundary, "echo x > notes.txt")[0] == "allow"


def test_protected_path_rule_is_named(boundary: Boundary) -> None:
    got, _, rule = verdict(boundary, "echo x > deploy/prod.sh")
    assert (got, rule) == ("ask", "approvals.protected_paths: ask")
    # the runbook's protected paths are per agent: b writes deploy/ freely
    assert verdict(boundary, "echo x > deploy/prod.sh", "b")[0] == "allow"


def test_protected_paths_through_tool_calls(boundary: Boundary, loaded: LoadedRunbook) -> None:
    cwd = loaded.agent_cwd("a")
    _, d = boundary.evaluate("a", Request(tool="Write", input={"file_path": str(cwd / "deploy/x"), "content": "y"}))
    assert d.verdict == "ask"
    _, d = boundary.evaluate("a", Request(path=str(cwd / ".github/workflows/release.yml"), op="write"))
    assert d.verdict == "ask"
    _, d = boundary.evaluate("a", Request(path=str(cwd / "src/app.py"), op="write"))
    assert d.verdict == "allow"


def test_protected_and_blocked_stays_blocked(boundary: Boundary) -> None:
    assert verdict(boundary, "rm -rf .github")[0] == "block"


# --- scope: paths resolved first --------------------------------------------------------------


def test_symlink_inside_the_workspace_pointing_outside_is_outside(boundary: Boundary, loaded: LoadedRunbook) -> None:
    cwd = loaded.agent_cwd("a")
    (cwd / "etc-link").symlink_to("/etc")
    other = loaded.workspace_root / "other"
    other.mkdir()
    (cwd / "other-link").symlink_to(other)
    (cwd / "inner").mkdir()
    (cwd / "inner-link").symlink_to(cwd / "inner")

    for command in ("echo x > etc-link/hosts", "echo x > other-link/file", "rm other-link/file"):
        got, classes, _ = verdict(boundary, command)
        assert "scope.outside" in classes, command
        assert got == "block", command
    # the Write tool resolves the same way
    _, d = boundary.evaluate("a", Request(tool="Write", input={"file_path": str(cwd / "etc-link/x"), "content": ""}))
    assert "scope.outside" in d.classes
    # a link that stays inside the workspace is inside
    got, classes, _ = verdict(boundary, "echo x > inner-link/file")
    assert (got, "scope.outside" in classes) == ("allow", False)


@pytest.mark.parametrize(
    "command", ["echo x > ../other/file", "echo x > sub/../../other/file", "cp notes.txt ../../elsewhere.txt"]
)
def test_dotdot_out_of_the_workspace_is_outside(boundary: Boundary, command: str) -> None:
    """The workspace lives under /tmp here (pytest's tmp_path): leaving it for a sibling is still outside,
    temp space or not."""
    got, classes, _ = verdict(boundary, command)
    assert "scope.outside" in classes
    assert got == "block"


def test_the_agents_own_tmpdir_is_its_only_scratch_space(boundary: Boundary) -> None:
    """Shared temp space is outside (read or written); the private TMPDIR under the agent's state folder is
    neither outside nor tether's control."""
    assert verdict(boundary, "echo x > sub/../notes.txt")[0] == "allow"
    tmp = boundary.loaded.state.agent_tmp("a")
    for command in (f"echo x > {tmp}/out.txt", f"cat {tmp}/out.txt", f"rm -f {tmp}/out.txt"):
        got, classes, _ = verdict(boundary, command)
        assert (got, "scope.outside" in classes, "tether.control" in classes) == ("allow", False, False), command
    for command in (f"echo x > /tmp/tether-test-scratch-{os.getpid()}", "cp .env /tmp/", "cp -r ./* /tmp/x",
                    "cat /tmp/other-agent/notes", "echo x > /var/tmp/cron.d", "echo x > /dev/shm/x"):
        got, classes, _ = verdict(boundary, command)
        assert "scope.outside" in classes and got == "block", command
    assert "scope.outside" in verdict(boundary, "echo x > /etc/motd")[1]
    assert "tether.control" in verdict(boundary, f"cat {boundary.loaded.state.root}/agents/a/agent.token")[1]


def test_scope_folders_extend_the_workspace(tmp_path: Path) -> None:
    shared = tmp_path / "host" / "shared"
    shared.mkdir(parents=True)
    text = RUNBOOK.replace("repos: [github.com/me/proj]", "repos: [github.com/me/proj]\n      folders: [./shared]")
    b = Boundary(write_runbook(tmp_path / "host", text))
    assert verdict(b, f"echo x > {shared}/file")[0] == "allow"
    assert verdict(b, f"echo x > {shared}/file", "b")[0] == "block"


# --- hosts, accounts, repos -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("command", "egress"),
    [
        ("curl https://evil.example.org/x", True),
        ("curl https://api.github.com/repos", False),
        ("curl https://eu.example.com/a", False),  # *.example.com
        ("curl http://127.0.0.1:8080/health", False),  # loopback
        ("curl http://localhost:9000/", False),
        ("ssh prod.example.net", True),
    ],
)
def test_hosts_outside_scope_are_network_egress(boundary: Boundary, command: str, egress: bool) -> None:
    got, classes, _ = verdict(boundary, command)
    assert ("network.egress" in classes) == egress, classes
    if egress:
        assert got == "ask"


def test_urls_checked_directly(boundary: Boundary) -> None:
    _, d = boundary.evaluate("a", Request(url="https://pastebin.com/raw/x", method="POST"))
    assert "network.egress" in d.classes and d.verdict == "ask"
    _, d = boundary.evaluate("a", Request(url="http://127.0.0.1:7717/v1/health"))
    assert "network.egress" not in d.classes
    # agent b has no hosts at all: only loopback
    _, d = boundary.evaluate("b", Request(url="https://api.github.com/"))
    assert "network.egress" in d.classes


@pytest.mark.parametrize(
    ("command", "outside"),
    [
        ("aws --profile prod s3 ls", True),
        ("aws --profile dev s3 ls", False),
        ("git clone https://github.com/someone/else", True),
        ("git clone https://github.com/me/proj", False),
    ],
)
def test_accounts_and_repos_outside_scope(boundary: Boundary, command: str, outside: bool) -> None:
    got, classes, _ = verdict(boundary, command)
    assert ("scope.outside" in classes) == outside, classes
    assert (got == "block") == outside


# --- kill files and budgets -------------------------------------------------------------------


KILLED_ALSO = ["ls", "pytest", "make", "npm test", "git push origin feature", "cat README.md"]


def test_global_kill_file_blocks_every_action(boundary: Boundary, loaded: LoadedRunbook) -> None:
    assert verdict(boundary, "git push --force origin main")[0] == "ask"
    assert verdict(boundary, "ls")[0] == "allow"
    loaded.state.kill_file.write_text("not json: still killed\n")
    for agent in ("a", "b"):
        got, _, rule = verdict(boundary, "pip install requests", agent)
        assert (got, rule) == ("block", "kill switch")
    got, _, rule = verdict(boundary, "git push --force origin main")
    assert (got, rule) == ("block", "kill switch")
    for command in KILLED_ALSO:  # killed means no new action, whatever its verdict would have been
        assert verdict(boundary, command)[0] == "block", command
    loaded.state.kill_file.unlink()
    assert verdict(boundary, "git push --force origin main")[0] == "ask"
    assert verdict(boundary, "ls")[0] == "allow"


def test_a_killed_agents_refusal_says_who_when_and_why(boundary: Boundary, loaded: LoadedRunbook) -> None:
    from tether.killswitch import kill_agent
    from tether.runbook.model import KillSwitch

    kill_agent(loaded.state, "a", KillSwitch(), "it looped on deploys", by="alice")
    for command in KILLED_ALSO:
        _, d = boundary.evaluate("a", Request(command=command))
        assert d.verdict == "block" and d.rule == "kill switch"
        assert d.reason.startswith("killed by alice at 20") and ": it looped on deploys" in d.reason, d.reason


def test_agent_kill_file_blocks_only_that_agent(boundary: Boundary, loaded: LoadedRunbook) -> None:
    kill = loaded.state.agent_kill_file("a")
    kill.parent.mkdir(parents=True, exist_ok=True)
    kill.write_text("")
    got, _, rule = verdict(boundary, "gh pr create --fill", "a")
    assert (got, rule) == ("block", "kill switch")
    assert verdict(boundary, "gh pr create --fill", "b")[0] == "log"


def test_spent_budget_blocks_every_action(boundary: Boundary) -> None:
    got, _, rule = verdict(boundary, "terraform apply", budget_spent="usd_per_day 5.00")
    assert (got, rule) == ("block", "budgets")
    assert verdict(boundary, "pip install x", budget_spent="tokens_per_day")[0] == "block"
    assert verdict(boundary, "python -m pytest", budget_spent="tokens_per_day")[0] == "block"
    assert verdict(boundary, "python -m pytest")[0] == "allow"


# --- never raises, never allows what it could not parse ---------------------------------------

SHELLISH = st.lists(
    st.sampled_from([
        *"abc $(){}[]<>|&;'\"`\\\n#*?~=.-/!", "rm", "-rf", "git", "push", "--force", "main", "curl", "http://x.y/z",
        "bash", "sh -c", "if", "then", "fi", "do", "done", "<<EOF", "EOF", "$((", "${", "}", "tether", "sudo",
        "..", "/etc/passwd", ".env", "deploy/", "eval", "xargs", "python -c", "&&", "||", "2>&1", "\x00", "ü",
    ]),
    max_size=24,
).map("".join)


@settings(deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(command=SHELLISH | st.text(max_size=80))
def test_evaluate_never_raises_nor_allows_unparsed(boundary: Boundary, command: str) -> None:
    for agent in ("a", "b"):
        _, d = boundary.evaluate(agent, Request(command=command))
        assert d.verdict in ("allow", "log", "ask", "block")
        if not d.parsed:
            assert d.verdict in ("ask", "block"), (command, d)


@settings(deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(
    resources=st.lists(
        st.builds(
            Resource,
            kind=st.sampled_from(["path", "host", "url", "repo", "account", "branch", "script"]),
            value=st.text(max_size=30),
            op=st.sampled_from(["", "read", "write", "delete", "exec"]),
            protected=st.booleans(),
        ),
        max_size=5,
    ),
    klasses=st.lists(st.sampled_from(ACTION_CLASSES), max_size=3),
    parsed=st.booleans(),
)
def test_decide_on_any_classification(
    loaded: LoadedRunbook, resources: list[Resource], klasses: list[str], parsed: bool
) -> None:
    spec = loaded.runbook.agents["a"]
    scope = Scope.of(spec, loaded.agent_cwd("a"), loaded.resolve)
    c = Classification(tuple(Action(k, "x") for k in klasses), tuple(resources), parsed)
    d = decide(c, spec, scope)
    if not parsed:
        assert d.verdict in ("ask", "block")
    if any(r.protected and r.op in ("write", "delete", "exec", "") for r in resources):
        assert d.verdict in ("ask", "block")


def test_a_path_with_a_nul_byte_is_outside_scope_not_a_crash(loaded: LoadedRunbook) -> None:
    """A resource may carry any string; os.path.realpath raises on a NUL byte (found by hypothesis)."""
    spec = loaded.runbook.agents["a"]
    scope = Scope.of(spec, loaded.agent_cwd("a"), loaded.resolve)
    for op in ("read", "write", "delete", "exec", ""):
        c = Classification((Action("repo.read", "x"),), (Resource("path", "notes\x00/x", op),), True)
        d = decide(c, spec, scope)
        assert d.verdict == "block" and "scope.outside" in d.classes, (op, d)
