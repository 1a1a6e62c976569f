"""The demo host: a folder with a runbook, a git repo and four scripted agents, run by a real daemon."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from importlib.resources import files
from pathlib import Path

from tether import process
from tether.daemon.launch import spawn
from tether.errors import TetherError
from tether.paths import StateDir
from tether.wall import check, users


def wall_for_demo() -> str | None:
    """Why the demo's agents cannot run inside the wall on this host, or None (they can).

    As root, agents run as the ``tether-agent`` user: it must exist and be able to run this Python and read
    the demo's scripts (an interpreter under a private home, like /root/.pyenv, it cannot)."""
    why = check.problem()
    if why is not None:
        return why
    if os.geteuid() != 0:
        return None
    try:
        users.lookup(users.DEFAULT_USER)
    except users.UserError:
        return f"no {users.DEFAULT_USER} user (`sudo tether init --user` creates it)"
    agents_dir = Path(str(files("tether.demo").joinpath("agents")))
    for path in (Path(sys.executable).resolve(), agents_dir.resolve() / "x"):
        for folder in path.parents:
            if not folder.stat().st_mode & 0o001:
                return f"the {users.DEFAULT_USER} user cannot reach {path.parent} ({folder} is private)"
    return None


def write_host(root: Path, sandbox: bool = True, port: int = 0, notify_port: int | None = None) -> Path:
    """Lay out the demo host in ``root``; return the runbook's path. ``sandbox``: run the agents in the wall;
    ``port``: the daemon's (0: any free one); ``notify_port``: where the demo's receiver listens for the
    owner's and backup's notifications (``demo.receiver``)."""
    root.mkdir(parents=True, exist_ok=True)
    agents_dir = Path(str(files("tether.demo").joinpath("agents")))
    text = files("tether.demo").joinpath("runbook.yaml").read_text(encoding="utf-8")
    text = text.replace("{python}", sys.executable).replace("{agents}", str(agents_dir))
    text = text.replace("{sandbox}", "on" if sandbox else "off")
    text = text.replace("listen: 127.0.0.1:0", f"listen: 127.0.0.1:{port}")
    if notify_port is not None:
        text = text.replace("json://127.0.0.1/", f"json://127.0.0.1:{notify_port}/")
    runbook = root / "tether.yaml"
    runbook.write_text(text, encoding="utf-8")
    _repo(root / "workspaces" / "repo")
    (root / "workspaces" / "data-deleter" / "data").mkdir(parents=True, exist_ok=True)
    (root / "workspaces" / "data-deleter" / "data" / "customers.csv").write_text("id,name\n1,Ada\n")
    return runbook


def _repo(path: Path) -> None:
    if (path / ".git").exists():
        return
    path.mkdir(parents=True, exist_ok=True)
    (path / "util.py").write_text("def add(a, b):\n    return a + b\n")
    (path / "test_util.py").write_text(
        "import unittest\n\nimport util\n\n\nclass T(unittest.TestCase):\n"
        "    def test_add(self):\n        self.assertEqual(util.add(2, 2), 4)\n"
    )
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "demo",
        "GIT_AUTHOR_EMAIL": "demo@example.com",
        "GIT_COMMITTER_NAME": "demo",
        "GIT_COMMITTER_EMAIL": "demo@example.com",
    }
    for args in (
        ["init", "-q", "-b", "main"],
        ["add", "."],
        ["commit", "-qm", "Initial commit"],
        ["config", "user.name", "repo-maintainer"],
        ["config", "user.email", "agent@example.com"],
    ):
        try:
            subprocess.run(["git", *args], cwd=path, env=env, check=True, capture_output=True)
        except FileNotFoundError:
            raise TetherError("the demo needs git on PATH (apt install git)") from None
        except subprocess.CalledProcessError as err:
            raise TetherError(f"git {' '.join(args)} failed in {path}: {err.stderr.decode().strip()}") from None


class DemoDaemon:
    """The demo's daemon, a child of ``tether demo`` (in its own session: a Ctrl-C or a closed terminal
    reaches the demo, which stops it): SIGTERM stops it and its agents cleanly; ``stop`` makes sure."""

    def __init__(self, runbook: Path) -> None:
        self.state = StateDir(runbook.parent / "state")
        self.state.root.mkdir(parents=True, exist_ok=True)
        with open(self.state.root / "daemon.log", "ab") as log:
            self.proc = spawn(runbook, log, home=self.state.root, preexec_fn=_die_with_parent)

    def ready(self, timeout: float = 60) -> dict[str, object]:
        """Wait for the daemon to answer (its ``daemon.json``); return that."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                info: dict[str, object] = json.loads((self.state.root / "daemon.json").read_text())
                if info.get("pid") == self.proc.pid:
                    return info
            except (OSError, ValueError):
                pass
            if self.proc.poll() is not None:
                tail = (self.state.root / "daemon.log").read_text(errors="replace").strip().splitlines()[-1:]
                raise TetherError(f"the demo daemon did not start: {tail[0] if tail else 'see its daemon.log'}")
            time.sleep(0.05)
        raise TetherError(f"the demo daemon did not come up within {timeout:g}s; see {self.state.root / 'daemon.log'}")

    def stop(self, grace: float = 30) -> list[str]:
        """Stop the daemon (its agents with it), then end whatever of the demo still runs; return what
        had to be killed that way (empty when the clean stop was enough)."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(grace)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        forced = []
        for run in sorted(self.state.agents.glob("*/run")):
            handle = process.adopt(run)
            if handle is not None and handle.running():
                process.kill_tree(run, "SIGTERM", 2.0)
                forced.append(run.parent.name)
        return forced


def _die_with_parent() -> None:
    """In the daemon before exec (Linux): SIGTERM when ``tether demo`` dies, even by SIGKILL."""
    if sys.platform.startswith("linux"):
        import ctypes
        import signal

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def wait(duration: float | None, tick: float = 1.0) -> None:
    """Until Ctrl-C, or ``duration`` seconds."""
    deadline = None if duration is None else time.monotonic() + duration
    while deadline is None or time.monotonic() < deadline:
        time.sleep(tick if deadline is None else max(0.0, min(tick, deadline - time.monotonic())))
