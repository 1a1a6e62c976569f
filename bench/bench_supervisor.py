"""The supervisor against supervisord (the PyPI ``supervisor`` package), in the same run:

- crash-to-restart latency: a ``/bin/sh`` child appends a timestamp (``date +%s.%N``) as its first and
  its last act and exits; the latency is one run's last stamp to the next run's first (tether:
  ``restart: always``, backoff base 0; supervisord: ``autorestart=true``, ``startsecs=0``). Goal: tether's
  median ≤ 0.05× supervisord's.
- stale detection: agents that never beat; the time from their deadline (start + ``stale_after``) to the
  recorded ``stale`` state. supervisord has no heartbeats (no baseline). Goal ≤ 1 s.
- 50 idle agents (``sleep 3600``) with monitoring on: CPU (% of one core, user+system from
  ``psutil.cpu_times``) of the daemon and its keepers over 60 s (quick: 10 s), and memory: the sum of
  PSS (proportional set size: the keepers are 50 dash processes sharing one binary's pages, which RSS
  counts 50 times) and, for reference, the sum of RSS. supervisord: its own process, same 50 programs.
  Goals: CPU ≤ 1 %, PSS ≤ 80 MB + 3 MB per agent.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import psutil
import yaml

from common import BIN, PYTHON, row, stop, wait_until

STAMP = "date +%s.%N >> {file}"
PERSON = {"name": "Bench", "contact": "json://127.0.0.1:9/bench"}


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("TETHER_")}


# --- tether ------------------------------------------------------------------------------------------------------


@contextlib.contextmanager
def _tether(root: Path, agents: dict[str, dict[str, object]]) -> Iterator[subprocess.Popen[bytes]]:
    state = root / "state"
    for spec in agents.values():
        spec.setdefault("owner", PERSON)
        spec.setdefault("backup", PERSON)
        spec.setdefault("sandbox", "off")  # the supervisor alone (bench_wall measures it with the wall)
    doc = {
        "version": 1,
        "host": {"state_dir": str(state), "workspace_root": str(root / "ws"), "listen": "127.0.0.1:0"},
        "agents": agents,
    }
    (root / "tether.yaml").write_text(yaml.safe_dump(doc))
    log = open(root / "daemon.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen(
        [PYTHON, "-m", "tether", "-f", str(root / "tether.yaml"), "up", "--foreground"],
        env=_env(),
        stdout=log,
        stderr=log,
        stdin=subprocess.DEVNULL,
    )
    log.close()
    try:
        wait_until(lambda: (state / "daemon.json").exists() or proc.poll() is not None, 30, "the daemon", interval=0.05)
        if proc.poll() is not None:
            raise RuntimeError(f"the daemon exited: {(root / 'daemon.log').read_text()[-500:]}")
        yield proc
    finally:
        stop(proc)


def _stamps(path: Path) -> list[float]:
    try:
        return [float(x) for x in path.read_text().split()]
    except (OSError, ValueError):
        return []


def _gaps(stamps: list[float]) -> list[float]:
    """Stamps come in pairs (first act, last act) per run: the gap is last → next first."""
    return [stamps[i + 1] - stamps[i] for i in range(1, len(stamps) - 1, 2)]


def _child(file: Path) -> str:
    return f"{STAMP.format(file=file)}; {STAMP.format(file=file)}; exit 0"


def tether_restarts(root: Path, n: int) -> list[float]:
    stamps = root / "stamps"
    agent = {
        "command": ["/bin/sh", "-c", _child(stamps)],
        "restart": {
            "policy": "always",
            "backoff": {"base": "0s", "jitter": 0},
            "crashloop": {"limit": 1_000_000, "window": "1s"},
        },
        "heartbeat": {"interval": "1h", "stale_after": "1h", "stuck_after": "1h"},
    }
    with _tether(root, {"crasher": agent}):
        wait_until(lambda: len(_stamps(stamps)) >= 2 * (n + 1), 30 + n, "tether's restarts", interval=0.05)
    return _gaps(_stamps(stamps))[:n]


# --- supervisord -------------------------------------------------------------------------------------------------


@contextlib.contextmanager
def _supervisord(root: Path, programs: dict[str, str]) -> Iterator[subprocess.Popen[bytes]]:
    conf = root / "supervisord.conf"
    text = (
        f"[unix_http_server]\nfile={root}/supervisor.sock\n\n"
        f"[supervisord]\nlogfile={root}/supervisord.log\npidfile={root}/supervisord.pid\nnodaemon=true\n"
        f"childlogdir={root}\nloglevel=warn\n\n"
        "[rpcinterface:supervisor]\n"
        "supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface\n\n"
        f"[supervisorctl]\nserverurl=unix://{root}/supervisor.sock\n\n"
    )
    for name, command in programs.items():
        text += (
            f"[program:{name}]\ncommand={command}\nautorestart=true\nstartsecs=0\nstartretries=1000000\n"
            f"stdout_logfile={root}/{name}.out\nstderr_logfile={root}/{name}.err\n\n"
        )
    conf.write_text(text)
    proc = subprocess.Popen(
        [str(BIN / "supervisord"), "-c", str(conf)],
        env=_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        stdin=subprocess.DEVNULL,
    )
    try:
        yield proc
    finally:
        stop(proc)


def supervisord_restarts(root: Path, n: int) -> list[float]:
    stamps = root / "stamps"
    command = "/bin/sh -c '" + _child(stamps).replace("%", "%%") + "'"  # supervisord %-interpolates
    with _supervisord(root, {"crasher": command}):
        wait_until(lambda: len(_stamps(stamps)) >= 2 * (n + 1), 30 + 2 * n, "supervisord's restarts", interval=0.05)
    return _gaps(_stamps(stamps))[:n]


# --- measurements ------------------------------------------------------------------------------------------------


def _p80(xs: list[float]) -> float:
    return statistics.quantiles(xs, n=10)[7] if len(xs) >= 2 else xs[0]


def restart_rows(tmp: Path, quick: bool) -> list[dict[str, object]]:
    n = 15 if quick else 100
    ours, theirs = [], []
    for i in range(2):  # two alternating rounds each, so a noisy minute misleads both
        ours += tether_restarts(_fresh(tmp, f"t-restart-{i}"), n // 2)
        theirs += supervisord_restarts(_fresh(tmp, f"s-restart-{i}"), n // 2)
    t, b = statistics.median(ours) * 1000, statistics.median(theirs) * 1000
    t80, b80 = _p80(ours) * 1000, _p80(theirs) * 1000
    return [
        row("crash → restart, median (exit to next start)", t, b, "ms", "≤ 0.05× supervisord", t <= 0.05 * b),
        row("crash → restart, p80", t80, b80, "ms", "(reported)", True),
    ]


def stale_rows(tmp: Path, quick: bool) -> list[dict[str, object]]:
    root = _fresh(tmp, "stale")
    count = 5 if quick else 20
    agents = {
        f"s{i:02d}": {
            "command": ["sleep", "3600"],
            "heartbeat": {"interval": "100ms", "stale_after": f"{500 + 37 * i}ms", "stuck_after": "1h",
                          "source": "sdk"},  # agents that never beat: a command's default (process) beats for them
        }
        for i in range(count)
    }
    with _tether(root, agents):
        db = root / "state" / "tether.db"

        def all_stale() -> bool:
            try:
                return len(_sql(db, "SELECT name FROM agents WHERE state = 'stale'")) == count
            except sqlite3.Error:
                return False

        wait_until(all_stale, 30, "every agent to go stale", interval=0.05)
        late = []
        for name, spec in agents.items():
            started = _sql(db, "SELECT ts FROM events WHERE agent = ? AND kind = 'agent.started'", (name,))[0][0]
            flagged = _sql(
                db,
                "SELECT ts, data FROM events WHERE agent = ? AND kind = 'agent.state' "
                "AND data LIKE '%stale%' ORDER BY id LIMIT 1",
                (name,),
            )[0][0]
            stale_after = float(str(spec["heartbeat"]["stale_after"]).removesuffix("ms")) / 1000  # type: ignore[index]
            late.append(flagged - (started + stale_after))
    worst = max(late) * 1000
    med = statistics.median(late) * 1000
    return [
        row(f"stale detection: deadline → stale, median of {count}", med, float("nan"), "ms", "≤ 1000 ms", med <= 1000),
        row(
            f"stale detection: deadline → stale, worst of {count}",
            worst,
            float("nan"),
            "ms",
            "≤ 1000 ms",
            worst <= 1000,
        ),
    ]


def _sql(db: Path, query: str, params: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)
    try:
        return conn.execute(query, params).fetchall()
    finally:
        conn.close()


def _tree_usage(root_pid: int, include: Callable[[psutil.Process], bool]) -> tuple[float, float, float]:
    """(cpu seconds, PSS bytes, RSS bytes) of ``root_pid`` and its descendants that ``include`` accepts."""
    top = psutil.Process(root_pid)
    procs = [top] + [p for p in top.children(recursive=True) if include(p)]
    cpu = pss = rss = 0.0
    for p in procs:
        with contextlib.suppress(psutil.Error):
            t = p.cpu_times()
            cpu += t.user + t.system
            mem = p.memory_full_info()
            pss += getattr(mem, "pss", mem.rss)
            rss += mem.rss
    return cpu, pss, rss


def _is_keeper(p: psutil.Process) -> bool:
    try:
        return any(a.endswith("keeper.sh") for a in p.cmdline()[:2])
    except psutil.Error:
        return False


def idle_rows(tmp: Path, quick: bool) -> list[dict[str, object]]:
    agents_n = 50
    seconds = 10.0 if quick else 60.0
    root = _fresh(tmp, "idle-tether")
    agents = {
        f"idle{i:02d}": {
            "command": ["sleep", "3600"],
            "heartbeat": {"interval": "1m", "stale_after": "1h", "stuck_after": "2h"},
        }
        for i in range(agents_n)
    }
    with _tether(root, agents) as proc:
        db = root / "state" / "tether.db"
        wait_until(
            lambda: len(_sql(db, "SELECT name FROM agents WHERE state = 'running'")) == agents_n,
            60,
            "50 agents",
            interval=0.05,
        )
        time.sleep(2.0)  # let start-up settle
        c0, _, _ = _tree_usage(proc.pid, _is_keeper)
        t0 = time.monotonic()
        time.sleep(seconds)
        c1, t_pss, t_rss = _tree_usage(proc.pid, _is_keeper)
        t_cpu = (c1 - c0) / (time.monotonic() - t0) * 100
    root = _fresh(tmp, "idle-supervisord")
    with _supervisord(root, {f"idle{i:02d}": "sleep 3600" for i in range(agents_n)}) as sup:
        time.sleep(3.0)
        c0, _, _ = _tree_usage(sup.pid, lambda p: False)
        t0 = time.monotonic()
        time.sleep(seconds)
        c1, s_pss, s_rss = _tree_usage(sup.pid, lambda p: False)
        s_cpu = (c1 - c0) / (time.monotonic() - t0) * 100
    mb = 1024 * 1024
    budget = 80 + 3 * agents_n
    return [
        row(
            f"50 idle agents, {seconds:.0f}s: CPU of daemon + keepers (% of a core)",
            t_cpu,
            s_cpu,
            "%",
            "≤ 1 %",
            t_cpu <= 1.0,
        ),
        row(
            "50 idle agents: memory, sum of PSS (daemon + 50 keepers)",
            t_pss / mb,
            s_pss / mb,
            "MB",
            f"≤ {budget} MB",
            t_pss / mb <= budget,
        ),
        row(
            "50 idle agents: memory, sum of RSS (daemon + 50 keepers)",
            t_rss / mb,
            s_rss / mb,
            "MB",
            f"(reported; ≤ {budget} MB)",
            t_rss / mb <= budget,
        ),
    ]


def _fresh(tmp: Path, name: str) -> Path:
    path = tmp / name
    path.mkdir()
    return path


def run(quick: bool) -> list[dict[str, object]]:
    with tempfile.TemporaryDirectory(prefix="tether-bench-supervisor-") as tmp:
        base = Path(tmp)
        return restart_rows(base, quick) + stale_rows(base, quick) + idle_rows(base, quick)


if __name__ == "__main__":
    quick = "--quick" in sys.argv
    for r in run(quick):
        print(json.dumps(r))
