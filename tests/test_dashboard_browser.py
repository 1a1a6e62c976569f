"""A real browser (Debian's chromium, driven by Playwright) against a real daemon (``tether up
--foreground`` on 127.0.0.1): sign in, see the agents, approve a pending request and see the waiting
agent proceed, at a desktop size and at a phone's 390×844 with no horizontal scroll. A screenshot of
each page is kept in test-artifacts/dashboard/."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from test_dashboard_kit import ARTIFACTS, BACKUP, CHROMIUM_ARGS, PERSON, chromium_or_skip

AGENT = """
import os, sys, time
from tether.sdk import Agent
a = Agent.from_env()
a.heartbeat(task="release", progress="asking to force-push")
a.report("usage", model="claude-sonnet", input_tokens=12000, output_tokens=3000, cost_usd=0.07)
a.files_changed("CHANGELOG.md")
print("asking to push", flush=True)
got = a.check(command="git push --force origin main", wait=60)
print("decision:", got["decision"], flush=True)
if got["decision"] == "allow":
    with open(os.environ["MARKER"], "w") as f:
        f.write("pushed")
    a.report("log", line="pushed to main after approval")
    a.heartbeat(task="release", progress="pushed")
while True:
    a.heartbeat(task="release", progress="done")
    time.sleep(1)
"""


class Daemon:
    def __init__(self, root: Path) -> None:
        self.root = root
        script = root / "agent.py"
        script.write_text(AGENT)
        agents = {
            name: {"owner": PERSON, "backup": BACKUP, "command": [sys.executable, str(script)],
                   "env": {"MARKER": str(root / f"{name}.marker")},
                   "heartbeat": {"interval": "1s", "stale_after": "1m", "stuck_after": "10m"},
                   "approvals": {"timeout": "5m", "escalate_after": "5m"}, "kill": {"grace": "1s"},
                   "sandbox": "off"}  # a module-wide daemon: made before the per-test TETHER_SANDBOX=off
            for name in ("desk", "phone", "nojs")
        }
        self.runbook = root / "tether.yaml"
        self.runbook.write_text(yaml.safe_dump({
            "version": 1, "host": {"state_dir": str(root / "state"), "workspace_root": str(root / "ws"),
                                   "listen": "127.0.0.1:0"},
            "agents": agents,
        }))
        env = {k: v for k, v in os.environ.items() if (not k.startswith("TETHER_") or k == "TETHER_SANDBOX")}
        self.log = open(root / "daemon.log", "ab")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen([sys.executable, "-m", "tether", "-f", str(self.runbook), "up", "--foreground"],
                                     stdout=self.log, stderr=self.log, stdin=subprocess.DEVNULL, env=env,
                                     start_new_session=True)
        deadline = time.monotonic() + 30
        while True:
            with contextlib.suppress(OSError, ValueError):
                info = json.loads((root / "state" / "daemon.json").read_text())
                if info.get("pid") == self.proc.pid:
                    self.url = str(info["url"])
                    break
            assert self.proc.poll() is None, (root / "daemon.log").read_text()[-2000:]
            assert time.monotonic() < deadline, "the daemon did not come up in 30s"
            time.sleep(0.05)
        made = subprocess.run([sys.executable, "-m", "tether", "-f", str(self.runbook), "token", "create", "--role",
                               "approver"], capture_output=True, text=True, env=env, timeout=30)
        assert made.returncode == 0, made.stderr
        self.approver = made.stdout.strip()

    def pending(self, agent: str) -> int:
        import sqlite3

        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            conn = sqlite3.connect(f"file:{self.root / 'state' / 'tether.db'}?mode=ro", uri=True)
            try:
                row = conn.execute("SELECT id FROM approvals WHERE agent = ? AND state = 'pending'",
                                   (agent,)).fetchone()
            finally:
                conn.close()
            if row:
                return int(row[0])
            time.sleep(0.1)
        raise AssertionError(f"{agent} never asked: {(self.root / 'daemon.log').read_text()[-2000:]}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)
        self.log.close()


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Daemon]:
    chromium_or_skip()
    d = Daemon(tmp_path_factory.mktemp("browser"))
    yield d
    d.stop()


@pytest.fixture(scope="module")
def browser(daemon: Daemon) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=chromium_or_skip(), args=CHROMIUM_ARGS)
        yield b
        b.close()


def shot(page: Any, size: str, name: str) -> None:
    out = ARTIFACTS / "dashboard"
    out.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(out / f"{size}-{name}.png"), full_page=True)


def no_horizontal_scroll(page: Any, what: str) -> None:
    widths = page.evaluate("[document.documentElement.scrollWidth, document.documentElement.clientWidth]")
    assert widths[0] <= widths[1], f"{what}: the page scrolls sideways ({widths[0]} > {widths[1]})"


def approve_flow(browser: Any, daemon: Daemon, agent: str, size: str, viewport: dict[str, int], phone: bool) -> None:
    from playwright.sync_api import expect

    approval = daemon.pending(agent)
    ctx = browser.new_context(viewport=viewport, is_mobile=phone, has_touch=phone,
                              device_scale_factor=2 if phone else 1)
    ctx.set_default_timeout(15_000)
    try:
        page = ctx.new_page()
        page.goto(daemon.url + "/")
        expect(page).to_have_url(daemon.url + "/login?next=%2F")
        shot(page, size, "login")
        page.fill("#token", daemon.approver)
        page.click("button[type=submit]")
        for name in ("desk", "phone", "nojs"):  # signed in: the agents
            expect(page.locator(f"tr[data-agent={name}]")).to_be_visible()
        expect(page.locator(f"tr[data-agent={agent}] .blocked")).to_contain_text(f"waiting for approval #{approval}")
        expect(page.locator("#live.on")).to_have_count(1)  # the page is live (SSE connected)
        no_horizontal_scroll(page, "overview")
        shot(page, size, "overview")

        # a second tab stays on the agent's page: it must see the agent proceed, live
        watch = ctx.new_page()
        watch.goto(f"{daemon.url}/agents/{agent}")
        expect(watch.locator("#agent-state")).to_be_visible()
        expect(watch.locator("#live.on")).to_have_count(1)
        no_horizontal_scroll(watch, "agent page")

        page.click("nav >> text=Approvals")
        expect(page.locator(f"#approval-{approval}")).to_contain_text("git push --force origin main")
        no_horizontal_scroll(page, "approvals")
        shot(page, size, "approvals")
        page.click(f"#approval-{approval} a.title")
        expect(page).to_have_url(f"{daemon.url}/approvals/{approval}")
        expect(page.locator("pre.cmd")).to_have_text("git push --force origin main")
        no_horizontal_scroll(page, "approval")
        shot(page, size, "approval")
        page.fill("#note", f"ok from the {size} browser")
        page.click("#approve")
        expect(page.locator("#approval-state")).to_have_text(re.compile("^(approved|used)$"))  # once: used
        marker = daemon.root / f"{agent}.marker"
        deadline = time.monotonic() + 15
        while not marker.exists():
            assert time.monotonic() < deadline, f"{agent} did not proceed after the approval"
            time.sleep(0.05)
        assert marker.read_text() == "pushed"
        # the watching tab hears of it through SSE, without a reload
        expect(watch.locator("#events")).to_contain_text("pushed to main after approval")
        expect(watch.locator("#events")).to_contain_text(f"approval #{approval} approved")
        shot(watch, size, "agent")
        # a notification's link, opened from another site (mail, chat): the SameSite=Strict cookie is not
        # sent on that navigation, and the page comes back once on its own to open signed in
        page.goto(f"data:text/html,<a id=notification href='{daemon.url}/approvals/{approval}'>approval</a>")
        page.click("#notification")
        expect(page).to_have_url(f"{daemon.url}/approvals/{approval}?bounced=1")
        expect(page.locator("#approval-state")).to_have_text(re.compile("^(approved|used)$"))  # once: used
        page.goto(daemon.url + "/incidents")
        no_horizontal_scroll(page, "incidents")
        shot(page, size, "incidents")
        page.goto(daemon.url + "/audit")
        expect(page.locator("#audit-status")).to_contain_text("The chain is intact")
        no_horizontal_scroll(page, "audit")
        shot(page, size, "audit")
    finally:
        ctx.close()


def test_desktop_sign_in_see_agents_approve_and_the_agent_proceeds(browser: Any, daemon: Daemon) -> None:
    approve_flow(browser, daemon, "desk", "desktop", {"width": 1280, "height": 900}, phone=False)


def test_phone_390x844_same_without_horizontal_scroll(browser: Any, daemon: Daemon) -> None:
    approve_flow(browser, daemon, "phone", "phone", {"width": 390, "height": 844}, phone=True)


def test_deny_with_javascript_off(browser: Any, daemon: Daemon) -> None:
    """Plain forms: sign in and deny (with a reason) in a browser that runs no script at all."""
    from playwright.sync_api import expect

    approval = daemon.pending("nojs")
    ctx = browser.new_context(viewport={"width": 390, "height": 844}, java_script_enabled=False)
    ctx.set_default_timeout(15_000)
    try:
        page = ctx.new_page()
        page.goto(f"{daemon.url}/approvals/{approval}")
        page.fill("#token", daemon.approver)
        page.click("button[type=submit]")
        expect(page).to_have_url(f"{daemon.url}/approvals/{approval}")  # back where the link pointed
        page.fill("#reason", "not on main, please")
        page.click("#deny")
        expect(page.locator("#approval-state")).to_have_text("denied")
        expect(page.locator("dl.facts")).to_contain_text("not on main, please")
        log = daemon.root / "state" / "agents" / "nojs" / "logs" / "stdout.log"
        deadline = time.monotonic() + 15
        while "decision: deny" not in (log.read_text() if log.exists() else ""):
            assert time.monotonic() < deadline, "the waiting agent did not hear of the denial"
            time.sleep(0.05)
        assert not (daemon.root / "nojs.marker").exists()
        shot(page, "nojs", "denied")
    finally:
        ctx.close()
