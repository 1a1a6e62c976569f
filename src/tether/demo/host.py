"""The demo host: a folder with a runbook, a git repo and four scripted agents, run by a real daemon."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from importlib.resources import files
from pathlib import Path

from tether.errors import TetherError


def write_host(root: Path) -> Path:
    """Lay out the demo host in ``root``; return the runbook's path."""
    root.mkdir(parents=True, exist_ok=True)
    agents_dir = Path(str(files("tether.demo").joinpath("agents")))
    text = files("tether.demo").joinpath("runbook.yaml").read_text(encoding="utf-8")
    text = text.replace("{python}", sys.executable).replace("{agents}", str(agents_dir))
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
    env = {**os.environ, "GIT_AUTHOR_NAME": "demo", "GIT_AUTHOR_EMAIL": "demo@example.com",
           "GIT_COMMITTER_NAME": "demo", "GIT_COMMITTER_EMAIL": "demo@example.com"}
    for args in (["init", "-q", "-b", "main"], ["add", "."], ["commit", "-qm", "Initial commit"],
                 ["config", "user.name", "repo-maintainer"], ["config", "user.email", "agent@example.com"]):
        try:
            subprocess.run(["git", *args], cwd=path, env=env, check=True, capture_output=True)
        except FileNotFoundError:
            raise TetherError("the demo needs git on PATH (apt install git)") from None
        except subprocess.CalledProcessError as err:
            raise TetherError(f"git {' '.join(args)} failed in {path}: {err.stderr.decode().strip()}") from None


def start_daemon(runbook: Path) -> dict[str, object]:
    """Start the daemon for the demo (detached, as `tether up` does) and return its daemon.json."""
    proc = subprocess.run(
        [sys.executable, "-m", "tether", "-f", str(runbook), "up"], capture_output=True, text=True, timeout=60
    )
    if proc.returncode != 0:
        raise TetherError(f"the demo daemon did not start: {proc.stderr.strip() or proc.stdout.strip()}")
    info: dict[str, object] = json.loads((runbook.parent / "state" / "daemon.json").read_text())
    return info


def stop_daemon(runbook: Path) -> None:
    subprocess.run([sys.executable, "-m", "tether", "-f", str(runbook), "down"], capture_output=True, timeout=120)


def wait(duration: float | None, tick: float = 1.0) -> None:
    """Until Ctrl-C, or ``duration`` seconds."""
    deadline = None if duration is None else time.monotonic() + duration
    while deadline is None or time.monotonic() < deadline:
        time.sleep(tick if deadline is None else max(0.0, min(tick, deadline - time.monotonic())))
