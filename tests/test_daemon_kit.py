"""A real host for the daemon tests (no tests in here): a runbook in a temp dir, ``tether up --foreground``
as a subprocess, the API over HTTP, the store read with the stdlib, processes found through /proc.

Every process a test starts (daemon, keepers, agents, their children) carries ``TETHER_TEST_MARK`` in its
environment, so ``Host.cleanup`` can SIGKILL whatever is left, whatever the test did to it.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from helpers import cli_env, run_cli

PY = sys.executable
IS_ROOT = os.geteuid() == 0


def agent(command: list[str] | str, **over: Any) -> dict[str, Any]:
    """An agent for a test runbook: fast heartbeats, no backoff, a short kill grace; ``over`` overrides."""
    base: dict[str, Any] = {
        "owner": {"name": "Ana", "contact": "json://127.0.0.1:9/ana"},
        "backup": {"name": "Bo", "contact": "json://127.0.0.1:9/bo"},
        "command": command,
        "heartbeat": {"interval": "250ms", "stale_after": "10m", "stuck_after": "1h"},
        "restart": {"policy": "on-failure", "backoff": {"base": "0s", "jitter": 0}},
        "kill": {"grace": "1s"},
    }
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            base[key] = {**base[key], **value}
        else:
            base[key] = value
    return base


def wait_until(pred: Callable[[], Any], timeout: float = 10.0, what: str = "condition", interval: float = 0.02) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        got = pred()
        if got:
            return got
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def _kernel_thread(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return bool(int(f.read().rsplit(")", 1)[1].split()[6]) & 0x00200000)  # PF_KTHREAD
    except (OSError, IndexError, ValueError):
        return True


def environ(pid: int) -> dict[str, str]:
    """The process's environment. A process in the middle of an exec reads as empty for a moment (the
    launcher execs the agent with its TETHER_INSTANCE): read again, a bounded number of times."""
    raw = b""
    for _ in range(50):
        try:
            with open(f"/proc/{pid}/environ", "rb") as f:
                raw = f.read()
        except OSError:
            return {}
        if raw or _kernel_thread(pid) or is_zombie(pid):
            break
        time.sleep(0.002)
    out = {}
    for item in raw.split(b"\0"):
        k, sep, v = item.partition(b"=")
        if sep:
            out[k.decode(errors="replace")] = v.decode(errors="replace")
    return out


def cmdline(pid: int) -> list[str]:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return [a.decode(errors="replace") for a in f.read().split(b"\0") if a]
    except OSError:
        return []


def is_zombie(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except (OSError, IndexError):
        return True


def pids() -> list[int]:
    return [int(d) for d in os.listdir("/proc") if d.isdigit()]


class Host:
    def __init__(self, root: Path, agents: dict[str, dict[str, Any]], host: dict[str, Any] | None = None) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        self.mark = uuid.uuid4().hex
        self.runbook = root / "tether.yaml"
        self.state = root / "state"
        self.daemons: list[subprocess.Popen[bytes]] = []
        self.write(agents, host)

    # -- the runbook ------------------------------------------------------------------------------
    def write(self, agents: dict[str, dict[str, Any]], host: dict[str, Any] | None = None) -> None:
        for spec in agents.values():
            spec.setdefault("env", {})["TETHER_TEST_MARK"] = self.mark
        doc = {
            "version": 1,
            "host": {"state_dir": str(self.state), "workspace_root": str(self.root / "ws"), "listen": "127.0.0.1:0",
                     **(host or {})},
            "agents": agents,
        }
        self.runbook.write_text(yaml.safe_dump(doc, sort_keys=False))

    def script(self, name: str, text: str) -> str:
        path = self.root / name
        path.write_text(text)
        path.chmod(0o755)
        return str(path)

    # -- the daemon ------------------------------------------------------------------------------
    def up(self, env: dict[str, str] | None = None, wait: bool = True) -> subprocess.Popen[bytes]:
        log = open(self.root / "daemon.log", "ab")  # noqa: SIM115 - the child's
        proc = subprocess.Popen(
            [PY, "-m", "tether", "-f", str(self.runbook), "up", "--foreground"],
            env=cli_env({"TETHER_TEST_MARK": self.mark, **(env or {})}), stdout=log, stderr=log,
            stdin=subprocess.DEVNULL,
        )
        log.close()
        self.daemons.append(proc)
        if wait:
            self.wait_up(proc)
        return proc

    def wait_up(self, proc: subprocess.Popen[bytes], timeout: float = 15) -> None:
        def ready() -> bool:
            if proc.poll() is not None:
                raise AssertionError(f"the daemon exited {proc.returncode}: {self.daemon_log()[-2000:]}")
            info = self.info()
            if info is None or info.get("pid") != proc.pid:
                return False
            try:
                return self.api("GET", "/v1/health")[0] == 200
            except OSError:
                return False

        wait_until(ready, timeout, "the daemon to answer")

    def daemon_log(self) -> str:
        try:
            return (self.root / "daemon.log").read_text(errors="replace")
        except OSError:
            return ""

    def info(self) -> dict[str, Any] | None:
        try:
            data: dict[str, Any] = json.loads((self.state / "daemon.json").read_text())
            return data
        except (OSError, ValueError):
            return None

    @property
    def url(self) -> str:
        info = self.info()
        assert info is not None, "no daemon.json"
        return str(info["url"])

    def kill9(self, proc: subprocess.Popen[bytes]) -> None:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)

    def down(self, proc: subprocess.Popen[bytes], timeout: float = 20) -> int:
        proc.send_signal(signal.SIGTERM)
        return proc.wait(timeout=timeout)

    # -- talking to it ---------------------------------------------------------------------------
    def admin_token(self) -> str:
        return (self.state / "admin.token").read_text().strip()

    def agent_token(self, name: str) -> str:
        return (self.state / "agents" / name / "agent.token").read_text().strip()

    def api(self, method: str, path: str, body: dict[str, Any] | None = None, token: str | None = "admin",
            timeout: float = 30) -> tuple[int, Any]:
        headers = {"Content-Type": "application/json"}
        if token == "admin":
            token = self.admin_token()
        if token:
            headers["Authorization"] = f"Bearer {token}"
        req = urllib.request.Request(self.url + path, method=method, headers=headers,
                                     data=None if body is None else json.dumps(body).encode())
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                return resp.status, json.loads(resp.read() or b"null")
        except urllib.error.HTTPError as err:
            try:
                return err.code, json.loads(err.read() or b"null")
            except ValueError:
                return err.code, None

    def cli(self, *args: str, env: dict[str, str] | None = None,
            timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return run_cli("-f", str(self.runbook), *args, env={"TETHER_TEST_MARK": self.mark, **(env or {})},
                       timeout=timeout)

    # -- reading the store (stdlib only, read-only) ------------------------------------------------
    def sql(self, query: str, params: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
        conn = sqlite3.connect(f"file:{self.state / 'tether.db'}?mode=ro", uri=True, timeout=30)
        conn.row_factory = sqlite3.Row
        try:
            return [dict(r) for r in conn.execute(query, params)]
        finally:
            conn.close()

    def events(self, kind: str | None = None, agent: str | None = None) -> list[dict[str, Any]]:
        q, p = "SELECT * FROM events WHERE 1=1", []
        if kind is not None:
            q += " AND kind = ?"
            p.append(kind)
        if agent is not None:
            q += " AND agent = ?"
            p.append(agent)
        rows = self.sql(q + " ORDER BY id", tuple(p))
        for r in rows:
            r["data"] = json.loads(r["data"])
        return rows

    def row(self, name: str) -> dict[str, Any]:
        rows = self.sql("SELECT * FROM agents WHERE name = ?", (name,))
        assert rows, f"no row for {name}"
        return rows[0]

    def state_of(self, name: str) -> str:
        try:
            return str(self.row(name)["state"])
        except (AssertionError, sqlite3.Error):
            return ""

    def incidents(self, kind: str | None = None, agent: str | None = None) -> list[dict[str, Any]]:
        rows = self.sql("SELECT * FROM incidents ORDER BY id")
        return [r for r in rows if (kind is None or r["kind"] == kind) and (agent is None or r["agent"] == agent)]

    def log(self, name: str, stream: str = "stdout") -> str:
        folder = self.state / "agents" / name / "logs"
        text = ""
        for path in sorted(folder.glob(f"{stream}.log*"), key=lambda p: (len(p.name), p.name), reverse=True):
            text += path.read_text(errors="replace")
        return text

    # -- processes ---------------------------------------------------------------------------------
    def agent_pids(self, name: str) -> list[int]:
        """Live agent processes of ``name`` (the agent itself: it carries TETHER_INSTANCE; keepers do not)."""
        found = []
        for pid in pids():
            env = environ(pid)
            if env.get("TETHER_TEST_MARK") == self.mark and env.get("TETHER_AGENT") == name \
                    and "TETHER_INSTANCE" in env and not is_zombie(pid):
                found.append(pid)
        return found

    def instances(self, name: str) -> set[str]:
        """Distinct runs of ``name`` alive now (every process of a run shares its TETHER_INSTANCE)."""
        out = set()
        for pid in pids():
            env = environ(pid)
            if env.get("TETHER_TEST_MARK") == self.mark and env.get("TETHER_AGENT") == name \
                    and "TETHER_INSTANCE" in env and not is_zombie(pid):
                out.add(env["TETHER_INSTANCE"])
        return out

    def marked(self) -> list[int]:
        return marked_pids(self.mark)

    def cleanup(self) -> None:
        for proc in self.daemons:
            if proc.poll() is None:
                with contextlib.suppress(OSError):
                    proc.send_signal(signal.SIGCONT)
                    proc.kill()
                with contextlib.suppress(Exception):
                    proc.wait(timeout=5)
        kill_marked(self.mark)


def marked_pids(mark: str) -> list[int]:
    """Every process but this one whose environment carries ``TETHER_TEST_MARK=mark``."""
    return [p for p in pids() if p != os.getpid() and environ(p).get("TETHER_TEST_MARK") == mark]


def kill_marked(mark: str) -> None:
    """SIGKILL whatever carries the mark, again while new ones appear (a keeper forking as it dies)."""
    for _ in range(3):
        left = marked_pids(mark)
        if not left:
            return
        for pid in left:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.05)


@pytest.fixture
def make_host(tmp_path: Path) -> Iterator[Callable[..., Host]]:
    hosts: list[Host] = []

    def make(agents: dict[str, dict[str, Any]], host: dict[str, Any] | None = None) -> Host:
        h = Host(tmp_path / f"h{len(hosts)}", agents, host) if hosts else Host(tmp_path, agents, host)
        hosts.append(h)
        return h

    yield make
    for h in hosts:
        h.cleanup()
