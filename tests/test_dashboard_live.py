"""Server-sent events over real HTTP on 127.0.0.1: an event reaches a listening client at once, an agent's
new log lines follow, a stream resumes from Last-Event-ID, ends on its own, and ends at once when the
daemon stops (so it never holds up a shutdown)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from test_dashboard_kit import InProcess, Served


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[InProcess, Served]]:
    h = InProcess(tmp_path)
    s = Served(h.app)
    yield h, s
    s.stop()
    h.close()


def frames(resp: httpx.Response) -> Iterator[tuple[str, Any, str | None]]:
    kind, data, ident = "message", [], None
    for line in resp.iter_lines():
        if line.startswith("event:"):
            kind = line[6:].strip()
        elif line.startswith("data:"):
            data.append(line[5:].strip())
        elif line.startswith("id:"):
            ident = line[3:].strip()
        elif line == "":
            if data:
                yield kind, json.loads("\n".join(data)), ident
            kind, data, ident = "message", [], None


def test_an_event_reaches_a_listener_within_500ms(served: tuple[InProcess, Served]) -> None:
    h, s = served
    auth = {"Authorization": f"Bearer {h.tokens['approver']}"}
    latencies = []
    with httpx.Client(base_url=s.url, timeout=10) as c, c.stream("GET", "/v1/stream", headers=auth) as resp:
        assert resp.status_code == 200 and resp.headers["content-type"].startswith("text/event-stream")
        got = frames(resp)
        for i in range(5):
            sent = time.time()
            threading.Timer(0.05, lambda i=i: h.store.emit("log", "a", line=f"hello {i}")).start()
            kind, data, ident = next(got)
            latencies.append(time.time() - sent - 0.05)
            assert kind == "tether" and data["agent"] == "a" and data["text"] == f"hello {i}"
            assert ident == str(data["id"])
    assert max(latencies) < 0.5, latencies


def test_agent_stream_follows_its_log_and_resumes(served: tuple[InProcess, Served]) -> None:
    h, s = served
    log_dir = h.loaded.state.log_dir("a")
    log_dir.mkdir(parents=True, exist_ok=True)
    (log_dir / "stdout.log").write_text("old line\n")
    first = h.store.emit("log", "a", line="before")
    auth = {"Authorization": f"Bearer {h.tokens['agent']}"}
    with httpx.Client(base_url=s.url, timeout=10) as c:
        # another agent's token may not follow a's stream
        assert c.get("/v1/stream?agent=a", headers={"Authorization": f"Bearer {h.tokens['other']}"}).status_code == 403
        with c.stream("GET", "/v1/stream?agent=a", headers={**auth, "Last-Event-ID": str(first - 1)}) as resp:
            got = frames(resp)
            kind, data, _ = next(got)
            assert kind == "tether" and data["id"] == first  # resumed from Last-Event-ID
            with open(log_dir / "stdout.log", "a") as f:
                f.write("new line with AKIA" + "Q7XYZ3ABCD5EFGH2\n")
            kind, data, _ = next(got)
            assert kind == "log" and data == [{"stream": "stdout", "line": "new line with [REDACTED:aws-key]"}]
            h.store.emit("log", "b", line="not a's")
            h.store.emit("log", "a", line="a's")
            kind, data, _ = next(got)
            assert data["text"] == "a's"


def test_streams_end_on_their_own_and_at_once_on_shutdown(served: tuple[InProcess, Served]) -> None:
    h, s = served
    auth = {"Authorization": f"Bearer {h.tokens['admin']}"}
    h.app.state.sse_lifetime = 0.5
    with httpx.Client(base_url=s.url, timeout=10) as c:
        started = time.monotonic()
        with c.stream("GET", "/v1/stream", headers=auth) as resp:
            kinds = [k for k, _, _ in frames(resp)]
        assert kinds[-1] == "bye" and time.monotonic() - started < 3
        h.app.state.sse_lifetime = 300
        ended: list[float] = []

        def listen() -> None:
            with httpx.Client(base_url=s.url, timeout=10) as c2, c2.stream("GET", "/v1/stream", headers=auth) as r:
                for _ in frames(r):
                    pass
            ended.append(time.monotonic())

        t = threading.Thread(target=listen)
        t.start()
        time.sleep(0.3)
        stop_at = time.monotonic()
        assert c.post("/v1/shutdown", headers=auth).status_code == 200
        t.join(5)
        assert ended and ended[0] - stop_at < 1.0
