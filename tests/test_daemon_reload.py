"""`tether reload` and SIGHUP: an invalid runbook is rejected with its errors and the old one stays;
a changed agent restarts; unchanged agents keep their processes."""

from __future__ import annotations

import json
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
    assert status == 422 and len(body["detail"]["runbook"]) == 2 and "policy" in body["detail"]["runbook"][0]
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


def test_reload_applies_the_host_section_or_refuses_what_needs_a_restart(make_host) -> None:  # noqa: F811
    """Probes, export and the dead-man's switch change live (the host watch checks again at once, the
    exporter and the dead-man's switch restart on the new settings); listen, store or state_dir cannot,
    and a reload that changes one is refused whole, naming the line."""
    import socket

    from test_notify_kit import Receiver

    export, deadman = Receiver().start(), Receiver().start()
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    agents = {"w": agent(["sh", "-c", LOOP])}
    h: Host = make_host(agents, host={"probe_interval": "1h"})
    daemon = h.up()
    try:
        wait_until(lambda: h.instances("w"), 10, "the agent to run")
        pid = h.instances("w")
        assert not h.incidents("network.unreachable")

        # restart-only fields: refused, nothing applied, the agent untouched
        h.write(agents, host={"probe_interval": "1h", "listen": "127.0.0.1:1", "probes": [f"tcp://127.0.0.1:{closed}"]})
        got = h.cli("reload")
        assert got.returncode == 2, got.stdout
        line = next(i for i, t in enumerate(h.runbook.read_text().splitlines(), 1) if t.strip().startswith("listen:"))
        assert got.stderr.strip() == (f"{h.runbook}:{line}: host.listen: cannot change while the daemon runs; "
                                      "restart it to apply (`tether down && tether up`) or put the old value back")
        assert h.instances("w") == pid and not h.incidents("network.unreachable")

        # live fields: applied at once (the probe interval is an hour: only the wake-up makes it this fast)
        h.write(agents, host={"probe_interval": "1h", "probes": [f"tcp://127.0.0.1:{closed}"],
                              "export": {"webhook": f"http://127.0.0.1:{export.port}/events"},
                              "deadman": {"url": f"http://127.0.0.1:{deadman.port}/ping/abc", "period": "1h"}})
        got = h.cli("reload")
        assert got.returncode == 0, got.stderr
        wait_until(lambda: h.incidents("network.unreachable"), 5, "the new probe to fail")
        assert h.instances("w") == pid, "a host change restarts no agent"
        reloaded = h.events("runbook.reloaded")[-1]["data"]
        assert set(reloaded["host"]) == {"probes", "export", "deadman"} and reloaded["restarted"] == []
        wait_until(lambda: any(r.path == "/ping/abc/start" for r in deadman.requests), 5, "the dead-man's /start")
        wait_until(lambda: any(b'"runbook.reloaded"' in r.body for r in export.requests), 10, "the export")
        first = json.loads(export.requests[0].body.splitlines()[0])
        assert first["id"] == 1, "the new exporter starts from its cursor: the whole log, once"
    finally:
        h.down(daemon)
        export.stop()
        deadman.stop()
