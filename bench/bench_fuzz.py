"""A hostile agent against a real daemon: random and mutated inputs (``fuzz_inputs``) sent with the agent's own
token over keep-alive connections as fast as the daemon answers (full run 1,000,000 inputs, quick 4,000).
Not a timed test; it counts:

- daemon deaths (goal 0): the daemon is watched by its pid and ``GET /v1/health``; one that died or stopped
  answering is restarted and the inputs in flight are written down;
- 5xx answers by route (goal 0) and requests with no answer within ``TIMEOUT`` (goal 0), with their inputs;
- the daemon's peak RSS against its RSS at rest after a warm-up (goal < 2x);
- ``/check`` decisions answered per second (mixed traffic) and the slowest one, with its input.

Each failing input goes to ``bench/results/fuzz-<date>.jsonl`` (index, route, status, the body in base64);
``python bench/bench_fuzz.py --show INDEX`` prints input INDEX again, ``--send INDEX`` sends it to a fresh daemon.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import hashlib
import http.client
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil
import yaml

from fuzz_inputs import AGENT, OTHER, Input, Maker

from common import PYTHON, row, stop

HERE = Path(__file__).resolve().parent
SEED = 14
TIMEOUT = 15.0
WORKERS = 12  # the daemon waits on fsyncs: more connections keep it busier (4: ~105/s, 12: ~160/s here)
HEALTH_EVERY = 2000  # requests between two health checks, per worker
MAX_DEATHS = 20  # then the run stops: the daemon is plainly broken
PROGRESS = 50_000  # a line on stderr every this many inputs
STOP = threading.Event()
KEEP = 20  # failing inputs kept per (route, status)
PERSON = {"name": "Fuzz", "contact": "json://127.0.0.1:9/fuzz"}


class Daemon:
    """One real daemon (SQLite) with agents ``fuzz`` and ``other``, restarted on the same state if it dies."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.ws = root / "ws"
        (self.ws / "src").mkdir(parents=True)
        self.state = root / "state"
        agent = {"owner": PERSON, "backup": PERSON, "command": ["sleep", "3600"], "autostart": False, "sandbox": "off",
                 "cwd": str(self.ws), "approvals": {"timeout": "2s", "escalate_after": "1s", "retry_window": "1s"}}
        self.runbook = root / "tether.yaml"
        self.runbook.write_text(yaml.safe_dump({
            "version": 1, "host": {"state_dir": str(self.state), "listen": "127.0.0.1:0"},
            "agents": {AGENT: agent, OTHER: dict(agent)}}))
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("TETHER_")}
        self.log = root / "daemon.log"
        self.proc: Any = None
        self.ps: psutil.Process | None = None
        self.url = ""
        self.generation = 0
        self.start()
        self.tokens = {who: self._token(who) for who in (AGENT, OTHER)}

    def start(self) -> None:
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                [PYTHON, "-m", "tether", "-f", str(self.runbook), "up", "--foreground"], env=self.env,
                stdout=log, stderr=log, stdin=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError, ValueError):
                info = json.loads((self.state / "daemon.json").read_text())
                if info.get("pid") == self.proc.pid and self.health():
                    self.url = info["url"]
                    break
                if info.get("pid") == self.proc.pid:
                    self.url = info["url"]
            if self.proc.poll() is not None:
                raise RuntimeError(f"the daemon exited at start ({self.proc.returncode}): see {self.log}")
            time.sleep(0.05)
        else:
            stop(self.proc)
            raise RuntimeError(f"the daemon did not start within 60 s: see {self.log}")
        self.ps = psutil.Process(self.proc.pid)
        self.generation += 1

    def _token(self, agent: str) -> str:
        return subprocess.run([PYTHON, "-m", "tether", "-f", str(self.runbook), "token", "create", "--role", "agent",
                               "--agent", agent], capture_output=True, text=True, env=self.env,
                              check=True).stdout.strip()

    @property
    def address(self) -> tuple[str, int]:
        host, _, port = self.url.removeprefix("http://").partition(":")
        return host, int(port)

    def health(self) -> bool:
        if not self.url:
            return False
        conn = http.client.HTTPConnection(*self.address, timeout=TIMEOUT)
        try:
            conn.request("GET", "/v1/health")
            return conn.getresponse().status == 200
        except OSError:
            return False
        finally:
            conn.close()

    def alive(self) -> bool:
        return self.proc.poll() is None

    def rss(self) -> int:
        try:
            return self.ps.memory_info().rss if self.ps else 0
        except psutil.Error:
            return 0

    def tail(self, n: int = 4000) -> str:
        with contextlib.suppress(OSError):
            return self.log.read_bytes()[-n:].decode(errors="replace")
        return ""

    def close(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            stop(self.proc)


@dataclass
class Tally:
    """Everything the workers count, under one lock."""

    statuses: Counter[tuple[str, int]] = field(default_factory=Counter)
    failures: list[dict[str, Any]] = field(default_factory=list)
    kept: Counter[tuple[str, str]] = field(default_factory=Counter)
    deaths: list[dict[str, Any]] = field(default_factory=list)
    hangs: int = 0
    dropped: int = 0  # kept-alive connections closed by the server between two requests (then sent again)
    server_errors: int = 0
    sent: int = 0
    check_ok: int = 0
    slowest: tuple[float, int, str] = (0.0, -1, "")
    peak_rss: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def fail(self, kind: str, inp: Input, status: int, answer: bytes) -> None:
        key = (inp.route, f"{kind} {status}")
        self.kept[key] += 1
        if self.kept[key] <= KEEP:
            self.failures.append(describe(inp) | {"kind": kind, "status": status,
                                                 "answer": answer[:300].decode(errors="replace")})


def describe(inp: Input) -> dict[str, Any]:
    return {"index": inp.index, "category": inp.category, "route": inp.route, "method": inp.method,
            "path": inp.path, "headers": inp.headers, "auth": inp.auth, "body_bytes": len(inp.body),
            "body_sha256": hashlib.sha256(inp.body).hexdigest()[:16], "body_head": repr(inp.body[:200]),
            "body_b64": base64.b64encode(inp.body).decode() if len(inp.body) <= 4096 else None}


class Worker:
    """One keep-alive connection sending inputs ``k, k + n, k + 2n, ...`` below ``total``."""

    def __init__(self, daemon: Daemon, maker: Maker, tally: Tally, restart: Any) -> None:
        self.daemon, self.maker, self.tally, self.restart = daemon, maker, tally, restart
        self.conn: http.client.HTTPConnection | None = None
        self.current: Input | None = None
        self.previous: Input | None = None
        self.previous_status = 0

    def headers(self, inp: Input) -> dict[str, str]:
        h = {"Content-Type": "application/json", **inp.headers}
        if inp.auth == "agent":
            h["Authorization"] = f"Bearer {self.daemon.tokens[AGENT]}"
        elif inp.auth == "other":
            h["Authorization"] = f"Bearer {self.daemon.tokens[OTHER]}"
        elif inp.auth == "garbage":
            h["Authorization"] = "Bearer " + hashlib.sha256(str(inp.index).encode()).hexdigest()
        return h

    def send(self, inp: Input) -> tuple[int, bytes, float]:
        """(status, answer, seconds); status 0: no answer (connection closed, refused, or timed out). A kept-alive
        connection the server closed after the previous answer is not this input's doing: sent again, once."""
        reused = self.conn is not None
        status, answer, took = self._send(inp)
        if status == 0 and reused and not answer.startswith(b"timeout"):
            with self.tally.lock:
                self.tally.dropped += 1
                if self.previous is not None:  # what the connection carried last: maybe why it was closed
                    self.tally.fail("connection closed after", self.previous, self.previous_status, answer)
            status, answer, took = self._send(inp)
        self.previous, self.previous_status = inp, status
        return status, answer, took

    def _send(self, inp: Input) -> tuple[int, bytes, float]:
        conn = self.conn or http.client.HTTPConnection(*self.daemon.address, timeout=TIMEOUT)
        self.conn = conn
        t0 = time.perf_counter()
        try:
            conn.putrequest(inp.method, inp.path, skip_accept_encoding=True)
            for k, v in self.headers(inp).items():
                conn.putheader(k, v)
            if inp.method == "POST" or inp.body:
                conn.putheader("Content-Length", str(len(inp.body)))
            conn.endheaders(inp.body or None)
            resp = conn.getresponse()
            data = resp.read()
            if resp.will_close:
                conn.close()
                self.conn = None
            return resp.status, data, time.perf_counter() - t0
        except (OSError, http.client.HTTPException) as err:
            conn.close()
            self.conn = None
            timed_out = isinstance(err, TimeoutError)
            return 0, f"{'timeout' if timed_out else type(err).__name__}: {err}".encode(), time.perf_counter() - t0

    def run(self, first: int, step: int, total: int) -> None:
        for n, i in enumerate(range(first, total, step)):
            if len(self.tally.deaths) >= MAX_DEATHS or STOP.is_set():
                return
            inp = self.maker.make(i)
            self.current = inp
            generation = self.daemon.generation
            status, answer, took = self.send(inp)
            with self.tally.lock:
                self.tally.sent += 1
                if self.tally.sent % PROGRESS == 0:
                    print(f"  fuzz: {self.tally.sent:,} sent, {self.tally.server_errors} 5xx, {len(self.tally.deaths)} "
                          f"deaths, daemon RSS {self.daemon.rss() / 2**20:.0f} MB", file=sys.stderr, flush=True)
                self.tally.statuses[(inp.route, status)] += 1
                if status >= 500:
                    self.tally.server_errors += 1
                    self.tally.fail("5xx", inp, status, answer)
                if inp.category == "check" and status == 200:
                    self.tally.check_ok += 1
                    if took > self.tally.slowest[0]:
                        self.tally.slowest = (took, i, hashlib.sha256(inp.body).hexdigest()[:16])
            if status == 0:
                if self.daemon.alive() and self.daemon.health():
                    with self.tally.lock:
                        self.tally.hangs += 1
                        self.tally.fail("no answer", inp, 0, answer)
                else:
                    self.restart(generation, "died" if not self.daemon.alive() else "stopped answering")
            elif n % HEALTH_EVERY == HEALTH_EVERY - 1 and not self.daemon.health():
                self.restart(generation, "failed a health check")
        self.current = None
        if self.conn is not None:
            self.conn.close()


def memory_parts(pid: int) -> dict[str, Any]:
    """The daemon's resident memory by kind (/proc/PID/status) and by mapping (/proc/PID/smaps), in KiB."""
    got: dict[str, Any] = {}
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            key, _, value = line.partition(":")
            if key in ("VmRSS", "RssAnon", "RssFile", "RssShmem", "VmHWM"):
                got[key] = int(value.split()[0])
            elif key == "Threads":
                got[key] = int(value)
    maps: Counter[str] = Counter()
    name = ""
    with contextlib.suppress(OSError), open(f"/proc/{pid}/smaps") as f:
        for line in f:
            first = line.split(None, 6)
            if "-" in first[0] and len(first) >= 5:  # a mapping's header line
                path = first[5].strip() if len(first) > 5 else ""
                name = "anon" if not path else path if path.startswith("[") else Path(path).name
                name = "lib" if ".so" in name else name
            elif first[0] == "Rss:":
                maps[name] += int(first[1])
    got["maps"] = {k: v for k, v in maps.most_common(8)}
    return got


def fuzz(total: int, seed: int = SEED, workers: int = WORKERS, out: Path | None = None,
         only: frozenset[str] = frozenset(), trace: Path | None = None) -> dict[str, Any]:
    """Run ``total`` inputs through one real daemon; the figures as a dict."""
    with tempfile.TemporaryDirectory(prefix="tether-bench-fuzz-") as d:
        root = Path(d)
        daemon = Daemon(root)
        fifo = root / "transcript.fifo"
        os.mkfifo(fifo)
        big = root / "big.jsonl"
        big.write_bytes(b'{"type":"assistant","message":{"usage":{"input_tokens":1}}}' + b"x" * 50_000_000 + b"\n")
        maker = Maker(seed, {"ws": str(daemon.ws), "state": str(daemon.state), "fifo": str(fifo), "big": str(big)},
                      only)
        tally = Tally()
        pool: list[Worker] = []
        restart_lock = threading.Lock()

        def restart(generation: int, why: str) -> None:
            with restart_lock:
                if daemon.generation != generation or STOP.is_set():
                    return  # another worker restarted it already
                code = daemon.proc.poll()
                in_flight = [describe(w.current) for w in pool if w.current is not None]
                tally.deaths.append({"why": why, "exit": code, "after_inputs": tally.sent, "in_flight": in_flight,
                                     "log_tail": daemon.tail()})
                print(f"  fuzz: the daemon {why} (exit {code}) after {tally.sent} inputs; restarting", file=sys.stderr)
                daemon.close()
                if len(tally.deaths) < MAX_DEATHS:
                    daemon.start()

        try:
            # 200 inputs past the run's own: every route and lazy import once (a death still counts)
            Worker(daemon, maker, Tally(), restart).run(total, 1, total + 200)
            time.sleep(1.0)
            idle = daemon.rss()
            if trace is not None:
                with open(trace, "a") as f:
                    f.write(json.dumps({"sent": 0, "idle_rss": idle, **memory_parts(daemon.proc.pid)}) + "\n")
            sampling = threading.Event()

            def sample() -> None:
                last = 0.0
                while not sampling.wait(0.1):
                    rss = daemon.rss()
                    with tally.lock:
                        tally.peak_rss = max(tally.peak_rss, rss)
                    if trace is not None and time.monotonic() - last >= 5.0 and daemon.proc is not None:
                        last = time.monotonic()
                        with open(trace, "a") as f:
                            f.write(json.dumps({"sent": tally.sent, **memory_parts(daemon.proc.pid)}) + "\n")

            sampler = threading.Thread(target=sample, daemon=True)
            sampler.start()
            pool.extend(Worker(daemon, maker, tally, restart) for _ in range(workers))
            threads = [threading.Thread(target=w.run, args=(k, workers, total), daemon=True)
                       for k, w in enumerate(pool)]
            started = time.perf_counter()
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            elapsed = time.perf_counter() - started
            sampling.set()
            sampler.join()
            alive_at_end = daemon.alive() and daemon.health()
            if not alive_at_end and len(tally.deaths) < MAX_DEATHS:
                tally.deaths.append({"why": "not alive at the end", "exit": daemon.proc.poll(),
                                     "after_inputs": tally.sent, "in_flight": [], "log_tail": daemon.tail()})
            tally.peak_rss = max(tally.peak_rss, daemon.rss())
            db = sum(p.stat().st_size for p in daemon.state.glob("tether.db*"))
        finally:
            STOP.set()  # an interrupted run (Ctrl-C, SIGTERM) restarts nothing and leaves no daemon behind
            daemon.close()
        STOP.clear()
        errors = tracebacks(daemon.log)
    result = {
        "inputs": total, "sent": tally.sent, "seed": seed, "workers": workers, "seconds": elapsed,
        "deaths": len(tally.deaths), "server_errors": tally.server_errors, "no_answer": tally.hangs,
        "dropped_connections": tally.dropped, "tracebacks": errors,
        "idle_rss": idle, "peak_rss": tally.peak_rss, "check_ok": tally.check_ok,
        "slowest_check": {"seconds": tally.slowest[0], "index": tally.slowest[1], "body_sha256": tally.slowest[2]},
        "store_bytes": db, "by_route": by_route(tally.statuses), "death_details": tally.deaths,
    }
    failures = tally.failures + [{"kind": "death", **d} for d in tally.deaths]
    if failures:
        out = out or HERE / "results" / f"fuzz-{datetime.now(UTC).strftime('%Y-%m-%dT%H%M%SZ')}.jsonl"
        out.parent.mkdir(exist_ok=True)
        out.write_text("".join(json.dumps(f, default=str) + "\n" for f in failures))
        result["failures_file"] = str(out)
    return result


def tracebacks(log: Path) -> list[tuple[int, str]]:
    """The daemon's tracebacks in its log, by exception line and the innermost frame: (count, text)."""
    got: Counter[str] = Counter()
    frame, inside = "", False
    with contextlib.suppress(OSError), open(log, "rb") as f:
        for raw in f:
            line = raw.decode(errors="replace").rstrip()
            if line.startswith("Traceback"):
                inside, frame = True, ""
            elif inside and line.startswith("  File "):
                frame = line.strip()
            elif inside and line and not line[0].isspace() and not line.startswith(("During", "The above")):
                got[f"{line[:240]}  [{frame[:200]}]"] += 1
                inside = False
    return [(n, text) for text, n in got.most_common(40)]


def by_route(statuses: Counter[tuple[str, int]]) -> dict[str, dict[str, int]]:
    got: dict[str, dict[str, int]] = {}
    for (route, status), n in sorted(statuses.items()):
        got.setdefault(route, {})[str(status)] = n
    return got


def run(quick: bool) -> list[dict[str, object]]:
    total = 4_000 if quick else 1_000_000  # quick: 20-45 s at the 100-200 inputs/s a loaded 2-core machine answers
    r = fuzz(total)
    mb = 1024 * 1024
    where = f" (inputs in {r['failures_file']})" if "failures_file" in r else ""
    slow = r["slowest_check"]
    five = {route: {s: n for s, n in codes.items() if s.startswith("5")} for route, codes in r["by_route"].items()}
    five = {route: codes for route, codes in five.items() if codes}
    label = f"{r['sent']:,} inputs, seed {r['seed']}, {r['workers']} connections, {r['seconds']:.0f} s"
    return [
        row(f"fuzz: daemon deaths ({label}){where}", r["deaths"], float("nan"), "", "0", r["deaths"] == 0),
        row(f"fuzz: 5xx answers{' ' + json.dumps(five) if five else ''}", r["server_errors"], float("nan"), "",
            "0", r["server_errors"] == 0),
        row(f"fuzz: requests with no answer within {TIMEOUT:g} s", r["no_answer"], float("nan"), "", "0",
            r["no_answer"] == 0),
        row("fuzz: daemon peak RSS vs at rest after a warm-up", r["peak_rss"] / mb, r["idle_rss"] / mb, "MB",
            "< 2x", r["peak_rss"] < 2 * r["idle_rss"]),
        row("fuzz: /check decisions answered per second (mixed traffic) vs all requests per second",
            r["check_ok"] / r["seconds"], r["sent"] / r["seconds"], "/s", "reported", True),
        row(f"fuzz: slowest /check decision (input #{slow['index']}, body sha256 {slow['body_sha256']})",
            slow["seconds"] * 1e3, float("nan"), "ms", "reported", True),
        row("fuzz: kept-alive connections the daemon closed between two requests", r["dropped_connections"],
            float("nan"), "", "reported", True),
        row(f"fuzz: distinct tracebacks in the daemon's log ({sum(n for n, _ in r['tracebacks'])} in all)",
            len(r["tracebacks"]), float("nan"), "", "reported (the classifier logs what it fails closed on)", True),
        row("fuzz: store size at the end", r["store_bytes"] / mb, float("nan"), "MB", "reported", True),
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=4_000, help="inputs to send (the full run is 1,000,000)")
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--workers", type=int, default=WORKERS, help="keep-alive connections")
    parser.add_argument("--only", default="", help="comma-separated categories: check,hook,report,heartbeat,"
                        "tasks,reads,forbidden,odd_path (other inputs then)")
    parser.add_argument("--trace", type=Path, help="append the daemon's memory by kind and mapping to this file "
                        "(JSON lines, every 5 s)")
    parser.add_argument("--show", type=int, nargs="*", help="print these inputs and exit")
    parser.add_argument("--send", type=int, nargs="*", help="send these inputs alone to a fresh daemon")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # through the finally clauses: the daemon is stopped
    places = {"ws": "{ws}", "state": "{state}", "fifo": "{fifo}", "big": "{big}"}
    only = frozenset(x.strip() for x in args.only.split(",") if x.strip())
    if args.show:
        for i in args.show:
            print(json.dumps(describe(Maker(args.seed, places, only).make(i))))
        return 0
    if args.send:
        with tempfile.TemporaryDirectory(prefix="tether-bench-fuzz-") as d:
            daemon = Daemon(Path(d))
            maker = Maker(args.seed, {"ws": str(daemon.ws), "state": str(daemon.state), "fifo": "/dev/null",
                                      "big": "/dev/null"}, only)
            w = Worker(daemon, maker, Tally(), lambda *_: None)
            try:
                for i in args.send:
                    status, answer, took = w.send(maker.make(i))
                    print(f"#{i}: {status} in {took * 1e3:.1f} ms: {answer[:300]!r}; daemon alive: {daemon.alive()}")
            finally:
                daemon.close()
        return 0
    r = fuzz(args.n, args.seed, args.workers, only=only, trace=args.trace)
    print(json.dumps({k: v for k, v in r.items() if k not in ("death_details", "tracebacks")}, indent=1, default=str))
    for n, text in r["tracebacks"]:
        print(f"{n:8d}  {text}")
    for d in r["death_details"]:
        print(json.dumps({k: v for k, v in d.items() if k != "log_tail"}, default=str)[:2000])
    return 1 if r["deaths"] or r["server_errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
