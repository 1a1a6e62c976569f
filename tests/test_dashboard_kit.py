"""Helpers for the dashboard and API tests (no tests in here): an in-process host (a real runbook, a real
SQLite store, real approvals and the real FastAPI app, with a control that records the verbs instead of
supervising processes), tokens for every role, and a browser finder.

The real-daemon tests use ``tether up --foreground`` (see ``test_daemon_kit.Host``)."""

from __future__ import annotations

import asyncio
import os
import re
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from tether import auth
from tether.approvals import Approvals
from tether.errors import NotFound, UsageError
from tether.fleet.seam import Alone
from tether.runbook import LoadedRunbook, load
from tether.store import NewEvent, Store, open_store

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
PERSON = {"name": "Ana", "contact": "json://127.0.0.1:9/ana"}
BACKUP = {"name": "Bo", "contact": "json://127.0.0.1:9/bo"}

#: One of each secret format the redaction must catch (built at run time: no literal key in the repo).
SECRETS = {
    "aws": "AKIA" + "Q7XYZ3ABCD5EFGH2",
    "github": "ghp_" + "aB3dE5fG7hJ9kL1mN3pQ5rS7tU9vW1xY3z5A",
    "anthropic": "sk-ant-" + "api03-" + "Zx9Yw8Vu7Ts6Rq5Po4Nm3Lk2Jh1Gf0Ed",
    "openai": "sk-proj-" + "Ab12Cd34Ef56Gh78Ij90Kl12Mn34Op56",
    "slack": "xoxb-" + "123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx",
}


def any_secret(text: str) -> list[str]:
    """Which of ``SECRETS`` (or a recognisable piece of one) appear in ``text``."""
    found = []
    for kind, value in SECRETS.items():
        core = value[-16:]
        if value in text or core in text:
            found.append(kind)
    return found


class Control:
    """What the API asks of the daemon, without processes: verbs are recorded as events and calls."""

    def __init__(self, loaded: LoadedRunbook, store: Store) -> None:
        self.loaded = loaded
        self.store = store
        self.approvals = Approvals(store)
        self.calls: list[tuple[str, ...]] = []
        self.shutdown_requested = threading.Event()
        self.started = time.time()
        self.probe_results: list[Any] = []
        self.place = Alone("test")

    def agent_names(self) -> list[str]:
        return list(self.loaded.runbook.agents)

    def _known(self, agent: str) -> None:
        if agent not in self.loaded.runbook.agents:
            raise NotFound(f"no agent named {agent!r}")

    def beat(self, agent: str, task: str | None, progress: str | None) -> None:
        """As the daemon does: beats are no events, so they are redacted here, before the store."""
        from tether.redact import redact

        self._known(agent)
        self.store.beat(agent, time.time(), None if task is None else redact(task),
                        None if progress is None else redact(progress))

    def beat_soon(self, agent: str, task: str | None, progress: str | None) -> asyncio.Future[None]:
        self.beat(agent, task, progress)
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        done.set_result(None)
        return done

    def touched(self, agent: str) -> None:
        pass

    def start(self, agent: str) -> None:
        self._known(agent)
        if self.loaded.state.agent_kill_file(agent).exists():
            raise UsageError(f"{agent} is killed")
        self.calls.append(("start", agent))

    def stop(self, agent: str) -> None:
        self._known(agent)
        self.calls.append(("stop", agent))

    def restart(self, agent: str) -> None:
        self._known(agent)
        self.calls.append(("restart", agent))

    def kill(self, agent: str, reason: str | None, by: str | None = None) -> None:
        self._known(agent)
        self.calls.append(("kill", agent, reason or ""))
        f = self.loaded.state.agent_kill_file(agent)
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_text(reason or "")
        self.store.append([NewEvent("agent.killed", agent, {"reason": reason}),
                           NewEvent("agent.desired", agent, {"desired": "killed"}),
                           NewEvent("agent.state", agent, {"state": "killed", "reason": reason})])

    def resume(self, agent: str) -> None:
        self._known(agent)
        self.calls.append(("resume", agent))
        self.loaded.state.agent_kill_file(agent).unlink(missing_ok=True)
        self.store.append([NewEvent("agent.resumed", agent, {}),  # as the daemon's: lifted, then started
                           NewEvent("agent.desired", agent, {"desired": "running"}),
                           NewEvent("agent.started", agent, {"pid": None})])

    def reload(self) -> list[str]:
        self.calls.append(("reload",))
        return []

    def shutdown(self) -> None:
        self.calls.append(("shutdown",))
        self.shutdown_requested.set()


class InProcess:
    """A runbook with agents ``a`` and ``b`` in ``root``, its store, the app, and a token per role."""

    def __init__(self, root: Path, approvals: dict[str, Any] | None = None) -> None:
        root.mkdir(parents=True, exist_ok=True)
        agent = {"owner": PERSON, "backup": BACKUP, "command": ["sleep", "3600"], "autostart": False,
                 "approvals": approvals or {"timeout": "1s", "escalate_after": "1h", "retry_window": "0s"},
                 "scope": {"repos": ["./repo"]}}
        doc = {"version": 1, "host": {"state_dir": str(root / "state"), "workspace_root": str(root / "ws"),
                                       "listen": "127.0.0.1:0"},
               "agents": {"a": dict(agent), "b": dict(agent)}}
        (root / "tether.yaml").write_text(yaml.safe_dump(doc))
        self.loaded = load(root / "tether.yaml")
        self.loaded.state.root.mkdir(parents=True, exist_ok=True)
        self.store = open_store(self.loaded.store_url)
        now = time.time()
        for name in ("a", "b"):
            self.store.append([
                NewEvent("agent.registered", name, {"info": {"kind": "command", "owner": PERSON, "backup": BACKUP,
                                                             "heartbeat": {"interval": 30, "stale_after": 600,
                                                                           "stuck_after": 3600}}}),
                NewEvent("agent.started", name, {"pid": os.getpid(), "instance": "x", "restart": False}),
            ])
            self.store.beat(name, now, f"task of {name}", "step 1")
        self.control = Control(self.loaded, self.store)
        from tether.api.app import create_app

        self.app = create_app(self.control)  # type: ignore[arg-type]
        self.tokens = {
            "admin": auth.create(self.store, "admin"),
            "approver": auth.create(self.store, "approver"),
            "agent": auth.create(self.store, "agent", "a"),
            "other": auth.create(self.store, "agent", "b"),
        }

    def close(self) -> None:
        self.store.close()


def csrf_of(html: str) -> str:
    m = re.search(r'name="csrf" value="([^"]+)"', html)
    assert m, "no CSRF field in the page"
    return m.group(1)


def chromium_or_skip() -> str:
    if not os.path.exists(CHROMIUM):
        if os.environ.get("CI"):
            pytest.fail(f"{CHROMIUM} is missing: .ci/install-browser installs Debian's chromium")
        pytest.skip(f"{CHROMIUM} is missing: run .ci/install-browser (apt-get install chromium)")
    try:
        import playwright  # noqa: F401
    except ImportError:
        if os.environ.get("CI"):
            pytest.fail("playwright is missing from the dev extra")
        pytest.skip("playwright is not installed (pip install -e '.[dev]')")
    return CHROMIUM


class Served:
    """The app on a real HTTP server on 127.0.0.1 (uvicorn in a thread), as the daemon serves it."""

    def __init__(self, app: Any) -> None:
        import socket

        import uvicorn

        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # as the daemon should: no Nagle wait
        self.sock.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off",
                                timeout_graceful_shutdown=1)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            assert time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.01)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)
        self.sock.close()


class AsgiClient:
    """httpx against the ASGI app in this process (no server, no socket), with a sync face for the tests."""

    def __init__(self, app: Any, base_url: str = "http://127.0.0.1") -> None:
        import asyncio

        import httpx

        self._runner = asyncio.Runner()
        self._client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app, client=("127.0.0.1", 50000)),
                                         base_url=base_url, timeout=30)

    def request(self, method: str, url: str, **kw: Any) -> Any:
        return self._runner.run(self._client.request(method, url, **kw))

    def get(self, url: str, **kw: Any) -> Any:
        return self.request("GET", url, **kw)

    def post(self, url: str, **kw: Any) -> Any:
        return self.request("POST", url, **kw)

    @property
    def cookies(self) -> Any:
        return self._client.cookies

    def close(self) -> None:
        self._runner.run(self._client.aclose())
        self._runner.close()

    def __enter__(self) -> AsgiClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
