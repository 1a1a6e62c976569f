"""Every kind inside the wall (issue 16): the real Codex CLI and ``tether exec`` run as the agent's own user
inside bubblewrap, with tether's hook (the daemon's own Python, which lives under /root here: the wall binds
it in, under an empty /root) reached and a blocked and a held call refused; the kinds' caches writable,
the rest of the private HOME not. The CLIs come from .ci/install-agents (skipped, with the reason, when
missing); nothing is copied: the wall exposes their install read-only."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from fakes.anthropic_api import FakeAnthropic
from fakes.openai_api import FakeResponses
from fakes.tether_host import cli_binary
from test_daemon_kit import PY, Host, agent, wait_until
from test_integrations_claude import git_project, tool_results
from test_wall import USER, root  # noqa: F401 - the fixture: a host folder for agents inside the wall
from tether.wall import kinds

RESTART = {"policy": "never", "backoff": {"base": "10m"}}


def _calls(h: Host, name: str, n: int) -> list[dict[str, object]]:
    got = wait_until(lambda: len(h.events("canary", name)) >= n and h.events("canary", name), 120, f"{name}'s canary")
    return [e["data"] for e in got]


@pytest.mark.wall
def test_codex_inside_the_wall_its_hook_refuses_blocked_and_held_calls(root: Path) -> None:  # noqa: F811
    """The canary passes inside the wall, then the agent's own run (through the egress proxy to the stand-in
    model, which is in scope): an allowed write lands, ``rm -rf data`` is blocked, ``make deploy`` is held
    for a human; the hook (``hook_command.py`` on the daemon's Python) answered each from inside."""
    exe = cli_binary("codex")
    ws = git_project(root / "ws" / "cx")
    steps = [
        {"tool": "exec_command", "input": {"cmd": "echo hello > out.txt"}},
        {"tool": "exec_command", "input": {"cmd": "rm -rf data"}},
        {"tool": "exec_command", "input": {"cmd": "make deploy"}},
        {"text": "Waiting for a human."},
    ]
    h = Host(root, {})
    with FakeResponses(steps) as fake:
        port = fake.url.rsplit(":", 1)[1].split("/")[0]
        spec = agent(
            [],
            kind="codex",
            prompt="ship it",
            cwd=str(ws),
            run_as=USER,
            restart=RESTART,
            env={"FAKE_OPENAI_KEY": "sk-test-dummy"},
            scope={"hosts": [f"127.0.0.1:{port}"]},
        )
        spec.pop("command")
        h.write({"cx": spec})
        # the agent's ~/.codex inside its wall; no sandbox_mode: nested in the wall Codex's own sandbox fails to
        # build ("error building bubblewrap command: Read-only file system"): tether turns it off (-s
        # danger-full-access), the wall is the sandbox here, and doctor says so
        codex_home = h.state / "agents" / "cx" / "home" / ".codex"
        codex_home.mkdir(parents=True)
        (codex_home / "config.toml").write_text(
            'model = "gpt-5-codex"\nmodel_provider = "fake"\n\n'
            f'[model_providers.fake]\nname = "fake"\nbase_url = "{fake.url}"\nwire_api = "responses"\n'
            'env_key = "FAKE_OPENAI_KEY"\n'
        )
        try:
            daemon = h.up(env={"TETHER_CODEX": exe})
            got = h.cli(
                "integrate", "codex", "--user", "--agent", "cx", "--url", h.url, env={"CODEX_HOME": str(codex_home)}
            )
            assert got.returncode == 0, got.stderr
            hook = json.loads((codex_home / "hooks.json").read_text())["hooks"]["PreToolUse"][0]["hooks"][0]
            assert hook["command"].startswith(PY), "the hook runs the daemon's own Python"
            doctor = h.cli("doctor").stdout
            assert "agent cx: Codex's own sandbox is off inside the wall" in doctor, doctor
            assert h.cli("start", "cx").returncode == 0
            [c] = _calls(h, "cx", 1)
            assert c["outcome"] == "passed", c
            wait_until(lambda: h.events("agent.exited", "cx"), 120, "the agent's own run to end")
            outputs = fake.tool_outputs()
            assert (ws / "out.txt").exists(), (outputs, h.log("cx"), h.log("cx", "stderr"))
            assert (ws / "out.txt").read_text() == "hello\n"
            assert (ws / "data" / "keep.txt").exists() and not (ws / "deployed.txt").exists()
            assert "tether blocked it" in outputs[1] and "data.delete" in outputs[1], outputs
            assert "tether is holding it for a human" in outputs[2], outputs
            rows = h.sql("SELECT state, action, detail FROM approvals WHERE agent = 'cx'")
            held = [r for r in rows if r["action"] == "deploy.production"]
            assert len(held) == 1 and held[0]["state"] == "pending" and "make deploy" in held[0]["detail"], rows
            # what the CLI reached for on its own (github.com, chatgpt.com) met the egress proxy: asked, not let out
            assert all(r["action"] == "network.egress" for r in rows if r not in held), rows
            started = h.events("agent.started", "cx")[0]["data"]
            uids = (
                {
                    line.split()[1]
                    for line in Path(f"/proc/{started['pid']}/status").read_text().splitlines()
                    if line.startswith("Uid:")
                }
                if Path(f"/proc/{started['pid']}/status").exists()
                else set()
            )
            assert "0" not in uids, "the agent never runs as root"
            assert h.down(daemon) == 0
        finally:
            h.cleanup()


@pytest.mark.wall
def test_claude_code_session_inside_the_wall(root: Path) -> None:  # noqa: F811
    """A real Claude Code session inside the wall, its CLI not copied (the wall exposes its install): the
    canary passes, then its own run: an allowed write lands, ``rm -rf data`` is blocked, ``make deploy`` is
    held (the run defers); its SessionStart command hook (the daemon's Python) reached the daemon."""
    exe = cli_binary("claude")
    ws = git_project(root / "ws" / "cc")
    steps = [
        {"tool": "Bash", "input": {"command": "echo hello > out.txt", "description": "write"}},
        {"tool": "Bash", "input": {"command": "rm -rf data", "description": "delete"}},
        {"tool": "Bash", "input": {"command": "make deploy", "description": "deploy"}},
        {"text": "Done."},
    ]
    h = Host(root, {})
    with FakeAnthropic(steps) as fake:
        port = fake.url.rsplit(":", 1)[1].split("/")[0]
        env = {
            "ANTHROPIC_BASE_URL": fake.url,
            "ANTHROPIC_API_KEY": "sk-ant-test-dummy",
            "DISABLE_AUTOUPDATER": "1",
            "DISABLE_TELEMETRY": "1",
            "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
        }
        spec = agent(
            [],
            kind="claude-code",
            prompt="ship it",
            cwd=str(ws),
            run_as=USER,
            restart=RESTART,
            env=env,
            scope={"hosts": [f"127.0.0.1:{port}"]},
        )
        spec.pop("command")
        h.write({"cc": spec})
        try:
            daemon = h.up(env={"TETHER_CLAUDE": exe})
            [c] = _calls(h, "cc", 1)
            assert c["outcome"] == "passed", c
            wait_until(lambda: h.events("agent.exited", "cc"), 120, "the agent's own run to end")
            assert (ws / "out.txt").exists(), (tool_results(fake), h.log("cc"), h.log("cc", "stderr"))
            assert (ws / "data" / "keep.txt").exists() and not (ws / "deployed.txt").exists()
            blocked = [r for r in tool_results(fake) if "nothing can restore it" in r]
            assert blocked and "tether blocked it" in blocked[0], tool_results(fake)
            held = [r for r in h.sql("SELECT state, action FROM approvals") if r["action"] == "deploy.production"]
            assert [r["state"] for r in held] == ["pending"], held
            assert h.events("session.started", "cc"), "the SessionStart hook ran inside the wall"
            assert h.down(daemon) == 0
        finally:
            h.cleanup()


@pytest.mark.wall
def test_tether_exec_inside_the_wall_asks_the_daemon(root: Path) -> None:  # noqa: F811
    """``tether exec`` from inside a walled command agent (the venv's ``tether`` script, whose Python lives
    under /root): an allowed command runs, a blocked one exits 126 and leaves the data; its hidden /root
    shows only what the wall bound back (no ``.bashrc``), and writing there fails."""
    ws = git_project(root / "ws" / "ex")
    tether_bin = str(Path(PY).parent / "tether")
    script = (
        f"{tether_bin} exec -- sh -c 'echo ran > ran.txt'; echo allowed=$?\n"
        f"{tether_bin} exec -- rm -rf data; echo blocked=$?\n"
        "if ls -A /root | grep -qx .bashrc; then echo root=visible; else echo root=masked; fi\n"
        "if touch /root/planted 2>/dev/null; then echo rootwrite=ALLOWED; else echo rootwrite=denied; fi\n"
        "echo done\nexec sleep 3600\n"
    )
    h = Host(root, {})
    h.write({"ex": agent(["sh", "-c", script], cwd=str(ws), run_as=USER, restart=RESTART)})
    try:
        daemon = h.up()
        wait_until(lambda: "done" in h.log("ex"), 60, "the script to finish")
        out = h.log("ex")
        assert "allowed=0" in out and (ws / "ran.txt").read_text() == "ran\n", (out, h.log("ex", "stderr"))
        assert "blocked=126" in out and (ws / "data" / "keep.txt").exists(), (out, h.log("ex", "stderr"))
        assert "tether: deny: rm deletes" in h.log("ex", "stderr")
        assert "root=masked" in out and "rootwrite=denied" in out, out
        assert h.down(daemon) == 0
    finally:
        h.cleanup()


def test_every_kind_declares_npm_and_pip_caches_and_never_all_of_home() -> None:
    for kind in ("command", "python", "claude-code", "codex", "openclaw"):
        need = kinds.needs(kind)
        assert {".npm", ".cache/pip"} <= set(need.writable), kind
        assert all(rel and rel not in (".", "./") and not os.path.isabs(rel) for rel in need.writable), kind
        assert all(any(r.startswith(w + "/") for w in need.writable) for r in need.read_only), kind
    assert ".codex" in kinds.needs("codex").writable and ".codex/hooks.json" in kinds.needs("codex").read_only
    assert ".claude/settings.json" in kinds.needs("claude-code").read_only


@pytest.mark.skipif(shutil.which("npm") is None, reason="npm is not installed")
def test_the_declared_caches_are_where_npm_and_pip_write(tmp_path: Path) -> None:
    """The tools' own defaults under HOME are the folders declared (npm's cache, pip's cache dir)."""
    env = {"HOME": str(tmp_path), "PATH": os.environ["PATH"]}
    npm = subprocess.run(["npm", "config", "get", "cache"], env=env, capture_output=True, text=True, timeout=60)
    assert npm.stdout.strip() == str(tmp_path / ".npm"), npm.stdout + npm.stderr
    pip = subprocess.run([PY, "-m", "pip", "cache", "dir"], env=env, capture_output=True, text=True, timeout=60)
    if pip.returncode == 0:
        assert pip.stdout.strip() == str(tmp_path / ".cache" / "pip"), pip.stdout


def test_runtime_trees_in_tmp_are_bound_back(monkeypatch: pytest.MonkeyPatch) -> None:
    """/tmp and /var/tmp are emptied inside the wall: tether's own interpreter or package living there (a
    checkout cloned into /tmp, as CI's was) must be bound back, or every hook and `tether exec` inside fails
    (exit 127, seen on a clean clone in /tmp)."""
    from tether.wall import kinds, plan, users

    tree = tempfile.mkdtemp(prefix="tether-venv-", dir="/tmp")
    try:
        os.chmod(tree, 0o755)
        monkeypatch.setattr(kinds, "runtime", lambda kind: [tree, "/usr"])
        nobody = users.AgentUser("nobody", 65534, 65534, frozenset({65534}))
        exposed, masked = plan._runtime("command", nobody, [])
        assert tree in exposed and "/usr" not in exposed and masked == []
    finally:
        os.rmdir(tree)
