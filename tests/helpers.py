"""Shared helpers: run the real CLI in a subprocess, read the real store files."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
import time
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

#: The environment variables tether reads; scrubbed so a developer's shell cannot leak into a test.
TETHER_VARS = ("TETHER_HOME", "TETHER_RUNBOOK", "TETHER_STORE", "TETHER_DEBUG")


def cli_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in TETHER_VARS}
    env["PYTHONUNBUFFERED"] = "1"
    env.setdefault("COLUMNS", "200")
    env.update(extra or {})
    return env


def run_cli(
    *args: str,
    env: Mapping[str, str] | None = None,
    cwd: str | os.PathLike[str] | None = None,
    home: str | os.PathLike[str] | None = None,
    prefix: Sequence[str] = (),
    timeout: float = 60,
    input: str | None = None,
) -> subprocess.CompletedProcess[str]:
    """``python -m tether ARGS`` as a real process. ``home`` sets TETHER_HOME; ``prefix`` wraps the command
    (e.g. setpriv). The environment is the test's, minus any TETHER_* variables, plus ``env``."""
    extra = dict(env or {})
    if home is not None:
        extra["TETHER_HOME"] = str(home)
    return subprocess.run(
        [*prefix, sys.executable, "-m", "tether", *args],
        env=cli_env(extra),
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        input=input,
    )


def one_line_error(proc: subprocess.CompletedProcess[str]) -> str:
    """Assert the process failed with exactly one line on stderr and no traceback; return that line."""
    assert proc.returncode != 0, proc
    assert "Traceback" not in proc.stderr, proc.stderr
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, proc.stderr
    return lines[0]


def sqlite_ids(path: str | os.PathLike[str]) -> tuple[str, list[int]]:
    """Open a SQLite file with the stdlib only: (integrity_check, event ids)."""
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        check = conn.execute("PRAGMA integrity_check").fetchone()[0]
        ids = [r[0] for r in conn.execute("SELECT id FROM events ORDER BY id")]
    finally:
        conn.close()
    return check, ids


def raw_bytes(db: Path) -> bytes:
    """Every byte SQLite keeps for ``db``: the file, its WAL and its shared-memory index."""
    out = b""
    for suffix in ("", "-wal", "-shm", "-journal"):
        p = Path(f"{db}{suffix}")
        if p.exists():
            out += p.read_bytes()
    return out


def unprivileged_prefix(probe_dir: Path) -> tuple[list[str], int] | None:
    """A command prefix that runs a process without root's power to ignore file modes, and the uid that should
    own a directory so that process cannot enter it (mode 0700). None when this host cannot do that.

    Preferred: ``setpriv --reuid=65534`` (nobody), with the directory root-owned. When nobody cannot run this
    interpreter (it lives under a private home, as with pyenv in /root), fall back to staying uid 0 with every
    capability dropped, which makes root obey modes too; then the directory is owned by nobody.
    """
    if os.geteuid() != 0 or shutil.which("setpriv") is None:
        return None
    candidates = [
        (["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"], 0),
        (["setpriv", "--bounding-set=-all", "--inh-caps=-all"], 65534),
    ]
    probe = (
        "import os, sys\n"
        "import tether.cli.entry\n"
        "try:\n    os.listdir(sys.argv[1])\nexcept PermissionError:\n    sys.exit(0)\n"
        "sys.exit(3)\n"
    )
    for prefix, owner in candidates:
        locked = probe_dir / f"locked-{owner}"
        locked.mkdir()
        os.chown(locked, owner, owner)
        locked.chmod(0o700)
        try:
            proc = subprocess.run(
                [*prefix, sys.executable, "-c", probe, str(locked)],
                env=cli_env(),
                cwd="/",
                capture_output=True,
                timeout=30,
            )
        except OSError:
            continue
        finally:
            locked.rmdir()
        if proc.returncode == 0:
            return prefix, owner
    return None


#: A runbook with one agent ``a`` and nothing else: what ``tether explain`` needs to judge a command.
ONE_AGENT_RUNBOOK = """\
version: 1
host: {state_dir: ./state, workspace_root: ./ws, listen: "127.0.0.1:0"}
agents:
  a:
PEOPLE
"""


def one_agent_runbook(root: Path) -> tuple[Path, Path]:
    """``ONE_AGENT_RUNBOOK`` written under ``root`` with its workspace made: (the runbook's path, a's workspace)."""
    from test_policy import write_runbook  # lazily: test_policy pulls in hypothesis

    loaded = write_runbook(root, ONE_AGENT_RUNBOOK)
    return loaded.path, loaded.agent_cwd("a")


#: What makes a process an agent to tether (the SDK reads them); a test's own tether process has none.
AGENT_VARS = ("TETHER_AGENT", "TETHER_URL", "TETHER_TOKEN", "TETHER_KILL_FILES")


def clean_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The test's environment for a tether process: no TETHER_* of the developer's, no agent identity."""
    env = cli_env()
    for name in AGENT_VARS:
        env.pop(name, None)
    env.update(extra or {})
    return env


class DaemonHost:
    """One daemon (``tether up --foreground``) for a runbook written in a temporary folder, driven by the real
    CLI; ``env`` is added to every tether process's environment."""

    def __init__(self, root: Path, text: str, env: Mapping[str, str] | None = None) -> None:
        self.root = root
        self.runbook = root / "tether.yaml"
        self.state = root / "state"
        self.proc: subprocess.Popen[bytes] | None = None
        self.url = ""
        self._env = dict(env or {})
        root.mkdir(parents=True, exist_ok=True)
        self.runbook.write_text(text)

    def env(self, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        return clean_env({**self._env, **(extra or {})})

    def up(self, timeout: float = 30) -> None:
        """Start the daemon; return once it answers ``/v1/health`` (it wrote its ``daemon.json`` first)."""
        log = open(self.root / "daemon.out", "ab")  # noqa: SIM115 - the child holds it
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tether", "-f", str(self.runbook), "up", "--foreground"],
            env=self.env(),
            stdout=log,
            stderr=log,
            stdin=subprocess.DEVNULL,
            cwd=self.root,
        )
        log.close()
        deadline = time.monotonic() + timeout
        while True:
            info = self._info()
            if info and info.get("pid") == self.proc.pid and self._healthy(info["url"]):
                self.url = str(info["url"])
                return
            assert self.proc.poll() is None, (self.root / "daemon.out").read_text()
            assert time.monotonic() < deadline, f"the daemon did not come up in {timeout:g}s"
            time.sleep(0.02)

    def down(self, timeout: float = 30) -> None:
        """``tether down``, which must say it stopped the daemon."""
        if self.proc is None:
            return
        proc, self.proc = self.proc, None
        # `tether down` waits for the daemon's pid to go; the daemon is our child, so reap it meanwhile
        # (a zombie still answers kill(pid, 0))
        down = subprocess.Popen(
            [sys.executable, "-m", "tether", "-f", str(self.runbook), "down"],
            env=self.env(),
            cwd=self.root,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
        out, err = down.communicate(timeout=timeout)
        assert down.returncode == 0, err
        assert out.strip() == "tether daemon stopped"

    def _info(self) -> dict[str, Any] | None:
        try:
            got: dict[str, Any] = json.loads((self.state / "daemon.json").read_text())
            return got
        except (OSError, ValueError):
            return None

    @staticmethod
    def _healthy(url: str) -> bool:
        try:
            with urllib.request.urlopen(url + "/v1/health", timeout=2) as resp:
                return bool(resp.status == 200)
        except OSError:
            return False

    def cli(
        self, *args: str, env: Mapping[str, str] | None = None, timeout: float = 60, cwd: Path | None = None
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "tether", "-f", str(self.runbook), *args],
            env=self.env(env),
            cwd=cwd or self.root,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def query(self, sql: str, params: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
        """Rows of the store, read as any reader would (read-only)."""
        conn = sqlite3.connect(f"file:{self.state / 'tether.db'}?mode=ro", uri=True)
        conn.row_factory = sqlite3.Row
        try:
            return [dict(r) for r in conn.execute(sql, params)]
        finally:
            conn.close()
