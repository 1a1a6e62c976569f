"""The wall's cost (issue 16): an agent's start with and without the wall, side by side in one run.

- start: ``tether.wall.prepare`` (the profile: user, private folders, the walk for protected files) and
  ``process.spawn`` of ``/bin/true`` under its keeper, until the keeper recorded its exit; without the
  wall the same spawn as the agent's user (``run_as``, through ``launch.py``) and as the daemon's user
  (the fast launcher). Goal: ≤ 30 ms added at the median (against the run_as start). The walled agent has
  ``network: scoped``: its own namespace, made once by the daemon's proxy (a real ``EgressProxy``, as the
  daemon runs it) with its listeners inside (``wall/netns.py``); a second walled agent with ``network:
  open`` shows what the namespace costs, and the same scoped agent with socat bridges (a daemon that is
  not root: ``bwrap --unshare-net``, both bridges up before ``/bin/true`` runs) what they cost.
- crash → restart with the wall on: a daemon restarting an agent that exits at once, exit to next start
  (the same measure as bench_supervisor's, which runs without the wall).
- denied-write audit (``wall/auditrules.py``): a syscall-heavy process (``dd bs=1``: two calls a byte)
  with and without tether's audit rules, as a host process (goal: no cost, the ``never`` task rule keeps
  it off the audited path), as the agent's user (what a walled agent pays) and as a host process with the
  exit rules but no task rule (what a bare ``auditctl -e 1`` costs every process: what the rule saves).
- denied-write flood (hostile input through the real daemon): a walled agent makes 200,000 refused writes
  (20,000 quick), each a path of its own below the hidden state dir, as fast as dash can: the violations
  stored stay within the rate's bound, every denial is accounted for (recorded, repeated or left out) or
  the loss is said in a record, the daemon stays up, its peak RSS against the same flood with the daemon
  leaving audit alone (``TETHER_WALL_AUDIT=off``), and what the audited path costs the agent.

Needs root, bubblewrap and setpriv; creates a user ``tether-bench-agent`` for the run and removes it.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import pwd
import shutil
import statistics
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import yaml

from common import PYTHON, interleave, median, row, stop, wall

USER = "tether-bench-agent"
PERSON = {"name": "Bench", "contact": "json://127.0.0.1:9/bench"}


@contextlib.contextmanager
def _user() -> Iterator[str]:
    try:
        pwd.getpwnam(USER)
        created = False
    except KeyError:
        subprocess.run(["useradd", "-r", "-M", "-s", "/usr/sbin/nologin", USER], check=True, capture_output=True)
        created = True
    try:
        yield USER
    finally:
        if created:
            subprocess.run(["pkill", "-KILL", "-u", USER], check=False, capture_output=True)
            subprocess.run(["userdel", USER], check=False, capture_output=True)


def _runbook(root: Path, agents: dict[str, dict[str, object]]) -> Path:
    for spec in agents.values():
        spec.setdefault("owner", PERSON)
        spec.setdefault("backup", PERSON)
    doc = {"version": 1, "host": {"state_dir": str(root / "state"), "workspace_root": str(root / "ws"),
                                  "listen": "127.0.0.1:0"}, "agents": agents}
    path = root / "tether.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def start_rows(root: Path, quick: bool) -> list[dict[str, object]]:
    from tether import process
    from tether.runbook import load
    from tether.wall import netns, prepare
    from tether.wall.proxy import NET_DIR, PROXY_SOCK, EgressProxy

    agents = {"walled": {"command": ["/bin/true"], "run_as": USER},
              "open": {"command": ["/bin/true"], "run_as": USER, "network": "open"},
              "plain": {"command": ["/bin/true"], "run_as": USER, "sandbox": "off"}}
    loaded = load(_runbook(root, agents))
    for name in agents:
        loaded.agent_cwd(name).mkdir(parents=True, exist_ok=True)
    pw = pwd.getpwnam(USER)
    proxy = EgressProxy(lambda: None, lambda batch: None, api=("127.0.0.1", 8765))
    proxy.start()
    run = loaded.state.agent_dir("walled") / "run"
    proxy.open("walled", run, pw.pw_uid, pw.pw_gid)  # as the daemon does at boot: its sockets, then the namespace
    where = {"proxy_socket": str(run / NET_DIR / PROXY_SOCK), "daemon_url": "http://127.0.0.1:8765"}
    wall = prepare(loaded, "walled", **where)  # the first: the host check (one bwrap start), the grants, the namespace
    assert wall is not None and wall.net is not None and wall.net.netns is not None, "the daemon's namespace"
    bridged = netns.supported

    def start(name: str, walled: bool, user: str | None, socat: bool = False) -> float:
        t0 = time.perf_counter()
        argv, env = ["/bin/true"], {"PATH": "/usr/bin:/bin"}
        if walled:
            netns.supported = (lambda: False) if socat else bridged
            try:
                wall = prepare(loaded, name, **where)
            finally:
                netns.supported = bridged
            assert wall is not None and (wall.net is None or (wall.net.netns is None) == socat)
            argv, env = [*wall.prefix, *argv], {**env, **wall.env}
        handle = process.spawn(process.Spec(agent=name, argv=argv, cwd=loaded.agent_cwd(name), env=env,
                                            run_dir=root / "runs" / name, log_dir=root / "logs" / name, user=user,
                                            cgroup="none"))
        code = handle.wait_exit(timeout=10)
        if code != 0:
            raise RuntimeError(f"{name} exited {code}: {(root / 'logs' / name / 'stderr.log').read_text()[-300:]}")
        return time.perf_counter() - t0

    rounds = 20 if quick else 200
    walled, as_user = interleave(lambda: start("walled", True, None), lambda: start("plain", False, USER), rounds)
    opened, as_daemon = interleave(lambda: start("open", True, None), lambda: start("plain", False, None), rounds)
    bridges, walled2 = interleave(lambda: start("walled", True, None, socat=True),
                                  lambda: start("walled", True, None), rounds)
    proxy.stop()
    w, o, u, d, b = (statistics.median(xs) * 1000 for xs in (walled + walled2, opened, as_user, as_daemon, bridges))
    return [
        row("agent start with the wall vs run_as without (median)", w, u, "ms", "≤ 30 ms added", w - u <= 30),
        row("agent start with the wall vs the daemon's user (median)", w, d, "ms", "(reported)", True),
        row("agent start with the wall: own network vs network: open (median)", w, o, "ms", "(reported)", True),
        row("agent start with the wall: the daemon's namespace vs socat bridges (median)", w, b, "ms", "(reported)",
            True),
    ]


def restart_rows(root: Path, quick: bool) -> list[dict[str, object]]:
    n = 10 if quick else 100
    stamps = root / "ws" / "crasher" / "stamps"
    stamps.parent.mkdir(parents=True, exist_ok=True)
    stamp = f"date +%s.%N >> {stamps}"
    agent = {"command": ["/bin/sh", "-c", f"{stamp}; {stamp}; exit 0"], "run_as": USER,
             "restart": {"policy": "always", "backoff": {"base": "0s", "jitter": 0},
                         "crashloop": {"limit": 1_000_000, "window": "1s"}},
             "heartbeat": {"interval": "1h", "stale_after": "1h", "stuck_after": "1h"}}
    path = _runbook(root, {"crasher": agent})
    env = {k: v for k, v in os.environ.items() if not k.startswith("TETHER_")}
    log = open(root / "daemon.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen([PYTHON, "-m", "tether", "-f", str(path), "up", "--foreground"], env=env, stdout=log,
                            stderr=log, stdin=subprocess.DEVNULL)
    log.close()

    def got() -> list[float]:
        try:
            return [float(x) for x in stamps.read_text().split()]
        except (OSError, ValueError):
            return []

    try:
        deadline = time.monotonic() + 30 + n
        while len(got()) < 2 * (n + 1):
            if time.monotonic() > deadline or proc.poll() is not None:
                raise RuntimeError(f"no restarts inside the wall: {(root / 'daemon.log').read_text()[-400:]}")
            time.sleep(0.05)
    finally:
        stop(proc)
    s = got()
    gaps = [s[i + 1] - s[i] for i in range(1, len(s) - 1, 2)][:n]
    med = statistics.median(gaps) * 1000
    from bench_supervisor import supervisord_restarts

    (root / "supervisord").mkdir()
    theirs = statistics.median(supervisord_restarts(root / "supervisord", 5 if quick else 20)) * 1000
    return [row("crash → restart with the wall on, median", med, theirs, "ms", "≤ 0.05× supervisord",
                med <= 0.05 * theirs)]


FLOOD = r"""
sleep 1
i=0
while [ $i -lt {n} ]; do true 2>/dev/null > {state}/nope/$i; i=$((i+1)); done
touch {ws}/flood.done
exec sleep 3600
"""


def _flood(root: Path, n: int, audit: bool) -> dict[str, float]:
    """A walled agent makes ``n`` refused writes (each a path of its own below the hidden state dir, so no
    two are the same denial) under a real daemon: how long it took, the daemon's RSS at rest and at its peak,
    the violations stored and the daemon's own count at its stop."""
    import sqlite3

    import psutil

    ws = root / "ws" / "flood"
    ws.mkdir(parents=True)
    script = ws / "flood.sh"  # in its workspace: the rest of /tmp is hidden inside the wall
    script.write_text(FLOOD.format(n=n, state=root / "state", ws=ws))
    # no incident: its notification loads apprise (+30 MB) once, which is not the watch's to count
    agent = {"command": ["/bin/sh", str(script)], "run_as": USER, "violations": {"limit": 1_000_000},
             "heartbeat": {"interval": "1h", "stale_after": "1h", "stuck_after": "1h"}}
    path = _runbook(root, {"flood": agent})
    env = {k: v for k, v in os.environ.items() if not k.startswith("TETHER_")}
    if not audit:
        env["TETHER_WALL_AUDIT"] = "off"
    log = open(root / "daemon.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen([PYTHON, "-m", "tether", "-f", str(path), "up", "--foreground"], env=env, stdout=log,
                            stderr=log, stdin=subprocess.DEVNULL)
    log.close()
    ps = psutil.Process(proc.pid)
    done = ws / "flood.done"
    try:
        deadline = time.monotonic() + 60
        while not (root / "state" / "daemon.json").exists():
            if time.monotonic() > deadline or proc.poll() is not None:
                raise RuntimeError(f"no daemon: {(root / 'daemon.log').read_text()[-400:]}")
            time.sleep(0.02)
        rest = ps.memory_info().rss
        t0 = time.monotonic()
        peak = rest
        while not done.exists():
            if time.monotonic() > deadline + 120 or proc.poll() is not None:
                logs = "".join(p.read_text()[-300:] for p in (root / "state").rglob("stderr.log"))
                raise RuntimeError(f"the flood did not end: {(root / 'daemon.log').read_text()[-400:]} {logs}")
            peak = max(peak, ps.memory_info().rss)
            time.sleep(0.02)
        seconds = time.monotonic() - t0
        end = time.monotonic() + 2  # the records still on their way
        while time.monotonic() < end:
            peak = max(peak, ps.memory_info().rss)
            time.sleep(0.05)
        alive = proc.poll() is None
    finally:
        stop(proc)
    db = sqlite3.connect(f"file:{root / 'state' / 'tether.db'}?mode=ro", uri=True)
    (stored,) = db.execute("SELECT count(*) FROM events WHERE kind = 'wall.violation'").fetchone()
    (said_lost,) = db.execute(
        "SELECT count(*) FROM events WHERE kind = 'wall.violation' AND data LIKE '%\"lost\"%'").fetchone()
    db.close()
    counts = {"recorded": 0, "repeated": 0, "suppressed": 0, "lost": 0}
    for line in (root / "daemon.log").read_text().splitlines():
        if line.startswith("tether: writewatch: recorded"):
            counts = {k: int(v) for k, v in (p.rsplit(" ", 1) for p in line.split(": ", 2)[2].split(", "))}
    return {"seconds": seconds, "rest": rest, "peak": peak, "stored": stored, "alive": float(alive),
            "said_lost": said_lost, **counts}


def flood_rows(root: Path, quick: bool) -> list[dict[str, object]]:
    """Hostile input through the real daemon: a walled agent's flood of refused writes, each recorded by the
    kernel's audit; against the same flood with the daemon leaving audit alone (``TETHER_WALL_AUDIT=off``)."""
    from tether.wall import writewatch

    why = _audit_problem()
    if why is not None:
        return [row(f"denied-write flood: skipped: {why}", float("nan"), float("nan"), "", "runs", False)]
    n = 20_000 if quick else 200_000
    (root / "on").mkdir()
    (root / "off").mkdir()
    on = _flood(root / "on", n, True)
    off = _flood(root / "off", n, False)
    bound = writewatch.BURST + writewatch.RATE * (on["seconds"] + 3) + 2
    seen = on["recorded"] + on["repeated"] + on["suppressed"]
    return [
        row(f"denied-write flood: {n:,} refused writes by a walled agent: violations stored vs the rate's bound",
            on["stored"], bound, "events", "≤ bound, daemon up", on["stored"] <= bound and bool(on["alive"])),
        row(f"denied-write flood: {n:,}: denials the daemon accounted for (recorded, repeated or left out) vs made",
            seen, n, "denials", "all, or the loss said in a record",
            seen == n or (on["lost"] > 0 and on["said_lost"] > 0)),
        row("denied-write flood: daemon peak RSS, recording vs not", on["peak"] / 2**20, off["peak"] / 2**20,
            "MiB", "≤ 1.25×", on["peak"] <= 1.25 * off["peak"]),
        row("denied-write flood: the agent's time, recorded vs not (TETHER_WALL_AUDIT=off)", on["seconds"],
            off["seconds"], "s", "(reported)", True),
    ]


def _audit_problem() -> str | None:
    """Why the audit rows cannot run here (None: they can)."""
    from tether.wall import auditlink

    try:
        with auditlink.Link() as link:
            status = link.status()
    except OSError as err:
        return f"no usable audit netlink: {err}"
    if status.enabled == 2:
        return "audit is locked (enabled = 2)"
    if status.pid:
        return f"an audit daemon (pid {status.pid}) owns audit here"
    return None


def _audit_busy() -> str | None:
    """A tether daemon of the host whose audit rules are in place (reconciling a private registry would
    remove them), or None."""
    from tether.wall import auditlink, auditrules

    for f in auditrules.REGISTRY.glob("*.json"):
        if f.name == auditrules.STATE or not f.stem.isdigit():
            continue
        try:
            os.kill(int(f.stem), 0)
        except ProcessLookupError:
            continue
        except PermissionError:
            pass
        return f"daemon {f.stem} has audit rules registered"
    bare = auditrules.task_rule([])
    with auditlink.Link() as link:
        if any(r.key == auditrules.KEY and r != bare for r in link.rules()):
            return "tether's audit rules are in place (a daemon's)"
    return None


@contextlib.contextmanager
def _audit_quiet(deadline: float) -> Iterator[str | None]:
    """Hold the host registry's lock (a daemon's ``register`` waits for it) while no daemon has rules in
    place, waiting for one until ``deadline``; yields None when held, else why not."""
    from tether.wall import auditrules

    auditrules.REGISTRY.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd = os.open(auditrules.REGISTRY / ".lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        while True:
            fcntl.flock(fd, fcntl.LOCK_EX)
            why = _audit_busy()
            if why is None or time.monotonic() > deadline:
                break
            fcntl.flock(fd, fcntl.LOCK_UN)
            time.sleep(0.2)
        yield why
    finally:
        os.close(fd)


def audit_rows(root: Path, quick: bool) -> list[dict[str, object]]:
    """What recording denied writes costs: ``dd bs=1`` (a read and a write a byte) timed as a whole
    process, in three states of the kernel's rules, each round rotating which state goes first. Rules
    go in from the private registry ``root``; each round holds the host registry's lock so no daemon
    reconciles meanwhile, and ends with the rules removed."""
    from tether.wall import auditlink, auditrules

    why = _audit_problem()
    if why is not None:
        return [row(f"denied-write audit: skipped: {why}", float("nan"), float("nan"), "", "runs", False)]
    pw = pwd.getpwnam(USER)
    uid = pw.pw_uid
    dd = f"dd if=/dev/zero of=/dev/null bs=1 count={50_000 if quick else 200_000}; :"  # `; :`: sh forks dd
    host = wall(["sh", "-c", dd])
    # audit decides at fork time by the forking process's uid: dd is forked by a shell already the agent's
    agent = wall(["setpriv", f"--reuid={uid}", f"--regid={pw.pw_gid}", "--clear-groups", "sh", "-c", dd])
    who = {"host": host, "agent": agent}

    # after rules are removed (~10 ms a rule) the next samples run slower for a while (the host row read
    # 0.85-0.98x without a pause): each removal is followed by one
    settle = 0.1 if quick else 0.5

    def none() -> None:
        auditrules.register([], root)
        time.sleep(settle)

    def rules() -> None:
        auditrules.register([uid], root)

    def no_task_rule() -> None:  # exit rules and audit on, every process forked meanwhile audited
        auditrules.register([uid], root)
        with auditlink.Link() as link:
            link.delete(auditrules.task_rule([uid]))

    states = {"none": none, "rules": rules, "no task rule": no_task_rule}
    samples: dict[tuple[str, str], list[float]] = {(s, w): [] for s in states for w in ("host", "agent")}
    rounds, each = (6, 3) if quick else (16, 2)  # a change of rules takes ~0.25 s: a few samples per change
    deadline = time.monotonic() + (2 if quick else 60)  # waiting for other daemons' rules to go
    for i in range(rounds):
        with _audit_quiet(deadline) as why:
            if why is not None:
                break
            try:
                for state in [*states][i % 3 :] + [*states][: i % 3]:
                    states[state]()
                    if state == "no task rule":  # the host's own processes are audited meanwhile: keep it short
                        samples[(state, "host")] += [host() for _ in range(each)]
                        continue
                    first, second = ("host", "agent") if i % 2 else ("agent", "host")
                    xs, ys = interleave(who[first], who[second], each)
                    samples[(state, first)] += xs
                    samples[(state, second)] += ys
            finally:
                auditrules.register([], root)
        time.sleep(settle)
    n = len(samples[("none", "host")])
    if n < 3:
        return [row(f"denied-write audit: skipped: {why}", float("nan"), float("nan"), "", "runs", False)]
    h0, h1, a0, a1, h2 = (
        median(samples[k]) * 1000
        for k in (("none", "host"), ("rules", "host"), ("none", "agent"), ("rules", "agent"), ("no task rule", "host"))
    )
    return [
        row(f"denied-write audit: host process (root), tether's rules vs none, dd bs=1 (median of {n})", h1, h0, "ms",
            "≤ 1.10× (≈ 1)", h1 <= 1.10 * h0),
        row("denied-write audit: the agent's user, tether's rules vs none (what a walled agent pays)", a1, a0,
            "ms", "(reported)", True),
        row("denied-write audit: host process, exit rules with no never task rule vs none (what the rule saves)",
            h2, h0, "ms", "(reported)", True),
    ]


def run(quick: bool) -> list[dict[str, object]]:
    from tether.wall import check

    why = check.problem() if os.geteuid() == 0 else "needs root (the agent runs as a user of its own)"
    if why is not None:
        return [row(f"wall: skipped: {why}", float("nan"), float("nan"), "", "runs", False)]
    root = Path(tempfile.mkdtemp(prefix="tether-bench-wall-", dir="/tmp"))
    try:
        with _user():
            for part in ("start", "restart", "audit", "flood"):
                (root / part).mkdir()
            return (start_rows(root / "start", quick) + restart_rows(root / "restart", quick)
                    + audit_rows(root / "audit", quick) + flood_rows(root / "flood", quick))
    finally:
        shutil.rmtree(root, ignore_errors=True)
