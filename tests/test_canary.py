"""The canary (``integrations.canary``, ``daemon.canarywatch``): before a claude-code or codex agent starts,
and daily, the daemon runs that agent's real CLI against its own stand-in model API, which asks for one
command the runbook blocks; the agent starts only when tether's hook denied it through the CLI.

The real CLIs come from .ci/install-agents (skipped, with the reason, when missing); the tests without them
cover a CLI that cannot run at all. Managed installs write under /etc only inside a private mount namespace
(an overlay), as tests/test_integrations_claude.py does."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from fakes.anthropic_api import FakeAnthropic
from fakes.openai_api import FakeResponses
from fakes.tether_host import claude_env, cli_binary, codex_env, codex_provider
from helpers import cli_env
from test_daemon_kit import PY, Host, agent, make_host, wait_until  # noqa: F401 - the fixture
from test_integrations_claude import _free_port, git_project, in_overlay, overlay_etc
from test_wall import USER, root  # noqa: F401 - the fixture: a host folder for agents inside the wall

Make = Callable[..., Host]
#: A refused start is retried after its backoff: long enough that each test sees one canary per start it asks for.
RESTART = {"policy": "never", "backoff": {"base": "10m"}}


def canaries(h: Host, name: str, n: int = 1, timeout: float = 90) -> list[dict[str, Any]]:
    got = wait_until(
        lambda: len(h.events("canary", name)) >= n and h.events("canary", name),
        timeout,
        f"{n} canary result(s) of {name}",
    )
    return [e["data"] for e in got]


def refused(h: Host, name: str, n: int = 1) -> str:
    """The reason of the agent's ``n``-th refused start (a blocked state, then its backoff), once recorded."""

    def reasons() -> list[str]:
        return [str(e["data"]["reason"]) for e in h.events("agent.state", name) if e["data"]["state"] == "blocked"]

    return wait_until(lambda: len(reasons()) >= n and reasons(), 90, f"{name}'s start to be refused")[n - 1]


def claude_agent(tmp_path: Path, proj: Path, api_url: str, **over: Any) -> dict[str, Any]:
    env = claude_env(tmp_path / "home", api_url, "unused")
    env.pop("TETHER_TOKEN")
    env.pop("PATH")
    spec: dict[str, Any] = {
        "kind": "claude-code",
        "prompt": "say done",
        "cwd": str(proj),
        "env": env,
        "restart": RESTART,
    }
    return agent([], **{**spec, **over})


def codex_agent(tmp_path: Path, proj: Path, **over: Any) -> dict[str, Any]:
    env = codex_env(tmp_path / "home", "unused")
    env.pop("TETHER_TOKEN")
    env.pop("PATH")
    spec: dict[str, Any] = {
        "kind": "codex",
        "prompt": "say done",
        "cwd": str(proj),
        "env": env,
        "restart": RESTART,
        "network": "open",
    }  # its own run reaches the stand-in API direct
    return agent([], **{**spec, **over})


def doctor(h: Host, name: str) -> str:
    out = h.cli("doctor").stdout
    return next((ln for ln in out.splitlines() if f"canary ({name})" in ln), out)


def no_canary_traces(h: Host, name: str) -> None:
    """The canary's session was not monitored (no task, session or verdict of its own), held nothing for a
    human, and its one-off token is revoked."""
    assert not h.sql("SELECT * FROM approvals"), "a canary is never held for a human"
    own = (h.state / "agents" / name / "agent.token").read_text().split("_")[2]  # the agent's, for its runs
    created = {e["data"]["token_id"] for e in h.events("token.created") if e["data"].get("for_agent") == name}
    revoked = {e["data"]["token_id"] for e in h.events("token.revoked")}
    assert own in created and created - {own} and created - {own} <= revoked, (own, created, revoked)
    commands = [e["data"].get("command", "") for e in h.events(agent=name)]
    assert not any("TETHER_CANARY_RUN" in str(c) for c in commands)
    assert not list((h.state / "agents" / name / "tmp").glob("tether-canary-*")), "the marker is removed"


# -- Claude Code -----------------------------------------------------------------------------------------------


def test_claude_code_canary_passes_then_the_agent_starts(make_host: Make, tmp_path: Path) -> None:  # noqa: F811
    exe = cli_binary("claude")
    proj = git_project(tmp_path / "proj")
    with FakeAnthropic([{"text": "Done."}]) as fake:
        h = make_host({"cc": claude_agent(tmp_path, proj, fake.url)})
        daemon = h.up(env={"TETHER_CLAUDE": exe})
        [c] = canaries(h, "cc")
        assert c["outcome"] == "passed" and c["trigger"] == "start", c
        assert c["client"].startswith("claude-cli/") and c["tool"] == "Bash" and c["seconds"] < 60, c
        wait_until(lambda: h.events("agent.exited", "cc"), 60, "the agent's own run to end")
        assert len(h.events("agent.started", "cc")) == 1
        assert fake.main_requests(), "the agent's run used its own model API"
        assert not any("TETHER_CANARY_RUN" in json.dumps(r) for r in fake.requests), "the canary never used it"
        assert len(h.events("session.started", "cc")) == 1, "only the agent's own session was monitored"
        no_canary_traces(h, "cc")
        line = doctor(h, "cc")
        assert line.startswith("ok") and "tether's hook denied the canary (claude" in line, line
        saved = json.loads((h.state / "agents" / "cc" / "canary.json").read_text())
        assert saved["outcome"] == "passed"
        assert h.down(daemon) == 0


def test_claude_code_start_refused_when_the_agent_switched_hooks_off(
    make_host: Make,  # noqa: F811
    tmp_path: Path,
) -> None:
    """``disableAllHooks`` in the project's settings.local.json switches off even the hooks tether passes with
    ``--settings``: the canary sees the hook never asked, and the agent does not start."""
    exe = cli_binary("claude")
    proj = git_project(tmp_path / "proj")
    (proj / ".claude").mkdir()
    (proj / ".claude" / "settings.local.json").write_text('{"disableAllHooks": true}\n')
    with FakeAnthropic([{"text": "Done."}]) as fake:
        h = make_host({"cc": claude_agent(tmp_path, proj, fake.url)})
        daemon = h.up(env={"TETHER_CLAUDE": exe})
        why = refused(h, "cc")
        assert why.startswith(
            "cannot start: the hook did not deny the canary: tether's PreToolUse hook was never "
            "asked about the canary's command"
        ), why
        assert "fix: sudo tether integrate claude-code --managed" in why
        assert len(why.splitlines()) == 1
        [inc] = wait_until(lambda: h.incidents("canary", "cc"), 10, "the canary incident")
        assert inc["state"] == "open" and "cc was not started" in inc["summary"]
        assert not h.events("agent.started", "cc") and not fake.requests, "nothing of the agent ran"
        assert canaries(h, "cc")[0]["outcome"] == "failed"
        line = doctor(h, "cc")
        assert line.startswith("fail") and "never asked" in line and "-> sudo tether integrate" in line, line
        # fixed: the next start's canary passes, the incident resolves, the agent runs
        (proj / ".claude" / "settings.local.json").unlink()
        h.cli("start", "cc")
        wait_until(lambda: h.events("agent.started", "cc"), 90, "the agent to start once the hooks are back")
        assert [c["outcome"] for c in canaries(h, "cc", 2)][-1] == "passed"
        wait_until(lambda: h.incidents("canary", "cc")[0]["state"] == "resolved", 10, "the incident to resolve")
        assert h.down(daemon) == 0


def test_claude_code_managed_install_passes_where_nothing_else_governs_it(
    make_host: Make,  # noqa: F811
    tmp_path: Path,
) -> None:
    """An agent whose runbook runs the CLI its own way (``command``) is governed only by installed hooks:
    none installed, its start is refused; ``tether integrate claude-code --managed`` (in /etc, here an overlay
    seen by the daemon alone), and its canary passes, even with the agent's disableAllHooks in place."""
    exe = cli_binary("claude")
    mount = overlay_etc(tmp_path)
    if mount is None:
        pytest.skip("needs root, unshare and overlayfs to write managed settings without touching /etc")
    proj = git_project(tmp_path / "proj")
    (proj / ".claude").mkdir()
    (proj / ".claude" / "settings.local.json").write_text('{"disableAllHooks": true}\n')
    port = _free_port()
    spec = agent(
        ["sleep", "600"],
        kind="claude-code",
        cwd=str(proj),
        restart=RESTART,
        env={"HOME": str(tmp_path / "home"), "CLAUDE_CONFIG_DIR": str(tmp_path / "home" / "cfg")},
    )
    h = make_host({"cc": spec}, host={"listen": f"127.0.0.1:{port}"})
    daemon = h.up(env={"TETHER_CLAUDE": exe})
    assert "the hook did not deny the canary" in refused(h, "cc")
    assert not h.events("agent.started", "cc")
    assert h.down(daemon) == 0

    setup = [PY, "-m", "tether", "integrate", "claude-code", "--managed", "--url", f"http://127.0.0.1:{port}"]
    daemon = up_in_overlay(h, mount, setup, {"TETHER_CLAUDE": exe})
    wait_until(lambda: h.events("agent.started", "cc"), 90, "the agent to start under managed hooks")
    assert canaries(h, "cc", 2)[-1]["outcome"] == "passed"
    assert h.down(daemon) == 0
    managed = Path("/etc/claude-code/managed-settings.json")
    assert not managed.exists() or "v1/hooks" not in managed.read_text(), "the host's /etc is untouched"


def test_the_daily_canary_opens_an_incident_for_a_running_agent(make_host: Make, tmp_path: Path) -> None:  # noqa: F811
    """Daily (here every 2 s): hooks switched off while the agent runs open a ``canary`` incident for its
    owner; the agent is not stopped; hooks back, the next canary passes and resolves it."""
    exe = cli_binary("claude")
    proj = git_project(tmp_path / "proj")
    spec = agent(
        ["sleep", "600"],
        kind="claude-code",
        cwd=str(proj),
        autostart=False,
        env={"HOME": str(tmp_path / "home"), "CLAUDE_CONFIG_DIR": str(tmp_path / "home" / "cfg")},
    )
    h = make_host({"cc": spec})
    daemon = h.up(env={"TETHER_CLAUDE": exe, "TETHER_CANARY_EVERY": "2s"})
    got = h.cli("integrate", "claude-code", "--project", str(proj), "--agent", "cc", "--url", h.url)
    assert got.returncode == 0, got.stderr
    assert h.cli("start", "cc").returncode == 0
    wait_until(lambda: h.events("agent.started", "cc"), 60, "the agent to start")
    (proj / ".claude" / "settings.local.json").write_text('{"disableAllHooks": true}\n')
    inc = wait_until(lambda: h.incidents("canary", "cc"), 60, "the daily canary's incident")[0]
    assert "cc runs, but the hook did not deny the canary" in inc["summary"], inc
    failed = [c for c in canaries(h, "cc", 2) if c["outcome"] == "failed"]
    assert failed and failed[0]["trigger"] == "daily"
    assert h.agent_pids("cc"), "a running agent is not stopped by the canary: its owner decides"
    (proj / ".claude" / "settings.local.json").unlink()
    wait_until(lambda: h.incidents("canary", "cc")[0]["state"] == "resolved", 60, "the next pass to resolve it")
    assert len(h.events("agent.started", "cc")) == 1
    assert h.down(daemon) == 0


@pytest.mark.wall
def test_claude_code_canary_runs_inside_the_agents_wall(root: Path) -> None:  # noqa: F811
    """The canary runs where the agent runs: its own user, inside bubblewrap, its private HOME and TMPDIR (the
    marker's place), the stand-in on 127.0.0.1 reached past the egress proxy. The CLI is copied into the
    workspace: the suite's copy lives under /root, which the agent's user cannot read."""
    exe = cli_binary("claude")
    ws = root / "ws" / "cc"
    (ws / "cli").mkdir(parents=True)
    cli = ws / "cli" / "claude"
    shutil.copy2(os.path.realpath(exe), cli)
    h = Host(root, {})
    with FakeAnthropic([{"text": "Done."}]) as fake:
        env = {"ANTHROPIC_BASE_URL": fake.url, "ANTHROPIC_API_KEY": "sk-ant-test-dummy", "DISABLE_AUTOUPDATER": "1"}
        h.write({"cc": agent([], kind="claude-code", prompt="say done", run_as=USER, restart=RESTART, env=env)})
        try:
            daemon = h.up(env={"TETHER_CLAUDE": str(cli)})
            [c] = canaries(h, "cc")
            assert c["outcome"] == "passed", c
            wait_until(lambda: h.events("agent.started", "cc"), 30, "the agent to start inside its wall")
            assert h.down(daemon) == 0
        finally:
            h.cleanup()


# -- Codex ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("model", ["gpt-5-codex", None])
def test_codex_canary_passes_then_the_agent_starts(
    make_host: Make,  # noqa: F811
    tmp_path: Path,
    model: str | None,
) -> None:
    """With a model whose shell tool is ``exec_command``, and with the CLI's default model, which offers only
    a JavaScript ``exec`` cell calling nested tools ("code mode"): the nested call meets the hook too."""
    exe = cli_binary("codex")
    proj = git_project(tmp_path / "proj")
    home = tmp_path / "home"
    with FakeResponses([{"text": "Done."}]) as fake:
        codex_provider(home, fake.url)
        if model is None:
            config = home / "codex" / "config.toml"
            config.write_text(config.read_text().replace('model = "gpt-5-codex"\n', ""))
        h = make_host({"cx": codex_agent(tmp_path, proj, autostart=False)})
        daemon = h.up(env={"TETHER_CODEX": exe})
        got = h.cli(
            "integrate", "codex", "--user", "--agent", "cx", "--url", h.url, env={"CODEX_HOME": str(home / "codex")}
        )
        assert got.returncode == 0, got.stderr
        assert h.cli("start", "cx").returncode == 0
        [c] = canaries(h, "cx")
        assert c["outcome"] == "passed" and c["client"].startswith("codex"), c
        assert c["tool"] == ("exec_command" if model else "exec"), c
        wait_until(lambda: h.events("agent.exited", "cx"), 60, "the agent's own run to end")
        assert fake.requests and not any("TETHER_CANARY_RUN" in json.dumps(r) for r in fake.requests)
        no_canary_traces(h, "cx")
        assert doctor(h, "cx").startswith("ok"), doctor(h, "cx")
        assert h.down(daemon) == 0


def test_codex_start_refused_without_hooks_and_when_the_hook_is_made_to_allow(
    make_host: Make,  # noqa: F811
    tmp_path: Path,
) -> None:
    """No tether hook: never asked. A hook that asks tether and then exits 0 (Codex runs the tool when a hook
    exits 0 without a decision): denied by tether and run anyway. Both refuse the start."""
    exe = cli_binary("codex")
    proj = git_project(tmp_path / "proj")
    home = tmp_path / "home"
    with FakeResponses([{"text": "Done."}]) as fake:
        codex_provider(home, fake.url)
        config = home / "codex" / "config.toml"  # nothing but the hook stands in the way:
        config.write_text('sandbox_mode = "danger-full-access"\n' + config.read_text())
        port = _free_port()
        h = make_host({"cx": codex_agent(tmp_path, proj)}, host={"listen": f"127.0.0.1:{port}"})
        daemon = h.up(env={"TETHER_CODEX": exe})
        why = refused(h, "cx")
        assert "the hook did not deny the canary: tether's PreToolUse hook was never asked" in why, why
        assert "the CLI ran it" in why and "fix: sudo tether integrate codex --managed" in why, why
        assert h.down(daemon) == 0

        got = h.cli(
            "integrate",
            "codex",
            "--user",
            "--agent",
            "cx",
            "--url",
            f"http://127.0.0.1:{port}",
            env={"CODEX_HOME": str(home / "codex")},
        )
        assert got.returncode == 0, got.stderr
        hooks_json = home / "codex" / "hooks.json"
        hooks = json.loads(hooks_json.read_text())
        for group in hooks["hooks"]["PreToolUse"]:
            for hook in group["hooks"]:  # tether is asked, its deny is swallowed: exit 0, no output
                hook["command"] = f"{hook['command']} >/dev/null 2>&1; exit 0"
        hooks_json.write_text(json.dumps(hooks))
        daemon = h.up(env={"TETHER_CODEX": exe})
        why = refused(h, "cx", 2)
        assert "tether's hook denied the canary's command and the CLI ran it anyway" in why, why
        assert not h.events("agent.started", "cx") and not fake.requests
        assert h.down(daemon) == 0


def test_codex_managed_install_passes_without_a_trust_step(make_host: Make, tmp_path: Path) -> None:  # noqa: F811
    """An agent whose runbook runs codex its own way gets no --dangerously-bypass-hook-trust: only managed
    hooks (requirements.toml, no trust step) govern it, and then its canary passes."""
    exe = cli_binary("codex")
    mount = overlay_etc(tmp_path)
    if mount is None:
        pytest.skip("needs root, unshare and overlayfs to write /etc/codex without touching the host's /etc")
    proj = git_project(tmp_path / "proj")
    home = tmp_path / "home"
    codex_provider(home, "http://127.0.0.1:9/v1")
    port = _free_port()
    spec = agent(
        ["sleep", "600"],
        kind="codex",
        cwd=str(proj),
        restart=RESTART,
        env={"HOME": str(home), "CODEX_HOME": str(home / "codex")},
    )
    h = make_host({"cx": spec}, host={"listen": f"127.0.0.1:{port}"})
    setup = [PY, "-m", "tether", "integrate", "codex", "--managed", "--url", f"http://127.0.0.1:{port}"]
    daemon = up_in_overlay(h, mount, setup, {"TETHER_CODEX": exe})
    wait_until(lambda: h.events("agent.started", "cx"), 90, "the agent to start under managed hooks")
    [c] = canaries(h, "cx")
    assert c["outcome"] == "passed", c
    assert h.down(daemon) == 0
    req = Path("/etc/codex/requirements.toml")
    assert not req.exists() or "tether" not in req.read_text(), "the host's /etc is untouched"


# -- without a CLI that works -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "cli, expect",
    [
        ("/nonexistent/claude", "could not run the canary: cannot run /nonexistent/claude: No such file or directory"),
        ("/bin/true", "could not run the canary: the CLI exited 0 before asking the stand-in model API: no output"),
    ],
)
def test_a_cli_that_cannot_run_the_canary_refuses_the_start(
    make_host: Make,  # noqa: F811
    tmp_path: Path,
    cli: str,
    expect: str,
) -> None:
    h = make_host({"cc": agent([], kind="claude-code", prompt="x", restart=RESTART)})
    daemon = h.up(env={"TETHER_CLAUDE": cli})
    why = refused(h, "cc")
    assert why.startswith(f"cannot start: {expect}"), why
    [c] = canaries(h, "cc")[:1]
    assert c["outcome"] == "error" and c["trigger"] == "start"
    assert not h.events("agent.started", "cc")
    assert h.incidents("canary", "cc")
    assert h.down(daemon) == 0


def test_a_refused_start_gives_its_task_back_to_the_queue(make_host: Make) -> None:  # noqa: F811
    """A queue-driven agent claims its next task before it starts: a refused start puts it back, unchanged."""
    h = make_host({"cc": agent([], kind="claude-code", restart=RESTART)})
    daemon = h.up(env={"TETHER_CLAUDE": "/bin/true"})
    assert h.cli("task", "add", "cc", "tidy the docs").returncode == 0
    assert "could not run the canary" in refused(h, "cc")
    [back] = wait_until(lambda: h.events("task.requeued", "cc"), 10, "the task to go back")
    assert back["data"]["attempts"] == 0 and "not started: could not run the canary" in back["data"]["note"]
    [task] = h.sql("SELECT * FROM tasks")
    assert task["state"] == "queued" and task["text"] == "tidy the docs"
    assert h.down(daemon) == 0


def test_canary_off_host_wide_and_command_agents_untouched(make_host: Make) -> None:  # noqa: F811
    """``TETHER_CANARY=off`` in the daemon's environment: no canary; ``command`` agents never have one."""
    h = make_host({"cc": agent(["sleep", "600"], kind="claude-code"), "plain": agent(["sleep", "600"])})
    daemon = h.up(env={"TETHER_CLAUDE": "/nonexistent/claude", "TETHER_CANARY": "off"})
    wait_until(lambda: h.events("agent.started", "cc") and h.events("agent.started", "plain"), 30, "both to start")
    assert not h.events("canary")
    assert h.down(daemon) == 0


def up_in_overlay(h: Host, mount: str, setup: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    """The daemon (and so every CLI it runs) in a private mount namespace whose /etc is an overlay in which
    ``setup`` ran first."""
    log = open(h.root / "daemon.log", "ab")  # noqa: SIM115 - the child's
    argv = in_overlay(mount, setup, [PY, "-m", "tether", "-f", str(h.runbook), "up", "--foreground"])
    proc = subprocess.Popen(
        argv, env=cli_env({"TETHER_TEST_MARK": h.mark, **env}), stdout=log, stderr=log, stdin=subprocess.DEVNULL
    )
    log.close()
    h.daemons.append(proc)
    h.wait_up(proc)
    return proc
