"""``tether demo`` stops everything it started, however it ends: its duration, Ctrl-C, SIGTERM, a closed
terminal (SIGHUP). Every process it starts carries a mark in its environment; none may survive it. It
runs with $TETHER_HOME set elsewhere, as in the report where the demo's own stop went there and leaked."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from helpers import cli_env
from test_daemon_kit import cmdline, environ, is_zombie, pids, wait_until

DEMO_AGENTS = ("data-deleter", "flaky-worker", "repo-maintainer", "stuck-agent")

pytestmark = pytest.mark.skipif(
    shutil.which("git") is None or not sys.platform.startswith("linux"),
    reason="the demo needs git; finding its processes needs /proc",
)


def of_demo(mark: str, url: str, folder: Path) -> list[int]:
    """Live processes of the demo: the daemon (it inherits the mark), its agents (they get its URL),
    keepers and anything else naming the demo's folder on its command line."""
    found = []
    for pid in pids():
        env = environ(pid)
        if pid == os.getpid() or is_zombie(pid):
            continue
        if env.get("TETHER_TEST_MARK") == mark or env.get("TETHER_URL") == url or str(folder) in " ".join(cmdline(pid)):
            found.append(pid)
    return found


def clean_up(demo: subprocess.Popen[bytes], mark: str, url: str, folder: Path) -> None:
    """After a demo test, pass or fail: the demo and anything of it still running are killed."""
    if demo.poll() is None:
        demo.kill()
        demo.wait()
    for pid in of_demo(mark, url, folder):
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)


def agents_running(state: Path) -> bool:
    """The daemon answers and each of the four agents has a live process (its keeper wrote agent.pid)."""
    if not (state / "daemon.json").exists():
        return False
    for name in DEMO_AGENTS:
        try:
            pid = int((state / "agents" / name / "run" / "agent.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return False
        if pid not in pids():
            return False
    return True


@pytest.mark.parametrize("how", ["duration", "SIGINT", "SIGTERM", "SIGHUP"])
def test_no_process_of_the_demo_survives_it(tmp_path: Path, how: str) -> None:
    mark = uuid.uuid4().hex
    d = tmp_path / "demo"
    elsewhere = tmp_path / "elsewhere"
    args = ["--dir", str(d)] + (["--duration", "12"] if how == "duration" else [])
    out = open(tmp_path / "demo.out", "w")  # noqa: SIM115 - the child's
    demo = subprocess.Popen(
        [sys.executable, "-m", "tether", "demo", *args],
        stdout=out,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        env=cli_env({"TETHER_TEST_MARK": mark, "TETHER_HOME": str(elsewhere)}),
        cwd=tmp_path,
        # started with SIGINT ignored, as a script's background job is: Ctrl-C must stop it all the same
        preexec_fn=(lambda: signal.signal(signal.SIGINT, signal.SIG_IGN)) if how == "SIGINT" else None,
    )
    out.close()
    info = {"url": "-"}
    try:
        wait_until(lambda: agents_running(d / "state"), 60, "the demo's daemon and its four agents", interval=0.1)
        info = json.loads((d / "state" / "daemon.json").read_text())
        started = of_demo(mark, info["url"], d)
        assert info["pid"] in started and len(started) >= 1 + 2 * len(DEMO_AGENTS), started  # daemon, keepers, agents
        if how != "duration":
            demo.send_signal(getattr(signal, how))
        assert demo.wait(timeout=90) == 0, (tmp_path / "demo.out").read_text()
        text = (tmp_path / "demo.out").read_text()
        assert f"demo stopped (the daemon and its agents); its files stay in {d}\n" in text, text
        assert of_demo(mark, info["url"], d) == [], "processes of the demo outlived it"
        assert not (d / "state" / "daemon.json").exists(), "the daemon did not stop cleanly"
        assert not elsewhere.exists(), "nothing goes to $TETHER_HOME: the runbook names the demo's state dir"
    finally:
        clean_up(demo, mark, info["url"], d)
