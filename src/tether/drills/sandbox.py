"""``tether drill --sandbox``: for hosts where live agents must not be touched. The chosen agents' runbook
entries are copied (restart policy, backoff, heartbeat, approvals, gates, scope, kill switch, budgets) into
a runbook of its own, each with a copy of its workspace (and of local repos outside it) and a stand-in
drill agent that only beats; a daemon of its own runs them (own state dir, a free port, no host
notifications, exports or dead-man pings; owner contacts point nowhere). The drills run there; the
results are recorded in the real host's store, marked ``sandbox``.

The sandbox stays in ``<state>/drills/sandbox-<run>/`` (its store holds the evidence) until the next
sandbox run replaces it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType
from typing import Any

import yaml

from tether.drills.base import Host, first_line, wait_until
from tether.errors import TetherError
from tether.runbook import LoadedRunbook, load

NOWHERE = "json://127.0.0.1:9/tether-drill-sandbox"
DRILL_AGENT = '''"""A tether drill sandbox agent: it only beats, until it is stopped."""
import sys
import time

from tether import Agent

agent = Agent.from_env()
interval = float(sys.argv[1]) if len(sys.argv) > 1 else 1.0
n = 0
while True:
    n += 1
    try:
        agent.heartbeat(task="tether drill sandbox", progress=f"beat {n}")
    except Exception as err:
        print(f"heartbeat failed: {err}", file=sys.stderr, flush=True)
    print(f"beat {n}", flush=True)
    time.sleep(interval)
'''


class Sandbox:
    def __init__(self, loaded: LoadedRunbook, agents: list[str], root: Path, run_id: str) -> None:
        self.source = loaded
        self.agents = agents
        self.parent = root
        self.root = root / f"sandbox-{run_id}"
        self.run_id = run_id
        self._host: Host | None = None

    @property
    def host(self) -> Host:
        assert self._host is not None, "the sandbox is not up"
        return self._host

    @property
    def runbook(self) -> Path:
        return self.root / "tether.yaml"

    def env(self) -> dict[str, str]:
        """The sandbox daemon's environment: the caller's, minus what would point it at the real host."""
        return {k: v for k, v in os.environ.items() if k not in ("TETHER_HOME", "TETHER_STORE", "TETHER_RUNBOOK")}

    # -- building -------------------------------------------------------------------------------------
    def build(self) -> Path:
        self._retire_old()
        self.root.mkdir(parents=True)
        script = self.root / "drill_agent.py"
        script.write_text(DRILL_AGENT)
        src = self.source
        agents: dict[str, Any] = {}
        for name in self.agents:
            agents[name] = self._agent(name, script)
        host = src.runbook.host
        doc = {
            "version": 1,
            "host": {
                "name": f"{host.name or 'host'}-sandbox", "state_dir": str(self.root / "state"),
                "workspace_root": str(self.root / "ws"), "listen": "127.0.0.1:0",
                "retention": host.retention.model_dump(mode="json"),
            },
            "agents": agents,
        }
        self.runbook.write_text(yaml.safe_dump(doc, sort_keys=False))
        return self.runbook

    def _agent(self, name: str, script: Path) -> dict[str, Any]:
        src = self.source
        spec = src.runbook.agents[name]
        workspace = src.agent_cwd(name)
        copy = self.root / "ws" / name
        self._copy(workspace, copy)
        body = spec.model_dump(mode="json", exclude={"name"})
        repos = []
        for entry in spec.scope.repos:
            path = src.resolve(entry)
            if "://" in entry or entry.startswith("git@") or not path.is_dir():
                repos.append(entry)
            elif path.resolve().is_relative_to(workspace.resolve()):
                repos.append(str(copy / path.resolve().relative_to(workspace.resolve())))
            else:
                dest = self.root / "repos" / name / path.name
                self._copy(path, dest)
                repos.append(str(dest))
        body["scope"]["repos"] = repos
        body.update({
            "kind": "command", "prompt": None, "command": [sys.executable, str(script),
                                                            f"{min(spec.heartbeat.interval, 5.0):g}"],
            "cwd": str(copy), "env": {}, "secrets": {}, "run_as": None, "same_user": False, "autostart": True,
        })
        body["owner"]["contact"] = NOWHERE
        body["backup"]["contact"] = NOWHERE
        return body

    def _copy(self, src: Path, dest: Path) -> None:
        state = self.source.state.root.resolve()

        def ignore(folder: str, names: list[str]) -> set[str]:
            return {n for n in names if Path(folder, n).resolve() == state}

        if src.is_dir():
            shutil.copytree(src, dest, symlinks=True, ignore=ignore, ignore_dangling_symlinks=True)
        else:
            dest.mkdir(parents=True, exist_ok=True)

    def _retire_old(self) -> None:
        """Earlier sandboxes go: their daemon stopped (one left by an interrupted run), their files removed."""
        if not self.parent.is_dir():
            return
        for old in sorted(self.parent.glob("sandbox-*")):
            if (old / "state" / "daemon.json").exists():
                self._tether(old / "tether.yaml", "down")
            shutil.rmtree(old, ignore_errors=True)

    # -- running --------------------------------------------------------------------------------------
    def _tether(self, runbook: Path, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "tether", "-f", str(runbook), *args], capture_output=True,
                              text=True, timeout=120, env=self.env(), stdin=subprocess.DEVNULL)

    def up(self) -> Host:
        self.build()
        loaded = load(self.runbook)
        loaded = dataclasses.replace(loaded, store_url=f"sqlite:///{loaded.state.db}")
        proc = self._tether(self.runbook, "up")
        if proc.returncode != 0:
            raise TetherError(f"the sandbox daemon did not start: {first_line(proc.stderr or proc.stdout)}")
        host = Host(loaded, run_id=self.run_id, label="sandbox")
        host.daemon_env = self.env()
        self._host = host
        deadline = time.monotonic() + 20
        for name in self.agents:

            def started(n: str = name) -> bool:
                return bool(host.events(0, n, ["agent.started"]))

            wait_until(started, max(0.0, deadline - time.monotonic()), 0.1)
        return host

    def down(self) -> None:
        if self._host is not None:
            self._host.close()
        with contextlib.suppress(subprocess.TimeoutExpired, OSError):
            self._tether(self.runbook, "down")

    def __enter__(self) -> Sandbox:
        try:
            self.up()
        except BaseException:
            self.down()
            raise
        return self

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None) -> None:
        self.down()
