"""Codex CLI under tether: the real ``codex`` CLI (npm @openai/codex, installed by .ci/install-agents) run
headless (``codex exec --json``) against a scripted stand-in for the OpenAI Responses API, gated by a real
daemon through tether's fail-closed command hook. Skipped, with the reason, when the CLI is not installed."""

from __future__ import annotations

import json
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest

from fakes.openai_api import FakeResponses
from fakes.tether_host import Host, cli_binary, codex_env, codex_provider, host, tether
from test_integrations_claude import _free_port, git_project, in_overlay, overlay_etc
from tether.integrations import agents, codex
from tether.paths import StateDir
from tether.runbook import load
from tether.store import open_store

SANDBOX = ("-s", "workspace-write")


def run(argv: list[str], env: dict[str, str], cwd: Path) -> list[dict[str, Any]]:
    proc = subprocess.run(argv, env=env, cwd=cwd, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, f"exit {proc.returncode}: {proc.stdout[-2000:]} {proc.stderr[-2000:]}"
    return [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]


def install(home: Path, *args: str) -> None:
    proc = tether("integrate", "codex", *args, env={"CODEX_HOME": str(home / "codex")})
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_allowed_runs_blocked_denied_held_then_retried_after_approval(tmp_path: Path) -> None:
    exe = cli_binary("codex")
    proj = git_project(tmp_path / "proj")
    steps = [
        {"tool": "exec_command", "input": {"cmd": "echo hello > out.txt"}},
        {"tool": "exec_command", "input": {"cmd": "rm -rf data"}},
        {"tool": "exec_command", "input": {"cmd": "make deploy"}},
        {"text": "Waiting for a human."},
        {"tool": "exec_command", "input": {"cmd": "make deploy"}},  # after the supervisor resumes the thread
        {"text": "Deployed."},
    ]
    cfg = {"CODEX_HOME": str(tmp_path / "home" / "codex")}  # where its transcripts are (codex_env's)
    with host(tmp_path, {"cx": {"kind": "codex", "prompt": "ship it", "command": [], "cwd": str(proj),
                                "env": cfg}}) as h, \
            FakeResponses(steps) as fake:
        home = tmp_path / "home"
        codex_provider(home, fake.url)
        install(home, "--user", "--agent", "cx", "--url", h.url)
        loaded = load(h.runbook)
        spec = loaded.runbook.agents["cx"]
        store = open_store(loaded.store_url)
        try:
            env = codex_env(home, h.token("agent", "cx"))
            first = agents.launch(spec, StateDir(h.state), store, h.url, codex_bin=exe)
            assert first is not None and "--dangerously-bypass-hook-trust" in first.argv
            events = run([*first.argv[:2], *SANDBOX, *first.argv[2:]], {**env, **first.env}, proj)
            outputs = fake.tool_outputs()
            assert (proj / "out.txt").read_text() == "hello\n"
            assert (proj / "data" / "keep.txt").exists()
            assert "tether blocked it" in outputs[1] and "data.delete" in outputs[1], outputs
            assert "tether is holding it for a human" in outputs[2] and not (proj / "deployed.txt").exists()
            assert "fail closed" not in outputs[1] + outputs[2], outputs  # decisions, not failures
            thread = next(e["thread_id"] for e in events if e["type"] == "thread.started")
            assert agents.exited(spec, StateDir(h.state), store, 0) == "deferred"
            [row] = store.approvals("pending", "cx")
            assert f"approval {row['id']}" in outputs[2]
            h.approve(row["id"])

            again = agents.launch(spec, StateDir(h.state), store, h.url, codex_bin=exe)
            assert again is not None and again.resume == thread, (again, thread)
            assert "approved" in again.argv[-1]
            run([*again.argv[:2], *SANDBOX, *again.argv[2:]], {**env, **again.env}, proj)
            assert (proj / "deployed.txt").read_text() == "deployed\n"  # the identical retry went through
            assert agents.exited(spec, StateDir(h.state), store, 0) == "done"

            commands = [e["command"] for e in h.wait_events("command.run", "cx", 2)]
            assert "echo hello > out.txt" in commands and "make deploy" in commands and "rm -rf data" not in commands
            files = {p for e in h.wait_events("files.changed", "cx", 2) for p in e["paths"]}
            assert {str(proj / "out.txt"), str(proj / "deployed.txt")} <= files
            usage = h.wait_events("usage", "cx", 2)
            assert {u["model"] for u in usage} == {"gpt-5-codex"}
            assert sum(u["calls"] for u in usage) == len(fake.requests)
            assert sum(u["cache_read_input_tokens"] for u in usage) == 300 * len(fake.requests)
            assert all(u["cost_usd"] and u["cost_usd"] > 0 for u in usage)
        finally:
            store.close()


def test_daemon_down_means_denied(tmp_path: Path) -> None:
    exe = cli_binary("codex")
    proj = git_project(tmp_path / "proj")
    steps = [{"tool": "exec_command", "input": {"cmd": "echo ran > ran.txt"}}, {"text": "ok"}]
    with FakeResponses(steps) as fake:
        home = tmp_path / "home"
        codex_provider(home, fake.url)
        install(home, "--user", "--agent", "cx", "--url", f"http://127.0.0.1:{_free_port()}")
        run(codex.argv("go", codex=exe, extra=SANDBOX), codex_env(home, "tt_none"), proj)
        assert not (proj / "ran.txt").exists()
        assert "fail closed" in fake.tool_outputs()[0], fake.tool_outputs()


def test_the_agents_commands_keep_the_path_it_was_given(tmp_path: Path) -> None:
    """Codex runs a command through a login shell unless told not to, and /etc/profile sets PATH afresh: a
    tool on the agent's PATH (its venv, its pytest) was "command not found". tether's ``codex exec`` keeps it."""
    exe = cli_binary("codex")
    proj = git_project(tmp_path / "proj")
    tools = tmp_path / "agent-tools"
    tools.mkdir()
    (tools / "agent-tool").write_text("#!/bin/sh\necho agent-tool ran\n")
    (tools / "agent-tool").chmod(0o755)
    steps = [{"tool": "exec_command", "input": {"cmd": "agent-tool > ran.txt; echo \"$PATH\" > path.txt"}},
             {"text": "ok"}]
    with FakeResponses(steps) as fake:
        home = tmp_path / "home"
        codex_provider(home, fake.url)
        env = codex_env(home, "tt_none")
        env["PATH"] = f"{tools}:{env['PATH']}"
        run(codex.argv("go", codex=exe, extra=SANDBOX), env, proj)
        assert (proj / "ran.txt").read_text() == "agent-tool ran\n", fake.tool_outputs()
        assert str(tools) in (proj / "path.txt").read_text().split(":")


def test_untrusted_hooks_are_skipped_until_trusted(tmp_path: Path) -> None:
    """Codex silently skips a hook nobody trusted; ``--trust`` trusts tether's hooks, and only those."""
    exe = cli_binary("codex")
    proj = git_project(tmp_path / "proj")
    steps = [{"tool": "exec_command", "input": {"cmd": "make deploy"}}, {"text": "ok"}]
    with host(tmp_path, {"cx": {"cwd": str(proj)}}) as h:
        home = tmp_path / "home"
        env = codex_env(home, h.token("agent", "cx"))
        hooks_json = home / "codex" / "hooks.json"
        hooks_json.parent.mkdir(parents=True, exist_ok=True)
        hooks_json.write_text(json.dumps({"hooks": {"Stop": [{"hooks": [{"type": "command", "command": "true"}]}]}}))
        install(home, "--user", "--agent", "cx", "--url", h.url)
        with FakeResponses(steps) as fake:
            codex_provider(home, fake.url)
            listed = codex.list_hooks(exe, proj, env)
            assert codex.pending_trust(listed), listed
            run([exe, "exec", "--json", "--skip-git-repo-check", *SANDBOX, "go"], env, proj)
            assert (proj / "deployed.txt").exists(), ("an untrusted hook should have been skipped", fake.tool_outputs())
        (proj / "deployed.txt").unlink()
        with FakeResponses(steps) as fake:
            codex_provider(home, fake.url)
            proc = tether("integrate", "codex", "--user", "--agent", "cx", "--url", h.url, "--trust",
                          env={"CODEX_HOME": str(home / "codex"), "TETHER_CODEX": exe}, cwd=proj)
            assert proc.returncode == 0 and "trusted" in proc.stdout, proc.stdout + proc.stderr
            listed = codex.list_hooks(exe, proj, env)
            assert not codex.pending_trust(listed)
            assert [h["trustStatus"] for h in listed if h["command"] == "true"] == ["untrusted"]  # not ours
            run([exe, "exec", "--json", "--skip-git-repo-check", *SANDBOX, "go"], env, proj)
            assert not (proj / "deployed.txt").exists()
            assert "tether is holding it for a human" in fake.tool_outputs()[0]
        gone = tether("integrate", "codex", "--user", "--remove", "--trust", env={"CODEX_HOME": str(home / "codex")},
                      cwd=proj)
        assert gone.returncode == 0, gone.stderr
        assert json.loads(hooks_json.read_text()) == {"hooks": {"Stop": [{"hooks": [{"type": "command",
                                                                                     "command": "true"}]}]}}
        assert "tether" not in (home / "codex" / "config.toml").read_text()


def test_managed_hooks_need_no_trust(tmp_path: Path) -> None:
    exe = cli_binary("codex")
    mount = overlay_etc(tmp_path)
    if mount is None:
        pytest.skip("needs root, unshare and overlayfs to write /etc/codex without touching the host's /etc")
    proj = git_project(tmp_path / "proj")
    steps = [{"tool": "exec_command", "input": {"cmd": "rm -rf data"}}, {"text": "ok"}]
    with host(tmp_path, {"cx": {"cwd": str(proj)}}) as h, FakeResponses(steps) as fake:
        home = tmp_path / "home"
        codex_provider(home, fake.url)
        setup = [sys.executable, "-m", "tether", "integrate", "codex", "--managed", "--agent", "cx", "--url", h.url]
        argv = [exe, "exec", "--json", "--skip-git-repo-check", *SANDBOX, "go"]
        run(in_overlay(mount, setup, argv), codex_env(home, h.token("agent", "cx")), proj)
        assert (proj / "data").exists()
        assert "tether blocked it" in fake.tool_outputs()[0]
    assert not Path("/etc/codex/requirements.toml").exists() or \
        "tether" not in Path("/etc/codex/requirements.toml").read_text()


def test_install_merges_is_idempotent_and_removes_exactly(tmp_path: Path) -> None:
    hooks_json = tmp_path / "hooks.json"
    mine = {"hooks": {"PreToolUse": [{"matcher": "Bash", "hooks": [{"type": "command", "command": "mine"}]}]}}
    hooks_json.write_text(json.dumps(mine))
    assert codex.install(hooks_json, "http://127.0.0.1:7717", "cx").changed
    text = hooks_json.read_text()
    got = json.loads(text)
    assert got["hooks"]["PreToolUse"][0] == mine["hooks"]["PreToolUse"][0]
    cmd = got["hooks"]["PreToolUse"][1]["hooks"][0]["command"]
    assert "hook_command.py" in cmd and "--event PreToolUse" in cmd and "--agent cx" in cmd
    assert not codex.install(hooks_json, "http://127.0.0.1:7717", "cx").changed and hooks_json.read_text() == text
    codex.remove(hooks_json)
    assert json.loads(hooks_json.read_text()) == mine

    req = tmp_path / "requirements.toml"
    req.write_text('allowed_sandbox_modes = ["read-only"]\n\n[features]\nhooks = true\n')
    original = req.read_text()
    assert codex.install(req, "http://127.0.0.1:7717", None, managed=True).changed
    parsed = tomllib.loads(req.read_text())
    assert parsed["allow_managed_hooks_only"] is True and parsed["allowed_sandbox_modes"] == ["read-only"]
    assert "hook_command.py" in parsed["hooks"]["PreToolUse"][0]["hooks"][0]["command"]
    assert not codex.install(req, "http://127.0.0.1:7717", None, managed=True).changed
    codex.remove(req, managed=True)
    assert req.read_text() == original


def test_doctor_reports_hooks_pending_trust(tmp_path: Path) -> None:
    from tether.integrations import health

    exe = cli_binary("codex")
    proj = git_project(tmp_path / "proj")
    h = Host(tmp_path, {"cx": {"kind": "codex", "prompt": "x", "command": [], "cwd": str(proj)}})
    home = tmp_path / "home"
    env = codex_env(home, "tt_x")
    codex_provider(home, "http://127.0.0.1:9/v1")
    [none] = health.codex_hooks(load(h.runbook), exe, env)
    assert none.status == "fail"
    install(home, "--user", "--agent", "cx", "--url", "http://127.0.0.1:9")
    [pending] = health.codex_hooks(load(h.runbook), exe, env)
    assert pending.status == "warn" and "pending trust" in pending.detail, pending
    assert codex.trust(exe, proj, env)[2] >= 1
    [trusted] = health.codex_hooks(load(h.runbook), exe, env)
    assert trusted.status == "warn" and "not managed" in trusted.detail, trusted


def test_trust_in_a_project_codex_does_not_trust_says_what_is_missing(tmp_path: Path) -> None:
    """Codex loads a project's .codex/hooks.json only once it trusts the project: before that it lists none
    of tether's hooks, and `--trust` said "trusted" over 0 hooks. Now it names the missing step, and after
    it `--trust` does trust them."""
    exe = cli_binary("codex")
    proj = git_project(tmp_path / "proj")
    with host(tmp_path, {"cx": {"cwd": str(proj)}}) as h:
        home = tmp_path / "home" / "codex"
        home.mkdir(parents=True)
        env = {"CODEX_HOME": str(home), "TETHER_CODEX": exe}
        before = tether("integrate", "codex", "--project", str(proj), "--agent", "cx", "--url", h.url, "--trust",
                        env=env, cwd=proj)
        assert before.returncode != 0, before.stdout + before.stderr
        assert "Codex lists none of tether's hooks" in before.stderr and "trust_level" in before.stderr, before.stderr
        assert "Traceback" not in before.stderr and "reports tether's hooks trusted" not in before.stdout
        assert "by hand: export TETHER_TOKEN=$(tether token create --role agent --agent cx); codex exec -c " \
               "allow_login_shell=false" in before.stdout, before.stdout
        with (home / "config.toml").open("a") as f:
            f.write(f'\n[projects."{proj}"]\ntrust_level = "trusted"\n')
        after = tether("integrate", "codex", "--project", str(proj), "--agent", "cx", "--url", h.url, "--trust",
                       env=env, cwd=proj)
        assert after.returncode == 0 and "Codex reports tether's hooks trusted" in after.stdout, (
            after.stdout + after.stderr)
        assert not codex.pending_trust(codex.list_hooks(exe, proj, {**env, "HOME": str(tmp_path / "home")}))
