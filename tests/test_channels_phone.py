"""Deciding from a phone (issue 21), end to end: a real daemon (``tether up --foreground`` on 127.0.0.1, real
SQLite) talks to stand-ins of the Telegram Bot API and of an ntfy server (``fakes/telegram_api.py``,
``fakes/ntfy_api.py``) over HTTP on 127.0.0.1, and the test plays the phone: it taps the buttons the daemon sent.
A waiting SDK agent is released by a tap; a stranger's tap is refused and audited; a double tap decides once; a
decision after expiry is refused with a reply that says so; a channel that drops is shown as down (status,
doctor, an incident) and works again when it comes back; signed one-time links decide once, as their person."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from fakes.ntfy_api import FakeNtfy
from fakes.telegram_api import FakeTelegram
from helpers import DaemonHost, cli_env
from tether.sdk import Agent

TG_TOKEN = "123456:AAtestTOKENfor-the-stand-in_0123456789"
NTFY_TOKEN = "tk_standin0123456789abcdefghij"
OLIVE, BOB, STRANGER = 1001, 1002, 6666


class Inbox:
    """Where the people's ``contact`` (apprise ``json://``) messages land: what apprise posts, kept."""

    def __init__(self) -> None:
        self.posts: list[tuple[str, dict[str, Any]]] = []
        inbox = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                inbox.posts.append((self.path, json.loads(raw or b"{}")))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        self.port = self._server.server_address[1]

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def runbook(tg: str, ntfy: str, inbox: int) -> str:
    telegram = f'token: env:TG_TOKEN, api: "{tg}"'
    return f"""\
version: 1
host: {{state_dir: ./state, workspace_root: ./ws, listen: "127.0.0.1:0"}}
x-people: &people
  owner:
    name: Olive Owner
    contact: "json://127.0.0.1:{inbox}/olive"
    telegram: {{{telegram}, chat_id: {OLIVE}}}
  backup:
    name: Bob Backup
    contact: "json://127.0.0.1:{inbox}/bob"
    telegram: {{{telegram}, chat_id: {BOB}}}
  approvers:
    - name: Ada Approver
      contact: "json://127.0.0.1:{inbox}/ada"
      ntfy: {{url: "{ntfy}", topic: ada-phone, token: env:NTFY_TOKEN}}
  command: [python, -c, "import time; time.sleep(3600)"]
  autostart: false
agents:
  phone:
    <<: *people
    approvals: {{timeout: 1h, escalate_after: 1h}}
  hasty:
    <<: *people
    approvals: {{timeout: 2s, escalate_after: 1h}}
  escalating:
    <<: *people
    approvals: {{timeout: 1h, escalate_after: 300ms}}
"""


class Host(DaemonHost):
    def agent(self, name: str) -> Agent:
        proc = self.cli("token", "create", "--role", "agent", "--agent", name)
        assert proc.returncode == 0, proc.stderr
        return Agent(name, self.url, proc.stdout.strip())

    def approval(self, approval_id: int) -> dict[str, Any]:
        return self.query("SELECT * FROM approvals WHERE id = ?", (approval_id,))[0]

    def events(self, kind: str, approval_id: int | None = None) -> list[dict[str, Any]]:
        rows = self.query("SELECT * FROM events WHERE kind = ? ORDER BY id", (kind,))
        for r in rows:
            r["data"] = json.loads(r["data"])
        return [r for r in rows if approval_id is None or r["data"].get("approval_id") == approval_id]

    def channels(self) -> dict[str, dict[str, Any]]:
        try:
            got = json.loads((self.state / "channels.json").read_text())["channels"]
        except (OSError, ValueError, KeyError):
            return {}
        return {c["kind"]: c for c in got}


def until(what: Callable[[], Any], timeout: float = 15.0, why: str = "") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        got = what()
        if got:
            return got
        assert time.monotonic() < deadline, f"timed out after {timeout}s: {why}"
        time.sleep(0.02)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Host, FakeTelegram, FakeNtfy, Inbox]]:
    inbox = Inbox()
    with FakeTelegram(TG_TOKEN) as tg, FakeNtfy(tokens=(NTFY_TOKEN,)) as ntfy:
        host = Host(
            tmp_path_factory.mktemp("phone") / "host",
            runbook(tg.url, ntfy.url, inbox.port),
            {"TG_TOKEN": TG_TOKEN, "NTFY_TOKEN": NTFY_TOKEN, "TETHER_CHANNEL_INCIDENT_AFTER": "1s"},
        )
        host.up()
        try:
            yield host, tg, ntfy, inbox
        finally:
            host.down()
            inbox.close()


def shown_down(host: Host, kind: str, inbox: Inbox) -> tuple[dict[str, Any], str]:
    """Once channel ``kind`` dropped: it shows as down (its state, ``tether status``), and, down longer than
    TETHER_CHANNEL_INCIDENT_AFTER (1 s), has opened an incident for the agents it serves, told to the owner by
    contact. Its state and what ``tether status`` said."""
    down = until(lambda: (c := host.channels().get(kind)) and c["state"] == "down" and c, why=f"{kind} down shown")
    assert down["failures"] >= 1
    # a call that was in flight at the drop may still succeed once: status shows what the daemon knows now
    status = until(
        lambda: (p := host.cli("status")).returncode == 0 and "down for" in p.stdout and p,
        10,
        "tether status to show the channel down",
    )
    incident = until(
        lambda: host.query(
            "SELECT * FROM incidents WHERE kind = 'channel.down' AND agent = 'phone' AND state = 'open'"
        ),
        why="the channel.down incident",
    )[0]
    assert "has been down for" in incident["summary"]
    until(
        lambda: any(p == "/olive" and "channel.down" in json.dumps(b) for p, b in inbox.posts),
        20,
        "the owner told by their contact",
    )
    return down, status.stdout


def shown_back(host: Host, kind: str) -> None:
    """Channel ``kind`` is up again: gone from ``tether status``, its incident resolved."""
    until(lambda: host.channels()[kind]["state"] == "up", why="up again")
    assert f"channel {kind}" not in host.cli("status").stdout
    until(
        lambda: not host.query("SELECT * FROM incidents WHERE kind = 'channel.down' AND state = 'open'"),
        why="the incident resolved",
    )


def ask(host: Host, agent: str, detail: str, wait: float = 0.0) -> tuple[threading.Thread, dict[str, Any], int]:
    """An SDK call asking for ``deploy.production`` (held for a human), waiting ``wait`` s in a thread; its
    approval's id once the daemon has it."""
    sdk = host.agent(agent)
    out: dict[str, Any] = {}

    def run() -> None:
        try:
            out["result"] = sdk.check(action="deploy.production", detail=detail, wait=wait)
        except Exception as err:  # shown by the assertion below
            out["error"] = err

    t = threading.Thread(target=run, daemon=True)
    t.start()
    row = until(
        lambda: (
            out.get("error")
            or host.query(
                "SELECT * FROM approvals WHERE agent = ? AND detail = ?", (agent, f"deploy.production: {detail}")
            )
        ),
        why=f"the approval for {detail!r}",
    )
    assert "error" not in out, out
    return t, out, int(row[0]["id"])


def message_for(tg: FakeTelegram, chat: int, approval_id: int) -> dict[str, Any]:
    """The bot's message about ``approval_id`` in ``chat``, once it was sent."""
    got: dict[str, Any] = tg.wait_for(
        lambda: next((m for m in tg.sent(chat) if m["text"].startswith(f"tether approval #{approval_id}:")), None)
    )
    return got


# --- Telegram ------------------------------------------------------------------------------------------------


def test_a_tap_releases_the_waiting_agent(world: tuple[Host, FakeTelegram, FakeNtfy, Inbox]) -> None:
    host, tg, _, _ = world
    t, out, approval_id = ask(host, "phone", "tap to release", wait=30)
    msg = message_for(tg, OLIVE, approval_id)
    assert "phone asks to deploy.production" in msg["text"] and "tap to release" in msg["text"]
    assert [b["text"] for b in msg["reply_markup"]["inline_keyboard"][0]] == ["Approve", "Deny"]
    assert not any(m["text"].startswith(f"tether approval #{approval_id}:") for m in tg.sent(BOB))  # not escalated
    assert t.is_alive()

    qid = tg.tap(msg, tg.button(msg, "Approve"), OLIVE, "olive")
    t.join(15)
    assert out["result"]["decision"] == "allow", out
    assert "approved by Olive Owner (telegram)" in out["result"]["reason"]
    answer = tg.answer(qid)
    assert (
        answer["text"].startswith(f"#{approval_id} phone: deploy.production: approved by you")
        and not answer["show_alert"]
    )
    edited = tg.wait_for(
        lambda: next(
            (m for m in tg.sent(OLIVE) if m["message_id"] == msg["message_id"] and "reply_markup" not in m), None
        )
    )
    assert "Approved by Olive Owner (telegram)" in edited["text"]

    row = host.approval(approval_id)
    assert row["state"] in ("approved", "used") and row["decided_by"] == "Olive Owner (telegram)"
    decided = host.events("approval.decided", approval_id)
    assert [e["data"]["via"] for e in decided] == [
        {"channel": "telegram", "person": "owner:phone", "name": "Olive Owner"}
    ]
    audited = host.query("SELECT data FROM audit WHERE kind = 'approval.decided'")
    assert any(json.loads(a["data"]).get("approval_id") == approval_id and "telegram" in a["data"] for a in audited)
    verify = host.cli("audit", "verify")
    assert verify.returncode == 0, verify.stdout + verify.stderr


def test_a_strangers_tap_is_refused_and_audited(world: tuple[Host, FakeTelegram, FakeNtfy, Inbox]) -> None:
    host, tg, _, _ = world
    _, _, approval_id = ask(host, "phone", "stranger taps")
    msg = message_for(tg, OLIVE, approval_id)

    qid = tg.tap(msg, tg.button(msg, "Approve"), STRANGER, "mallory")  # in the chat, but not Olive
    answer = tg.answer(qid)
    assert answer["show_alert"] and answer["text"].startswith(
        "Refused: telegram user 6666 (mallory) is not an approver of phone"
    )
    forged = tg.tap(msg, f"t1:a:{approval_id}:AAAAAAAAAAAAAAAA", OLIVE, "olive")  # a button this host never made
    assert tg.answer(forged)["text"].startswith("Refused: the button was not made by this host")
    other_chat = {**msg, "chat": {"id": BOB, "type": "private"}}  # Olive's button, pressed from Bob's chat
    moved = tg.tap(other_chat, tg.button(msg, "Approve"), BOB, "bob")
    assert tg.answer(moved)["text"].startswith("Refused: the button was not made by this host")

    assert host.approval(approval_id)["state"] == "pending"
    refused = host.events("approval.refused", approval_id)
    assert [(e["data"]["channel"], e["data"]["who"]) for e in refused] == [
        ("telegram", "telegram user 6666 (mallory)"),
        ("telegram", "telegram user 1001 (olive)"),
        ("telegram", "telegram user 1002 (bob)"),
    ]
    audited = [json.loads(a["data"]) for a in host.query("SELECT data FROM audit WHERE kind = 'approval.refused'")]
    assert sum(1 for a in audited if a.get("approval_id") == approval_id) == 3
    assert host.cli("audit", "verify").returncode == 0


def test_a_double_tap_decides_once(world: tuple[Host, FakeTelegram, FakeNtfy, Inbox]) -> None:
    host, tg, _, _ = world
    _, _, approval_id = ask(host, "phone", "double tap")
    msg = message_for(tg, OLIVE, approval_id)
    tg.down()  # both taps queue up while the bot cannot poll, and arrive in one getUpdates
    first = tg.tap(msg, tg.button(msg, "Approve"), OLIVE, "olive")
    second = tg.tap(msg, tg.button(msg, "Approve"), OLIVE, "olive")
    third = tg.tap(msg, tg.button(msg, "Deny"), OLIVE, "olive")
    tg.up()
    answers = [tg.answer(q) for q in (first, second, third)]
    assert answers[0]["text"].startswith(f"#{approval_id} phone: deploy.production: approved by you")
    for later in answers[1:]:
        assert later["text"] == (
            f"#{approval_id} phone: deploy.production: already decided. Approved by Olive Owner (telegram)."
        )
    assert len(host.events("approval.decided", approval_id)) == 1
    assert host.approval(approval_id)["state"] == "approved"


def test_a_decision_after_expiry_is_refused_with_a_reply(world: tuple[Host, FakeTelegram, FakeNtfy, Inbox]) -> None:
    host, tg, _, _ = world
    _, _, approval_id = ask(host, "hasty", "too slow")  # expires 2 s after it was asked
    msg = message_for(tg, OLIVE, approval_id)
    until(lambda: host.approval(approval_id)["state"] == "expired", 10, "the approval to expire")
    qid = tg.tap(msg, tg.button(msg, "Approve"), OLIVE, "olive")
    answer = tg.answer(qid)
    assert answer["show_alert"] and answer["text"].startswith(
        f"Too late: #{approval_id} hasty: deploy.production expired at "
    )
    assert "nothing was decided now" in answer["text"]
    assert host.approval(approval_id)["state"] == "expired" and not host.events("approval.decided", approval_id)
    edited = tg.wait_for(
        lambda: next(
            (m for m in tg.sent(OLIVE) if m["message_id"] == msg["message_id"] and "reply_markup" not in m), None
        )
    )
    assert "Expired at" in edited["text"] and "with nobody deciding, so it was denied" in edited["text"]


def test_approve_for_an_hour(world: tuple[Host, FakeTelegram, FakeNtfy, Inbox]) -> None:
    host, tg, _, _ = world
    t, out, approval_id = ask(host, "phone", "for an hour", wait=30)
    msg = message_for(tg, OLIVE, approval_id)
    assert [b["text"] for b in msg["reply_markup"]["inline_keyboard"][1]] == [
        "Approve for this task",
        "Approve for an hour",
    ]
    qid = tg.tap(msg, tg.button(msg, "Approve for an hour"), OLIVE, "olive")
    t.join(15)
    assert out["result"]["decision"] == "allow"
    assert tg.answer(qid)["text"] == (
        f"#{approval_id} phone: deploy.production: approved by you (Olive Owner) for one hour."
    )
    row = host.approval(approval_id)
    assert row["scope"] == "1h" and row["grant_until"] - row["decided"] == pytest.approx(3600, abs=1)


def test_a_reply_gives_the_reason_to_deny(world: tuple[Host, FakeTelegram, FakeNtfy, Inbox]) -> None:
    host, tg, _, _ = world
    t, out, approval_id = ask(host, "phone", "reply with a reason", wait=30)
    msg = message_for(tg, OLIVE, approval_id)
    tg.reply(msg, "not on a Friday", OLIVE, "olive")
    t.join(15)
    assert out["result"]["decision"] == "deny"
    assert out["result"]["reason"] == "denied by Olive Owner (telegram): not on a Friday"
    said = tg.wait_for(
        lambda: next(
            (m for m in tg.sent(OLIVE) if m.get("reply_to_message", {}).get("text") == "not on a Friday"), None
        )
    )
    assert said["text"] == f"#{approval_id} phone: deploy.production: denied by you (Olive Owner): not on a Friday."


def test_the_channel_drops_and_comes_back(world: tuple[Host, FakeTelegram, FakeNtfy, Inbox]) -> None:
    host, tg, _, inbox = world
    until(lambda: host.channels().get("telegram", {}).get("state") == "up", why="the bot to be up")
    tg.down()
    down, status = shown_down(host, "telegram", inbox)
    assert "HTTP 502" in down["error"] and TG_TOKEN not in json.dumps(down)
    assert "channel telegram env:TG_TOKEN at http://127.0.0.1:" in status and "HTTP 502" in status
    assert json.loads(host.cli("status", "--json").stdout)["channels"][0]["state"] in ("down", "up")

    t, out, approval_id = ask(host, "phone", "asked while down", wait=60)  # the message waits for the bot
    tg.up()
    msg = message_for(tg, OLIVE, approval_id)
    tg.tap(msg, tg.button(msg, "Approve"), OLIVE, "olive")
    t.join(15)
    assert out["result"]["decision"] == "allow"
    shown_back(host, "telegram")
    kinds = [
        e["kind"]
        for e in host.query("SELECT kind FROM events WHERE kind IN ('channel.down', 'channel.up') ORDER BY id")
    ]
    assert kinds[-2:] == ["channel.down", "channel.up"]


# --- ntfy ------------------------------------------------------------------------------------------------------


def ntfy_message(ntfy: FakeNtfy, approval_id: int) -> dict[str, Any]:
    got: dict[str, Any] = ntfy.wait_for(
        lambda: next(
            (m for m in ntfy.on("ada-phone") if m.get("title", "").startswith(f"tether approval #{approval_id}:")), None
        )
    )
    return got


def test_ntfy_buttons_decide_and_strangers_are_refused(world: tuple[Host, FakeTelegram, FakeNtfy, Inbox]) -> None:
    host, _, ntfy, _ = world
    ntfy.wait_for(lambda: ntfy.subscribes)
    t, out, approval_id = ask(host, "phone", "ntfy press", wait=30)
    msg = ntfy_message(ntfy, approval_id)
    assert [a["label"] for a in msg["actions"]] == ["Approve", "Deny", "Open"]
    approve = msg["actions"][0]
    assert approve["action"] == "http" and approve["url"] == f"{ntfy.url}/ada-phone-reply"
    assert approve["body"].startswith(f"tether1 a {approval_id} approver:phone:0 ")

    # an unsigned decision published to the reply topic: refused, audited
    got = httpx.post(
        f"{ntfy.url}/ada-phone-reply",
        content=f"tether1 a {approval_id} owner:phone AAAAAAAAAAAAAAAA",
        headers={"Authorization": f"Bearer {NTFY_TOKEN}"},
    )
    assert got.status_code == 200
    until(lambda: host.events("approval.refused", approval_id), why="the refusal")
    assert host.approval(approval_id)["state"] == "pending"

    assert ntfy.press(msg, "Approve") == 200
    t.join(15)
    assert out["result"]["decision"] == "allow" and "approved by Ada Approver (ntfy)" in out["result"]["reason"]
    said = ntfy.wait_for(
        lambda: next(
            (m for m in ntfy.on("ada-phone") if m.get("title", "").startswith(f"tether #{approval_id}: done")), None
        )
    )
    assert said["message"].startswith(f"#{approval_id} phone: deploy.production: approved by you (Ada Approver)")
    assert ntfy.press(msg, "Deny") == 200  # a second press changes nothing, and says so
    again = ntfy.wait_for(
        lambda: next(
            (
                m
                for m in ntfy.on("ada-phone")
                if m.get("title", "").startswith(f"tether #{approval_id}: nothing decided")
            ),
            None,
        )
    )
    assert "already decided. Approved by Ada Approver (ntfy)" in again["message"]
    assert len(host.events("approval.decided", approval_id)) == 1


def test_ntfy_drops_and_comes_back(world: tuple[Host, FakeTelegram, FakeNtfy, Inbox]) -> None:
    host, _, ntfy, _ = world
    until(lambda: host.channels().get("ntfy", {}).get("state") == "up", why="the subscription to be up")
    before = ntfy.subscribes
    ntfy.down()
    until(lambda: host.channels()["ntfy"]["state"] == "down", why="down shown")
    ntfy.up()
    ntfy.wait_for(lambda: ntfy.subscribes > before)  # it subscribed again
    t, out, approval_id = ask(host, "phone", "ntfy after the drop", wait=30)
    assert ntfy.press(ntfy_message(ntfy, approval_id), "Approve") == 200
    t.join(15)
    assert out["result"]["decision"] == "allow"
    assert host.channels()["ntfy"]["state"] == "up"

    # a press made while the daemon's subscription is cut off waits in the server's cache: decided on reconnect
    t, out, approval_id = ask(host, "phone", "pressed while cut off", wait=60)
    msg = ntfy_message(ntfy, approval_id)
    ntfy.drop_streams()
    until(lambda: host.channels()["ntfy"]["state"] == "down", why="down shown")
    assert ntfy.press(msg, "Approve") == 200
    assert t.is_alive() and host.approval(approval_id)["state"] == "pending"
    ntfy.up()
    t.join(30)
    assert out["result"]["decision"] == "allow" and "Ada Approver (ntfy)" in out["result"]["reason"]


# --- signed one-time links ------------------------------------------------------------------------------------


def test_a_signed_link_decides_once_as_its_person(world: tuple[Host, FakeTelegram, FakeNtfy, Inbox]) -> None:
    host, _, ntfy, inbox = world
    t, out, approval_id = ask(host, "phone", "by link", wait=30)
    link = next(a for a in ntfy_message(ntfy, approval_id)["actions"] if a["label"] == "Open")["url"]
    assert link.startswith(f"{host.url}/link/{approval_id}.")
    # the owner's notification by contact carries the owner's own link; the stored copy does not
    mail = until(
        lambda: [b for p, b in inbox.posts if p == "/olive" and f"approval #{approval_id}:" in json.dumps(b)],
        why="the owner's notification",
    )[0]
    assert f"{host.url}/link/{approval_id}." in mail["message"] and link not in mail["message"]
    stored = host.query("SELECT body FROM notifications WHERE thread = ?", (f"approval:{approval_id}",))
    assert stored and not any("/link/" in r["body"] for r in stored)

    page = httpx.get(link)  # a GET changes nothing
    assert page.status_code == 200 and "Ada Approver (approver of phone)" in page.text and 'id="approve"' in page.text
    assert page.headers["referrer-policy"] == "no-referrer"
    assert host.approval(approval_id)["state"] == "pending" and t.is_alive()

    denied = httpx.post(link, data={"verb": "deny", "reason": ""})
    assert denied.status_code == 422 and "A denial needs a reason" in denied.text
    done = httpx.post(link, data={"verb": "approve", "note": "from my phone"})
    assert done.status_code == 200 and "approved by you (Ada Approver)" in done.text
    t.join(15)
    assert out["result"]["decision"] == "allow"
    assert host.approval(approval_id)["decided_by"] == "Ada Approver (link)"
    assert host.events("approval.decided", approval_id)[0]["data"]["via"]["person"] == "approver:phone:0"
    again = httpx.post(link, data={"verb": "approve"})  # used once: it dies with the approval
    assert again.status_code == 409 and "already decided" in again.text and 'id="approve"' not in again.text

    head, person, sig = link.rsplit("/", 1)[1].split(".")
    forged = f"{host.url}/link/{head}.{person}.{'A' * len(sig)}"
    assert httpx.get(forged).status_code == 404
    assert httpx.post(forged, data={"verb": "approve"}).status_code == 404
    other = f"{host.url}/link/{approval_id + 1000}.{person}.{sig}"  # another approval, the same signature
    assert httpx.get(other).status_code == 404
    assert any(e["data"]["channel"] == "link" for e in host.events("approval.refused"))


def test_doctor_reports_each_channel(world: tuple[Host, FakeTelegram, FakeNtfy, Inbox]) -> None:
    host, _, _, _ = world
    until(
        lambda: all(c["state"] == "up" for c in host.channels().values()) and len(host.channels()) == 2,
        why="both channels up",
    )
    proc = host.cli("doctor", "--json")
    checks = [c for c in json.loads(proc.stdout)["checks"] if c["name"] == "channels"]
    assert sorted(c["status"] for c in checks) == ["ok", "ok"], checks
    assert any(c["detail"].startswith("telegram env:TG_TOKEN") for c in checks)


def test_the_dashboard_shows_each_channel(world: tuple[Host, FakeTelegram, FakeNtfy, Inbox]) -> None:
    host, _, _, _ = world
    until(
        lambda: len(host.channels()) == 2 and all(c["state"] == "up" for c in host.channels().values()),
        why="both channels up",
    )
    with httpx.Client(base_url=host.url) as web:
        page = web.get("/login")
        csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
        assert csrf is not None
        token = (host.state / "admin.token").read_text().strip()
        assert web.post("/login", data={"token": token, "csrf": csrf.group(1), "next": "/"}).status_code == 303
        overview = web.get("/")
    assert overview.status_code == 200
    assert "telegram env:TG_TOKEN at http://127.0.0.1:" in overview.text and "ada-phone-reply" in overview.text
    assert overview.text.count('class="sub channel"') == 2 and TG_TOKEN not in overview.text


def test_tether_check_names_each_wrong_channel_field(tmp_path: Path) -> None:
    (tmp_path / "tether.yaml").write_text("""\
version: 1
agents:
  a:
    owner:
      name: Ann
      contact: "json://127.0.0.1/x"
      telegram: {token: "123:literal", chat_id: me}
      ntfy: {url: ntfy.sh, topic: "has spaces", reply_topic: "has spaces"}
    backup: {name: B, contact: "json://127.0.0.1/y"}
    approvers:
      - {name: C, contact: "json://127.0.0.1/z", telegram: {token: env:T, chat_id: 5, colour: red}}
    command: [sleep, "1"]
""")
    proc = subprocess.run(
        [sys.executable, "-m", "tether", "check", str(tmp_path / "tether.yaml")],
        env=cli_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    lines = proc.stderr.splitlines()
    f = str(tmp_path / "tether.yaml")
    assert f"{f}:7: agents.a.owner.telegram.token: expected a secret reference" in lines[0]
    assert lines[1].startswith(f"{f}:7: agents.a.owner.telegram.chat_id: input should be a valid integer")
    assert lines[2] == f"{f}:8: agents.a.owner.ntfy.url: expected an http(s):// URL like https://ntfy.sh, got 'ntfy.sh'"
    assert lines[3] == (
        f"{f}:8: agents.a.owner.ntfy.topic: expected an ntfy topic: letters, digits, - and _ (at "
        "most 64), got 'has spaces'"
    )
    assert lines[5] == f"{f}:11: agents.a.approvers[0].telegram.colour: unknown key 'colour'"
    assert len(lines) == 6, lines


def test_an_escalation_reaches_the_backup(world: tuple[Host, FakeTelegram, FakeNtfy, Inbox]) -> None:
    host, tg, _, _ = world
    t, out, approval_id = ask(host, "escalating", "nobody answers", wait=30)
    msg = message_for(tg, BOB, approval_id)  # the backup's chat, once it escalated
    assert host.approval(approval_id)["escalated"] is not None
    qid = tg.tap(msg, tg.button(msg, "Approve"), BOB, "bob")
    t.join(15)
    assert out["result"]["decision"] == "allow" and "approved by Bob Backup (telegram)" in out["result"]["reason"]
    assert tg.answer(qid)["text"].startswith(f"#{approval_id} escalating: deploy.production: approved by you")
    first = message_for(tg, OLIVE, approval_id)  # the owner's message shows who decided
    tg.wait_for(
        lambda: next(
            (
                m
                for m in tg.sent(OLIVE)
                if m["message_id"] == first["message_id"] and "Approved by Bob Backup (telegram)" in m["text"]
            ),
            None,
        )
    )


def test_a_plain_message_gets_the_ids_the_runbook_needs(world: tuple[Host, FakeTelegram, FakeNtfy, Inbox]) -> None:
    _, tg, _, _ = world
    tg.say(4242, "/start", 4242, "newcomer")
    said = tg.wait_for(lambda: next((m for m in tg.sent(4242)), None))
    assert said["text"].startswith("tether: this chat's id is 4242; your user id is 4242.")


def test_a_restart_sends_nothing_twice_and_old_buttons_still_work(
    world: tuple[Host, FakeTelegram, FakeNtfy, Inbox],
) -> None:
    host, tg, ntfy, _ = world
    _, _, approval_id = ask(host, "phone", "across a restart")
    msg = message_for(tg, OLIVE, approval_id)
    ntfy_message(ntfy, approval_id)
    host.down()
    host.up()
    _, _, later = ask(host, "phone", "after the restart")
    message_for(tg, OLIVE, later)  # the dispatcher has run since the restart
    ntfy_message(ntfy, later)
    about = f"tether approval #{approval_id}:"
    assert sum(1 for m in tg.sent(OLIVE) if m["text"].startswith(about)) == 1
    assert sum(1 for m in ntfy.on("ada-phone") if m.get("title", "").startswith(about)) == 1
    qid = tg.tap(msg, tg.button(msg, "Approve"), OLIVE, "olive")  # a button sent by the daemon before
    assert tg.answer(qid)["text"].startswith(f"#{approval_id} phone: deploy.production: approved by you")
    assert host.approval(approval_id)["decided_by"] == "Olive Owner (telegram)"


def test_a_tap_past_the_timeout_is_refused_before_the_monitor_expires_it(tmp_path: Path) -> None:
    """The decider expires a due approval itself (the monitor may not have ticked yet), in process."""
    from tether.approvals import Approvals
    from tether.notify.deciders import Decider, approvers
    from tether.runbook import parse
    from tether.store import open_store

    rb = parse(runbook("http://127.0.0.1:9", "http://127.0.0.1:9", 9))
    store = open_store(f"sqlite:///{tmp_path / 'tether.db'}")
    try:
        approvals = Approvals(store)
        row = approvals.request(
            "phone",
            "deploy.production",
            "fp",
            classes=["deploy.production"],
            detail="d",
            rule="r",
            reason="why",
            timeout=0.05,
            escalate_after=60,
        )
        until(lambda: time.time() > row["expires"], 5, "the timeout to pass")
        assert store.approval(row["id"])["state"] == "pending"  # nothing ticked
        olive = approvers(rb, "phone")[0]
        out = Decider(approvals, lambda: rb, lambda: None).decide(row["id"], True, olive, "telegram")
        assert not out.ok and out.text.startswith(f"Too late: #{row['id']} phone: deploy.production expired at ")
        assert store.approval(row["id"])["state"] == "expired"
        other = Decider(approvals, lambda: rb, lambda: None).decide(row["id"], True, approvers(rb, "hasty")[0], "x")
        assert not other.ok and other.text.startswith("Refused: not an approver of phone")
    finally:
        store.close()
