"""What each agent runs with, as the daemon gives it at every start: its environment (a few of the daemon's
own variables, the runbook's, its secrets, tether's URL, its token and kill files, its private TMPDIR), its
token (one per agent, kept 0600 in its folder), the uid its egress proxy socket is made for, and its wall."""

from __future__ import annotations

import contextlib
import os
import pwd
from typing import Any, Protocol

from tether import auth, redact, wall
from tether.atomic import write_private
from tether.daemon.agentpath import on_path
from tether.paths import StateDir
from tether.runbook import LoadedRunbook
from tether.runbook.model import Agent
from tether.secrets import resolve_all
from tether.store import Store
from tether.wall.users import DEFAULT_USER


class Host(Protocol):
    """What it reads of the daemon (``daemon.core.Daemon``), at each call: a reload changes them."""

    url: str
    proxy: Any  # tether.wall.proxy.EgressProxy, or None before the server started it
    state: StateDir
    store: Store
    loaded: LoadedRunbook


#: The daemon's own environment variables an agent gets (and every LC_*).
PASS_ENV = ("PATH", "HOME", "LANG", "LANGUAGE", "TERM", "TZ", "USER", "LOGNAME", "SHELL", "TMPDIR")


class AgentEnv:
    """Reads the daemon's current runbook, URL, proxy and store at each call (a reload changes them)."""

    def __init__(self, daemon: Host) -> None:
        self.d = daemon
        self.walls: dict[str, Any] = {}  # agent -> its wall at its last start

    def env(self, spec: Agent) -> dict[str, str]:
        """Its environment: a few of the daemon's own, the runbook's, its secrets (registered for redaction),
        tether's (its URL, token, kill files, TMPDIR, `tether` first on PATH) and its egress proxy's."""
        env = {k: v for k, v in os.environ.items() if k in PASS_ENV or k.startswith("LC_")}
        env.update(spec.env)
        secrets = resolve_all(spec.secrets)
        redact.register(*secrets.values())
        env.update(secrets)
        env.update({
            "TETHER_AGENT": spec.name,
            "TETHER_URL": self.d.url,
            "TETHER_TOKEN": self.token(spec.name),
            "TETHER_KILL_FILES": os.pathsep.join(
                [str(self.d.state.kill_file), str(self.d.state.agent_kill_file(spec.name))]
            ),
            "PYTHONUNBUFFERED": "1",
            "TMPDIR": self.tmp(spec),
            **on_path(env.get("PATH")),  # `tether` itself first on its PATH (`tether beat`, `tether exec`)
        })
        if self.d.proxy is not None and spec.network != "open":  # egress through the proxy (wall/proxy.py)
            env.update(self.d.proxy.env(spec.name, self.d.state.agent_dir(spec.name) / "run", self.d.url,
                                      *self.ids(spec)))
        return env

    def ids(self, spec: Agent) -> tuple[int | None, int | None]:
        """The uid and gid the agent runs as when not the daemon's (its proxy socket is made theirs)."""
        if os.geteuid() != 0:
            return None, None
        with contextlib.suppress(KeyError):
            pw = pwd.getpwnam(spec.run_as or DEFAULT_USER)
            return pw.pw_uid, pw.pw_gid
        return None, None

    def tmp(self, spec: Agent) -> str:
        """The agent's private TMPDIR (0700, its own user's): its only scratch space (policy.Scope)."""
        tmp = self.d.state.agent_tmp(spec.name)
        tmp.mkdir(mode=0o700, parents=True, exist_ok=True)
        if spec.run_as:
            with contextlib.suppress(KeyError, OSError):
                pw = pwd.getpwnam(spec.run_as)
                os.chown(tmp, pw.pw_uid, pw.pw_gid)
        return str(tmp)

    def wall(self, name: str) -> Any:
        """The agent's wall (``tether.wall``), None for ``sandbox: off``; raises ``WallError``. The last one
        made is kept in ``walls`` (the write watch reads what is hidden from the agent there)."""
        got = wall.prepare(self.d.loaded, name, proxy_socket=self.proxy_socket(name), daemon_url=self.d.url)
        self.walls[name] = got
        return got

    def proxy_socket(self, name: str) -> str | None:
        """The egress proxy's unix socket for this agent's wall (None: no proxy, or ``network: open``)."""
        spec = self.d.loaded.runbook.agents.get(name)
        if self.d.proxy is None or spec is None or spec.network == "open":
            return None
        self.d.proxy.open(name, self.d.state.agent_dir(name) / "run", *self.ids(spec))
        got = self.d.proxy.agents.get(name)
        return str(got.sock) if got is not None and got.sock is not None else None

    def token(self, name: str) -> str:
        """One token per agent, kept (0600) in the agent's folder of the state dir and reused."""
        path = self.d.state.agent_dir(name) / "agent.token"
        if path.exists():
            token = path.read_text().strip()
            who = auth.identify(self.d.store, token)
            if who is not None and who.role == "agent" and who.agent == name:
                return token
        token = auth.create(self.d.store, "agent", name)
        path.parent.mkdir(parents=True, exist_ok=True)
        write_private(path, token + "\n")
        return token
