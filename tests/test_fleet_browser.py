"""The fleet (issue 10) in a real browser: two real daemons ("hosts" A and B, separate state directories)
share one PostgreSQL schema, and headless Chromium drives A's dashboard only. From A we see B's agent with
its node and both nodes up, approve the request B's SDK agent is waiting on (B's agent proceeds), kill B's
agent (B's daemon stops its process) and resume it, then see B lost after a SIGKILL of its daemon and a
kill for B's other agent left pending on it. Screenshots go to test-artifacts/dashboard/fleet-*.png."""

from __future__ import annotations

import re
import sys
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from test_daemon_kit import Host, agent, make_host, wait_until  # noqa: F401 - make_host is a fixture
from test_dashboard_browser import AGENT, shot
from test_dashboard_kit import CHROMIUM_ARGS, chromium_or_skip
from test_fleet import SLEEP, _pg, schema  # noqa: F401 - schema is a fixture
from test_fleet_ops import FAST
from test_store_postgres import _url

pytest.importorskip("psycopg")

COMMAND = "git push --force origin main"


@pytest.fixture
def page() -> Iterator[Any]:
    """A desktop-sized page of a fresh headless Chromium (every wait of it bounded to 15 s)."""
    chromium = chromium_or_skip()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        ctx = browser.new_context(viewport={"width": 1280, "height": 900})
        ctx.set_default_timeout(15_000)
        try:
            yield ctx.new_page()
        finally:
            ctx.close()
            browser.close()


def test_one_nodes_dashboard_sees_and_acts_on_the_whole_fleet(page: Any, schema: str,  # noqa: F811
                                                             make_host: Callable[..., Host]) -> None:  # noqa: F811
    from playwright.sync_api import expect

    url = _url(schema)
    a = make_host({"a1": agent(SLEEP)}, {"store": url, "name": "host-a"})
    b = make_host({}, {"store": url, "name": "host-b"})
    script = b.script("agent.py", AGENT)
    b.write({"b1": agent([sys.executable, script], env={"MARKER": str(b.root / "b1.marker")}),
             "b2": agent(SLEEP)}, {"store": url, "name": "host-b"})
    a.up(env=FAST)
    proc_b = b.up(env=FAST)
    wait_until(lambda: a.instances("a1") and b.instances("b1") and b.instances("b2"), 15, "every agent to run")

    # sign in to A's dashboard with A's admin token: B's agents listed with their node, both nodes up
    page.goto(a.url + "/")
    expect(page).to_have_url(a.url + "/login?next=%2F")
    page.fill("#token", a.admin_token())
    page.click("button[type=submit]")
    expect(page.locator("#live.on")).to_have_count(1)  # live (SSE connected)
    expect(page.locator("table.agents th", has_text="Node")).to_have_count(1)
    for name, node in (("a1", "host-a"), ("b1", "host-b"), ("b2", "host-b")):
        expect(page.locator(f"tr[data-agent={name}] td.node")).to_have_text(node)
    for node in ("host-a", "host-b"):
        expect(page.locator(f".nodes li[data-node={node}] .badge")).to_have_text("up")
    expect(page.locator(".nodes li[data-node=host-b]")).to_contain_text("2 agents")

    # B's SDK agent asks to force-push: the request shows on A, approved there, B's agent proceeds
    approval = wait_until(lambda: _pg(schema, "SELECT id FROM approvals WHERE agent = 'b1' AND state = 'pending'"),
                          15, "b1 to ask")[0]["id"]
    expect(page.locator("tr[data-agent=b1] .blocked")).to_contain_text(f"waiting for approval #{approval}")
    shot(page, "fleet", "overview")
    page.click("nav >> text=Approvals")
    expect(page.locator(f"#approval-{approval}")).to_contain_text(COMMAND)
    page.click(f"#approval-{approval} a.title")
    expect(page.locator("pre.cmd")).to_have_text(COMMAND)
    page.fill("#note", "approved on host A's dashboard")
    page.click("#approve")
    expect(page.locator("#approval-state")).to_have_text(re.compile("^(approved|used)$"))  # once: used
    wait_until(lambda: "decision: allow" in b.log("b1"), 10, "b1 on host B to hear of the approval")
    assert (b.root / "b1.marker").read_text() == "pushed"
    row = _pg(schema, "SELECT state, decided_by FROM approvals WHERE id = %s", (approval,))[0]
    assert row["state"] == "used", row  # approved once, and the waiting agent used it

    # the kill switch on A for B's agent: B's daemon stops its process tree; A shows it killed
    victims = b.agent_pids("b1")
    assert victims
    page.goto(f"{a.url}/agents/b1")
    page.click("#kill")
    page.fill("#reason", "from host A's dashboard")
    page.fill("#confirm", "b1")
    page.click("#confirm-kill")
    expect(page).to_have_url(f"{a.url}/agents/b1")
    wait_until(lambda: not b.agent_pids("b1"), 10, "b1 to be killed by host B's daemon")
    assert _pg(schema, "SELECT desired FROM agents WHERE name = 'b1'")[0]["desired"] == "killed"
    expect(page.locator("#agent-state")).to_have_text("killed")  # live: the agent page hears of it
    expect(page.locator("#events")).to_contain_text("KILLED")
    page.reload()  # held by B's kill file: A's page offers Resume (not Start) for it
    expect(page.locator(".agent-head .badge", has_text="kill switch on")).to_have_count(1)
    expect(page.locator(".actions button")).to_have_text(["Resume"])
    shot(page, "fleet", "killed")
    page.goto(a.url + "/")
    expect(page.locator("tr[data-agent=b1] .badge")).to_have_text("killed")
    assert b.instances("b2") and a.instances("a1")  # the others are untouched

    # resumed from A's agent page: B's daemon starts it again
    page.goto(f"{a.url}/agents/b1")
    page.click(".actions button:has-text('Resume')")
    wait_until(lambda: b.agent_pids("b1"), 10, "b1 to run again on host B")
    expect(page.locator("#agent-state")).not_to_have_text("killed")
    expect(page.locator(".actions button")).to_have_text(["Restart", "Stop", "Start"])
    page.goto(a.url + "/")

    # SIGKILL of B's daemon: A's dashboard shows node B lost (live), and a kill of B's other agent
    # is left pending on it, shown on the node and on the agent's row
    expect(page.locator("#live.on")).to_have_count(1)
    b.kill9(proc_b)
    expect(page.locator(".nodes li[data-node=host-b] .badge")).to_have_text("lost", timeout=20_000)
    expect(page.locator(".nodes li[data-node=host-a] .badge")).to_have_text("up")
    page.goto(f"{a.url}/agents/b2/kill")
    page.fill("#confirm", "b2")
    page.click("#confirm-kill")
    expect(page).to_have_url(f"{a.url}/agents/b2")
    page.goto(a.url + "/")
    expect(page.locator(".nodes li[data-node=host-b] .pending")).to_contain_text("kill b2 pending")
    expect(page.locator("tr[data-agent=b2] .fleet-note")).to_contain_text("kill pending on host-b")
    shot(page, "fleet", "lost")
    assert b.instances("b2")  # nobody can reach it until B's daemon returns
    assert [r["agent"] for r in _pg(schema, "SELECT agent FROM kill_requests WHERE applied IS NULL")] == ["b2"]
