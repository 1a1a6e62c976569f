"""`tether logs` through a real daemon: each line with the time it was on disk by, a mark where each run
begins (the instance and start the store records for it), `--since` a time ago or an ISO time, `--raw`."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from pathlib import Path

from helpers import one_line_error
from test_daemon_kit import PY, Host, agent, make_host, wait_until  # noqa: F401
from tether.process import logindex

# Two runs: each prints "run N a", waits for the test's go-file, prints "run N b"; the first exits 1
# (restarted), the second stays.
TWO_RUNS = r"""
import os, sys, time
root = sys.argv[1]
n = len([f for f in os.listdir(root) if f.startswith("ran-")]) + 1
open(os.path.join(root, f"ran-{n}"), "w").close()
print(f"run {n} a", flush=True)
while not os.path.exists(os.path.join(root, f"go-{n}")):
    time.sleep(0.02)
print(f"run {n} b", flush=True)
if n == 1:
    sys.exit(1)
while True:
    time.sleep(1)
"""
STAMP = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00)  (.*)$")
MARK = re.compile(r"^── run (\S+) started (\S+) ──$")


def _when(iso: str) -> float:
    return dt.datetime.fromisoformat(iso).timestamp()


def _marked(h: Host, size_at_least: int) -> bool:
    """The daemon's clock has marked stdout.log up to this size."""
    return any(m.size >= size_at_least for m in logindex.read_marks(h.state / "agents" / "t" / "logs", "stdout"))


def test_logs_have_times_run_marks_and_since(make_host: Callable[..., Host], tmp_path: Path) -> None:  # noqa: F811
    work = tmp_path / "work"
    work.mkdir()
    script = tmp_path / "two_runs.py"
    script.write_text(TWO_RUNS)
    h = make_host({"t": agent([PY, str(script), str(work)])})
    daemon = h.up()
    for n in (1, 2):
        wait_until(lambda n=n: f"run {n} a\n" in h.log("t"), 15, f"run {n} to print a")
        wait_until(lambda: _marked(h, len(h.log("t").encode())), 5, "the daemon's clock to mark the line")
        (work / f"go-{n}").touch()
        wait_until(lambda n=n: f"run {n} b\n" in h.log("t"), 15, f"run {n} to print b")
    wait_until(lambda: _marked(h, len(h.log("t").encode())), 5, "the clock to mark the last line")

    got = h.cli("logs", "t")
    assert got.returncode == 0, got.stderr
    lines = got.stdout.splitlines()
    marks = [MARK.match(line) for line in lines if MARK.match(line)]
    texts = [(STAMP.match(line) or [None, "", line])[2] for line in lines if not MARK.match(line)]
    assert texts == ["run 1 a", "run 1 b", "run 2 a", "run 2 b"], got.stdout
    assert [line.startswith("── run") for line in lines] == [True, False, False, True, False, False], got.stdout
    # the marks are the runs the store knows, at the times it knows (to the second)
    started = h.events("agent.started", "t")
    assert [m[1] for m in marks] == [e["data"]["instance"] for e in started]
    for m, e in zip(marks, started, strict=True):
        assert abs(_when(m[2]) - e["ts"]) < 2
    times = [_when(STAMP.match(line)[1]) for line in lines if STAMP.match(line)]  # type: ignore[index]
    assert times == sorted(times)
    exact = [ln.time for ln in logindex.timed(h.state / "agents" / "t" / "logs") if ln.run is None]
    assert exact[0] < exact[1], "b was written after the clock had marked a"
    assert [int(t) for t in exact] == [int(t) for t in times]
    assert started[0]["ts"] - 1 <= times[0] <= started[1]["ts"] + 1

    # --since: an ISO time between the runs shows the second only; a time ago shows both
    between = dt.datetime.fromtimestamp(started[1]["ts"] - 0.01, dt.UTC).isoformat()
    since = h.cli("logs", "t", "--since", between)
    assert since.returncode == 0, since.stderr
    assert [(STAMP.match(x) or [None, "", x])[2] for x in since.stdout.splitlines()][-2:] == ["run 2 a", "run 2 b"]
    assert "  run 1 " not in since.stdout
    assert since.stdout.splitlines()[0].startswith(f"── run {started[1]['data']['instance']} started")
    recent = h.cli("logs", "t", "--since", "10m")
    assert recent.stdout == got.stdout
    assert h.cli("logs", "t", "--since", "1d", "-n", "1").stdout.splitlines()[-1].endswith("  run 2 b")
    bad = h.cli("logs", "t", "--since", "yesterday")
    assert one_line_error(bad).startswith("tether: error: --since 'yesterday': expected a time ago like 10m")
    assert bad.returncode == 2
    # --raw: the lines as the agent wrote them
    assert h.cli("logs", "t", "--raw").stdout == "run 1 a\nrun 1 b\nrun 2 a\nrun 2 b\n"
    assert h.down(daemon) == 0
