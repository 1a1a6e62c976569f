"""A `claude-code` agent run by the daemon itself: the supervisor starts `claude -p` on the agent's prompt,
an allowed command runs, a held one defers (the CLI exits, nothing restarts it as a crash), and once a human
approves, the supervisor resumes the session with `--resume` and the held command runs."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

from fakes.anthropic_api import FakeAnthropic
from fakes.tether_host import claude_env, cli_binary
from test_daemon_kit import Host, agent, make_host, wait_until  # noqa: F401 - the fixture
from test_integrations_claude import git_project


def test_the_supervisor_runs_defers_and_resumes_claude_code(
    make_host: Callable[..., Host], tmp_path: Path  # noqa: F811
) -> None:
    exe = cli_binary("claude")
    proj = git_project(tmp_path / "proj")
    steps = [
        {"tool": "Bash", "input": {"command": "echo hello > out.txt", "description": "write"}},
        {"tool": "Bash", "input": {"command": "make deploy", "description": "deploy"}},
        {"text": "Done."},
    ]
    with FakeAnthropic(steps) as fake:
        env = claude_env(tmp_path / "home", fake.url, "unused")
        env.pop("TETHER_TOKEN")
        env.pop("PATH")
        spec = agent([], kind="claude-code", prompt="ship it", cwd=str(proj), env=env,
                     restart={"policy": "on-failure"})
        h = make_host({"cc": spec})
        daemon = h.up(env={"TETHER_CLAUDE": exe, "PATH": os.environ["PATH"]})
        wait_until(lambda: (proj / "out.txt").exists(), 60, "the allowed command to run")
        pending = wait_until(lambda: h.cli("approvals", "--json").stdout.strip() not in ("", "[]")
                             and h.cli("approvals", "--json").stdout, 60, "the held command's approval")
        [held] = json.loads(pending)
        assert "make deploy" in held["detail"]
        assert not (proj / "deployed.txt").exists(), "held: not run"
        assert h.cli("approve", str(held["id"])).returncode == 0
        wait_until(lambda: (proj / "deployed.txt").exists(), 60, "the resumed session to run the approved command")
        out = h.cli("events", "--agent", "cc", "-n", "500", "--json").stdout
        events = [json.loads(line) for line in out.splitlines()]
        kinds = [e["kind"] for e in events]
        assert "session.deferred" in kinds and "session.resumed" in kinds
        assert not any(e["kind"] == "agent.state" and e["data"].get("state") == "crashloop" for e in events)
        h.down(daemon)
