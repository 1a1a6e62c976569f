"""A spent budget pauses its agent like a kill (every check refused, its processes stopped, the owner told);
only a human's reset lifts it. A real daemon, a real agent, usage reported with the agent's own token."""

from __future__ import annotations

import json

from test_daemon_kit import Host, agent, make_host, wait_until  # noqa: F401


def test_a_spent_budget_pauses_the_agent_until_a_human_resets_it(make_host) -> None:  # noqa: F811
    h: Host = make_host({"spender": agent(["sleep", "3600"], budgets={"usd_per_day": 1.0})})
    proc = h.up()
    try:
        wait_until(lambda: h.agent_pids("spender"), what="the agent running")
        token = h.agent_token("spender")
        code, _ = h.api("POST", "/v1/agents/spender/check", {"command": "ls"}, token=token)
        assert code == 200
        code, _ = h.api("POST", "/v1/agents/spender/report",
                        {"kind": "usage", "data": {"model": "m", "input_tokens": 10, "cost_usd": 1.5}}, token=token)
        assert code == 200
        wait_until(lambda: not h.agent_pids("spender"), timeout=15, what="the agent stopped for its budget")
        kill = json.loads((h.state / "agents" / "spender" / "KILL").read_text())
        assert kill["by"] == "tether budgets" and kill["reason"].startswith("budget: $1.50 spent today")
        [inc] = [i for i in h.incidents("budget", "spender") if i["state"] == "open"]
        assert "paused until a human raises or resets it" in inc["summary"]
        code, got = h.api("POST", "/v1/agents/spender/check", {"command": "ls"}, token=token)
        assert code == 200 and got["decision"] == "deny", got
        assert "killed by tether budgets" in got["reason"], got

        shown = h.cli("budget", "show", "--json")
        assert shown.returncode == 0, shown.stderr
        [row] = json.loads(shown.stdout)
        assert row["usd"] == 1.5 and row["spent"].startswith("$1.50 spent today")

        reset = h.cli("budget", "reset", "spender")
        assert reset.returncode == 0, reset.stderr
        assert "budget reset" in reset.stdout and "spender: resumed" in reset.stdout, reset.stdout
        wait_until(lambda: h.agent_pids("spender"), timeout=15, what="the agent running again")
        code, got = h.api("POST", "/v1/agents/spender/check", {"command": "ls"}, token=token)
        assert code == 200 and got["decision"] == "allow", got
        assert not (h.state / "agents" / "spender" / "KILL").exists() or \
            json.loads((h.state / "agents" / "spender" / "KILL").read_text() or "{}").get("armed") is False
    finally:
        h.down(proc)


def test_budget_commands_say_what_is_wrong(make_host) -> None:  # noqa: F811
    h: Host = make_host({"a": agent(["sleep", "3600"], autostart=False)})
    got = h.cli("budget", "reset", "nobody")
    assert got.returncode != 0 and "no agent named 'nobody'" in got.stderr and "Traceback" not in got.stderr
    got = h.cli("budget", "reset", "a", env={"TETHER_AGENT": "a", "TETHER_TOKEN": "x"})
    assert got.returncode != 0 and "blocked" in got.stderr
