"""A real tether daemon for the integration tests: a runbook in a temp dir, ``tether up --foreground`` as a
subprocess, tokens made with the CLI, the store read with the stdlib. And where the real agent CLIs are
(installed by ``.ci/install-agents``), with the environment that points them at the stand-in model APIs."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
AGENTS_DIR = Path(os.environ.get("TETHER_AGENTS_DIR")
                  or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "tether-ci" / "agents")
BIN = AGENTS_DIR / "node_modules" / ".bin"
PY = sys.executable
PERSON = {"name": "Ana", "contact": "json://127.0.0.1:9/ana"}


def cli_binary(name: str) -> str:
    """The real CLI's path, or skip the test saying why (and how to get it)."""
    exe = BIN / name
    if not exe.exists():
        pytest.skip(f"{name} is not installed in {BIN}: run .ci/install-agents (needs npm and the npm registry)")
    try:
        proc = subprocess.run([str(exe), "--version"], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as err:
        pytest.skip(f"{exe} cannot run here: {err}")
    if proc.returncode != 0:
        pytest.skip(f"{exe} --version failed: {proc.stderr.strip()[:200]}")
    return str(exe)


def tether(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None,
           timeout: float = 60) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if (not k.startswith("TETHER_") or k == "TETHER_SANDBOX")}
    return subprocess.run([PY, "-m", "tether", *args], capture_output=True, text=True, timeout=timeout,
                          env={**base, **(env or {})}, cwd=cwd, stdin=subprocess.DEVNULL)


class Host:
    def __init__(self, root: Path, agents: dict[str, dict[str, Any]]) -> None:
        self.root = root
        self.state = root / "state"
        self.runbook = root / "tether.yaml"
        body = {}
        for name, over in agents.items():
            spec: dict[str, Any] = {"owner": PERSON, "backup": PERSON, "command": ["sleep", "3600"],
                                    "autostart": False}
            spec.update(over)
            body[name] = spec
        self.runbook.write_text(yaml.safe_dump({
            "version": 1,
            "host": {"state_dir": str(self.state), "workspace_root": str(root / "ws"), "listen": "127.0.0.1:0"},
            "agents": body,
        }))
        self.proc: subprocess.Popen[bytes] | None = None
        self.url = ""

    def up(self) -> Host:
        log = open(self.root / "daemon.log", "ab")  # noqa: SIM115 - the daemon's, closed with it
        base = {k: v for k, v in os.environ.items() if (not k.startswith("TETHER_") or k == "TETHER_SANDBOX")}
        self.proc = subprocess.Popen([PY, "-m", "tether", "-f", str(self.runbook), "up", "--foreground"],
                                     stdout=log, stderr=log, stdin=subprocess.DEVNULL, env=base,
                                     start_new_session=True)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError, ValueError):
                info = json.loads((self.state / "daemon.json").read_text())
                if info.get("pid") == self.proc.pid:
                    self.url = info["url"]
                    return self
            if self.proc.poll() is not None:
                raise AssertionError(f"the daemon exited: {(self.root / 'daemon.log').read_text()[-2000:]}")
            time.sleep(0.05)
        raise AssertionError("the daemon did not come up in 30s")

    def down(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)

    def __enter__(self) -> Host:
        return self.up()

    def __exit__(self, *exc: object) -> None:
        self.down()

    def token(self, role: str, agent: str | None = None) -> str:
        args = ["-f", str(self.runbook), "token", "create", "--role", role] + (["--agent", agent] if agent else [])
        proc = tether(*args)
        assert proc.returncode == 0, proc.stderr
        return proc.stdout.strip()

    def call(self, method: str, path: str, body: dict[str, Any] | None = None, token: str | None = None,
             headers: dict[str, str] | None = None) -> tuple[int, Any]:
        tok = token or (self.state / "admin.token").read_text().strip()
        req = urllib.request.Request(self.url + path, method=method,
                                     data=None if body is None else json.dumps(body).encode(),
                                     headers={"Authorization": f"Bearer {tok}", "Content-Type": "application/json",
                                              **(headers or {})})
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:
                return resp.status, json.loads(resp.read() or b"null")
        except urllib.error.HTTPError as err:
            return err.code, json.loads(err.read() or b"null")

    def approve(self, approval_id: int) -> None:
        code, got = self.call("POST", f"/v1/approvals/{approval_id}/approve", {"note": "ok by test"})
        assert code == 200, got

    def deny(self, approval_id: int, reason: str) -> None:
        code, got = self.call("POST", f"/v1/approvals/{approval_id}/deny", {"reason": reason})
        assert code == 200, got

    def events(self, kind: str | None = None, agent: str | None = None) -> list[dict[str, Any]]:
        conn = sqlite3.connect(f"file:{self.state / 'tether.db'}?mode=ro", uri=True)
        try:
            rows = conn.execute("SELECT kind, agent, data FROM events ORDER BY id").fetchall()
        finally:
            conn.close()
        out = [{"kind": k, "agent": a, **json.loads(d)} for k, a, d in rows]
        return [e for e in out if (kind is None or e["kind"] == kind) and (agent is None or e["agent"] == agent)]

    def wait_events(self, kind: str, agent: str | None = None, n: int = 1, timeout: float = 10) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while True:
            got = self.events(kind, agent)
            if len(got) >= n or time.monotonic() > deadline:
                return got
            time.sleep(0.05)


@contextlib.contextmanager
def host(root: Path, agents: dict[str, dict[str, Any]]) -> Iterator[Host]:
    h = Host(root, agents)
    with h:
        yield h


def claude_env(home: Path, api_url: str, token: str, **extra: str) -> dict[str, str]:
    """What a headless ``claude -p`` needs here: the stand-in API, a dummy key, no telemetry, its own home."""
    (home / "cfg").mkdir(parents=True, exist_ok=True)
    return {"PATH": os.environ["PATH"], "HOME": str(home), "CLAUDE_CONFIG_DIR": str(home / "cfg"),
            "ANTHROPIC_BASE_URL": api_url, "ANTHROPIC_API_KEY": "sk-ant-test-dummy", "DISABLE_TELEMETRY": "1",
            "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1", "DISABLE_AUTOUPDATER": "1", "TETHER_TOKEN": token,
            **extra}


def codex_env(home: Path, token: str, **extra: str) -> dict[str, str]:
    (home / "codex").mkdir(parents=True, exist_ok=True)
    return {"PATH": os.environ["PATH"], "HOME": str(home), "CODEX_HOME": str(home / "codex"),
            "FAKE_OPENAI_KEY": "sk-test-dummy", "TETHER_TOKEN": token, **extra}


def codex_provider(home: Path, api_url: str) -> None:
    """A custom model provider pointing Codex at the stand-in Responses API."""
    (home / "codex").mkdir(parents=True, exist_ok=True)
    (home / "codex" / "config.toml").write_text(
        'model = "gpt-5-codex"\nmodel_provider = "fake"\n\n[model_providers.fake]\nname = "fake"\n'
        f'base_url = "{api_url}"\nwire_api = "responses"\nenv_key = "FAKE_OPENAI_KEY"\n'
    )
