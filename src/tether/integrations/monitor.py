"""What the daemon learns from agent CLI hook events besides the PreToolUse decision.

Every event is a heartbeat (at most one store write a second per agent, off the request thread).
SessionStart/SessionEnd, the prompt (the agent's current task), PostToolUse (commands run; files changed
by Write/Edit/MultiEdit/NotebookEdit/apply_patch and, for shell commands, what ``git status`` shows
changed), PostToolUseFailure (tool errors by type), Stop (the turn ended), Notification (the agent waits
on a human), PermissionRequest; token usage and cost from the transcript at Stop and SessionEnd.

Slow work (``git status``, reading transcripts) runs on one worker thread, in arrival order.
"""

from __future__ import annotations

import contextlib
import os
import queue
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tether.integrations import sessions, transcript
from tether.paths import StateDir
from tether.store import Store

EDIT_TOOLS = frozenset({"Write", "Edit", "MultiEdit", "NotebookEdit"})
SHELL_TOOLS = frozenset({"Bash", "exec_command", "shell", "local_shell", "unified_exec"})
PATCH_TOOLS = frozenset({"apply_patch"})
BEAT_EVERY = 1.0
GIT_TIMEOUT = 10.0
TEXT_MAX = 2000

Beat = Callable[[str, "str | None"], None]  # (agent, task or None)


def _clip(value: Any, n: int = TEXT_MAX) -> str:
    text = value if isinstance(value, str) else str(value)
    return text if len(text) <= n else text[: n - 1] + "…"


def git_snapshot(cwd: str) -> dict[str, str] | None:
    """``git status`` of the work tree at ``cwd`` as path -> status plus size and mtime (so a file changed
    again shows as changed again); None outside a work tree or when git fails."""
    try:
        proc = subprocess.run(
            ["git", "-C", cwd, "status", "--porcelain=v1", "-z", "--untracked-files=all", "--no-renames"],
            capture_output=True, timeout=GIT_TIMEOUT, stdin=subprocess.DEVNULL,
            env={**os.environ, "GIT_OPTIONAL_LOCKS": "0"},
        )
    except (OSError, subprocess.SubprocessError):
        return None
    if proc.returncode != 0:
        return None
    top = subprocess.run(["git", "-C", cwd, "rev-parse", "--show-toplevel"], capture_output=True, text=True,
                         timeout=GIT_TIMEOUT, stdin=subprocess.DEVNULL)
    root = top.stdout.strip() or cwd
    out: dict[str, str] = {}
    for item in proc.stdout.decode(errors="replace").split("\0"):
        if len(item) < 4:
            continue
        status, rel = item[:2], item[3:]
        full = os.path.join(root, rel)
        try:
            st = os.lstat(full)
            out[full] = f"{status}:{st.st_size}:{st.st_mtime_ns}"
        except OSError:
            out[full] = f"{status}:gone"
    return out


def patch_paths(patch: str, cwd: str) -> list[str]:
    """The files an ``apply_patch`` body adds, updates, deletes or moves to."""
    out = []
    for line in patch.splitlines():
        for prefix in ("*** Add File: ", "*** Update File: ", "*** Delete File: ", "*** Move to: "):
            if line.startswith(prefix):
                p = line[len(prefix):].strip()
                out.append(p if os.path.isabs(p) else os.path.join(cwd, p))
    return out


class Monitor:
    def __init__(self, store: Store, state: StateDir, beat: Beat,
                 session_task: Callable[[str, str, bool], None] | None = None) -> None:
        self.store = store
        self.state = state
        self._beat = beat
        self._session_task = session_task  # (agent, session id, started): a session is a task (rollback)
        self._last_beat: dict[str, float] = {}
        self._snapshots: dict[tuple[str, str], dict[str, str]] = {}
        self._jobs: queue.Queue[Callable[[], None] | None] = queue.Queue()
        self._idle = threading.Condition()
        self._pending = 0
        self._thread = threading.Thread(target=self._work, name="tether-hook-monitor", daemon=True)
        self._thread.start()

    # -- the worker -------------------------------------------------------------------------------------
    def later(self, job: Callable[[], None]) -> None:
        with self._idle:
            self._pending += 1
        self._jobs.put(job)

    def _work(self) -> None:
        while True:
            job = self._jobs.get()
            if job is None:
                return
            try:
                job()
            except Exception as err:  # monitoring never takes the daemon down
                with contextlib.suppress(Exception):
                    self.store.emit("integration.error", None, error=_clip(f"{type(err).__name__}: {err}", 500))
            finally:
                with self._idle:
                    self._pending -= 1
                    self._idle.notify_all()

    def drain(self, timeout: float = 10.0) -> bool:
        """Wait until queued work is done (tests, shutdown)."""
        with self._idle:
            return self._idle.wait_for(lambda: self._pending == 0, timeout)

    def stop(self) -> None:
        self._jobs.put(None)

    # -- heartbeats -------------------------------------------------------------------------------------
    def heartbeat(self, agent: str, task: str | None = None) -> None:
        now = time.monotonic()
        if task is None and now - self._last_beat.get(agent, -BEAT_EVERY) < BEAT_EVERY:
            return
        self._last_beat[agent] = now
        self.later(lambda: self._beat(agent, task))

    # -- events ---------------------------------------------------------------------------------------
    def event(self, client: str, agent: str, p: dict[str, Any]) -> None:
        """Record one non-gating hook event (the caller answers the CLI at once)."""
        name = str(p.get("hook_event_name") or "")
        sid = p.get("session_id") if isinstance(p.get("session_id"), str) else None
        cwd = p.get("cwd") if isinstance(p.get("cwd"), str) else None
        tpath = p.get("transcript_path") if isinstance(p.get("transcript_path"), str) else None
        base = {"client": client, "session_id": sid}
        if name == "UserPromptSubmit":
            prompt = _clip(p.get("prompt") or "", 1000)
            self.heartbeat(agent, task=prompt or None)
            self.store.emit("session.prompt", agent, **base, prompt=_clip(p.get("prompt") or ""))
            self._baseline(agent, cwd)
            return
        self.heartbeat(agent)
        if name == "SessionStart":
            sessions.remember_session(self.state, agent, client=client, session_id=sid, transcript_path=tpath,
                                      cwd=cwd, model=p.get("model"))
            self.store.emit("session.started", agent, **base, source=p.get("source"), model=p.get("model"),
                            transcript_path=tpath, cwd=cwd)
            self._baseline(agent, cwd)
            if sid and self._session_task is not None and p.get("source") in (None, "startup"):
                task_of = self._session_task
                self.later(lambda: task_of(agent, sid, True))
        elif name == "SessionEnd":
            self.store.emit("session.ended", agent, **base, reason=p.get("reason"))
            self._usage_later(client, agent, sid, tpath)
            if sid and self._session_task is not None:
                task_of = self._session_task
                self.later(lambda: task_of(agent, sid, False))
        elif name == "Stop":
            self.store.emit("turn.ended", agent, **base, last_message=_clip(p.get("last_assistant_message") or "", 500))
            self._usage_later(client, agent, sid, tpath)
        elif name == "PostToolUse":
            self._post_tool(client, agent, p, base, cwd)
        elif name == "PostToolUseFailure":
            self.store.emit("error", agent, **base, tool=p.get("tool_name"), tool_use_id=p.get("tool_use_id"),
                            error_type=_error_type(p), error=_clip(p.get("error") or "", 1000),
                            interrupted=bool(p.get("is_interrupt")))
        elif name == "Notification":
            self.store.emit("agent.waiting", agent, **base, message=_clip(p.get("message") or "", 1000),
                            notification_type=p.get("notification_type"))
        elif name == "PermissionRequest":
            self.store.emit("permission.requested", agent, **base, tool=p.get("tool_name"),
                            input=_clip(p.get("tool_input") or {}, 1000))
        if sid and tpath and name in ("SessionStart", "UserPromptSubmit"):
            sessions.remember_session(self.state, agent, client=client, session_id=sid, transcript_path=tpath,
                                      cwd=cwd)

    def _post_tool(self, client: str, agent: str, p: dict[str, Any], base: dict[str, Any], cwd: str | None) -> None:
        tool = str(p.get("tool_name") or "")
        raw = p.get("tool_input")
        inp: dict[str, Any] = raw if isinstance(raw, dict) else {}
        reported: list[str] = []
        if tool in SHELL_TOOLS:
            cmd = inp.get("command", inp.get("cmd"))
            text = " ".join(cmd) if isinstance(cmd, list) else str(cmd or "")
            resp = p.get("tool_response")
            code = resp.get("exit_code", resp.get("exitCode")) if isinstance(resp, dict) else None
            self.store.emit("command.run", agent, **base, command=_clip(text), tool=tool,
                            exit_code=code if isinstance(code, int) else None)
        elif tool in EDIT_TOOLS:
            path = inp.get("file_path") or inp.get("notebook_path")
            if isinstance(path, str):
                full = path if os.path.isabs(path) else os.path.join(cwd or "", path)
                reported.append(full)
                self.store.emit("files.changed", agent, **base, paths=[full], tool=tool)
        elif tool in PATCH_TOOLS:
            patch = inp.get("input") or inp.get("patch") or inp.get("command") or ""
            paths = patch_paths(str(patch), cwd or "")
            if paths:
                reported += paths
                self.store.emit("files.changed", agent, **base, paths=paths, tool=tool)
        if cwd and (tool in SHELL_TOOLS or tool in EDIT_TOOLS or tool in PATCH_TOOLS):
            self.later(lambda: self._git_changes(agent, cwd, base, reported))

    # -- files changed, as git sees them --------------------------------------------------------------
    def _baseline(self, agent: str, cwd: str | None) -> None:
        if cwd and (agent, cwd) not in self._snapshots:
            snap = git_snapshot(cwd)
            if snap is not None:
                self._snapshots[(agent, cwd)] = snap

    def _git_changes(self, agent: str, cwd: str, base: dict[str, Any], reported: list[str]) -> None:
        snap = git_snapshot(cwd)
        if snap is None:
            return
        before = self._snapshots.get((agent, cwd))
        self._snapshots[(agent, cwd)] = snap
        if before is None:
            return
        done = {os.path.realpath(p) for p in reported}
        changed = sorted(p for p, v in snap.items() if before.get(p) != v and os.path.realpath(p) not in done)
        changed += sorted(p for p in before if p not in snap and os.path.realpath(p) not in done)  # reverted/committed
        if changed:
            self.store.emit("files.changed", agent, **base, paths=changed[:500], tool="git", count=len(changed))

    # -- usage --------------------------------------------------------------------------------------------
    def _usage_later(self, client: str, agent: str, sid: str | None, tpath: str | None) -> None:
        if tpath:
            self.later(lambda: self.usage(client, agent, sid, tpath))

    def usage(self, client: str, agent: str, sid: str | None, tpath: str) -> None:
        """Read what the transcript gained since last time; one ``usage`` event per model."""
        with sessions.edit(self.state, agent) as data:
            cursors = data.setdefault("cursors", {})
            cursor = transcript.Cursor.of(cursors.get(tpath))
            got = transcript.read_usage(client, Path(tpath), cursor)
            cursors[tpath] = {"offset": cursor.offset, "seen": cursor.seen, "model": cursor.model}
        for u in got.values():
            self.store.emit("usage", agent, client=client, session_id=sid, source="transcript", **u.as_event())


def _error_type(p: dict[str, Any]) -> str:
    if p.get("is_interrupt"):
        return "interrupted"
    for key in ("error_type", "errorType"):
        if isinstance(p.get(key), str):
            return str(p[key])
    err = str(p.get("error") or "")
    low = err.lower()
    for needle, kind in (("timed out", "timeout"), ("timeout", "timeout"), ("permission", "permission"),
                         ("denied", "permission"), ("not found", "not_found"), ("no such file", "not_found"),
                         ("exit code", "exit_code"), ("exited with", "exit_code"), ("hook", "hook")):
        if needle in low:
            return kind
    return "error"
