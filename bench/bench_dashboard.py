"""The dashboard: the overview page with 200 agents and 1,000,000 events (quick: 100,000), served by
uvicorn on 127.0.0.1, its server time read from the page's ``Server-Timing`` header (goal: median
≤ 50 ms), beside the status report alone (what ``tether status`` computes for the same agents); and how
fast an event reaches an open page in a real browser (Debian's chromium) through server-sent events (goal
≤ 500 ms), beside a page that polls ``/v1/events`` every second, both watching the same events."""

from __future__ import annotations

import json
import re
import socket
import statistics
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx

from tether import auth
from tether.approvals import Approvals
from tether.fleet.seam import Alone
from tether.status_report import report
from tether.store import NewEvent
from tether.store.sqlite import SQLiteStore

from common import median, row

AGENTS = 200
CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run"]


class Control:
    """The parts of the daemon the dashboard reads (no supervision: a bench measures the pages)."""

    def __init__(self, store: SQLiteStore, names: list[str]) -> None:
        self.store = store
        self.approvals = Approvals(store)
        self.names = names
        self.loaded = None
        self.started = time.time()
        self.shutdown_requested = threading.Event()
        self.probe_results: list[object] = []
        self.place = Alone("bench")  # one host: no fleet

    def agent_names(self) -> list[str]:
        return self.names


def fill(path: Path, events: int) -> SQLiteStore:
    store = SQLiteStore(path)
    now = time.time()
    names = [f"agent-{i:03d}" for i in range(AGENTS)]
    info = json.dumps({"kind": "command", "owner": {"name": "Ana"}, "backup": {"name": "Bo"},
                       "heartbeat": {"interval": 30, "stale_after": 120, "stuck_after": 1800}})
    store.run(lambda conn: conn.executemany(
        "INSERT INTO agents (name, state, state_since, task, progress, last_heartbeat, last_progress, info, updated,"
        " restarts) VALUES (?, 'running', ?, ?, ?, ?, ?, ?, ?, ?)",
        [(n, now, f"task for {n}", "step 3/10", now - i % 60, now, info, now, i % 4) for i, n in enumerate(names)],
    ))
    data = json.dumps({"line": "worked on item", "n": 1})
    step = 50_000
    for start in range(0, events, step):
        n = min(step, events - start)
        store.append_raw([(now - events + start + i, names[(start + i) % AGENTS], "log", data) for i in range(n)])
    extra = []
    for i, n in enumerate(names):
        extra.append(NewEvent("usage", n, {"model": "claude-sonnet", "input_tokens": 1000 + i, "output_tokens": 200,
                                            "cost_usd": 0.01 * (i % 7)}))
        if i % 10 == 0:
            extra.append(NewEvent("error", n, {"kind": "tool", "detail": "exit 1"}))
            extra.append(NewEvent("task.added", n, {"text": f"queued for {n}"}))
        if i % 20 == 0:
            extra.append(NewEvent("incident.opened", n, {"kind": "stale", "summary": f"{n} is stale"}))
    store.append(extra)
    approvals = Approvals(store)
    for i in range(0, AGENTS, 40):
        approvals.request(names[i], "git.push", f"fp{i}", classes=["git.push"], detail="git push --force origin main",
                          rule="default table: git.push: ask", reason="force push", timeout=3600,
                          escalate_after=3600)
    return store


class Server:
    def __init__(self, app: Any) -> None:
        import uvicorn

        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off",
                                                    timeout_graceful_shutdown=1))
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)
        self.thread.start()
        while not self.server.started:
            time.sleep(0.01)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)
        self.sock.close()


def login(client: httpx.Client, token: str) -> None:
    page = client.get("/login")
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert csrf is not None
    got = client.post("/login", data={"token": token, "csrf": csrf.group(1)})
    assert got.status_code == 303, got.text


def overview_rows(url: str, token: str, store: SQLiteStore, events: int, rounds: int) -> list[dict[str, object]]:
    server_ms, wall_ms, status_ms = [], [], []
    with httpx.Client(base_url=url, timeout=30) as c:
        login(c, token)
        for i in range(rounds + 2):
            started = time.perf_counter()
            got = c.get("/")
            wall = (time.perf_counter() - started) * 1000
            assert got.status_code == 200 and got.text.count("data-agent=") == AGENTS
            dur = float(got.headers["server-timing"].split("dur=")[1])
            t0 = time.perf_counter()
            report(store)
            status = (time.perf_counter() - t0) * 1000
            if i >= 2:  # the first ones warm the caches (templates, connections)
                server_ms.append(dur)
                wall_ms.append(wall)
                status_ms.append(status)
    t, b = median(server_ms), median(status_ms)
    label = f"overview page, {AGENTS} agents, {events:,} events: server time vs the status report alone"
    out = [row(label, t, b, "ms", "median ≤ 50 ms", t <= 50)]
    out.append(row(f"overview page over HTTP on 127.0.0.1 (round trip), {events:,} events", median(wall_ms),
                   t, "ms", "informational", True))
    return out


def sse_rows(url: str, token: str, api_token: str, store: SQLiteStore, rounds: int) -> list[dict[str, object]]:
    """Latency from the event's commit to the browser's DOM, and for a 1 s poller of /v1/events."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        return [row("SSE to a browser page: playwright missing", float("nan"), float("nan"), "ms", "≤ 500 ms", False)]
    if not Path(CHROMIUM).exists():
        return [row("SSE to a browser page: /usr/bin/chromium missing (.ci/install-browser)", float("nan"),
                    float("nan"), "ms", "≤ 500 ms", False)]
    seen_by_poller: dict[int, float] = {}
    stop = threading.Event()
    newest = store.last_events(None, 1)
    after = newest[0].id if newest else 0

    def poll() -> None:  # the baseline: a page that fetches new events every second
        cursor = after
        with httpx.Client(base_url=url, timeout=10, headers={"Authorization": f"Bearer {api_token}"}) as c:
            while not stop.is_set():
                got = c.get(f"/v1/events?after={cursor}&limit=1000").json()["events"]
                now = time.time()
                for e in got:
                    seen_by_poller.setdefault(e["id"], now)
                    cursor = max(cursor, e["id"])
                stop.wait(1.0)

    sse, polled = [], []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.goto(url + "/login")
            page.fill("#token", token)
            page.click("button[type=submit]")
            page.wait_for_selector("#live.on", timeout=15_000)
            poller = threading.Thread(target=poll, daemon=True)
            poller.start()
            for i in range(rounds):
                time.sleep(0.137 * (i % 5) + 0.05)  # events at irregular moments, as they come
                sent = time.time()
                event_id = store.emit("log", f"agent-{i % AGENTS:03d}", line=f"bench event {i}")
                el = page.wait_for_selector(f'[data-event-id="{event_id}"]', timeout=10_000)
                assert el is not None
                sse.append(float(el.get_attribute("data-seen") or 0) - sent * 1000)
                deadline = time.time() + 3
                while event_id not in seen_by_poller and time.time() < deadline:
                    time.sleep(0.01)
                if event_id in seen_by_poller:
                    polled.append((seen_by_poller[event_id] - sent) * 1000)
            stop.set()
            poller.join(5)
        finally:
            browser.close()
    t, b = median(sse), median(polled) if polled else float("nan")
    worst = max(sse)
    p95 = statistics.quantiles(sse, n=20, method="inclusive")[-1] if len(sse) >= 2 else worst
    return [row(f"event to an open browser page via SSE (median; p95 {p95:.0f} ms, max {worst:.0f} ms) vs polling "
                "/v1/events every 1 s", t, b, "ms", "≤ 500 ms (every event)", worst <= 500)]


def run(quick: bool) -> list[dict[str, object]]:
    from tether.api.app import create_app

    events = 100_000 if quick else 1_000_000
    with tempfile.TemporaryDirectory(dir=Path(__file__).parent) as tmp:
        store = fill(Path(tmp) / "tether.db", events)
        control = Control(store, [f"agent-{i:03d}" for i in range(AGENTS)])
        app = create_app(control)  # type: ignore[arg-type]
        token = auth.create(store, "approver")
        server = Server(app)
        try:
            out = overview_rows(server.url, token, store, events, 10 if quick else 30)
            out += sse_rows(server.url, token, token, store, 10 if quick else 30)
        finally:
            control.shutdown_requested.set()  # ends the page's event stream
            server.stop()
            store.close()
    return out


if __name__ == "__main__":
    import sys

    for r in run(quick="--quick" in sys.argv):
        print(r)
