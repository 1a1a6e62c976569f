"""Approval round trip through a real daemon: a human's decision is written through the API (approver
token) → the agent's SDK call waiting on it (``agent.check(..., wait=...)``) returns. The daemon pushes
the decision to the held call; the baseline is what a client without that would do: poll
``GET /v1/approvals/{id}`` every second. Both run against the same daemon in the same run.
Goal: median ≤ 100 ms.

The phone path (issue 21), beside it: the tap on Telegram's Approve button (a ``callback_query`` queued in a
stand-in of the Bot API on 127.0.0.1, ``tests/fakes/telegram_api.py``) → the daemon's long poll
(``getUpdates``) gets it → the waiting SDK call returns; and the tap on Slack's Approve button (a ``block_actions``
envelope sent over the Socket Mode WebSocket of a stand-in of Slack, ``tests/fakes/slack_api.py``) → the
waiting SDK call returns. Goal: median ≤ 1 s."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tether.sdk import Agent

from common import median, row

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from fakes.slack_api import FakeSlack  # the stand-ins the tests use
from fakes.telegram_api import FakeTelegram

TG_TOKEN = "424242:BENCHtokenForTheStandIn_0123456789"
CHAT = 5151
SLACK_APP, SLACK_BOT = "xapp-1-BENCH-0123456789-standinAPPtoken", "xoxb-0123-4567-standinBOTtokenBENCH"
SLACK_USER = "U0BENCH"

POLL_EVERY = 1.0
RUNBOOK = """\
version: 1
host: {state_dir: ./state, workspace_root: ./ws, listen: "127.0.0.1:0"}
agents:
  bench:
    owner: {name: Bench Owner, contact: "json://127.0.0.1/owner"}
    backup: {name: Bench Backup, contact: "json://127.0.0.1/backup"}
    command: [python, -c, "pass"]
    autostart: false
    sandbox: off
    approvals: {timeout: 1h, escalate_after: 1h, retry_window: 0s}
  phone:
    owner: {name: Phone Owner, contact: "json://127.0.0.1/owner",
            telegram: {token: "env:TG_TOKEN", chat_id: TG_CHAT, api: "TG_API"}}
    backup: {name: Bench Backup, contact: "json://127.0.0.1/backup"}
    command: [python, -c, "pass"]
    autostart: false
    sandbox: off
    approvals: {timeout: 1h, escalate_after: 1h, retry_window: 0s}
  slack:
    owner: {name: Slack Owner, contact: "json://127.0.0.1/owner",
            slack: {app_token: "env:SLACK_APP", bot_token: "env:SLACK_BOT", user_id: SLACK_USER, api: "SLACK_API"}}
    backup: {name: Bench Backup, contact: "json://127.0.0.1/backup"}
    command: [python, -c, "pass"]
    autostart: false
    sandbox: off
    approvals: {timeout: 1h, escalate_after: 1h, retry_window: 0s}
"""


class Daemon:
    def __init__(self, root: Path, telegram: str, slack: str) -> None:
        self.runbook = root / "tether.yaml"
        text = RUNBOOK.replace("TG_API", telegram).replace("TG_CHAT", str(CHAT))
        self.runbook.write_text(text.replace("SLACK_API", slack).replace("SLACK_USER", SLACK_USER))
        self.state = root / "state"
        self.log = open(root / "daemon.out", "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tether", "-f", str(self.runbook), "up", "--foreground"],
            stdout=self.log,
            stderr=self.log,
            stdin=subprocess.DEVNULL,
            cwd=root,
            env={**os.environ, "TG_TOKEN": TG_TOKEN, "SLACK_APP": SLACK_APP, "SLACK_BOT": SLACK_BOT},
        )
        deadline = time.monotonic() + 30
        while True:
            try:
                info = json.loads((self.state / "daemon.json").read_text())
                if info.get("pid") == self.proc.pid:
                    self.url = str(info["url"])
                    http("GET", self.url + "/v1/health", None)
                    break
            except (OSError, ValueError):
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the daemon did not start: {(root / 'daemon.out').read_text()[-500:]}")
            time.sleep(0.02)
        self.admin = (self.state / "admin.token").read_text().strip()

    def token(self, role: str, agent: str | None = None) -> str:
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "tether",
                "-f",
                str(self.runbook),
                "token",
                "create",
                "--role",
                role,
                *(["--agent", agent] if agent else []),
            ],
            capture_output=True,
            text=True,
            check=True,
        )
        return proc.stdout.strip()

    def stop(self) -> None:
        try:
            http("POST", self.url + "/v1/shutdown", self.admin)
            self.proc.wait(30)
        except (OSError, subprocess.TimeoutExpired):
            self.proc.kill()
            self.proc.wait(10)
        finally:
            self.log.close()


def http(method: str, url: str, token: str | None, body: dict[str, Any] | None = None) -> Any:
    req = urllib.request.Request(
        url,
        method=method,
        data=None if body is None else json.dumps(body).encode(),
        headers={"Content-Type": "application/json", **({"Authorization": f"Bearer {token}"} if token else {})},
    )
    with urllib.request.urlopen(req, timeout=30) as resp:
        return json.loads(resp.read() or b"null")


def _pending_id(d: Daemon, approver: str, detail: str, agent: str = "bench") -> int:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        for r in http("GET", f"{d.url}/v1/approvals?agent={agent}", approver)["approvals"]:
            if r["detail"].endswith(detail):
                return int(r["id"])
        time.sleep(0.002)
    raise RuntimeError(f"no pending approval for {detail!r}")


def _waited_round(agent: Agent, detail: str, decide: Callable[[], float]) -> float:
    """The SDK waits on the daemon (in a thread) for ``detail``'s approval; ``decide`` decides it and returns
    when it did. The seconds from then to the SDK's answer."""
    out: dict[str, Any] = {}

    def waiter() -> None:
        out["got"] = agent.check(action="deploy.production", detail=detail, wait=30)
        out["at"] = time.perf_counter()

    t = threading.Thread(target=waiter)
    t.start()
    decided = decide()
    t.join(30)
    if out.get("got", {}).get("decision") != "allow":
        raise RuntimeError(f"{detail}: {out}")
    return float(out["at"] - decided)


def _push_round(d: Daemon, agent: Agent, approver: str, i: int) -> float:
    """The SDK waits on the daemon; the decision wakes it."""
    detail = f"push round {i}"

    def approve() -> float:
        approval_id = _pending_id(d, approver, detail)
        time.sleep(0.02)  # let the check call settle into its wait
        written = time.perf_counter()
        http("POST", f"{d.url}/v1/approvals/{approval_id}/approve", approver, {"note": "bench"})
        return written

    return _waited_round(agent, detail, approve)


def _tap_round(d: Daemon, agent: Agent, approver: str, i: int, ready: Callable[[int], Callable[[], object]]) -> float:
    """The SDK waits on the daemon; a tap on Approve (through a stand-in) wakes it. ``ready(approval_id)``
    waits for the approval's message and returns the tap."""
    detail = f"{agent.name} round {i}"

    def decide() -> float:
        tap = ready(_pending_id(d, approver, detail, agent.name))
        time.sleep(0.02)  # let the check call settle into its wait
        tapped = time.perf_counter()
        tap()
        return tapped

    return _waited_round(agent, detail, decide)


def _telegram(tg: FakeTelegram) -> Callable[[int], Callable[[], object]]:
    def ready(approval_id: int) -> Callable[[], object]:
        about = f"tether approval #{approval_id}:"
        msg = tg.wait_for(lambda: next((m for m in tg.sent(CHAT) if m["text"].startswith(about)), None))
        return lambda: tg.tap(msg, tg.button(msg, "Approve"), CHAT, "bench")

    return ready


def _slack(slack: FakeSlack) -> Callable[[int], Callable[[], object]]:
    def ready(approval_id: int) -> Callable[[], object]:
        about = f"tether approval #{approval_id}:"
        msg = slack.wait_for(lambda: next((m for m in slack.sent() if m["text"].startswith(about)), None))
        return lambda: slack.tap(msg, slack.button(msg, "Approve"), SLACK_USER, "bench")

    return ready


def _poll_round(d: Daemon, agent: Agent, approver: str, i: int, rounds: int) -> float:
    """A client that asked without waiting, then polls the approval every second."""
    detail = f"poll round {i}"
    approval_id = agent.check(action="deploy.production", detail=detail)["approval_id"]
    out: dict[str, float] = {}
    started = threading.Event()

    def poller() -> None:
        while True:
            state = http("GET", f"{d.url}/v1/approvals/{approval_id}", agent.token)["state"]
            started.set()
            if state != "pending":
                out["at"] = time.perf_counter()
                return
            time.sleep(POLL_EVERY)

    t = threading.Thread(target=poller)
    t.start()
    started.wait(10)
    time.sleep(POLL_EVERY * (i + 0.5) / rounds)  # decisions spread evenly over the poll period
    written = time.perf_counter()
    http("POST", f"{d.url}/v1/approvals/{approval_id}/approve", approver, {"note": "bench"})
    t.join(30)
    return out["at"] - written


def p95(xs: list[float]) -> float:
    s = sorted(xs)
    return s[max(0, math.ceil(0.95 * len(s)) - 1)]


def run(quick: bool) -> list[dict[str, object]]:
    push_rounds, poll_rounds = (10, 4) if quick else (50, 10)
    with (
        tempfile.TemporaryDirectory(prefix="tether-bench-approvals-") as tmp,
        FakeTelegram(TG_TOKEN) as tg,
        FakeSlack(SLACK_APP, SLACK_BOT) as sl,
    ):
        d = Daemon(Path(tmp), tg.url, sl.url)
        try:
            approver = d.token("approver")
            agent = Agent("bench", d.url, d.token("agent", "bench"))
            phone = Agent("phone", d.url, d.token("agent", "phone"))
            in_slack = Agent("slack", d.url, d.token("agent", "slack"))
            _push_round(d, agent, approver, -1)  # warm-up: imports, first connections
            _tap_round(d, phone, approver, -1, _telegram(tg))
            _tap_round(d, in_slack, approver, -1, _slack(sl))
            push, poll, tap, slack = [], [], [], []
            for i in range(push_rounds):  # the poll rounds interleaved with the first push rounds
                push.append(_push_round(d, agent, approver, i))
                tap.append(_tap_round(d, phone, approver, i, _telegram(tg)))
                slack.append(_tap_round(d, in_slack, approver, i, _slack(sl)))
                if i < poll_rounds:
                    poll.append(_poll_round(d, agent, approver, i, poll_rounds))
        finally:
            d.stop()
    ms = 1000.0
    med, base = median(push) * ms, median(poll) * ms
    return [
        row(
            f"approval round trip, median of {push_rounds}: decision written → waiting SDK call returns "
            f"(baseline: polling every {POLL_EVERY:g} s, {poll_rounds} rounds)",
            med,
            base,
            "ms",
            "median ≤ 100 ms",
            med <= 100,
        ),
        row(
            f"approval round trip, p95 of {push_rounds} (baseline p95 of {poll_rounds})",
            p95(push) * ms,
            p95(poll) * ms,
            "ms",
            "reported",
            True,
        ),
        row(
            f"phone: tap on Telegram's Approve (stand-in Bot API, long polling) → waiting SDK call returns, median "
            f"of {push_rounds} (baseline: the dashboard/API path above)",
            median(tap) * ms,
            med,
            "ms",
            "median ≤ 1 s",
            median(tap) <= 1.0,
        ),
        row(
            f"phone: tap → release, p95 of {push_rounds} (baseline: API path p95)",
            p95(tap) * ms,
            p95(push) * ms,
            "ms",
            "reported",
            True,
        ),
        row(
            f"phone: tap on Slack's Approve (stand-in Socket Mode WebSocket) → waiting SDK call returns, median of "
            f"{push_rounds} (baseline: the dashboard/API path above)",
            median(slack) * ms,
            med,
            "ms",
            "median ≤ 1 s",
            median(slack) <= 1.0,
        ),
        row(
            f"phone: Slack tap → release, p95 of {push_rounds} (baseline: API path p95)",
            p95(slack) * ms,
            p95(push) * ms,
            "ms",
            "reported",
            True,
        ),
    ]


if __name__ == "__main__":
    for r in run(quick="--quick" in sys.argv):
        print(r)
