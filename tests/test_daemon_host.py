"""The daemon and its host: a sleep inhibitor held while agents run, and systemd's notify protocol
(READY, the watchdog, STOPPING) spoken to a datagram socket standing in for systemd."""

from __future__ import annotations

import socket
import threading

from test_daemon_kit import Host, agent, cmdline, environ, make_host, pids, wait_until  # noqa: F401

FAKE_INHIBIT = """#!/bin/sh
# stands in for systemd-inhibit: records how it was called, then blocks like `sleep infinity`
echo "$*" >> "$INHIBIT_LOG"
while :; do sleep 1; done
"""


def inhibitors(h: Host) -> list[int]:
    return [p for p in pids() if environ(p).get("TETHER_TEST_MARK") == h.mark
            and any(a.endswith("/systemd-inhibit") for a in cmdline(p)[:2])]


def test_sleep_inhibitor_and_systemd_notify(make_host) -> None:  # noqa: F811
    h: Host = make_host({"w": agent(["sh", "-c", "while :; do sleep 0.05; done"])})
    bin_dir = h.root / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "systemd-inhibit"
    fake.write_text(FAKE_INHIBIT)
    fake.chmod(0o755)
    log = h.root / "inhibit.log"

    notify_path = h.root / "notify.sock"
    sd = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sd.bind(str(notify_path))
    sd.settimeout(0.2)
    messages: list[str] = []
    done = threading.Event()

    def listen() -> None:
        while not done.is_set():
            try:
                messages.append(sd.recv(4096).decode())
            except TimeoutError:
                continue

    listener = threading.Thread(target=listen)
    listener.start()
    try:
        import os

        daemon = h.up(env={"PATH": f"{bin_dir}:{os.environ['PATH']}", "INHIBIT_LOG": str(log),
                           "NOTIFY_SOCKET": str(notify_path), "WATCHDOG_USEC": "400000"})
        wait_until(lambda: h.instances("w"), 10, "w to run")
        wait_until(lambda: inhibitors(h), 5, "the sleep inhibitor while an agent runs")
        assert "--what=sleep:idle" in log.read_text() and "--who=tether" in log.read_text()
        inhibitor = wait_until(lambda: h.events("host.inhibitor"), 5, "the inhibitor recorded")[0]["data"]
        assert inhibitor["active"] is True

        wait_until(lambda: "READY=1" in messages, 5, "READY=1")
        wait_until(lambda: messages.count("WATCHDOG=1") >= 2, 5, "watchdog pings")
        assert any(m.startswith("STATUS=") for m in messages)

        assert h.api("POST", "/v1/agents/w/stop")[0] == 200
        wait_until(lambda: not inhibitors(h), 10, "the inhibitor to be released once no agent runs")
        assert h.api("POST", "/v1/agents/w/start")[0] == 200
        wait_until(lambda: inhibitors(h), 10, "the inhibitor again")
        assert h.down(daemon) == 0
        wait_until(lambda: "STOPPING=1" in messages, 5, "STOPPING=1")
        assert not inhibitors(h), "released when the daemon stops"
    finally:
        done.set()
        listener.join()
        sd.close()
