"""The daemon tells people: an agent that fails under restart policy `never` opens an incident, the
owner gets it through apprise (json:// to a receiver on 127.0.0.1), and the dead-man's switch gets
`/start` at boot and `/fail` on the incident."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from test_daemon_kit import Host, agent, make_host  # noqa: F401 - the fixture
from test_notify_kit import Receiver, receiver, wait_for  # noqa: F401 - the fixture


def test_incident_reaches_the_owner_and_the_dead_mans_switch(
    make_host: Callable[..., Host], receiver: Receiver  # noqa: F811
) -> None:
    base = f"127.0.0.1:{receiver.port}"
    h = make_host(
        {"crasher": agent(["sh", "-c", "sleep 0.3; exit 3"], restart={"policy": "never"},
                          owner={"name": "Ana", "contact": f"json://{base}/owner"})},
        host={"deadman": {"url": f"http://{base}/ping/abc", "period": "1h"}},
    )
    daemon = h.up()
    wait_for(lambda: any(r.path == "/ping/abc/start" for r in receiver.requests), 15, "the dead-man's /start")

    def owner_told() -> list[Any]:
        return [r for r in receiver.requests if r.path == "/owner"]

    got = wait_for(owner_told, 20, "a notification to the owner")
    body = got[0].json()
    assert "crasher" in (body.get("title", "") + body.get("message", "")), body
    assert "exited 3" in body.get("message", "") + body.get("title", "")
    wait_for(lambda: any(r.path == "/ping/abc/fail" for r in receiver.requests), 15, "the dead-man's /fail")
    h.down(daemon)
