"""The public Python API for agents: ``tether.Agent``. Stdlib only, so any agent can import it cheaply.

    agent = tether.Agent.from_env()          # TETHER_AGENT, TETHER_URL, TETHER_TOKEN set by the daemon
    agent.heartbeat(task="triage", progress="3/10")
    while (task := agent.next_task()) is not None:
        with agent.task(task):
            ...                              # done on success, failed on an exception
"""

from __future__ import annotations

import errno
import functools
import http.client
import json
import os
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

F = TypeVar("F", bound=Callable[..., Any])
MAX_WAIT = 600.0  # the longest the daemon holds one check call


class TetherUnavailable(Exception):
    """The daemon did not answer or refused the call."""


class Denied(Exception):
    """The approval boundary denied the action (or no human decided in time)."""

    def __init__(self, outcome: dict[str, Any]) -> None:
        self.outcome = outcome
        super().__init__(f"{outcome.get('decision')}: {outcome.get('reason')}")


class Agent:
    """``retry_for``: while the daemon cannot be reached (it restarts, or was killed and is coming back),
    calls are retried for up to this many seconds before ``TetherUnavailable``. A call that reached the
    daemon but whose answer was lost is sent again, so a report may be recorded twice, never lost."""

    def __init__(
        self, name: str, url: str, token: str, kill_files: tuple[str, ...] = (), timeout: float = 10,
        retry_for: float = 15.0,
    ) -> None:
        self.name = name
        self.url = url.rstrip("/")
        self.token = token
        self.kill_files = kill_files
        self.timeout = timeout
        self.retry_for = retry_for

    @classmethod
    def from_env(cls) -> Agent:
        try:
            name, url, token = os.environ["TETHER_AGENT"], os.environ["TETHER_URL"], os.environ["TETHER_TOKEN"]
        except KeyError as err:
            raise TetherUnavailable(f"{err.args[0]} is not set: run this agent under `tether up`") from None
        kill = tuple(p for p in os.environ.get("TETHER_KILL_FILES", "").split(os.pathsep) if p)
        return cls(name, url, token, kill)

    # -- transport ---------------------------------------------------------------------------------
    def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        deadline = time.monotonic() + self.retry_for
        pause = 0.05
        while True:
            req = urllib.request.Request(
                f"{self.url}/v1/agents/{self.name}{path}", data=data, method=method,
                headers={"Authorization": f"Bearer {self.token}", "Content-Type": "application/json"},
            )
            try:
                with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                    return json.loads(resp.read() or b"null")
            except urllib.error.HTTPError as err:
                detail = err.read().decode(errors="replace")[:300]
                if err.code >= 500 and time.monotonic() < deadline:
                    pass  # the daemon is shutting down or restarting: try again
                else:
                    raise TetherUnavailable(f"{method} {path}: HTTP {err.code}: {detail}") from None
            except (urllib.error.URLError, http.client.HTTPException, OSError, ValueError) as err:
                if time.monotonic() >= deadline:
                    raise TetherUnavailable(f"{method} {path}: {err}") from None
            time.sleep(pause)
            pause = min(pause * 2, 0.5)

    # -- the calls ---------------------------------------------------------------------------------
    def heartbeat(self, task: str | None = None, progress: str | None = None) -> None:
        self._call("POST", "/heartbeat", {"task": task, "progress": progress})

    def report(self, kind: str, /, **data: Any) -> int:
        """Record something only the agent knows; returns the event's id once it is durable."""
        return int(self._call("POST", "/report", {"kind": kind, "data": data})["event"])

    def files_changed(self, *paths: str) -> None:
        self.report("files.changed", paths=list(paths))

    def command_run(self, command: str, exit_code: int | None = None) -> None:
        self.report("command.run", command=command, exit_code=exit_code)

    def tests(self, passed: int, failed: int, **extra: Any) -> None:
        self.report("tests.reported", passed=passed, failed=failed, **extra)

    def add_task(self, text: str) -> int:
        return int(self._call("POST", "/tasks", {"text": text})["id"])

    def next_task(self) -> dict[str, Any] | None:
        """Take the next queued task (marked started), or None when the queue is empty."""
        task: dict[str, Any] | None = self._call("POST", "/tasks/next", {})["task"]
        return task

    @contextmanager
    def task(self, task: str | dict[str, Any]) -> Iterator[dict[str, Any]]:
        """Run a task: a text starts a new one; a task from ``next_task`` continues it. Done on
        success, failed when the block raises."""
        if isinstance(task, str):
            task_id = self.add_task(task)
            self._call("POST", f"/tasks/{task_id}/start", {"text": task})
            current = {"id": task_id, "text": task}
        else:
            current = task
        try:
            yield current
        except BaseException as err:
            self._call("POST", f"/tasks/{current['id']}/end", {"ok": False, "note": f"{type(err).__name__}: {err}"})
            raise
        self._call("POST", f"/tasks/{current['id']}/end", {"ok": True})

    # -- the approval boundary -------------------------------------------------------------------------
    def check(self, *, wait: float = 0.0, **action: Any) -> dict[str, Any]:
        """Ask the boundary about one action: ``command=``, ``tool=`` + ``input=``, ``path=`` (+ ``op=``),
        ``url=`` or ``action=`` (a class, with ``detail=``). Returns ``{"decision": "allow" | "deny" |
        "pending", "reason", "rule", "classes", "approval_id", ...}``; with ``wait`` it returns as soon
        as a human decides (pushed by the daemon), or when the wait runs out."""
        deadline = time.monotonic() + wait
        saved = self.timeout
        try:
            while True:  # the daemon holds one call for at most MAX_WAIT; longer waits ask again
                step = min(max(0.0, deadline - time.monotonic()), MAX_WAIT)
                self.timeout = saved + step
                result: dict[str, Any] = self._call("POST", "/check", {**action, "wait": step})
                if result.get("decision") != "pending" or time.monotonic() >= deadline:
                    return result
        finally:
            self.timeout = saved

    def ask(self, action: str, detail: str = "", wait: float = 600.0) -> bool:
        """Ask for an action class and wait for the decision: True when allowed."""
        return bool(self.check(action=action, detail=detail, wait=wait)["decision"] == "allow")

    def gated(self, action: str, detail: str = "", wait: float = 600.0) -> Callable[[F], F]:
        """Decorator: the function runs only after the boundary allows ``action``; else ``Denied``."""

        def wrap(fn: F) -> F:
            @functools.wraps(fn)
            def inner(*args: Any, **kwargs: Any) -> Any:
                got = self.check(action=action, detail=detail or fn.__name__, wait=wait)
                if got["decision"] != "allow":
                    raise Denied(got)
                return fn(*args, **kwargs)

            return inner  # type: ignore[return-value]

        return wrap

    def killed(self) -> bool:
        """True while a kill file (global or this agent's) exists: gated actions must not run.

        An agent running as its own user cannot see into the daemon's state directory, and one inside the
        wall (``TETHER_WALL=1``) sees it hidden: it then asks the daemon, and counts itself killed when the
        daemon cannot say otherwise."""
        if os.environ.get("TETHER_WALL") == "1":
            return self._daemon_says_killed()
        for p in self.kill_files:
            try:
                os.stat(p)
                return True
            except FileNotFoundError:
                continue
            except OSError as err:
                if err.errno not in (errno.EACCES, errno.EPERM):
                    continue
                return self._daemon_says_killed()
        return False

    def _daemon_says_killed(self) -> bool:
        try:
            doc = self._call("GET", "")
        except TetherUnavailable:
            return True
        if doc.get("desired"):  # what a human asked for: resumed means not killed, even before the run starts
            return bool(doc["desired"] == "killed")
        return bool(doc.get("state") == "killed")
