"""Drills on small hosts of their own (a real daemon each): the reboot drill fails when an agent does not come
back (a crash-loop budget too tight to survive a reboot) and when the daemon itself does not come back; the
kill drill, for an agent that is never restarted, passes only when it is reported stopped and its owner
told."""

from __future__ import annotations

import shutil
import sys
import threading
from pathlib import Path

import pytest

from test_daemon_kit import Host as KitHost
from test_daemon_kit import agent, make_host, wait_until  # noqa: F401
from tether.demo.receiver import Receiver
from tether.drills import kill, reboot
from tether.drills.base import Host, Result
from tether.runbook import load

pytestmark = pytest.mark.skipif(sys.platform != "linux" or shutil.which("git") is None, reason="Linux, git")

TICK = "i=0; while :; do i=$((i+1)); echo tick $i; sleep 0.05; done"


def test_reboot_drill_fails_for_an_agent_that_does_not_come_back(
    make_host, monkeypatch: pytest.MonkeyPatch  # noqa: F811
) -> None:
    h: KitHost = make_host({
        "steady": agent(["sh", "-c", TICK]),
        "tight": agent(["sh", "-c", TICK], restart={"crashloop": {"limit": 1, "window": "10m"}}),
    })
    monkeypatch.setenv("TETHER_TEST_MARK", h.mark)  # the daemon the drill starts is cleaned up with the host
    h.up()
    wait_until(lambda: h.instances("steady") and h.instances("tight"), 10, "both agents to run")
    wait_until(lambda: "tick 5\n" in h.log("steady"), 10, "some log lines")
    host = Host(load(h.runbook))
    try:
        results = {r.agent: r for r in reboot.run(host, ["steady", "tight"])}
    finally:
        host.close()
    steady, tight = results["steady"], results["tight"]
    assert steady.status == "pass", steady
    assert "back in" in steady.detail and "task" in steady.detail and "pending approval" in steady.detail
    assert steady.timings["daemon_back_s"] < 20 and steady.evidence
    assert tight.status == "fail", tight
    assert "tight did not run again: crashloop" in tight.detail
    # its evidence was cleaned up: the approval denied, the task cancelled; the logs kept every line
    approvals = h.sql("SELECT state, note FROM approvals")
    assert approvals == [{"state": "denied", "note": "drill"}]
    assert [r["state"] for r in h.sql("SELECT state FROM tasks")] == ["cancelled"]
    lines = [int(x.split()[1]) for x in h.log("steady").splitlines() if x.startswith("tick ")]
    assert lines[: lines.index(1, 1)] == list(range(1, lines.index(1, 1) + 1)), "the first run's lines, all there"
    h.cli("down")


def test_reboot_drill_fails_when_the_daemon_does_not_come_back(
    make_host, monkeypatch: pytest.MonkeyPatch  # noqa: F811
) -> None:
    h: KitHost = make_host({"steady": agent(["sh", "-c", TICK])})
    monkeypatch.setenv("TETHER_TEST_MARK", h.mark)
    h.up()
    wait_until(lambda: h.instances("steady"), 10, "the agent to run")
    host = Host(load(h.runbook))
    text = h.runbook.read_text()
    h.runbook.write_text(text + "\nbogus: [\n")  # the service would start the daemon from a broken runbook
    try:
        (result,) = reboot.run(host, ["steady"])
    finally:
        host.close()
        h.runbook.write_text(text)
    assert result.status == "fail"
    assert "the daemon did not come back" in result.detail and "tether.yaml" in result.detail


def _drill_with_incident(host: Host, name: str) -> Result:
    """The kill drill of ``name``, with the incident for its stop opened (as the daemon should)."""
    stop = threading.Event()
    cursor = host.cursor()

    def open_incident() -> None:
        while not stop.is_set():
            for e in host.events(cursor, name, ["agent.state"]):
                if e.data.get("state") == "stopped" and not host.store.incidents("open", name):
                    host.emit("incident.opened", name, kind="exited", summary=f"{name} exited; policy never")
                    return
            stop.wait(0.05)

    helper = threading.Thread(target=open_incident, daemon=True)
    helper.start()
    try:
        return kill.run(host, name)
    finally:
        stop.set()
        helper.join(5)


def test_kill_drill_for_a_never_restarted_agent_needs_it_reported_and_its_owner_told(
    make_host, tmp_path: Path  # noqa: F811
) -> None:
    """Its owner told means the notification was delivered (to a real receiver on 127.0.0.1); one that was
    not (nobody listens at the address) is said as failed, with the channel's error, and the drill is
    degraded."""
    phone = Receiver(tmp_path / "phone.jsonl")
    never = {"policy": "never"}
    h: KitHost = make_host({
        "once": agent(["sh", "-c", TICK], restart=never,
                      owner={"name": "Ana", "contact": f"json://127.0.0.1:{phone.port}/ana"},
                      backup={"name": "Bo", "contact": f"json://127.0.0.1:{phone.port}/bo"}),
        "unreached": agent(["sh", "-c", TICK], restart=never),  # json://127.0.0.1:9: nobody listens
    })
    h.up()
    wait_until(lambda: h.instances("once") and h.instances("unreached"), 10, "the agents to run")
    host = Host(load(h.runbook))
    try:
        first = kill.run(host, "once")
        assert "it was not reported stopped" not in first.detail, first
        if not h.incidents(agent="once"):  # the daemon opens no incident for an agent left stopped: nobody is told
            assert first.status == "fail", first
            assert "no incident was opened for it, so its owner is not told" in first.detail
        else:
            assert first.status == "pass", first
        wait_until(lambda: h.instances("once"), 10, "the drill to start it again")

        second = _drill_with_incident(host, "once")  # a pass, cleaned up after
        assert second.status == "pass", second
        assert "reported stopped (policy never)" in second.detail
        assert "; owner notified (owner:once)" in second.detail, second.detail
        assert phone.count >= 1, "delivered: the receiver has it"
        kinds = {e.id: e.kind for e in host.events(0, "once")}
        assert "notify.sent" in {kinds[i] for i in second.evidence}, "the delivery is cited"
        assert host.store.incidents("open", "once") == [], "the drill resolved the incident it caused"
        wait_until(lambda: h.instances("once"), 10, "the drill to start it again")

        lost = _drill_with_incident(host, "unreached")
        assert lost.status == "degraded", lost
        assert "owner notified" not in lost.detail, lost.detail
        assert "; the notification to owner:unreached failed (" in lost.detail, lost.detail
        kinds = {e.id: e.kind for e in host.events(0, "unreached")}
        assert "notify.failed" in {kinds[i] for i in lost.evidence}, "the failed delivery is cited"
        wait_until(lambda: h.instances("unreached"), 10, "the drill to start it again")
    finally:
        host.close()
        phone.close()
