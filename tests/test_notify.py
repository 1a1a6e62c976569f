"""Notifications end to end: real apprise delivering to an HTTP receiver (its ``json://`` service) and to
a local SMTP server, escalation, flapping, retries, approvals, kills, restarts, and no secret in any of it."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from test_notify_kit import Receiver, SMTPServer, free_port, receiver, smtp, wait_for
from tether import redact
from tether.notify import Notifier
from tether.runbook.model import Runbook
from tether.store import Store, open_store

__all__ = ["receiver", "smtp"]  # fixtures

DASH = "http://dash.example:7717"


def json_url(r: Receiver, path: str) -> str:
    return f"json://127.0.0.1:{r.port}{path}"


def make_runbook(owner: str, backup: str, notify: list[dict[str, Any]] | None = None,
                 escalate_after: str = "60s") -> Runbook:
    person = lambda name, contact: {"name": name, "contact": contact}  # noqa: E731
    return Runbook.model_validate({
        "host": {"name": "test-host", "notify": notify or []},
        "agents": {"worker": {"command": "true", "owner": person("Ana Ops", owner),
                              "backup": person("Bo Backup", backup),
                              "approvals": {"escalate_after": escalate_after, "timeout": "1h"}}},
    })


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = open_store(f"sqlite:///{tmp_path / 'tether.db'}")
    yield s
    s.close()


class Kit:
    def __init__(self, store: Store, rb: Runbook, **kw: Any) -> None:
        self.store = store
        self.rb = rb
        kw.setdefault("base_url", DASH)
        kw.setdefault("retry_base", 0.1)
        self.notifier = Notifier(store, lambda: self.rb, **kw)

    def close(self) -> None:
        self.notifier.close()

    def rows(self, **kw: Any) -> list[dict[str, Any]]:
        return self.store.notifications(**kw)

    def settled(self, timeout: float = 10.0) -> list[dict[str, Any]]:
        """Wait until no notification is pending; return them all."""
        self.notifier.wake()
        wait_for(lambda: not self.rows(state="pending"), timeout, "every notification delivered or given up")
        return self.rows()


@pytest.fixture
def kits() -> Iterator[list[Kit]]:
    made: list[Kit] = []
    yield made
    for kit in made:
        kit.close()


def kit_for(kits: list[Kit], store: Store, rb: Runbook, **kw: Any) -> Kit:
    kit = Kit(store, rb, **kw)
    kits.append(kit)
    return kit


def titles(r: Receiver, path: str) -> list[str]:
    return [req.json()["title"] for req in r.at(path)]


def test_an_incident_reaches_its_owner_through_apprise_json_and_a_host_channel_by_email(
    store: Store, receiver: Receiver, smtp: SMTPServer, kits: list[Kit], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OWNER_URL", json_url(receiver, "/owner"))
    monkeypatch.setenv("TEAM_MAIL", smtp.url("team@example.com"))
    rb = make_runbook("env:OWNER_URL", json_url(receiver, "/backup"), notify=[{"url": "env:TEAM_MAIL"}])
    kit = kit_for(kits, store, rb)
    inc = store.emit("incident.opened", "worker", kind="stale", summary="worker is stale: no heartbeat for 2m")
    t0 = time.perf_counter()
    kit.notifier.process()
    assert time.perf_counter() - t0 < 0.5  # deciding never waits on delivery
    wait_for(lambda: receiver.at("/owner") and smtp.mails, what="the owner's POST and the team's mail")
    owner = receiver.at("/owner")[0].json()
    assert owner["title"] == f"[tether] incident #{inc}: worker is stale: no heartbeat for 2m"
    assert f"tether ack {inc}" in owner["message"]
    assert f"{DASH}/incidents/{inc}" in owner["message"]
    mail = smtp.mails[0]
    assert mail.to == ["team@example.com"]
    assert f"incident #{inc}" in mail.subject
    assert f"{DASH}/incidents/{inc}" in mail.text
    got = kit.settled()
    assert {(r["recipient"], r["state"], r["attempts"]) for r in got} == {
        ("owner:worker", "sent", 1), (notify_host_key("env:TEAM_MAIL"), "sent", 1)}
    assert {r["channel"] for r in got} == {"env:OWNER_URL", "env:TEAM_MAIL"}  # the references, never the URLs
    assert [e.kind for e in store.events(kinds=["notify.sent"])] == ["notify.sent", "notify.sent"]
    assert not receiver.at("/backup")
    kit.notifier.process()  # nothing new: nothing sent twice
    assert len(kit.rows()) == 2


def notify_host_key(url: str) -> str:
    from tether.notify.notifier import host_key

    return host_key(url)


def test_an_unacknowledged_incident_escalates_to_the_backup_and_an_acknowledged_one_does_not(
    store: Store, receiver: Receiver, kits: list[Kit]
) -> None:
    from tether.notify import ack

    rb = make_runbook(json_url(receiver, "/owner"), json_url(receiver, "/backup"), escalate_after="60s")
    kit = kit_for(kits, store, rb)
    first = store.emit("incident.opened", "worker", kind="stuck", summary="worker is stuck")
    acked = store.emit("incident.opened", "worker", kind="crashloop", summary="worker is crash-looping")
    opened = store.incidents("open")[0]["opened"]
    assert kit.notifier.process(opened + 1) == pytest.approx(opened + 60, abs=0.5)  # the next deadline
    wait_for(lambda: len(receiver.at("/owner")) == 2, what="both incidents at the owner")
    ack(store, acked, by="ana")
    assert kit.notifier.process(opened + 30) == pytest.approx(opened + 60, abs=0.5)
    assert kit.notifier.process(opened + 59) is not None
    time.sleep(0.2)
    assert not receiver.at("/backup")  # not yet
    kit.notifier.process(opened + 61)
    wait_for(lambda: receiver.at("/backup"), what="the escalation")
    kit.settled()
    assert titles(receiver, "/backup") == [f"[tether] incident #{first} escalated: worker is stuck"]
    backup = receiver.at("/backup")[0].json()["message"]
    assert "within 1m" in backup and "backup" in backup
    kit.notifier.process(opened + 3600)  # once only; the acknowledged one never
    time.sleep(0.2)
    assert len(receiver.at("/backup")) == 1


def test_a_flapping_signal_is_one_thread_and_resolved_is_said_once(
    store: Store, receiver: Receiver, kits: list[Kit]
) -> None:
    rb = make_runbook(json_url(receiver, "/owner"), json_url(receiver, "/backup"), escalate_after="1h")
    kit = kit_for(kits, store, rb, flap_window=30.0)
    ids = []
    for _ in range(6):  # stale, fine, stale, fine, ...: the daemon opens a new incident each time
        ids.append(store.emit("incident.opened", "worker", kind="stale", summary="worker is stale"))
        kit.notifier.process()
        store.emit("incident.resolved", "worker", incident_id=ids[-1], kind="stale", why="beating again")
        due = kit.notifier.process()
        assert due is not None  # "resolved" waits for the flap window
    wait_for(lambda: receiver.at("/owner"), what="the first message")
    time.sleep(0.3)
    assert titles(receiver, "/owner") == [f"[tether] incident #{ids[0]}: worker is stale"]
    last_resolved = store.incidents()[-1]["resolved"]
    kit.notifier.process(last_resolved + 31)
    kit.notifier.process(last_resolved + 3600)
    kit.settled()
    got = titles(receiver, "/owner")
    assert got == [f"[tether] incident #{ids[0]}: worker is stale",
                   f"[tether] incident #{ids[0]} resolved: worker stale"]
    assert "re-opened 5 times" in receiver.at("/owner")[1].json()["message"]
    # after the resolution was announced, the signal coming back is news: a new thread
    again = store.emit("incident.opened", "worker", kind="stale", summary="worker is stale")
    kit.notifier.process()
    kit.settled()
    assert titles(receiver, "/owner")[-1] == f"[tether] incident #{again}: worker is stale"
    assert not receiver.at("/backup")


def test_a_delivery_failure_is_recorded_retried_with_backoff_and_never_blocks_the_caller(
    store: Store, kits: list[Kit]
) -> None:
    port = free_port()
    slow = Receiver(delay=3.0).start()  # the backup's receiver answers only after 3 s
    try:
        rb = make_runbook(f"json://127.0.0.1:{port}/owner", json_url(slow, "/backup"), escalate_after="0s")
        kit = kit_for(kits, store, rb, retry_base=0.3)
        inc = store.emit("incident.opened", "worker", kind="disk.low", summary="disk low: 2% free")
        kit.notifier.process()
        wait_for(lambda: store.events(kinds=["notify.failed"]), what="a failed attempt")
        t0 = time.perf_counter()
        for _ in range(20):  # the worker is stuck on the slow backup: deciding still takes no time
            kit.notifier.process()
        assert time.perf_counter() - t0 < 1.0
        failed = store.events(kinds=["notify.failed"])[0]
        assert failed.data["final"] is False and failed.data["next_try"] > failed.ts
        assert failed.data["recipient"] == "owner:worker" and failed.data["error"]
        owner = Receiver(port=port).start()  # the owner's receiver comes up
        try:
            wait_for(lambda: owner.at("/owner"), timeout=12, what="the retried delivery")
            got = {r["recipient"]: r for r in kit.settled(timeout=12)}
            assert got["owner:worker"]["state"] == "sent" and got["owner:worker"]["attempts"] >= 2
            assert got["owner:worker"]["last_error"]
            assert owner.at("/owner")[0].json()["title"].startswith(f"[tether] incident #{inc}")
            assert got["backup:worker"]["state"] == "sent"
        finally:
            owner.stop()
    finally:
        slow.stop()


def test_a_permanent_failure_is_given_up_at_once_and_says_what_to_do(store: Store, kits: list[Kit]) -> None:
    rb = make_runbook("mailto:ana@example.com", "mailto:bo@example.com")
    kit = kit_for(kits, store, rb)
    store.emit("incident.opened", "worker", kind="stale", summary="worker is stale")
    kit.notifier.process()
    row = kit.settled()[0]
    assert row["state"] == "failed" and row["attempts"] == 1
    assert "mailtos://" in row["last_error"] and "an address, not an apprise URL" in row["last_error"]


def test_approvals_kills_and_restarts_notify_the_right_people(
    store: Store, receiver: Receiver, kits: list[Kit]
) -> None:
    from tether.approvals import Approvals

    rb = make_runbook(json_url(receiver, "/owner"), json_url(receiver, "/backup"),
                      notify=[{"url": json_url(receiver, "/team"), "events": ["approval.*"]}])
    store.emit("daemon.started", None, pid=1)
    store.emit("daemon.stopped", None, pid=1)
    kit = kit_for(kits, store, rb)
    approvals = Approvals(store)
    row = approvals.request("worker", "deploy.prod", "fp1", classes=["deploy.prod"], detail="kubectl apply -f prod",
                            rule="default", reason="production deploys need a human", timeout=100, escalate_after=10)
    kit.notifier.process()
    approvals.tick(row["escalate_at"] + 0.1)
    kit.notifier.process()
    approvals.tick(row["expires"] + 0.1)
    kit.notifier.process()
    store.emit("agent.killed", "worker", reason="runaway spend")
    store.emit("daemon.started", None, pid=2)
    kit.notifier.process()
    kit.settled()
    aid = row["id"]
    assert titles(receiver, "/owner") == [
        f"[tether] approval #{aid}: worker asks to deploy.prod",
        f"[tether] approval #{aid} expired: worker may not deploy.prod",
        "[tether] worker was killed: runaway spend",
        "[tether] daemon restarted on test-host",
    ]
    assert titles(receiver, "/backup") == [
        f"[tether] approval #{aid} escalated: worker asks to deploy.prod",
        f"[tether] approval #{aid} expired: worker may not deploy.prod",
    ]
    assert [t.split(":")[0] for t in titles(receiver, "/team")] == [
        f"[tether] approval #{aid}", f"[tether] approval #{aid} escalated", f"[tether] approval #{aid} expired"]
    first = receiver.at("/owner")[0].json()["message"]
    assert f"{DASH}/approvals/{aid}" in first and f"tether approve {aid}" in first
    assert "kubectl apply -f prod" in first
    assert "after a clean stop" in receiver.at("/owner")[3].json()["message"]


def test_a_host_incident_goes_to_the_host_channels_and_resolves_once(
    store: Store, receiver: Receiver, kits: list[Kit]
) -> None:
    rb = make_runbook(json_url(receiver, "/owner"), json_url(receiver, "/backup"),
                      notify=[{"url": json_url(receiver, "/ops"), "events": ["incident.*"]},
                              {"url": json_url(receiver, "/approvers"), "events": ["approval.*"]}])
    kit = kit_for(kits, store, rb, flap_window=0.0)
    inc = store.emit("incident.opened", None, kind="network.unreachable", summary="api.github.com unreachable")
    kit.notifier.process()
    store.emit("incident.resolved", None, incident_id=inc, kind="network.unreachable", why="reachable again")
    kit.notifier.process()
    kit.notifier.process()
    kit.settled()
    assert titles(receiver, "/ops") == [f"[tether] incident #{inc}: api.github.com unreachable",
                                        f"[tether] incident #{inc} resolved: the host network.unreachable"]
    assert not receiver.at("/owner") and not receiver.at("/approvers")


def test_nothing_notified_carries_a_secret(
    store: Store, receiver: Receiver, kits: list[Kit], monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
    capfd: pytest.CaptureFixture[str],
) -> None:
    hook_token = "T0kenInTheHookPath9f8e7d6c5b4a"
    dead_token = "D3adReceiverToken0a1b2c3d4e5f"
    monkeypatch.setenv("OWNER_URL", json_url(receiver, f"/hook/{hook_token}"))
    monkeypatch.setenv("TEAM_URL", f"json://127.0.0.1:{free_port()}/hook/{dead_token}")  # nothing listens
    agent_secret = "agent-secret-value-31337"
    redact.register(agent_secret)
    github = "ghp_" + "A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8"
    rb = make_runbook("env:OWNER_URL", json_url(receiver, "/backup"), escalate_after="0s",
                      notify=[{"url": "env:TEAM_URL"}])
    kit = kit_for(kits, store, rb, max_attempts=1)
    store.emit("incident.opened", "worker", kind="error",
               summary=f"worker printed {agent_secret} and {github} and {hook_token} and {dead_token}")
    kit.notifier.process()
    got = kit.settled()
    assert sorted(r["state"] for r in got) == ["failed", "failed", "sent", "sent"]  # the team: opened, escalated
    failed = next(r for r in got if r["state"] == "failed")
    assert failed["last_error"] and dead_token not in failed["last_error"]
    out, err = capfd.readouterr()
    for secret in (hook_token, dead_token, agent_secret, github):
        assert secret not in out and secret not in err
    sent = [req.body.decode() for req in receiver.requests]
    assert len(sent) == 2
    for text in sent:
        assert agent_secret not in text and github not in text and hook_token not in text
        assert "[REDACTED" in text
    stored = (tmp_path / "tether.db").read_bytes() + Path(f"{tmp_path / 'tether.db'}-wal").read_bytes()
    for secret in (agent_secret, github, hook_token, dead_token):
        assert secret.encode() not in stored
    for e in store.events(kinds=["notify.queued", "notify.sent", "notify.failed"]):
        assert hook_token not in str(e.data) and agent_secret not in str(e.data) and dead_token not in str(e.data)
