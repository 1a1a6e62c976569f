"""Waiting calls cannot starve the daemon (issue 14): a check with ``wait`` (and the approval long-poll, a hook's
X-Tether-Wait) waits on a thread of its own, at most ``PER_AGENT`` per agent; past that it is answered at once.
Before, one agent's 60 waiting checks took every worker of the shared pool and held another agent's `ls`
check 13 s (its hook would have failed closed)."""

from __future__ import annotations

import json
import threading
import urllib.request
from typing import Any

from test_daemon_kit import PY, Host, agent, make_host, wait_until  # noqa: F401
from tether.api.waits import PER_AGENT

SLEEP = [PY, "-c", "import time\nwhile True: time.sleep(1)"]
WAITERS = 50  # more than the shared pool's 40 workers


def _check(h: Host, name: str, command: str, wait: float, timeout: float = 60) -> dict[str, Any]:
    req = urllib.request.Request(f"{h.url}/v1/agents/{name}/check", method="POST",
                                 data=json.dumps({"command": command, "wait": wait}).encode(),
                                 headers={"Authorization": f"Bearer {h.agent_token(name)}",
                                          "Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        got: dict[str, Any] = json.loads(resp.read())
        return got


def test_one_agents_waits_neither_starve_the_others_nor_pile_up(make_host) -> None:  # noqa: F811
    h: Host = make_host({})
    h.write({"a": agent(SLEEP), "b": agent(SLEEP)})
    h.up()
    answers: list[dict[str, Any]] = []
    lock = threading.Lock()

    def ask() -> None:
        got = _check(h, "a", "git push --force origin main", 60, timeout=90)
        with lock:
            answers.append(got)

    threads = [threading.Thread(target=ask, daemon=True) for _ in range(WAITERS)]
    for t in threads:
        t.start()
    # past PER_AGENT, a's calls are answered at once, as with no wait: held, pending
    wait_until(lambda: len(answers) >= WAITERS - PER_AGENT, 30, "the calls past the limit to be answered")
    with lock:
        early = list(answers)
    assert len(early) == WAITERS - PER_AGENT and {a["decision"] for a in early} == {"pending"}, early
    # another agent's check is answered while a's waits go on (it was held until they ended)
    assert _check(h, "b", "ls", 0, timeout=10)["decision"] == "allow"
    [approval] = h.api("GET", "/v1/approvals?state=pending")[1]["approvals"]
    assert h.cli("approve", str(approval["id"])).returncode == 0
    for t in threads:
        t.join(30)
    assert len(answers) == WAITERS
    assert [a["decision"] for a in answers[WAITERS - PER_AGENT:]].count("allow") >= 1  # the waiters heard it
