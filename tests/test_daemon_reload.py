"""`tether reload` and SIGHUP: an invalid runbook is rejected with its errors and the old one stays;
a changed agent restarts; unchanged agents keep their processes."""

from __future__ import annotations

import signal

from test_daemon_kit import Host, agent, make_host, wait_until  # noqa: F401

LOOP = "while :; do sleep 0.05; done"


def test_reload_and_sighup(make_host) -> None:  # noqa: F811
    agents = {"keep": agent(["sh", "-c", LOOP]), "change": agent(["sh", "-c", LOOP]),
              "drop": agent(["sh", "-c", LOOP])}
    h: Host = make_host(agents)
    daemon = h.up()
    wait_until(lambda: all(h.instances(n) for n in agents), 10, "agents to run")
    pids = {n: h.instances(n) for n in agents}
    good = h.runbook.read_text()

    # invalid: rejected with every error, by the CLI and by the daemon (SIGHUP), the old runbook stays
    h.runbook.write_text(good.replace("policy: on-failure", "policy: sometimes", 1).replace("1s", "one second", 1))
    got = h.cli("reload")
    assert got.returncode == 2
    errors = got.stderr.splitlines()
    assert len(errors) == 2 and all(e.startswith(f"{h.runbook}:") for e in errors), got.stderr
    assert any("policy" in e for e in errors) and any("grace" in e for e in errors)
    status, body = h.api("POST", "/v1/reload")
    assert status == 409 and "policy" in body["detail"]
    daemon.send_signal(signal.SIGHUP)
    wait_until(lambda: h.events("runbook.rejected"), 5, "the SIGHUP reload to be rejected")
    assert len(h.events("runbook.rejected")[0]["data"]["errors"]) == 2
    assert {n: h.instances(n) for n in agents} == pids, "nothing restarted"

    # valid, by the CLI: only the changed agent restarts; a removed one stops; a new one starts
    agents["change"] = agent(["sh", "-c", LOOP], env={"NEW": "1"})
    agents["new"] = agent(["sh", "-c", LOOP])
    del agents["drop"]
    h.write(agents)
    got = h.cli("reload")
    assert got.returncode == 0, got.stderr
    assert "restarted: change, new" in got.stdout
    wait_until(lambda: h.instances("change") and h.instances("new"), 10, "change and new to run")
    assert h.instances("keep") == pids["keep"], "unchanged: same process"
    assert h.instances("change") != pids["change"]
    assert h.instances("drop") == set() and h.state_of("drop") == "stopped"

    # valid, by SIGHUP
    agents["keep"] = agent(["sh", "-c", LOOP], kill={"grace": "2s"})
    h.write(agents)
    change_pids = h.instances("change")
    daemon.send_signal(signal.SIGHUP)
    wait_until(lambda: len(h.events("runbook.reloaded")) == 2, 10, "the SIGHUP reload")
    assert h.events("runbook.reloaded")[-1]["data"]["restarted"] == ["keep"]
    wait_until(lambda: h.instances("keep"), 10, "keep to run again")
    assert h.instances("keep") != pids["keep"] and h.instances("change") == change_pids
    assert h.down(daemon) == 0
