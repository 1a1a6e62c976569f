"""Drills on small hosts of their own (a real daemon each): the reboot drill fails when an agent does not come
back (a crash-loop budget too tight to survive a reboot) and when the daemon itself does not come back; the
kill drill, for an agent that is never restarted, passes only when it is reported stopped and its owner
told."""

from __future__ import annotations

import shutil
import sys
import threading

import pytest

from test_daemon_kit import Host as KitHost
from test_daemon_kit import agent, make_host, wait_until  # noqa: F401
from tether.drills import kill, reboot
from tether.drills.base import Host
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


def test_kill_drill_for_a_never_restarted_agent_needs_it_reported_and_its_owner_told(
    make_host,  # noqa: F811
) -> None:
    h: KitHost = make_host({"once": agent(["sh", "-c", TICK], restart={"policy": "never"})})
    h.up()
    wait_until(lambda: h.instances("once"), 10, "the agent to run")
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

        # the same drill, with the incident opened for it (as the daemon should): a pass, cleaned up after
        stop = threading.Event()
        cursor = host.cursor()

        def open_incident() -> None:
            while not stop.is_set():
                for e in host.events(cursor, "once", ["agent.state"]):
                    if e.data.get("state") == "stopped" and not host.store.incidents("open", "once"):
                        host.emit("incident.opened", "once", kind="exited", summary="once exited; policy never")
                        return
                stop.wait(0.05)

        helper = threading.Thread(target=open_incident, daemon=True)
        helper.start()
        second = kill.run(host, "once")
        stop.set()
        helper.join(5)
        assert second.status == "pass", second
        assert "reported stopped (policy never)" in second.detail
        assert "incident" in second.detail or "owner notified" in second.detail, second.detail
        assert len(second.evidence) >= 3, "the exit, the stopped state and the incident (or notification)"
        assert host.store.incidents("open", "once") == [], "the drill resolved the incident it caused"
        wait_until(lambda: h.instances("once"), 10, "the drill to start it again")
    finally:
        host.close()
