"""A deferred Claude Code call released by a tap (issue 21), end to end: the daemon runs a `claude-code` agent
(the real `claude` CLI against the stand-in model API), its held `make deploy` defers the session and waits for a
human; the owner's Telegram (the stand-in Bot API on 127.0.0.1) gets the approval with buttons; a tap on Approve
makes the supervisor resume the session, and the held command runs."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

from fakes.anthropic_api import FakeAnthropic
from fakes.telegram_api import FakeTelegram
from fakes.tether_host import claude_env, cli_binary
from test_daemon_kit import Host, agent, make_host, wait_until  # noqa: F401 - the fixture
from test_integrations_claude import git_project

TG_TOKEN = "123456:AAtestTOKENfor-the-stand-in_claude0123"
OLIVE = 1001


def test_a_tap_releases_a_deferred_claude_code_call(make_host: Callable[..., Host], tmp_path: Path) -> None:  # noqa: F811
    exe = cli_binary("claude")
    proj = git_project(tmp_path / "proj")
    steps = [
        {"tool": "Bash", "input": {"command": "make deploy", "description": "deploy"}},
        {"text": "Done."},
    ]
    with FakeAnthropic(steps) as fake, FakeTelegram(TG_TOKEN) as tg:
        env = claude_env(tmp_path / "home", fake.url, "unused")
        env.pop("TETHER_TOKEN")
        env.pop("PATH")
        owner = {"name": "Olive Owner", "contact": "json://127.0.0.1:9/olive",
                 "telegram": {"token": "env:TG_TOKEN", "chat_id": OLIVE, "api": tg.url}}
        spec = agent([], kind="claude-code", prompt="ship it", cwd=str(proj), env=env, owner=owner,
                     restart={"policy": "on-failure"})
        h = make_host({"cc": spec})
        daemon = h.up(env={"TETHER_CLAUDE": exe, "PATH": os.environ["PATH"], "TG_TOKEN": TG_TOKEN})
        msg = tg.wait_for(lambda: next((m for m in tg.sent(OLIVE) if "make deploy" in m["text"]), None), 90)
        assert msg["text"].startswith("tether approval #") and " cc asks to " in msg["text"]
        approval_id = int(msg["text"].split("#", 1)[1].split(":", 1)[0])
        deferred = wait_until(
            lambda: any(e["kind"] == "session.deferred" for e in events(h)), 60, "the session to defer"
        )
        assert deferred and not (proj / "deployed.txt").exists(), "held: not run"

        qid = tg.tap(msg, tg.button(msg, "Approve"), OLIVE, "olive")
        assert tg.answer(qid)["text"].startswith(f"#{approval_id} cc: ")
        wait_until(lambda: (proj / "deployed.txt").exists(), 90, "the resumed session to run the approved command")
        row = h.sql("SELECT decided_by, state FROM approvals WHERE id = ?", (approval_id,))[0]
        assert row["decided_by"] == "Olive Owner (telegram)" and row["state"] in ("approved", "used")
        kinds = [e["kind"] for e in events(h)]
        assert kinds.index("session.deferred") < kinds.index("session.resumed")
        h.down(daemon)


def events(h: Host) -> list[dict[str, object]]:
    out = h.cli("events", "--agent", "cc", "-n", "500", "--json").stdout
    return [json.loads(line) for line in out.splitlines()]
