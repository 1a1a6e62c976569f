"""Deciding from Slack through Socket Mode (issue 21), end to end: a real daemon (``tether up --foreground`` on
127.0.0.1, real SQLite) opens a Socket Mode WebSocket to a stand-in of Slack's Web API and Socket Mode
(``fakes/slack_api.py``) and posts each approval with buttons; the test plays the person. The cases of the
Telegram tests (``test_channels_phone.py``): a tap releases a waiting SDK agent; a stranger's tap is refused
and audited; a double tap decides once; a tap after expiry is refused; a reply in the thread gives the reason to
deny; the connection drops (and Slack asks for a new one) and comes back; plus approving for the task."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from fakes.slack_api import FakeSlack
from helpers import cli_env
from test_channels_phone import Host, Inbox, ask, shown_back, shown_down, until

APP_TOKEN = "xapp-1-A0TETHER-0123456789-standinAPPtoken0123456789abcdef"
BOT_TOKEN = "xoxb-0123456789-0123456789-standinBOTtoken012345"
OLIVE, BOB, ADA, STRANGER = "U0OLIVE", "U0BOB", "U0ADA", "U0MALLORY"
OPS = "C0OPS"  # Ada's approvals go to a channel others read too
OLIVE_DM, BOB_DM = "D0OLIVE", "D0BOB"


def runbook(api: str, inbox: int) -> str:
    slack = f'app_token: env:SLACK_APP_TOKEN, bot_token: env:SLACK_BOT_TOKEN, api: "{api}"'
    return f"""\
version: 1
host: {{state_dir: ./state, workspace_root: ./ws, listen: "127.0.0.1:0"}}
x-people: &people
  owner:
    name: Olive Owner
    contact: "json://127.0.0.1:{inbox}/olive"
    slack: {{{slack}, user_id: {OLIVE}}}
  backup:
    name: Bob Backup
    contact: "json://127.0.0.1:{inbox}/bob"
    slack: {{{slack}, user_id: {BOB}}}
  approvers:
    - name: Ada Approver
      contact: "json://127.0.0.1:{inbox}/ada"
      slack: {{{slack}, user_id: {ADA}, channel: {OPS}}}
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


World = tuple[Host, FakeSlack, Inbox]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    inbox = Inbox()
    with FakeSlack(APP_TOKEN, BOT_TOKEN) as slack:
        host = Host(
            tmp_path_factory.mktemp("slack") / "host",
            runbook(slack.url, inbox.port),
            {"SLACK_APP_TOKEN": APP_TOKEN, "SLACK_BOT_TOKEN": BOT_TOKEN, "TETHER_CHANNEL_INCIDENT_AFTER": "1s"},
        )
        host.up()
        try:
            yield host, slack, inbox
        finally:
            host.down()
            inbox.close()


def message_for(slack: FakeSlack, channel: str, approval_id: int) -> dict[str, Any]:
    """The app's message about ``approval_id`` in ``channel``, once it was posted."""
    got: dict[str, Any] = slack.wait_for(
        lambda: next((m for m in slack.sent(channel) if m["text"].startswith(f"tether approval #{approval_id}:")), None)
    )
    return got


def settled(slack: FakeSlack, message: dict[str, Any], words: str) -> dict[str, Any]:
    """``message`` once it was updated to say ``words``, without its buttons."""
    got: dict[str, Any] = slack.wait_for(
        lambda: next(
            (
                m
                for m in slack.sent(message["channel"])
                if m["ts"] == message["ts"] and words in m["text"] and not slack.buttons(m)
            ),
            None,
        )
    )
    return got


def test_a_tap_releases_the_waiting_agent(world: World) -> None:
    host, slack, _ = world
    t, out, approval_id = ask(host, "phone", "tap to release", wait=30)
    msg = message_for(slack, OLIVE_DM, approval_id)  # posted to Olive's member id: the app's DM with her
    assert "phone asks to deploy.production" in msg["text"] and "tap to release" in msg["text"]
    labels = [b["text"]["text"] for b in slack.buttons(msg)]
    assert labels == ["Approve", "Deny", "Approve for this task", "Approve for an hour", "Open"]
    assert slack.button(msg, "Open")["url"].startswith(f"{host.url}/link/{approval_id}.")
    assert not any(m["text"].startswith(f"tether approval #{approval_id}:") for m in slack.sent(BOB_DM))
    assert t.is_alive()

    envelope = slack.tap(msg, slack.button(msg, "Approve"), OLIVE, "olive")
    t.join(15)
    assert out["result"]["decision"] == "allow", out
    assert "approved by Olive Owner (slack)" in out["result"]["reason"]
    assert envelope in slack.acks
    slack.ephemeral(OLIVE, f"#{approval_id} phone: deploy.production: approved by you (Olive Owner)")
    assert "Approved by Olive Owner (slack)" in settled(slack, msg, "Approved by")["text"]

    row = host.approval(approval_id)
    assert row["state"] in ("approved", "used") and row["decided_by"] == "Olive Owner (slack)"
    assert [e["data"]["via"] for e in host.events("approval.decided", approval_id)] == [
        {"channel": "slack", "person": "owner:phone", "name": "Olive Owner"}
    ]
    verify = host.cli("audit", "verify")
    assert verify.returncode == 0, verify.stdout + verify.stderr
    assert APP_TOKEN not in (host.root / "daemon.out").read_text() + json.dumps(host.channels())


def test_a_shared_channel_gets_no_signed_link(world: World) -> None:
    host, slack, _ = world
    t, out, approval_id = ask(host, "phone", "in the ops channel", wait=30)
    msg = message_for(slack, OPS, approval_id)
    labels = [b["text"]["text"] for b in slack.buttons(msg)]
    assert labels == ["Approve", "Deny", "Approve for this task", "Approve for an hour"]  # no Open: Ada's link
    slack.tap(msg, slack.button(msg, "Approve"), ADA, "ada")
    t.join(15)
    assert out["result"]["decision"] == "allow" and "approved by Ada Approver (slack)" in out["result"]["reason"]
    assert slack.ephemeral(ADA, f"#{approval_id} ")["channel"] == OPS
    settled(slack, message_for(slack, OLIVE_DM, approval_id), "Approved by Ada Approver (slack)")


def test_a_strangers_tap_is_refused_and_audited(world: World) -> None:
    host, slack, _ = world
    _, _, approval_id = ask(host, "phone", "stranger taps")
    msg = message_for(slack, OLIVE_DM, approval_id)

    slack.tap(msg, slack.button(msg, "Approve"), STRANGER, "mallory")  # say, a message in a shared channel
    said = slack.ephemeral(STRANGER, "Refused: ")
    assert said["text"].startswith("Refused: slack user U0MALLORY (mallory) is not an approver of phone")
    forged = {**slack.button(msg, "Approve"), "value": f"s1:a:{approval_id}:AAAAAAAAAAAAAAAA"}
    slack.tap(msg, forged, OLIVE, "olive")
    assert slack.ephemeral(OLIVE, "Refused: ")["text"].startswith("Refused: the button was not made by this host")

    assert host.approval(approval_id)["state"] == "pending"
    refused = until(lambda: len(r := host.events("approval.refused", approval_id)) == 2 and r, why="two refusals")
    assert [(e["data"]["channel"], e["data"]["who"]) for e in refused] == [
        ("slack", "slack user U0MALLORY (mallory)"),
        ("slack", "slack user U0OLIVE (olive)"),
    ]
    audited = [json.loads(a["data"]) for a in host.query("SELECT data FROM audit WHERE kind = 'approval.refused'")]
    assert sum(1 for a in audited if a.get("approval_id") == approval_id) == 2
    assert host.cli("audit", "verify").returncode == 0


def test_a_double_tap_decides_once(world: World) -> None:
    host, slack, _ = world
    _, _, approval_id = ask(host, "phone", "double tap")
    msg = message_for(slack, OLIVE_DM, approval_id)
    slack.down()  # the taps wait at Slack while the app is cut off, and arrive together on the next connection
    hellos = slack.hellos
    for label in ("Approve", "Approve", "Deny"):
        slack.tap(msg, slack.button(msg, label), OLIVE, "olive")
    slack.up()
    slack.wait_for(lambda: slack.hellos > hellos)
    first = slack.ephemeral(OLIVE, f"#{approval_id} phone: deploy.production: approved by you")
    again = f"#{approval_id} phone: deploy.production: already decided. Approved by Olive Owner (slack)."
    slack.wait_for(lambda: sum(1 for e in slack.ephemerals if e["text"] == again) == 2)
    assert first["channel"] == OLIVE_DM
    assert len(host.events("approval.decided", approval_id)) == 1
    assert host.approval(approval_id)["state"] == "approved"


def test_a_slow_slack_never_delays_an_acknowledgement(world: World) -> None:
    host, slack, _ = world
    first, second = (ask(host, "phone", f"slow {n}")[2] for n in (1, 2))
    msgs = [message_for(slack, OLIVE_DM, a) for a in (first, second)]
    def answers() -> int:
        return sum(1 for c in slack.calls if c[0] == "chat.postEphemeral")

    before = answers()
    slack.hold("chat.postEphemeral")  # the answer to the first press hangs
    try:
        one = slack.tap(msgs[0], slack.button(msgs[0], "Approve"), OLIVE, "olive")
        slack.wait_for(lambda: answers() > before)  # the daemon is inside that call now
        two = slack.tap(msgs[1], slack.button(msgs[1], "Approve"), OLIVE, "olive")
        slack.wait_for(lambda: {one, two} <= slack.acks, 5)  # within Slack's 3 s, give or take a loaded machine
    finally:
        slack.release()
    until(lambda: host.approval(second)["state"] == "approved", why="the second press decided")


def test_a_decision_after_expiry_is_refused_with_a_reply(world: World) -> None:
    host, slack, _ = world
    _, _, approval_id = ask(host, "hasty", "too slow")  # expires 2 s after it was asked
    msg = message_for(slack, OLIVE_DM, approval_id)
    until(lambda: host.approval(approval_id)["state"] == "expired", 10, "the approval to expire")
    slack.tap(msg, slack.button(msg, "Approve"), OLIVE, "olive")
    said = slack.ephemeral(OLIVE, f"Too late: #{approval_id} hasty: deploy.production expired at ")
    assert "nothing was decided now" in said["text"]
    assert host.approval(approval_id)["state"] == "expired" and not host.events("approval.decided", approval_id)
    assert "with nobody deciding, so it was denied" in settled(slack, msg, "Expired at")["text"]


def test_a_reply_in_the_thread_gives_the_reason_to_deny(world: World) -> None:
    host, slack, _ = world
    t, out, approval_id = ask(host, "phone", "reply with a reason", wait=30)
    msg = message_for(slack, OLIVE_DM, approval_id)
    slack.reply(msg, "not on a Friday", STRANGER)  # a stranger in the thread decides nothing
    slack.wait_for(lambda: host.events("approval.refused", approval_id))
    slack.reply(msg, "not on a Friday", OLIVE)
    t.join(15)
    assert out["result"]["decision"] == "deny"
    assert out["result"]["reason"] == "denied by Olive Owner (slack): not on a Friday"
    said = slack.wait_for(
        lambda: next(
            (m for m in slack.sent(OLIVE_DM) if m.get("thread_ts") == msg["ts"] and "denied by you" in m["text"]),
            None,
        )
    )
    assert said["text"] == f"#{approval_id} phone: deploy.production: denied by you (Olive Owner): not on a Friday."
    settled(slack, msg, "Denied by Olive Owner (slack): not on a Friday")


def test_approve_for_the_task(world: World) -> None:
    host, slack, _ = world
    t, out, approval_id = ask(host, "phone", "for the task", wait=30)
    msg = message_for(slack, OLIVE_DM, approval_id)
    slack.tap(msg, slack.button(msg, "Approve for this task"), OLIVE, "olive")
    t.join(15)
    assert out["result"]["decision"] == "allow"
    slack.ephemeral(OLIVE, f"#{approval_id} phone: deploy.production: approved by you (Olive Owner) for this session")
    assert host.approval(approval_id)["scope"] == "task"
    assert host.events("approval.decided", approval_id)[0]["data"]["scope"] == "task"


def test_the_channel_drops_and_comes_back(world: World) -> None:
    host, slack, inbox = world
    until(lambda: host.channels().get("slack", {}).get("state") == "up", why="the app to be up")
    hellos = slack.hellos
    slack.disconnect("refresh_requested")  # Slack's routine refresh: a new connection at once, no outage
    slack.wait_for(lambda: slack.hellos > hellos)
    assert host.channels()["slack"]["state"] == "up"

    slack.down()
    down, status = shown_down(host, "slack", inbox)
    assert APP_TOKEN not in json.dumps(down) and BOT_TOKEN not in json.dumps(down)
    assert "channel slack env:SLACK_APP_TOKEN at http://127.0.0.1:" in status

    t, out, approval_id = ask(host, "phone", "asked while down", wait=60)  # the message waits for the app
    slack.up()
    msg = message_for(slack, OLIVE_DM, approval_id)
    slack.tap(msg, slack.button(msg, "Approve"), OLIVE, "olive")
    t.join(15)
    assert out["result"]["decision"] == "allow"
    shown_back(host, "slack")
    doctor = json.loads(host.cli("doctor", "--json").stdout)
    assert [c["status"] for c in doctor["checks"] if c["name"] == "channels"] == ["ok"]


def test_an_escalation_reaches_the_backup(world: World) -> None:
    host, slack, _ = world
    t, out, approval_id = ask(host, "escalating", "nobody answers", wait=30)
    msg = message_for(slack, BOB_DM, approval_id)  # the backup's DM, once it escalated
    assert host.approval(approval_id)["escalated"] is not None
    slack.tap(msg, slack.button(msg, "Approve"), BOB, "bob")
    t.join(15)
    assert out["result"]["decision"] == "allow" and "approved by Bob Backup (slack)" in out["result"]["reason"]
    settled(slack, message_for(slack, OLIVE_DM, approval_id), "Approved by Bob Backup (slack)")


def test_a_direct_message_gets_the_member_id(world: World) -> None:
    _, slack, _ = world
    slack.say("D0NEWCOMER", "hello", "U0NEWCOMER")
    said = slack.wait_for(lambda: next(iter(slack.sent("D0NEWCOMER")), None))
    assert said["text"].startswith("tether: your member ID is U0NEWCOMER.")


def test_tether_check_names_each_wrong_slack_field(tmp_path: Path) -> None:
    (tmp_path / "tether.yaml").write_text("""\
version: 1
agents:
  a:
    owner:
      name: Ann
      contact: "json://127.0.0.1/x"
      slack: {app_token: "xapp-literal", bot_token: env:B, user_id: ann}
    backup: {name: B, contact: "json://127.0.0.1/y"}
    approvers:
      - name: C
        contact: "json://127.0.0.1/z"
        slack: {app_token: env:A, bot_token: env:B, user_id: U1, channel: "#ops"}
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
    f = str(tmp_path / "tether.yaml")
    lines = proc.stderr.splitlines()
    assert lines[0].startswith(f"{f}:7: agents.a.owner.slack.app_token: expected a secret reference")
    assert lines[1] == (
        f"{f}:7: agents.a.owner.slack.user_id: expected a Slack member ID like U0123ABCD (profile, More, Copy "
        "member ID), got 'ann'"
    )
    assert lines[2] == (
        f"{f}:12: agents.a.approvers[0].slack.user_id: expected a Slack member ID like U0123ABCD (profile, More, "
        "Copy member ID), got 'U1'"
    )
    assert lines[3] == (
        f"{f}:12: agents.a.approvers[0].slack.channel: expected a Slack channel ID like C0123ABCD, got '#ops'"
    )
    assert len(lines) == 4, lines


def test_a_restart_sends_nothing_twice_and_old_buttons_still_work(world: World) -> None:
    host, slack, _ = world
    _, _, approval_id = ask(host, "phone", "across a restart")
    msg = message_for(slack, OLIVE_DM, approval_id)
    host.down()
    host.up()
    _, _, later = ask(host, "phone", "after the restart")
    message_for(slack, OLIVE_DM, later)  # the dispatcher has run since the restart
    about = f"tether approval #{approval_id}:"
    assert sum(1 for m in slack.sent(OLIVE_DM) if m["text"].startswith(about)) == 1
    slack.tap(msg, slack.button(msg, "Approve"), OLIVE, "olive")  # a button posted by the daemon before
    slack.ephemeral(OLIVE, f"#{approval_id} phone: deploy.production: approved by you")
    assert host.approval(approval_id)["decided_by"] == "Olive Owner (slack)"
    settled(slack, msg, "Approved by Olive Owner (slack)")  # its message, known from before the restart


def test_tether_check_refuses_two_bot_tokens_for_one_app(tmp_path: Path) -> None:
    (tmp_path / "tether.yaml").write_text("""\
version: 1
agents:
  a:
    owner: {name: Ann, contact: "json://127.0.0.1/x", slack: {app_token: env:A, bot_token: env:B, user_id: U0ANN}}
    backup: {name: Bo, contact: "json://127.0.0.1/y", slack: {app_token: env:A, bot_token: env:C, user_id: U0BO}}
    command: [sleep, "1"]
""")
    proc = subprocess.run(
        [sys.executable, "-m", "tether", "check", str(tmp_path / "tether.yaml")],
        env=cli_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().endswith(
        "agents.a.backup.slack: app_token env:A is used by agents.a.owner.slack with another bot_token or api; "
        "one Slack app has one bot token: give both the same"
    )


def test_swapped_tokens_are_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The setup mistake (the two tokens swapped) is said in the channel's error, in process."""
    from tether.notify.deciders import Signer
    from tether.notify.health import Health
    from tether.notify.slack import App
    from tether.notify.telegram import ChannelError
    from tether.runbook.model import Slack

    monkeypatch.setenv("SWAPPED_APP", BOT_TOKEN)
    monkeypatch.setenv("SWAPPED_BOT", APP_TOKEN)
    with FakeSlack(APP_TOKEN, BOT_TOKEN) as slack:
        conf = Slack(app_token="env:SWAPPED_APP", bot_token="env:SWAPPED_BOT", user_id=OLIVE, api=slack.url)
        app = App(conf, Health("x", "slack", []), None, Signer(tmp_path), None, None, None)  # type: ignore[arg-type]
        with pytest.raises(ChannelError, match="not_allowed_token_type: app_token must be the app-level token"):
            app.call("apps.connections.open", {}, app_level=True)
        with pytest.raises(ChannelError, match="not_allowed_token_type") as err:
            app.call("chat.postMessage", {"channel": OLIVE, "text": "x"})
        assert err.value.permanent and APP_TOKEN not in str(err.value)
