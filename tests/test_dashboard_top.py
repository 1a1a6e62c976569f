"""``tether top``: the overview in a terminal, read from the store (no daemon needed)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from helpers import cli_env
from test_dashboard_kit import InProcess
from tether.store import NewEvent


def top(runbook: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "tether", "-f", str(runbook), "top", *args], capture_output=True,
                          text=True, timeout=60, env=cli_env({"COLUMNS": "170"}))


def test_top_shows_agents_host_approvals_and_incidents(tmp_path: Path) -> None:
    h = InProcess(tmp_path)
    try:
        h.store.append([
            NewEvent("usage", "a", {"model": "m", "input_tokens": 10, "output_tokens": 5, "cost_usd": 1.25}),
            NewEvent("error", "b", {"kind": "tool", "detail": "x"}),
            NewEvent("incident.opened", "b", {"kind": "stuck", "summary": "b is stuck on step 3"}),
        ])
        h.control.approvals.request("a", "git.push", "fp", classes=["git.push"], detail="git push --force origin main",
                                    rule="r", reason="r", timeout=600, escalate_after=600)
    finally:
        h.close()
    runbook = tmp_path / "tether.yaml"
    got = top(runbook, "--once")
    assert got.returncode == 0, got.stderr
    out = got.stdout
    for needle in ("tether top", "disk", "2 agents", "task of a", "waiting for approval #", "$1.25",
                   "pending approvals", "git push --force origin main", "open incidents", "b is stuck on step 3",
                   "daemon down"):
        assert needle in out, (needle, out)
    data = json.loads(top(runbook, "--json").stdout)
    assert [a["name"] for a in data["agents"]] == ["a", "b"]
    assert data["totals"]["pending_approvals"] == 1 and data["totals"]["open_incidents"] == 1
    live = top(runbook, "--frames", "2", "--interval", "0.1")
    assert live.returncode == 0, live.stderr
    assert "task of b" in live.stdout
