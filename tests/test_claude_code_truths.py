"""Issue 19, "what they see is true", for a `claude-code` agent the daemon runs: after a held call is approved
and the resumed session ends, `tether status` says what is so. The real Claude Code CLI against the stand-in
model API (as ``claude-opus-5-5``, Claude Code's default here), as in
tests/test_integrations_supervised.py.

- the state is ``idle``, done (not ``stopped`` on its restart policy), and nothing in ``blocked``;
- RESTARTS 0: resuming a deferred session is not a restart;
- the task is the user's prompt, not Claude Code's "Continue from where you left off."; the session's task
  closes when the resumed run ends, not when the deferred run's session ended;
- spend: Claude Code's own ``total_cost_usd`` (by model, ``modelUsage``), the two runs' figures summed once
  (the resumed run's result includes the first's); cache tokens counted as the usage events record them.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fakes.anthropic_api import USAGE, FakeAnthropic
from fakes.tether_host import claude_env, cli_binary
from test_daemon_kit import Host, agent, make_host, wait_until  # noqa: F401 - the fixture
from test_integrations_claude import git_project

MODEL = "claude-opus-5-5"


def _events(h: Host) -> list[dict[str, Any]]:
    out = h.cli("events", "--agent", "cc", "-n", "500", "--json").stdout
    return [json.loads(line) for line in out.splitlines()]


def _result_costs(log: Path) -> list[float]:
    """The ``total_cost_usd`` of each ``result`` the runs printed."""
    costs = []
    for line in log.read_text().splitlines():
        if line.startswith("{"):
            data = json.loads(line)
            if data.get("type") == "result":
                costs.append(float(data["total_cost_usd"]))
    return costs


def test_an_approved_claude_code_run_reads_true(make_host: Callable[..., Host], tmp_path: Path) -> None:  # noqa: F811
    exe = cli_binary("claude")
    proj = git_project(tmp_path / "proj")
    steps = [{"tool": "Bash", "input": {"command": "make deploy", "description": "deploy"}}, {"text": "Done."}]
    with FakeAnthropic(steps, model=MODEL) as fake:
        env = claude_env(tmp_path / "home", fake.url, "unused")
        env.pop("TETHER_TOKEN")
        env.pop("PATH")
        spec = agent([], kind="claude-code", prompt="ship it", cwd=str(proj), env=env,
                     restart={"policy": "on-failure"})
        h = make_host({"cc": spec})
        daemon = h.up(env={"TETHER_CLAUDE": exe, "PATH": os.environ["PATH"]})
        try:
            pending = wait_until(lambda: json.loads(h.cli("approvals", "--json").stdout or "[]"), 60,
                                 "the held command's approval")
            wait_until(lambda: h.state_of("cc") == "waiting_for_approval", 30, "the deferred run to end")
            session = next(e for e in _events(h) if e["kind"] == "session.started")["data"]["session_id"]
            assert h.cli("status").stdout.count("ship it") == 1, h.cli("status").stdout
            tasks = h.sql("SELECT state FROM tasks WHERE text = ?", (f"session {session}",))
            assert [t["state"] for t in tasks] == ["started"], "held for a human: its task goes on"

            assert h.cli("approve", str(pending[0]["id"])).returncode == 0
            wait_until(lambda: (proj / "deployed.txt").exists(), 60, "the resumed session to run the approved command")
            wait_until(lambda: h.state_of("cc") not in ("running", "starting", "waiting_for_approval"), 60,
                       "the resumed run to end")
            wait_until(lambda: len([e for e in _events(h) if e["kind"] == "usage"
                                    and e["data"].get("source") == "result"]) == 2, 10, "each run's spend")
            (doc,) = json.loads(h.cli("status", "--json").stdout)["agents"]
            assert doc["state"] == "idle" and doc["reason"].startswith("done: "), doc
            assert doc["blocked"] is None, doc
            assert doc["restarts"] == 0, "a resume is not a restart"
            assert doc["last_completed_task"] == "ship it" and doc["task"] is None, doc
            tasks = h.sql("SELECT state FROM tasks WHERE text = ?", (f"session {session}",))
            assert [t["state"] for t in tasks] == ["done"], tasks

            costs = _result_costs(h.state / "agents" / "cc" / "logs" / "stdout.log")
            assert len(costs) == 2 and costs[1] > costs[0] > 0, costs  # the second is the session's so far
            assert doc["spend_today_usd"] == round(costs[-1], 6), (doc, costs)
            assert doc["spend_note"] is None, "priced by Claude Code's own figure"
            calls = doc["usage_by_model"][MODEL]
            assert calls["cache_read"] == 2 * USAGE["cache_read_input_tokens"], calls
            assert calls["cache_write"] == 2 * USAGE["cache_creation_input_tokens"], calls
            assert doc["tokens_today"]["cache_read"] == calls["cache_read"], doc["tokens_today"]
            table = h.cli("status").stdout
            assert "Continue from" not in table and "restart policy" not in table, table
        finally:
            h.down(daemon)


def test_an_unpriced_model_reads_unpriced_and_a_failed_start_says_why(tmp_path: Path) -> None:
    """Tokens of a model neither its own figures nor the price table price read "unpriced model NAME", never
    only $0; an agent backing off after a start that failed shows why it failed, not only "restarting"."""
    from tether.status_report import report
    from tether.store import open_store

    store = open_store(f"sqlite:///{tmp_path / 'tether.db'}")
    try:
        store.emit("agent.registered", "cc", info={"kind": "claude-code"})
        store.emit("usage", "cc", model="claude-nova-9", input_tokens=120, output_tokens=30, cost_usd=None)
        store.emit("usage", "cc", model="claude-sonnet-4-5", input_tokens=100, cost_usd=0.0003)
        store.emit("agent.exited", "cc", code=None, error="$ANTHROPIC_API_KEY is not set")
        store.emit("agent.state", "cc", state="blocked", reason="cannot start: $ANTHROPIC_API_KEY is not set")
        store.emit("agent.state", "cc", state="starting", reason="restarting in 4.00s")
        (doc,) = report(store, "cc")
        assert doc["spend_note"] == "unpriced model claude-nova-9" and doc["spend_today_usd"] == 0.0003, doc
        assert doc["state"] == "starting", doc
        assert doc["reason"] == "cannot start: $ANTHROPIC_API_KEY is not set; restarting in 4.00s", doc
        store.emit("agent.started", "cc", pid=1, instance="x")
        (doc,) = report(store, "cc")
        assert "cannot start" not in str(doc["reason"]), "a run started since"
    finally:
        store.close()
