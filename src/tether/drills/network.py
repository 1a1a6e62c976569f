"""The network drill: take the network away from the agent and see that the loss is recorded and raised.

The agent's endpoints (each of its ``scope.hosts`` on 443, and the daemon it reports to) are probed from a
new network namespace with no route (``unshare -n``, or ``unshare -rn`` through a user namespace where
that is allowed). Every probe must fail there, or the drill failed to cut the agent off; each failure is
recorded (``probe.failed``) and a ``network`` incident opened for the agent, which the daemon must then
report (``GET /v1/incidents``) and, where the notifier runs, tell its owner about (delivered: its
``notify.sent``; a failed or late delivery is said as such and makes the drill ``degraded``). The drill
resolves the incident it opened.

Where no namespace can be made, the probes are pointed at a dead address (and a dead proxy) instead: the
recording is still drilled, but nothing was really cut off, so the drill reports ``degraded``, never
``pass``.

``python -m tether.drills.network TARGET...`` is the probe run inside the namespace (JSON on stdout).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from urllib.parse import urlsplit, urlunsplit

from tether.drills.base import Host, Result, Trace, first_line
from tether.errors import TetherError
from tether.probes import ProbeResult, probe

MARGIN = 10.0
PROBE_TIMEOUT = 3.0


def run(host: Host, agent: str) -> Result:
    t = Trace(agent, "network")
    info = host.daemon()
    if info is None:
        return t.failed(f"no daemon runs for {host.state.root}: a lost network could not be raised as an incident")
    wanted = targets(host, agent, str(info["url"]))
    how, results, why_not = isolated(wanted)
    degraded = how is None
    if how is None:
        how = "probes and proxy pointed at a dead address"
        results = dead_address(wanted)
    t.mark("probe_s")
    if len(results) != len(wanted):
        return t.failed(f"the probes did not all report ({how}): {len(results)} of {len(wanted)}")
    reachable = [r for r in results if r.up]
    if reachable:
        return t.failed(f"{reachable[0].target} still answered with the network taken away ({how}): "
                        "the agent was never cut off")
    cursor = host.cursor()
    for r in results:
        t.cite(host.emit("probe.failed", agent, target=r.target, detail=r.detail, latency_s=round(r.latency_s, 3),
                         isolation=how, drill=host.run_id))
    summary = f"{agent} cannot reach {', '.join(r.target for r in results)}: {results[0].detail} (tether drill)"
    open_already = [i for i in host.store.incidents("open", agent) if i["kind"] == "network"]
    incident = int(open_already[0]["id"]) if open_already else host.emit(
        "incident.opened", agent, kind="network", summary=summary[:500], targets=[r.target for r in results],
        drill=host.run_id,
    )
    t.cite(incident)
    problems = []
    try:
        shown = host.api("GET", "/v1/incidents?state=open")["incidents"]
    except TetherError as err:
        shown = []
        problems.append(f"the daemon could not be asked for its incidents ({err})")
    if not any(i.get("id") == incident for i in shown) and not problems:
        problems.append(f"the daemon does not report incident {incident}")
    t.mark("raised_s")
    told, reached = "", True  # reached: no notification of the owner's went undelivered
    if host.notifier_runs():
        note = host.owner_told(agent, "network", cursor, MARGIN)
        if note is None:
            problems.append(f"no notification was queued for incident {incident}")
        else:
            t.cite(note.id)
            reached, words = host.tell_owner(t, note, MARGIN)
            told = f", {words}"
    if not open_already:
        t.cite(host.emit("incident.resolved", agent, incident_id=incident, kind="network",
                         why="tether drill over: the network was taken away on purpose"))
    if problems:
        return t.failed(f"{how}: " + "; ".join(problems))
    what = (f"{len(results)} endpoint(s) unreachable ({how}: {first_line(results[0].detail, 80)}); "
            f"{len(results)} probe.failed recorded, incident {incident} raised{told}")
    if degraded:
        return t.degraded(f"no network namespace could be made ({first_line(why_not, 160)}); {what}")
    what += "; resolved after" if not open_already else "; it was open already"
    return t.passed(what) if reached else t.degraded(what)


def targets(host: Host, agent: str, daemon_url: str) -> list[str]:
    """What the agent depends on: its ``scope.hosts`` on 443 (``host:port`` as given), then the daemon."""
    out: list[str] = []
    for entry in host.spec(agent).scope.hosts:
        name = entry.strip().lower().removeprefix("*.")
        if not name or "*" in name or "/" in name:
            continue
        hostname, sep, port = name.rpartition(":")
        target = f"tcp://{name}" if sep and port.isdigit() and hostname else f"tcp://{name}:443"
        if target not in out:
            out.append(target)
    out.append(daemon_url)
    return out


def _probe_argv(targets: list[str]) -> list[str]:
    return [sys.executable, "-m", "tether.drills.network", *targets]


def _parse(stdout: str) -> list[ProbeResult] | None:
    try:
        rows = json.loads(stdout)
        return [ProbeResult(str(r["target"]), bool(r["up"]), float(r["latency_s"]), str(r["detail"])) for r in rows]
    except (ValueError, TypeError, KeyError):
        return None


def isolated(wanted: list[str]) -> tuple[str | None, list[ProbeResult], str]:
    """Probe ``wanted`` from a network namespace of its own: (how, results, why no namespace could be
    made). ``how`` is None when none could."""
    unshare = shutil.which("unshare")
    if unshare is None:
        return None, [], "unshare is not on PATH"
    errors = []
    for flags in (["-n"], ["-r", "-n"]):
        try:
            proc = subprocess.run([unshare, *flags, "--", *_probe_argv(wanted)], capture_output=True, text=True,
                                  timeout=30 + PROBE_TIMEOUT * len(wanted), stdin=subprocess.DEVNULL)
        except (OSError, subprocess.TimeoutExpired) as err:
            errors.append(f"unshare {' '.join(flags)}: {err}")
            continue
        results = _parse(proc.stdout) if proc.returncode == 0 else None
        if results is None:
            errors.append(f"unshare {' '.join(flags)}: {first_line(proc.stderr or proc.stdout, 120) or 'failed'}")
            continue
        return f"unshare {' '.join(flags)}", results, ""
    return None, [], "; ".join(errors)


def _dead_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port  # closed again: nothing listens there


def dead_address(wanted: list[str]) -> list[ProbeResult]:
    """The fallback: every target rewritten to a closed local port, through a proxy on another one."""
    dead = _dead_port()
    proxy = f"http://127.0.0.1:{_dead_port()}"
    rewritten = []
    for target in wanted:
        parts = urlsplit(target)
        rewritten.append(urlunsplit((parts.scheme, f"127.0.0.1:{dead}", parts.path, parts.query, "")))
    env = {k: v for k, v in os.environ.items() if k.lower() not in ("no_proxy", "http_proxy", "https_proxy",
                                                                      "all_proxy")}
    env.update({"http_proxy": proxy, "https_proxy": proxy, "all_proxy": proxy})
    try:
        proc = subprocess.run(_probe_argv(rewritten), capture_output=True, text=True, env=env,
                              timeout=30 + PROBE_TIMEOUT * len(wanted), stdin=subprocess.DEVNULL)
        results = _parse(proc.stdout) or []
    except (OSError, subprocess.TimeoutExpired):
        results = []
    return [ProbeResult(orig, r.up, r.latency_s, r.detail) for orig, r in zip(wanted, results, strict=False)]


def main(argv: list[str]) -> int:
    rows = []
    for target in argv:
        r = probe(target, PROBE_TIMEOUT)
        rows.append({"target": r.target, "up": r.up, "latency_s": r.latency_s, "detail": r.detail})
    sys.stdout.write(json.dumps(rows) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
