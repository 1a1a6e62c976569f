"""The daemon's core: the runbook's agents, their supervisors, the heartbeat monitor and the control
verbs the API and CLI call. Holds no HTTP: ``tether.api.app`` serves it, ``daemon.server`` runs it."""

from __future__ import annotations

import os
import stat
import sys
import threading
import time
from pathlib import Path
from typing import Any

from tether import auth, heartbeat, redact, status_file
from tether.daemon.supervisor import AgentSupervisor
from tether.errors import NotFound, RunbookError
from tether.runbook import LoadedRunbook, load
from tether.runbook.model import Agent
from tether.secrets import resolve_all
from tether.store import Store, open_store

#: Environment variables an agent inherits from the daemon; everything else is dropped, so no
#: approver or admin credential can leak into an agent.
PASS_ENV = ("PATH", "HOME", "LANG", "LANGUAGE", "TERM", "TZ", "USER", "LOGNAME", "SHELL", "TMPDIR")


class Daemon:
    def __init__(self, loaded: LoadedRunbook) -> None:
        self.loaded = loaded
        self.state = loaded.state
        self._prepare_state_dir()
        self.store: Store = open_store(loaded.store_url)
        self.store.on_change(self._write_status)
        from tether.approvals import Approvals

        self.approvals = Approvals(self.store)
        self.url = ""
        self.supervisors: dict[str, AgentSupervisor] = {}
        self._monitor_wake = threading.Event()
        self._stopping = threading.Event()
        self._flagged: dict[str, str] = {}
        self.shutdown_requested = threading.Event()

    # -- start and stop --------------------------------------------------------------------------
    def _prepare_state_dir(self) -> None:
        root = self.state.root
        root.mkdir(parents=True, exist_ok=True)
        os.chmod(root, stat.S_IRWXU)  # 0700: agents running as other users cannot read or write it

    def boot(self, url: str) -> None:
        self.url = url
        self.store.emit("daemon.started", None, pid=os.getpid(), url=url, runbook=str(self.loaded.path))
        for name, spec in self.loaded.runbook.agents.items():
            self._add(name, spec)
        threading.Thread(target=self._monitor, name="tether-monitor", daemon=True).start()

    def _add(self, name: str, spec: Agent) -> None:
        self.store.emit("agent.registered", name, info=self._info(spec))
        if spec.cwd is None:  # the default workspace is ours to make; an explicit cwd must exist
            self.loaded.agent_cwd(name).mkdir(parents=True, exist_ok=True)
        sup = AgentSupervisor(
            spec, self.state, self.store, self.loaded.agent_cwd(name), lambda: self._agent_env(spec), self.incident
        )
        self.supervisors[name] = sup
        row = self.store.agent(name)
        if row is not None and row["desired"] in ("stopped", "killed"):
            sup.desired = row["desired"]
        sup.begin()
        self._monitor_wake.set()

    def halt(self, stop_agents: bool = True) -> None:
        self._stopping.set()
        self._monitor_wake.set()
        for sup in self.supervisors.values():
            sup.shutdown(stop_agent=stop_agents)
        self.store.emit("daemon.stopped", None, pid=os.getpid(), agents_stopped=stop_agents)
        self.store.close()

    @staticmethod
    def _info(spec: Agent) -> dict[str, Any]:
        return {
            "kind": spec.kind,
            "owner": spec.owner.model_dump(),
            "backup": spec.backup.model_dump(),
            "heartbeat": spec.heartbeat.model_dump(),
            "restart": spec.restart.policy,
        }

    def _agent_env(self, spec: Agent) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k in PASS_ENV or k.startswith("LC_")}
        env.update(spec.env)
        secrets = resolve_all(spec.secrets)
        redact.register(*secrets.values())
        env.update(secrets)
        env.update({
            "TETHER_AGENT": spec.name,
            "TETHER_URL": self.url,
            "TETHER_TOKEN": self._agent_token(spec.name),
            "TETHER_KILL_FILES": os.pathsep.join(
                [str(self.state.kill_file), str(self.state.agent_kill_file(spec.name))]
            ),
            "PYTHONUNBUFFERED": "1",
        })
        return env

    def _agent_token(self, name: str) -> str:
        """One token per agent, kept (0600) in the agent's folder of the state dir and reused."""
        path = self.state.agent_dir(name) / "agent.token"
        if path.exists():
            token = path.read_text().strip()
            if auth.identify(self.store, token) is not None:
                return token
        token = auth.create(self.store, "agent", name)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(token + "\n")
        return token

    def _write_status(self, names: set[str]) -> None:
        now = time.time()
        for name in names:
            row = self.store.agent(name)
            if row is not None:
                row["state"], row["reason"] = heartbeat.effective_state(row, now)
                status_file.write(self.state, row, now)

    # -- control verbs (API and CLI) ---------------------------------------------------------------
    def agent_names(self) -> list[str]:
        return list(self.supervisors)

    def _sup(self, agent: str) -> AgentSupervisor:
        sup = self.supervisors.get(agent)
        if sup is None:
            raise NotFound(f"no agent named {agent!r} in {self.loaded.path}")
        return sup

    def beat(self, agent: str, task: str | None, progress: str | None) -> None:
        self._sup(agent)
        self.store.beat(agent, time.time(), task, progress)
        if agent in self._flagged:  # it was stale or stuck and is beating again
            kind = self._flagged.pop(agent)
            self.store.emit("agent.state", agent, state="running", reason=f"recovered from {kind}")
            self._resolve(agent, kind)
        self._monitor_wake.set()

    def start(self, agent: str) -> None:
        self._sup(agent).set_desired("running")

    def stop(self, agent: str) -> None:
        self._sup(agent).set_desired("stopped")

    def restart(self, agent: str) -> None:
        self._sup(agent).restart()

    def kill(self, agent: str, reason: str | None) -> None:
        from tether.killswitch import kill_agent

        kill_agent(self.state, agent, self._sup(agent).spec.kill, reason, store=self.store)
        self._sup(agent).set_desired("killed")

    def resume(self, agent: str) -> None:
        from tether.killswitch import lift

        lift(self.state, agent, store=self.store)
        self._sup(agent).set_desired("running")

    def reload(self) -> list[str]:
        """Re-read the runbook: an invalid one is rejected and the old one stays; changed agents
        restart gracefully; new ones start; removed ones stop."""
        try:
            new = load(self.loaded.path)
        except RunbookError:
            raise
        changed = []
        old = self.loaded.runbook.agents
        for name, spec in new.runbook.agents.items():
            if name not in old:
                changed.append(name)
            elif spec != old[name]:
                self.supervisors.pop(name).shutdown(stop_agent=True)
                changed.append(name)
        for name in old:
            if name not in new.runbook.agents:
                self.supervisors.pop(name).shutdown(stop_agent=True)
                self.store.emit("agent.state", name, state="stopped", reason="removed from the runbook")
        self.loaded = new
        for name in changed:
            self._add(name, new.runbook.agents[name])
        self.store.emit("runbook.reloaded", None, restarted=changed)
        return changed

    def shutdown(self) -> None:
        self.shutdown_requested.set()

    # -- incidents and the heartbeat monitor ---------------------------------------------------------
    def incident(self, agent: str | None, kind: str, summary: str) -> None:
        """Open an incident unless one of this kind is already open for this agent (no storms)."""
        for inc in self.store.incidents("open", agent):
            if inc["kind"] == kind:
                return
        self.store.emit("incident.opened", agent, kind=kind, summary=summary)

    def _resolve(self, agent: str, kind: str) -> None:
        for inc in self.store.incidents("open", agent):
            if inc["kind"] == kind:
                self.store.emit("incident.resolved", agent, incident_id=inc["id"], kind=kind)

    def _monitor(self) -> None:
        """Event-driven: sleep until the earliest heartbeat deadline (or a poke), then re-evaluate."""
        while not self._stopping.is_set():
            now = time.time()
            deadlines = []
            for row in self.store.agents():
                if row["name"] not in self.supervisors:
                    continue
                state, reason = heartbeat.effective_state(row, now)
                if state in ("stale", "stuck") and self._flagged.get(row["name"]) != state:
                    self._flag(row["name"], state, reason or state)
                deadline = heartbeat.next_deadline(row)
                if deadline is not None and deadline > now:
                    deadlines.append(deadline)
            approval_deadline = self.approvals.tick(now)
            if approval_deadline is not None:
                deadlines.append(approval_deadline)
            wait = min(deadlines) - now if deadlines else 60.0
            self._monitor_wake.wait(timeout=min(max(wait, 0.01), 60.0))
            self._monitor_wake.clear()

    def _flag(self, agent: str, state: str, reason: str) -> None:
        self._flagged[agent] = state
        self.store.emit("agent.state", agent, state=state, reason=reason)
        self.incident(agent, state, f"{agent} is {state}: {reason}")
        spec = self.supervisors[agent].spec
        action = spec.heartbeat.on_stale if state == "stale" else spec.heartbeat.on_stuck
        if action == "restart":
            self.supervisors[agent].restart()


def python_for_agents() -> str:
    """The interpreter that runs tether, for runbooks (like the demo's) that start Python agents."""
    return sys.executable


def write_private(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
