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
from typing import Any, Literal, TypedDict, TypeVar

__all__ = ["Agent", "Decision", "Denied", "Task", "TetherError", "TetherUnavailable"]

F = TypeVar("F", bound=Callable[..., Any])
MAX_WAIT = 600.0  # the longest the daemon holds one check call


class Decision(TypedDict):
    """What ``Agent.check`` returns: the boundary's answer for one action."""

    decision: Literal["allow", "deny", "pending"]
    verdict: str  # the runbook's verdict for the action's classes: allow, log, approve, block
    reason: str
    rule: str  # the rule that decided (``policy.approval.deploy``, ``scope.paths``, ...)
    classes: list[str]  # the action classes it was sorted into
    resources: list[dict[str, Any]]  # what it touches (paths, hosts, accounts)
    approval_id: int | None  # the approval a human decides, when ``pending`` or decided by one


class Task(TypedDict):
    """A task from the agent's queue (``Agent.next_task``), or the one ``Agent.task`` started."""

    id: int
    agent: str
    text: str
    state: str  # queued | started | done | failed | cancelled
    created: float
    started: float | None
    finished: float | None
    meta: dict[str, Any]


class TetherError(Exception):
    """Every error the SDK raises."""


class TetherUnavailable(TetherError):
    """The daemon did not answer or refused the call."""


class Denied(TetherError):
    """The approval boundary denied the action (or no human decided in time)."""

    def __init__(self, outcome: Decision) -> None:
        self.outcome = outcome
        super().__init__(f"{outcome.get('decision')}: {outcome.get('reason')}")


class Agent:
    """An agent's handle on its daemon. ``timeout``: seconds per call (a waiting ``check`` adds its wait).
    ``retry_for``: while the daemon cannot be reached (it restarts, or was killed and is coming back),
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
        """The agent the daemon started: ``TETHER_AGENT``, ``TETHER_URL``, ``TETHER_TOKEN`` and
        ``TETHER_KILL_FILES`` from the environment; ``TetherUnavailable`` when one is missing."""
        try:
            name, url, token = os.environ["TETHER_AGENT"], os.environ["TETHER_URL"], os.environ["TETHER_TOKEN"]
        except KeyError as err:
            raise TetherUnavailable(f"{err.args[0]} is not set: run this agent under `tether up`") from None
        kill = tuple(p for p in os.environ.get("TETHER_KILL_FILES", "").split(os.pathsep) if p)
        return cls(name, url, token, kill)

    # -- transport ---------------------------------------------------------------------------------
    def _call(self, method: str, path: str, body: dict[str, Any] | None = None, timeout: float | None = None) -> Any:
        """One call, retried while the daemon cannot be reached; ``timeout`` (default ``self.timeout``) per try."""
        data = None if body is None else json.dumps(body).encode()
        deadline = time.monotonic() + self.retry_for
        pause = 0.05
        while True:
            req = urllib.request.Request(
                f"{self.url}/v1/agents/{self.name}{path}", data=data, method=method,
                headers={"Authorization": f"Bearer {self.token}", "Content-Type": "application/json"},
            )
            try:
                with urllib.request.urlopen(req, timeout=self.timeout if timeout is None else timeout) as resp:
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
        """I am alive, working on ``task``, this far (``progress``): returns once the beat is on disk."""
        self._call("POST", "/heartbeat", {"task": task, "progress": progress})

    def report(self, kind: str, /, **data: Any) -> int:
        """Record something only the agent knows; returns the event's id once it is durable."""
        return int(self._call("POST", "/report", {"kind": kind, "data": data})["event"])

    def files_changed(self, *paths: str) -> None:
        """Report files the agent changed (the files-changed signal)."""
        self.report("files.changed", paths=list(paths))

    def command_run(self, command: str, exit_code: int | None = None) -> None:
        """Report a command the agent ran (the commands-run signal)."""
        self.report("command.run", command=command, exit_code=exit_code)

    def tests(self, passed: int, failed: int, **extra: Any) -> None:
        """Report a test run's counts."""
        self.report("tests.reported", passed=passed, failed=failed, **extra)

    def add_task(self, text: str) -> int:
        """Queue a task for this agent; returns its id."""
        return int(self._call("POST", "/tasks", {"text": text})["id"])

    def next_task(self) -> Task | None:
        """Take the next queued task (marked started), or None when the queue is empty."""
        task: Task | None = self._call("POST", "/tasks/next", {})["task"]
        return task

    @contextmanager
    def task(self, task: str | Task) -> Iterator[Task]:
        """Run a task: a text starts a new one; a task from ``next_task`` continues it. Done on
        success, failed when the block raises."""
        if isinstance(task, str):
            task_id = self.add_task(task)
            current: Task = self._call("POST", f"/tasks/{task_id}/start", {"text": task})
        else:
            current = task
        try:
            yield current
        except BaseException as err:
            self._call("POST", f"/tasks/{current['id']}/end", {"ok": False, "note": f"{type(err).__name__}: {err}"})
            raise
        self._call("POST", f"/tasks/{current['id']}/end", {"ok": True})

    # -- the approval boundary -------------------------------------------------------------------------
    def check(self, *, wait: float = 0.0, **action: Any) -> Decision:
        """Ask the boundary about one action: ``command=``, ``tool=`` + ``input=``, ``path=`` (+ ``op=``),
        ``url=`` or ``action=`` (a class, with ``detail=``). Returns a ``Decision``; with ``wait`` it returns
        as soon as a human decides (pushed by the daemon), or when the wait runs out. Safe to call from
        several threads at once (nothing of the agent's changes while it waits)."""
        deadline = time.monotonic() + wait
        while True:  # the daemon holds one call for at most MAX_WAIT; longer waits ask again
            step = min(max(0.0, deadline - time.monotonic()), MAX_WAIT)
            result: Decision = self._call("POST", "/check", {**action, "wait": step}, timeout=self.timeout + step)
            if result.get("decision") != "pending" or time.monotonic() >= deadline:
                return result

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
