"""Restart policies, backoff and the crash-loop breaker with a real daemon and real processes."""

from __future__ import annotations

import threading
import time

from test_daemon_kit import Host, agent, make_host, wait_until  # noqa: F401


def starts(h: Host, name: str) -> list[dict]:
    return h.events("agent.started", name)


def test_policies_backoff_and_the_crashloop_breaker(make_host) -> None:  # noqa: F811
    quick = {"crashloop": {"limit": 50, "window": "1m"}}
    h: Host = make_host({
        "always": agent(["sh", "-c", "sleep 0.1; exit 0"], restart={"policy": "always", **quick}),
        "onfail-ok": agent(["sh", "-c", "sleep 0.1; exit 0"], restart={"policy": "on-failure"}),
        "never": agent(["sh", "-c", "sleep 0.1; exit 3"], restart={"policy": "never"}),
        "looper": agent(["sh", "-c", "sleep 0.05; exit 3"],
                        restart={"policy": "on-failure", "crashloop": {"limit": 3, "window": "1m"}}),
        "backoff": agent(["sh", "-c", "exit 1"], restart={
            "policy": "on-failure", "backoff": {"base": "200ms", "factor": 2, "cap": "800ms", "jitter": 0},
            "crashloop": {"limit": 5, "window": "1m"}}),
    })
    twice: list[str] = []
    stop = threading.Event()

    def watch() -> None:  # an agent never runs twice, sampled all along
        while not stop.is_set():
            for name in ("always", "looper"):
                if len(h.instances(name)) > 1:
                    twice.append(name)
            time.sleep(0.01)

    watcher = threading.Thread(target=watch)
    daemon = h.up()
    watcher.start()
    try:
        wait_until(lambda: len(starts(h, "always")) >= 4, 10, "always to restart after exit 0")
        wait_until(lambda: h.state_of("onfail-ok") == "stopped", 10, "on-failure to stop after exit 0")
        wait_until(lambda: h.state_of("never") == "stopped", 10, "never to stop after exit 3")
        assert len(starts(h, "onfail-ok")) == 1 and len(starts(h, "never")) == 1
        assert "restart policy on-failure" in h.row("onfail-ok")["reason"]
        assert h.row("never")["exit_code"] == 3

        # crash loop: 3 starts in the window, then no more, and one incident
        wait_until(lambda: h.state_of("looper") == "crashloop", 10, "looper to crash-loop")
        time.sleep(0.5)
        assert len(starts(h, "looper")) == 3
        assert len(h.incidents("crashloop", "looper")) == 1
        assert "tether start looper" in h.row("looper")["reason"]

        # backoff: 200ms, 400ms, 800ms, 800ms (the cap) between an exit and the next start
        wait_until(lambda: h.state_of("backoff") == "crashloop", 15, "backoff to crash-loop")
        ends = [e["ts"] for e in h.events("agent.exited", "backoff")]
        begins = [e["ts"] for e in starts(h, "backoff")]
        gaps = [b - e for e, b in zip(ends, begins[1:], strict=False)]
        assert len(gaps) == 4
        for gap, nominal in zip(gaps, [0.2, 0.4, 0.8, 0.8], strict=True):
            assert nominal - 0.02 <= gap <= nominal + 0.5, gaps

        # `tether start` after a crash loop: a fresh budget, the incident resolved; the next loop opens one
        assert h.api("POST", "/v1/agents/looper/start")[0] == 200
        wait_until(lambda: len(starts(h, "looper")) == 6 and h.state_of("looper") == "crashloop", 10,
                   "a second crash loop after a fresh budget")
        incidents = h.incidents("crashloop", "looper")
        assert [i["state"] for i in incidents] == ["resolved", "open"]
    finally:
        stop.set()
        watcher.join()
    assert not twice, f"ran twice: {twice}"
    assert h.down(daemon) == 0


def test_stop_start_restart_verbs(make_host) -> None:  # noqa: F811
    h: Host = make_host({"w": agent(["sh", "-c", "trap 'exit 0' TERM; while :; do sleep 0.05; done"])})
    daemon = h.up()
    wait_until(lambda: h.instances("w"), 10, "w to run")
    first = h.instances("w")
    got = h.cli("restart", "w")
    assert got.returncode == 0, got.stderr
    assert h.instances("w") and h.instances("w") != first
    got = h.cli("stop", "w")
    assert got.returncode == 0, got.stderr
    assert h.instances("w") == set()
    assert h.row("w")["desired"] == "stopped" and h.state_of("w") == "stopped"
    time.sleep(0.3)
    assert h.instances("w") == set(), "a stopped agent is not restarted"
    got = h.cli("start", "w")
    assert got.returncode == 0, got.stderr
    wait_until(lambda: h.instances("w"), 10, "w to run again")
    assert h.row("w")["restarts"] == 2
    assert h.down(daemon) == 0
    assert h.instances("w") == set(), "`tether down` stops the agents"
