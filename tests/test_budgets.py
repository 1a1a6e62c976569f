"""A spent daily budget blocks every further gated action (reads and tests still run) and opens one
incident; usage from another day does not count."""

from __future__ import annotations

import time
from pathlib import Path

from tether.approvals import Approvals
from tether.boundary import Boundary, Gatekeeper, Request
from tether.runbook import load
from tether.store import NewEvent, open_store

RUNBOOK = """
version: 1
host: {{state_dir: {state}}}
agents:
  spender:
    owner: {{name: A, contact: "json://127.0.0.1/a"}}
    backup: {{name: B, contact: "json://127.0.0.1/b"}}
    command: ["true"]
    cwd: {cwd}
    budgets: {{tokens_per_day: 1000, usd_per_day: 5}}
"""


def _gatekeeper(tmp_path: Path) -> Gatekeeper:
    (tmp_path / "work").mkdir()
    rb = tmp_path / "tether.yaml"
    rb.write_text(RUNBOOK.format(state=tmp_path / "state", cwd=tmp_path / "work"))
    loaded = load(rb)
    store = open_store(loaded.store_url)
    return Gatekeeper(Boundary(loaded), Approvals(store))


def test_spent_tokens_block_every_action_and_open_one_incident(tmp_path: Path) -> None:
    gk = _gatekeeper(tmp_path)
    store = gk.store
    assert gk.check("spender", Request(command="pip install requests")).decision == "allow"  # deps.install: log
    store.append([NewEvent("usage", "spender", {"model": "m", "input_tokens": 5000, "cost_usd": 0.1},
                           time.time() - 86400)])  # yesterday's usage does not count
    assert gk.budget_spent("spender") is None
    store.emit("usage", "spender", model="m", input_tokens=900, output_tokens=150, cost_usd=0.2)
    assert "1,050 tokens today" in (gk.budget_spent("spender") or "")
    for _ in range(3):
        got = gk.check("spender", Request(command="pip install requests"))
        assert got.decision == "deny" and got.rule == "budgets" and "budget" in got.reason
    got = gk.check("spender", Request(command="ls -la"))  # a spent budget stops everything, reads included
    assert got.decision == "deny" and got.rule == "budgets"
    assert [i["kind"] for i in store.incidents("open", "spender")] == ["budget"]
    store.close()


def test_spent_dollars_block_too(tmp_path: Path) -> None:
    gk = _gatekeeper(tmp_path)
    gk.store.emit("usage", "spender", model="m", input_tokens=1, cost_usd=5.5)
    got = gk.check("spender", Request(command="git push --force origin main"))
    assert got.decision == "deny" and "$5.50 spent today" in got.reason
    gk.store.close()


def test_accounts_a_command_touches_become_the_accounts_touched_signal(tmp_path: Path) -> None:
    from tether.signals import agent_signals

    gk = _gatekeeper(tmp_path)
    gk.check("spender", Request(command="aws s3 ls --profile prod"))
    gk.check("spender", Request(command="gh pr list --repo acme/app"))
    touched = agent_signals(gk.store)["spender"]["accounts_touched"]
    assert "aws:prod" in touched and any("acme/app" in a for a in touched), touched
    gk.store.close()


# --- the figures behind it: resets and burn rate (pure, and the store's reset row) ---------------

def test_a_reset_counts_today_afresh_and_keeps_the_figures(tmp_path: Path) -> None:
    from tether import budgets

    gk = _gatekeeper(tmp_path)
    store = gk.store
    store.emit("usage", "spender", model="m", input_tokens=900, output_tokens=150, cost_usd=0.2)
    assert gk.budget_spent("spender") is not None
    before = budgets.reset(store, "spender", by="ana")
    assert before == budgets.Spend(1050, 0.2)
    assert gk.budget_spent("spender") is None
    assert gk.check("spender", Request(command="ls")).decision == "allow"
    store.emit("usage", "spender", model="m", input_tokens=999)
    assert gk.budget_spent("spender") is None  # 999 since the reset
    store.emit("usage", "spender", model="m", input_tokens=1)
    assert "1,000 tokens today" in (gk.budget_spent("spender") or "")
    assert sum(r["input_tokens"] for r in store.usage("spender")) == 1900, "the day's figures are all kept"
    store.close()


def test_burning_far_above_the_usual_pace_is_seen_before_the_budget_is_gone() -> None:
    from tether import budgets
    from tether.runbook.model import Budgets

    b = Budgets(usd_per_day=10.0)
    noon = 1_767_225_600.0 + 12 * 3600  # 2026-01-01T12:00Z
    usual = {f"2025-12-{d:02d}": budgets.Spend(0, 1.0) for d in range(25, 32)}
    # $3 by noon is a $6 day, 6x its usual $1, with the budget not yet gone
    assert "6.0x its usual" in (budgets.burning(b, usual, budgets.Spend(0, 3.0), noon) or "")
    assert budgets.burning(b, usual, budgets.Spend(0, 1.0), noon) is None  # 2x: its usual pace, near enough
    assert budgets.burning(b, usual, budgets.Spend(0, 10.0), noon) is None  # gone: that is `over`, not a burn
    assert budgets.burning(b, {"2025-12-31": budgets.Spend(0, 1.0)}, budgets.Spend(0, 3.0), noon) is None
    assert budgets.burning(Budgets(), usual, budgets.Spend(0, 3.0), noon) is None  # no budget, no alarm
