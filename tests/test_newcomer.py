"""Issue 19's evidence: the newcomer, with the wall on. A fresh venv with the package installed from the
checkout, ``tether init --user --agent claude-code`` in a fresh git repository, the runbook's scope (and the
model API's address: the stand-in's) the only hand edit, ``tether up``, the real Claude Code CLI inside the
wall asked by the stand-in model for a deploy, which is held; ``tether approve``; the deploy runs;
``tether status`` read back. Every step is the CLI as a subprocess (``tests/newcomer.py``), the commands
docs/GUIDE.md gives in its Claude Code section; its SDK agent and shell agent run as the guide writes them.

The install is offline: ``pip install --no-deps --no-build-isolation --no-index CHECKOUT`` into a venv that
sees the development venv's packages (a full ``pip install CHECKOUT`` downloads the dependencies:
``bench/bench_newcomer.py`` times it with TETHER_BENCH_ONLINE=1).
"""

from __future__ import annotations

import os
import pwd
import re
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from fakes.anthropic_api import FakeAnthropic
from fakes.tether_host import cli_binary
from helpers import run_cli
from newcomer import AGENT_USER, GUIDE, STEPS, Newcomer, remove_user, user_exists
from test_wall import needs_wall

pytestmark = [pytest.mark.wall, pytest.mark.slow, pytest.mark.timeout(600)]

#: What the newcomer types, in order, as docs/GUIDE.md's Claude Code section must give it.
TYPED = ["tether init --user --agent claude-code", "tether check", "tether up", "tether approvals",
         "tether approve", "tether status", "tether down"]


def guide_commands() -> list[str]:
    """The tether commands of the guide's Claude Code session block (``sudo`` dropped: the test is root)."""
    text = GUIDE.read_text()
    start = text.index("<!-- newcomer: the test runs these -->")
    block = text[start:].split("```", 2)[1]
    lines = [line.split("#", 1)[0].strip().removeprefix("sudo ") for line in block.splitlines()]
    return [line for line in lines if line.startswith("tether ")]


def guide_code(caption: str) -> str:
    """The code block the guide gives under ``caption`` (e.g. `workspaces/worker/run.sh`:)."""
    found = re.search(re.escape(f"`{caption}`:") + r"\n\n```\w*\n(.*?)```", GUIDE.read_text(), re.S)
    assert found, f"docs/GUIDE.md has no code block under `{caption}`:"
    return found.group(1)


def _folder() -> Path:
    """A folder under /tmp (not pytest's private tmp: the agent's user must reach its workspace)."""
    path = Path(tempfile.mkdtemp(prefix="tether-newcomer-", dir="/tmp"))
    path.chmod(0o755)
    return path


@pytest.fixture(scope="module")
def installed() -> Iterator[Path]:
    """The newcomer's venv, made and installed once for this module's tests."""
    needs_wall()
    path = _folder()
    try:
        Newcomer(path).install()
        yield path / "venv"
    finally:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def machine() -> Iterator[Path]:
    """The newcomer's machine, and the agent user ``tether init --user`` creates, removed afterwards when
    this test created it."""
    needs_wall()
    had_user = user_exists()
    path = _folder()
    try:
        yield path
    finally:
        if not had_user and user_exists():
            remove_user()
        shutil.rmtree(path, ignore_errors=True)


def test_the_guide_gives_the_commands_the_newcomer_types() -> None:
    got = guide_commands()
    at = 0
    for typed in TYPED:
        found = [i for i, line in enumerate(got) if i >= at and line.startswith(typed)]
        assert found, f"docs/GUIDE.md's Claude Code block lacks {typed!r} (after {got[:at]}): {got}"
        at = found[0] + 1


@pytest.mark.parametrize(("kind", "work", "key"), [("claude-code", "workspaces/claude/", "ANTHROPIC_API_KEY"),
                                                  ("sdk", "workspaces/my-agent/", "OPENAI_API_KEY"),
                                                  ("command", "workspaces/worker/", None)])
def test_init_says_what_stands_before_the_first_run(tmp_path: Path, kind: str, work: str, key: str | None) -> None:
    """``tether init --agent KIND`` ends with the steps left: where the agent's work goes, its scope, the
    keys the daemon must have, the agents' user (as root, when missing), then check and up."""
    proc = run_cli("init", "--agent", kind, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[1] == "next:", proc.stdout
    assert any(work in line for line in lines[2:]) and any("scope in tether.yaml" in line for line in lines), lines
    assert any(f"export {key}=..." in line for line in lines) if key else not any("export" in line for line in lines)
    if os.geteuid() == 0 and not user_exists():
        assert any("`tether init --user`" in line for line in lines), lines
    assert lines[-1].strip() == "`tether check`, then `tether up` (docs/GUIDE.md)", lines


def test_a_newcomer_governs_claude_code_inside_the_wall(installed: Path, machine: Path) -> None:
    claude = cli_binary("claude")
    me = Newcomer(machine, claude, venv=installed)
    assert me.ok("tether", "--version").startswith("tether ")
    assert me.ok("which", "tether").strip() == str(installed / "bin" / "tether"), "the venv's, not the checkout's"
    with FakeAnthropic(STEPS) as model:
        try:
            said = me.init()
            assert "user tether-agent" in said and "wrote tether.yaml" in said, said
            me.edit_runbook(model.url)
            checked = me.check()
            assert "claude (claude-code)" in checked and "deploy.production" in checked, checked
            assert "127.0.0.1" in checked, "the edited scope is the one tether reads"
            up = me.up()
            assert "tether daemon running" in up and "tether token create --role approver" in up, up

            held = me.held()
            assert held["agent"] == "claude" and held["action"] == "deploy.production", held
            assert "make deploy" in held["detail"], held
            assert not (me.workspace / "deployed.txt").exists(), "held means not run"
            shown = me.ok("tether", "approvals")
            assert "deploy.production" in shown and "make deploy" in shown, shown
            assert f"tether approve {held['id']}" in me.status_text(), "status says how to go on"
            waiting = me.agent()
            assert waiting["state"] == "waiting_for_approval" and waiting["approvals_pending"] == 1, waiting

            said = me.approve(held["id"])
            assert f"approval {held['id']} approved" in said, said
            deployed = me.workspace / "deployed.txt"
            assert deployed.read_text() == "deployed\n"
            assert deployed.stat().st_uid == pwd.getpwnam(AGENT_USER).pw_uid, "written by the agent's own user"

            table = me.status_text()
            assert table.splitlines()[0].split()[:2] == ["AGENT", "STATE"], table
            row = [line for line in table.splitlines() if line.startswith("claude ")]
            assert row, table
            assert all(len(line) <= 80 for line in table.splitlines()), f"wider than 80 columns:\n{table}"
            assert not re.search(r"-\d+(\.\d+)?[smhd] ago", table), f"a negative age:\n{table}"
            done = me.agent()
            assert done["approvals_pending"] == 0 and done["files_changed"] == 1, done
            assert done["heartbeat_age_s"] is None or done["heartbeat_age_s"] >= 0, done
            assert done["commands_run"] >= 1 and not done["approval_required"], done
            assert done["state"] not in ("waiting_for_approval", "running", "crashloop", "blocked"), done
            (used,) = [a for a in me.approvals(all_=True) if a["id"] == held["id"]]
            assert used["state"] == "used" and used["uses"] == 1, used
            # the model saw the deploy's result: the held call completed in the same session
            answered = [m for body in model.main_requests() for m in body["messages"] if m["role"] == "user"]
            assert any("tool_result" in str(m["content"]) for m in answered), "the call's result reached the model"
            events = me.ok("tether", "events")
            assert "approval.decided" in events and "session.resumed" in events, events[-3000:]
            assert "canary" in events and "outcome=passed" in events, "the wall's canary ran and passed"
            me.down()
        finally:
            me.clean_up()
    timing = ", ".join(f"{k} {v:.1f}s" for k, v in me.times.items())
    print(f"newcomer: {timing}")


def test_the_guides_sdk_agent_runs_held_and_approved(installed: Path, machine: Path) -> None:
    """docs/GUIDE.md section 3 as written: ``tether init --agent sdk``, its agent.py, a task; the agent's
    ``git push origin main`` is held, approved, and the agent goes on, inside the wall."""
    me = Newcomer(machine, venv=installed, kind="sdk")
    try:
        me.init()
        (me.workspace / "agent.py").write_text(guide_code("workspaces/my-agent/agent.py"))
        me.check()
        me.up()
        assert "queued for my-agent" in me.ok("tether", "task", "add", "my-agent", "push the release")
        held = me.held()
        assert held["agent"] == "my-agent" and held["action"] == "git.push", held
        assert "git push origin main" in me.ok("tether", "approvals")
        me.approve(held["id"], done=lambda: "pushing" in me.ok("tether", "logs", "my-agent"))
        got = me.agent()
        assert got["state"] == "running" and got["approvals_pending"] == 0, got
        assert held["id"] in [a["id"] for a in me.approvals(all_=True) if a["state"] == "used"]
        me.down()
    finally:
        me.clean_up()


def test_the_guides_shell_agent_beats_and_is_judged(installed: Path, machine: Path) -> None:
    """docs/GUIDE.md section 4 as written: ``tether init --agent command`` and its run.sh: it beats, an
    allowed ``tether exec`` runs (as the agent's own user), ``rm -rf data`` is refused with 126 and the
    data stays."""
    me = Newcomer(machine, venv=installed, kind="command")
    try:
        me.init()
        script = me.workspace / "run.sh"
        script.write_text(guide_code("workspaces/worker/run.sh"))
        script.chmod(0o755)
        (me.workspace / "data").mkdir()
        (me.workspace / "data" / "orders.csv").write_text("id\n1\n")
        me.check()
        me.up()
        me.until("the first pass", lambda: "refused: 126" in me.ok("tether", "logs", "worker"), 60)
        assert (me.workspace / "data" / "orders.csv").exists(), "refused means not run"
        ran = me.workspace / "last-run.txt"
        assert ran.exists() and ran.stat().st_uid == pwd.getpwnam(AGENT_USER).pw_uid, "ran as the agent's user"
        assert "tether: deny: rm deletes" in me.ok("tether", "logs", "worker", "--stderr")
        got = me.until("its beat", lambda: str(me.agent()["progress"]).startswith("pass ") and me.agent(), 30)
        assert got["state"] == "running" and got["heartbeat_age_s"] is not None, got
        assert "worker" in me.status_text()
        me.down()
    finally:
        me.clean_up()
