"""Claude Code under tether: the real ``claude`` CLI (npm @anthropic-ai/claude-code, installed by
.ci/install-agents) run headless against a scripted stand-in for the Anthropic Messages API, gated by a real
daemon through its http hooks. Skipped, with the reason, when the CLI is not installed."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from fakes.anthropic_api import FakeAnthropic
from fakes.tether_host import ROOT, Host, claude_env, cli_binary, host, tether
from tether.integrations import agents, claude_code
from tether.paths import StateDir
from tether.runbook import load
from tether.store import open_store

HOOK_SCRIPT = ROOT / "src/tether/integrations/hook_command.py"
MODEL = "claude-sonnet-4-5-20250929"


def git_project(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    # `make deploy` is judged by its recipe: a kubectl apply (deploy: held), which fails harmlessly here
    (path / "Makefile").write_text("deploy:\n\t-kubectl apply -f deploy.yaml 2>/dev/null\n"
                                   "\techo deployed > deployed.txt\n")
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@x", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@x"}
    for args in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-q", "-m", "init"]):
        subprocess.run(["git", "-C", str(path), *args], check=True, env=env, capture_output=True)
    # data nothing can restore (untracked): deleting it is data.delete
    (path / "data").mkdir()
    (path / "data" / "keep.txt").write_text("precious\n")
    return path


def run(argv: list[str], env: dict[str, str], cwd: Path) -> dict[str, Any]:
    proc = subprocess.run(argv, env=env, cwd=cwd, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    got = claude_code.result(proc.stdout)
    assert got is not None, f"exit {proc.returncode}: {proc.stdout[-2000:]} {proc.stderr[-2000:]}"
    got["_exit"] = proc.returncode
    return got


def tool_results(fake: FakeAnthropic) -> list[str]:
    out = []
    for body in fake.main_requests():
        last = body["messages"][-1]
        if last["role"] == "user" and isinstance(last["content"], list):
            out += [json.dumps(b.get("content")) for b in last["content"] if b.get("type") == "tool_result"]
    return out


def test_allowed_runs_blocked_denied_held_defers_then_runs_after_approval(tmp_path: Path) -> None:
    """The supervisor's own calls (agents.launch/exited) drive the real CLI: allow, block, defer, resume."""
    exe = cli_binary("claude")
    proj = git_project(tmp_path / "proj")
    steps = [
        {"tool": "Bash", "input": {"command": "echo hello > out.txt", "description": "write"}},
        {"tool": "Write", "input": {"file_path": str(proj / "notes.md"), "content": "notes\n"}},
        {"tool": "Bash", "input": {"command": "rm -rf data", "description": "delete"}},
        {"tool": "Bash", "input": {"command": "make deploy", "description": "deploy"}},
        {"text": "Done."},
    ]
    cfg = {"CLAUDE_CONFIG_DIR": str(tmp_path / "home" / "cfg")}  # where its transcripts are (claude_env's)
    with host(tmp_path, {"cc": {"kind": "claude-code", "prompt": "ship it", "command": [], "cwd": str(proj),
                                "env": cfg}}) as h, \
            FakeAnthropic(steps) as fake:
        loaded = load(h.runbook)
        spec = loaded.runbook.agents["cc"]
        store = open_store(loaded.store_url)
        try:
            env = claude_env(tmp_path / "home", fake.url, h.token("agent", "cc"))
            first = agents.launch(spec, StateDir(h.state), store, h.url, claude=exe)
            assert first is not None and first.env == {"TETHER_HOLD": "defer"}
            got = run([*first.argv, "--model", MODEL], {**env, **first.env}, proj)

            assert (proj / "out.txt").read_text() == "hello\n"  # allowed
            assert (proj / "notes.md").exists()  # allowed (Write)
            assert (proj / "data" / "keep.txt").exists()  # blocked
            assert [d["tool_input"]["command"] for d in got["permission_denials"]] == ["rm -rf data"]
            blocked = [r for r in tool_results(fake) if "nothing can restore it" in r]
            assert blocked and "tether blocked it" in blocked[0] and "data.delete" in blocked[0], tool_results(fake)
            assert got["stop_reason"] == "tool_deferred", got  # held
            assert got["deferred_tool_use"]["input"]["command"] == "make deploy"
            assert not (proj / "deployed.txt").exists()
            assert agents.exited(spec, StateDir(h.state), store, got["_exit"]) == "deferred"
            why = agents.waiting(StateDir(h.state), store, spec)
            assert why is not None and "waiting for approval" in why
            assert agents.launch(spec, StateDir(h.state), store, h.url, claude=exe) is None

            pending = [a for a in store.approvals("pending", "cc")]
            assert len(pending) == 1 and "make deploy" in pending[0]["detail"]
            h.approve(pending[0]["id"])
            again = agents.launch(spec, StateDir(h.state), store, h.url, claude=exe)
            assert again is not None and again.resume == got["session_id"]
            assert again.argv[1:4] == ["-p", "--resume", got["session_id"]]
            done = run([*again.argv, "--model", MODEL], {**env, **again.env}, proj)
            assert done["stop_reason"] == "end_turn" and done["session_id"] == got["session_id"]
            assert (proj / "deployed.txt").read_text() == "deployed\n"  # ran after approval
            assert agents.exited(spec, StateDir(h.state), store, done["_exit"]) == "done"

            commands = [e["command"] for e in h.wait_events("command.run", "cc", 2)]
            assert "echo hello > out.txt" in commands and "make deploy" in commands and "rm -rf data" not in commands
            files = h.wait_events("files.changed", "cc", 3)
            by_tool = {(e["tool"], p) for e in files for p in e["paths"]}
            assert ("Write", str(proj / "notes.md")) in by_tool
            assert ("git", str(proj / "out.txt")) in by_tool and ("git", str(proj / "deployed.txt")) in by_tool
            assert not any(t == "git" and p.endswith("notes.md") for t, p in by_tool)  # reported once
            usage = h.wait_events("usage", "cc", 2)
            calls = sum(u["calls"] for u in usage)
            assert calls == len(fake.main_requests()), (usage, len(fake.main_requests()))  # each message once
            assert {u["model"] for u in usage} == {MODEL}
            assert sum(u["cache_read_input_tokens"] for u in usage) == 2000 * calls
            # a run the supervisor launched: its cost is its own result's (tests/test_claude_code_truths.py), the
            # transcript gives the tokens only (no price-table figure beside it: counted once)
            assert all(u["cost_usd"] is None and u["priced_by"] == "result" for u in usage), usage
            kinds = {e["kind"] for e in h.events(agent="cc")}
            assert {"session.started", "session.prompt", "session.deferred", "session.resumed", "turn.ended",
                    "session.ended", "verdict", "approval.requested", "approval.decided"} <= kinds, kinds
        finally:
            store.close()


def test_held_then_denied_is_denied_on_resume(tmp_path: Path) -> None:
    exe = cli_binary("claude")
    proj = git_project(tmp_path / "proj")
    steps = [{"tool": "Bash", "input": {"command": "make deploy"}}, {"text": "ok"}]
    with host(tmp_path, {"cc": {"cwd": str(proj)}}) as h, FakeAnthropic(steps) as fake:
        env = claude_env(tmp_path / "home", fake.url, h.token("agent", "cc"), TETHER_HOLD="defer")
        argv = claude_code.argv("go", base=h.url, agent="cc", claude=exe)
        got = run(argv, env, proj)
        assert got["stop_reason"] == "tool_deferred"
        [row] = [a for a in h.call("GET", "/v1/approvals?agent=cc")[1]["approvals"]]
        h.deny(row["id"], "not on a Friday")
        done = run(claude_code.argv(None, resume=got["session_id"], base=h.url, agent="cc", claude=exe), env, proj)
        assert not (proj / "deployed.txt").exists()
        assert [d["tool_input"]["command"] for d in done["permission_denials"]] == ["make deploy"]
        assert any("not on a Friday" in r for r in tool_results(fake))


def _free_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = int(s.getsockname()[1])
    s.close()
    return port


def test_daemon_down_means_denied_not_allowed(tmp_path: Path) -> None:
    """With Claude Code's own permissions allowing Bash, a dead daemon still denies (onFailure: block); the
    same http hook without onFailure lets the command run, which is why tether sets it."""
    exe = cli_binary("claude")
    proj = git_project(tmp_path / "proj")
    dead = f"http://127.0.0.1:{_free_port()}"
    proc = tether("integrate", "claude-code", "--project", str(proj), "--agent", "cc", "--url", dead, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    hand = "by hand: export TETHER_TOKEN=$(tether token create --role agent --agent cc); claude -p"  # how to run one
    assert hand in proc.stdout and "TETHER_HOLD=defer" in proc.stdout, proc.stdout
    steps = [{"tool": "Bash", "input": {"command": "echo ran > ran.txt"}}, {"text": "ok"}]
    with FakeAnthropic(steps) as fake:
        env = claude_env(tmp_path / "home", fake.url, "tt_no_daemon")
        got = run([exe, "-p", "go", "--output-format", "json", "--allowedTools", "Bash"], env, proj)
        assert not (proj / "ran.txt").exists()
        assert [d["tool_name"] for d in got["permission_denials"]] == ["Bash"]
        assert any("blocking because onFailure" in r for r in tool_results(fake))

    settings = json.loads((proj / ".claude/settings.json").read_text())
    for group in settings["hooks"]["PreToolUse"]:
        for hook in group["hooks"]:
            hook.pop("onFailure")
    (proj / ".claude/settings.json").write_text(json.dumps(settings))
    with FakeAnthropic(steps) as fake:
        env["ANTHROPIC_BASE_URL"] = fake.url
        run([exe, "-p", "go", "--output-format", "json", "--allowedTools", "Bash"], env, proj)
        assert (proj / "ran.txt").exists()  # fails open without onFailure: block


def overlay_etc(tmp: Path) -> str | None:
    """A shell line that, run in a private mount namespace (``unshare -m``), overlays /etc with a scratch
    folder, so managed settings can be written without touching the host's /etc. None where impossible."""
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        return None
    up, work = tmp / "etc-up", tmp / "etc-work"
    up.mkdir(exist_ok=True)
    work.mkdir(exist_ok=True)
    mount = f"mount -t overlay overlay -o lowerdir=/etc,upperdir={up},workdir={work} /etc"
    if subprocess.run(["unshare", "-m", "sh", "-c", mount], capture_output=True).returncode != 0:
        return None
    return mount


def in_overlay(mount: str, setup: list[str], argv: list[str]) -> list[str]:
    import shlex

    return ["unshare", "-m", "sh", "-c", f'{mount} && {shlex.join(setup)} >/dev/null && exec "$@"', "sh", *argv]


def test_managed_hooks_survive_the_agent_switching_hooks_off(tmp_path: Path) -> None:
    """A project install can be switched off by the agent (disableAllHooks in settings.local.json); a managed
    install with allowManagedHooksOnly cannot."""
    exe = cli_binary("claude")
    mount = overlay_etc(tmp_path)
    if mount is None:
        pytest.skip("needs root, unshare and overlayfs to write managed settings without touching /etc")
    proj = git_project(tmp_path / "proj")
    steps = [{"tool": "Bash", "input": {"command": "rm -rf data"}}, {"text": "ok"}]
    (proj / ".claude").mkdir()
    (proj / ".claude/settings.local.json").write_text('{"disableAllHooks": true}\n')
    claude = [exe, "-p", "go", "--output-format", "json", "--allowedTools", "Bash"]
    with host(tmp_path, {"cc": {"cwd": str(proj)}}) as h:
        env = claude_env(tmp_path / "home", "", h.token("agent", "cc"))
        installed = tether("integrate", "claude-code", "--project", str(proj), "--agent", "cc", "--url", h.url)
        assert installed.returncode == 0, installed.stderr
        with FakeAnthropic(steps) as fake:
            run(claude, {**env, "ANTHROPIC_BASE_URL": fake.url}, proj)
        assert not (proj / "data").exists(), "expected the agent's disableAllHooks to switch project hooks off"
        (proj / "data").mkdir()
        (proj / "data" / "keep.txt").write_text("precious\n")  # an empty folder loses nothing: not held
        setup = [sys.executable, "-m", "tether", "integrate", "claude-code", "--managed", "--url", h.url]
        with FakeAnthropic(steps) as fake:
            got = run(in_overlay(mount, setup, claude), {**env, "ANTHROPIC_BASE_URL": fake.url}, proj)
            assert (proj / "data").exists()
            assert [d["tool_input"]["command"] for d in got["permission_denials"]] == ["rm -rf data"]
            assert any("tether blocked it" in r for r in tool_results(fake))
    managed = Path("/etc/claude-code/managed-settings.json")
    assert not managed.exists() or "v1/hooks" not in managed.read_text()  # the host's /etc is untouched


# -- the endpoint and the command hook, without the CLI -------------------------------------------------------


def pre_tool(command: str, cwd: Path, tool_use_id: str = "toolu_x") -> dict[str, Any]:
    return {"hook_event_name": "PreToolUse", "session_id": "s1", "cwd": str(cwd), "tool_name": "Bash",
            "tool_input": {"command": command}, "tool_use_id": tool_use_id}


def test_endpoint_auth_interactive_wait_and_ask(tmp_path: Path) -> None:
    proj = git_project(tmp_path / "proj")
    with host(tmp_path, {"cc": {"cwd": str(proj)}, "other": {}}) as h:
        tok = h.token("agent", "cc")
        assert h.call("POST", "/v1/hooks/claude-code/cc", pre_tool("ls", proj), token="tt_nope")[0] == 401
        assert h.call("POST", "/v1/hooks/claude-code/other", pre_tool("ls", proj), token=tok)[0] == 403
        code, got = h.call("POST", "/v1/hooks/claude-code", pre_tool("ls", proj), token=tok)  # the token's agent
        assert code == 200 and got["hookSpecificOutput"]["permissionDecision"] == "allow"
        code, got = h.call("POST", "/v1/hooks/claude-code/cc", {"hook_event_name": "PreToolUse"}, token=tok)
        assert got["hookSpecificOutput"]["permissionDecision"] == "deny"  # explicit, never empty
        # interactive: a bounded wait, then ask
        code, got = h.call("POST", "/v1/hooks/claude-code/cc", pre_tool("make deploy", proj), token=tok,
                           headers={"X-Tether-Wait": "0.5"})
        out = got["hookSpecificOutput"]
        assert out["permissionDecision"] == "ask" and "tether approve" in out["permissionDecisionReason"]
        # approved during the wait: allowed
        import threading

        def approve_soon() -> None:
            import time

            for _ in range(100):
                rows = h.call("GET", "/v1/approvals?agent=cc")[1]["approvals"]
                if rows:
                    h.approve(rows[0]["id"])
                    return
                time.sleep(0.05)

        t = threading.Thread(target=approve_soon)
        t.start()
        code, got = h.call("POST", "/v1/hooks/claude-code/cc", pre_tool("make deploy", proj), token=tok,
                           headers={"X-Tether-Wait": "20"})
        t.join()
        assert got["hookSpecificOutput"]["permissionDecision"] == "allow", got
        # monitoring events
        for p in ({"hook_event_name": "PostToolUseFailure", "tool_name": "Bash", "error": "Command timed out",
                   "session_id": "s1"},
                  {"hook_event_name": "Notification", "message": "Claude needs your permission", "session_id": "s1"}):
            assert h.call("POST", "/v1/hooks/claude-code/cc", p, token=tok) == (200, {})
        [err] = h.wait_events("error", "cc")
        assert err["error_type"] == "timeout" and err["tool"] == "Bash"
        assert h.wait_events("agent.waiting", "cc")[0]["message"] == "Claude needs your permission"


def hook(args: list[str], stdin: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if (not k.startswith("TETHER_") or k == "TETHER_SANDBOX")}
    return subprocess.run([sys.executable, "-I", str(HOOK_SCRIPT), *args], input=stdin, capture_output=True,
                          text=True, timeout=30, env={**base, **(env or {})})


def test_command_hook_fails_closed(tmp_path: Path) -> None:
    dead = f"http://127.0.0.1:{_free_port()}"
    event = json.dumps(pre_tool("ls", tmp_path))
    for args, stdin in ((["--client", "claude-code", "--url", dead], event),
                        (["--client", "codex", "--url", dead, "--event", "PreToolUse"], "not json"),
                        (["--client", "claude-code", "--event", "PreToolUse"], event),  # no URL
                        (["--client", "codex", "--bogus"], event)):
        proc = hook(args, stdin)
        assert proc.returncode == 2 and proc.stderr.strip(), (args, proc)
    # monitoring never blocks
    proc = hook(["--client", "claude-code", "--url", dead, "--event", "SessionStart"],
                json.dumps({"hook_event_name": "SessionStart"}))
    assert proc.returncode == 0
    # local mode: the runbook decides in-process (no daemon)
    proj = git_project(tmp_path / "proj")
    rb = Host(tmp_path, {"cc": {"cwd": str(proj)}}).runbook
    local = ["--client", "claude-code", "--local", "--runbook", str(rb), "--agent", "cc"]
    proc = subprocess.run([sys.executable, "-m", "tether.integrations.hook_command", *local],
                          input=json.dumps(pre_tool("rm -rf data", proj)), capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["hookSpecificOutput"]["permissionDecision"] == "deny"
    proc = subprocess.run([sys.executable, "-m", "tether.integrations.hook_command", *local[:-1], "nobody"],
                          input=json.dumps(pre_tool("ls", proj)), capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "nobody" in proc.stderr


def test_integrate_merges_is_idempotent_and_removes_exactly(tmp_path: Path) -> None:
    proj = tmp_path / "proj"
    (proj / ".claude").mkdir(parents=True)
    mine = {"model": "x", "hooks": {"PreToolUse": [{"matcher": "Bash", "hooks": [{"type": "command",
                                                                                 "command": "my-check"}]}],
                                    "Stop": [{"hooks": [{"type": "command", "command": "say done"}]}]}}
    settings = proj / ".claude/settings.json"
    settings.write_text(json.dumps(mine, indent=2))
    args = ["integrate", "claude-code", "--project", str(proj), "--agent", "cc", "--url", "http://127.0.0.1:7717"]
    first = tether(*args)
    assert first.returncode == 0 and "installed" in first.stdout, first.stderr
    merged = json.loads(settings.read_text())
    assert merged["hooks"]["PreToolUse"][0] == mine["hooks"]["PreToolUse"][0]
    ours = merged["hooks"]["PreToolUse"][1]["hooks"][0]
    assert ours["type"] == "http" and ours["onFailure"] == "block"
    assert ours["url"] == "http://127.0.0.1:7717/v1/hooks/claude-code/cc"
    assert ours["headers"]["Authorization"] == "Bearer $TETHER_TOKEN" and "TETHER_TOKEN" in ours["allowedEnvVars"]
    assert merged["hooks"]["SessionStart"][0]["hooks"][0]["type"] == "command"
    text = settings.read_text()
    again = tether(*args)
    assert again.returncode == 0 and "unchanged" in again.stdout and settings.read_text() == text
    gone = tether(*args, "--remove")
    assert gone.returncode == 0, gone.stderr
    assert json.loads(settings.read_text()) == mine
    # managed: allowManagedHooksOnly added, and removed only because tether added it
    managed = tmp_path / "etc" / "managed-settings.json"
    managed.parent.mkdir()
    managed.write_text('{"permissions": {"deny": ["Bash(curl:*)"]}}')
    claude_code.install(managed, "http://127.0.0.1:7717", None, managed=True)
    assert json.loads(managed.read_text())["allowManagedHooksOnly"] is True
    claude_code.remove(managed)
    assert json.loads(managed.read_text()) == {"permissions": {"deny": ["Bash(curl:*)"]}}
    assert not (managed.parent / ".tether-integration.json").exists()
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(Exception, match="not valid JSON"):
        claude_code.install(bad, "http://x", None)
    assert bad.read_text() == "{not json"
