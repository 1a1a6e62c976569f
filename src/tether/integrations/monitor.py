"""What the daemon learns from agent CLI hook events besides the PreToolUse decision.

Every event is a heartbeat (at most one store write a second per agent, off the request thread).
SessionStart/SessionEnd, the prompt (the agent's current task), PostToolUse (commands run; files changed
by Write/Edit/MultiEdit/NotebookEdit/apply_patch and, for shell commands, what ``git status`` shows
changed), PostToolUseFailure (tool errors by type), Stop (the turn ended), Notification (the agent waits
on a human), PermissionRequest; token usage and cost from the transcript at Stop and SessionEnd.

Slow work (``git status``, reading transcripts) runs on one worker thread, in arrival order. Everything an
event names comes from the agent, so it is bounded: strings are clipped, a transcript is read only when it
is one of the agent's (``transcript.open_checked``: a refusal is one log line and one ``integration.error``
per agent every ``REFUSED_EVERY``), a pass reads at most ``transcript.PASS_MAX`` and one hook event at most
``PASSES`` of them, a usage read already queued for a transcript is not queued again, ``git`` runs with a
time limit, an output limit and no fsmonitor, and a few work trees per agent are remembered.
"""

from __future__ import annotations

import contextlib
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from tether.integrations import owned, sessions, transcript
from tether.integrations.agents import priced_by_result
from tether.integrations.claude_code import RESUME_PROMPT
from tether.paths import StateDir
from tether.store import Store
from tether.wall.plan import host_off

if TYPE_CHECKING:
    from tether.runbook.model import Agent

EDIT_TOOLS = frozenset({"Write", "Edit", "MultiEdit", "NotebookEdit"})
SHELL_TOOLS = frozenset({"Bash", "exec_command", "shell", "local_shell", "unified_exec"})
PATCH_TOOLS = frozenset({"apply_patch"})
BEAT_EVERY = 1.0
GIT_TIMEOUT = 10.0
GIT_OUT_MAX = 8 << 20  # bytes of `git status` output; a bigger tree is not watched
GIT_ENTRIES_MAX = 20_000
TREES_KEPT = 8  # work trees whose `git status` is remembered, per agent
CURSORS_KEPT = 16  # transcripts whose cursor is remembered, per agent
PATHS_MAX = 500  # paths in one files.changed event
BACKLOG_MAX = 1_000  # queued jobs; past it new ones are dropped (a hook flood must not grow the daemon)
BACKLOG_TOLD_EVERY = 60.0  # seconds between two integration.backlog events
PASSES = 16  # transcript passes one hook event may cause
REFUSED_EVERY = 600.0  # seconds between reports of refused transcripts, per agent
TEXT_MAX = 2000

Beat = Callable[[str, "str | None"], None]  # (agent, task or None)


def _clip(value: Any, n: int = TEXT_MAX) -> str:
    text = value if isinstance(value, str) else str(value)
    return text if len(text) <= n else text[: n - 1] + "…"


def _text(p: dict[str, Any], key: str, n: int = transcript.PATH_MAX) -> str | None:
    """``p[key]`` when it is a string of at most ``n`` characters, else None."""
    v = p.get(key)
    return v if isinstance(v, str) and len(v) <= n else None


def _killpg(proc: subprocess.Popen[bytes]) -> None:
    if proc.returncode is None:
        with contextlib.suppress(OSError):
            os.killpg(proc.pid, signal.SIGKILL)


def _git(cwd: str, *args: str, codes: tuple[int, ...] = (0,)) -> bytes | None:
    """What ``git ARGS`` in ``cwd`` prints; None when it exits with a code not in ``codes``, runs longer than
    ``GIT_TIMEOUT`` or prints more than ``GIT_OUT_MAX`` (then it is killed, with anything it started)."""
    try:
        proc = subprocess.Popen(["git", "-c", "core.fsmonitor=false", "-C", cwd, *args], stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, start_new_session=True,
                                env={**os.environ, "GIT_OPTIONAL_LOCKS": "0", "GIT_TERMINAL_PROMPT": "0"})
    except OSError:
        return None
    timer = threading.Timer(GIT_TIMEOUT, _killpg, (proc,))
    timer.start()
    try:
        assert proc.stdout is not None
        out = proc.stdout.read(GIT_OUT_MAX + 1)
        if len(out) > GIT_OUT_MAX:
            _killpg(proc)
        code = proc.wait()
    finally:
        timer.cancel()
        if proc.stdout is not None:
            proc.stdout.close()
    return out if code in codes and len(out) <= GIT_OUT_MAX else None


def not_ignored(paths: list[str]) -> list[str]:
    """``paths`` without those git ignores (``git check-ignore``, run in each one's folder, or the nearest
    that exists: a tracked file is never ignored). A path outside a work tree, or one git cannot answer
    for, is kept."""
    groups: dict[str, list[str]] = {}
    for p in paths:
        d = os.path.dirname(p)
        while not os.path.isdir(d) and os.path.dirname(d) != d:
            d = os.path.dirname(d)
        groups.setdefault(d, []).append(p)
    ignored: set[str] = set()
    for d, group in groups.items():
        asked = [p for p in group if "\n" not in p and os.path.isabs(p)]
        got = _git(d, "-c", "core.quotePath=false", "check-ignore", "--", *asked, codes=(0, 1)) if asked else None
        ignored.update(got.decode(errors="replace").splitlines() if got else ())
    return [p for p in paths if p not in ignored]


def git_snapshot(cwd: str) -> dict[str, str] | None:
    """``git status`` of the work tree at ``cwd`` as path -> status plus size and mtime (so a file changed
    again shows as changed again); None outside a work tree, when git fails, or for a tree with more than
    ``GIT_ENTRIES_MAX`` changes."""
    if not os.path.isabs(cwd) or "\0" in cwd:
        return None
    listed = _git(cwd, "status", "--porcelain=v1", "-z", "--untracked-files=all", "--no-renames")
    if listed is None:
        return None
    items = listed.decode(errors="replace").split("\0")
    if len(items) > GIT_ENTRIES_MAX:
        return None
    top = _git(cwd, "rev-parse", "--show-toplevel")
    root = (top or b"").decode(errors="replace").strip() or cwd
    out: dict[str, str] = {}
    for item in items:
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
    out: list[str] = []
    for line in patch.splitlines():
        for prefix in ("*** Add File: ", "*** Update File: ", "*** Delete File: ", "*** Move to: "):
            if line.startswith(prefix):
                p = line[len(prefix):].strip()
                out.append(_clip(p if os.path.isabs(p) else os.path.join(cwd, p), transcript.PATH_MAX))
                if len(out) >= PATHS_MAX:
                    return out
    return out


class Monitor:
    def __init__(self, store: Store, state: StateDir, beat: Beat,
                 session_task: Callable[[str, str, bool], None] | None = None,
                 spec_of: Callable[[str], Agent | None] | None = None, runbook: str | None = None) -> None:
        self.store = store
        self.state = state
        self._beat = beat
        self._session_task = session_task  # (agent, session id, started): a session is a task (rollback)
        self._spec_of = spec_of  # the agent's runbook entry: where its transcripts are, whose they are
        self._last_beat: dict[str, float] = {}
        self._snapshots: dict[str, dict[str, dict[str, str]]] = {}  # agent -> cwd -> snapshot (latest last)
        self._counted: dict[tuple[str, str], dict[str, str]] = {}  # (agent, cwd) -> what the last look counted
        self._usage_queued: set[tuple[str, str]] = set()
        # (agent, cwd) -> what the queued look takes: (event base, tool, path) of each path a tool reported
        self._git_queued: dict[tuple[str, str], list[tuple[dict[str, Any], str, str]]] = {}
        self._owned = owned.Owned([state.root, *([runbook] if runbook is not None else [])])
        self._refused: dict[str, tuple[float, int]] = {}  # agent -> (last reported, refused since)
        self._jobs: queue.Queue[Callable[[], None] | None] = queue.Queue()
        self._idle = threading.Condition()
        self._pending = 0
        self.dropped = 0  # jobs dropped because the backlog was full, since the daemon started
        self._dropped_told = (float("-inf"), 0)  # (monotonic time, dropped) of the last integration.backlog
        self._thread = threading.Thread(target=self._work, name="tether-hook-monitor", daemon=True)
        self._thread.start()

    # -- the worker -------------------------------------------------------------------------------------
    def later(self, job: Callable[[], None]) -> None:
        """Queue ``job`` for the worker; dropped (and counted) when ``BACKLOG_MAX`` jobs wait already: each
        holds a request's payload, and a flood of hook requests must cost bounded memory."""
        tell = 0
        with self._idle:
            if self._pending < BACKLOG_MAX:
                self._pending += 1
                self._jobs.put(job)
                return
            self.dropped += 1
            told_at, told = self._dropped_told
            now = time.monotonic()
            if now - told_at >= BACKLOG_TOLD_EVERY:
                self._dropped_told = (now, self.dropped)
                tell = self.dropped - told
        if tell:
            with contextlib.suppress(Exception):
                self.store.emit("integration.backlog", None, dropped=tell, limit=BACKLOG_MAX)

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
        sid = _text(p, "session_id", 200)
        cwd = _text(p, "cwd")
        tpath = _text(p, "transcript_path")
        model = _text(p, "model", 200)
        base = {"client": client, "session_id": sid}
        if name == "UserPromptSubmit":
            prompt = _clip(p.get("prompt") or "", 1000)
            if prompt == RESUME_PROMPT and client == "claude-code":
                prompt = ""  # Claude Code's own words on `--resume`: the task stays the user's prompt
            self.heartbeat(agent, task=prompt or None)
            self.store.emit("session.prompt", agent, **base, prompt=_clip(p.get("prompt") or ""))
            self._baseline(agent, cwd)
            if client == "codex" and sid and self._session_task is not None:  # a turn after the last one ended
                task_of = self._session_task
                self.later(lambda: task_of(agent, sid, True))
            return
        self.heartbeat(agent)
        if name == "SessionStart":
            sessions.remember_session(self.state, agent, client=client, session_id=sid, transcript_path=tpath,
                                      cwd=cwd, model=model)
            self.store.emit("session.started", agent, **base, source=_text(p, "source", 100), model=model,
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
            if client == "codex" and sid and self._session_task is not None:  # Codex sends no SessionEnd: its
                task_of = self._session_task  # turn's end ends the task (a next prompt starts another)
                self.later(lambda: task_of(agent, sid, False))
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
                reported.append(_clip(path if os.path.isabs(path) else os.path.join(cwd or "", path),
                                      transcript.PATH_MAX))
        elif tool in PATCH_TOOLS:
            patch = inp.get("input") or inp.get("patch") or inp.get("command") or ""
            reported += patch_paths(str(patch), cwd or "")
        if reported or (cwd and tool in SHELL_TOOLS):
            self._changes_later(agent, cwd, base, [(base, tool, p) for p in reported])

    # -- files changed, as git sees them --------------------------------------------------------------
    def _baseline(self, agent: str, cwd: str | None) -> None:
        if cwd:
            self.later(lambda: self._snapshot_once(agent, cwd))

    def _snapshot_once(self, agent: str, cwd: str) -> None:
        if cwd not in self._snapshots.get(agent, {}):
            snap = git_snapshot(cwd)
            if snap is not None:
                self._keep(agent, cwd, snap)

    def _keep(self, agent: str, cwd: str, snap: dict[str, str]) -> dict[str, str] | None:
        """Remember ``snap`` for (agent, cwd), the agent's latest ``TREES_KEPT`` trees only; the one before."""
        trees = self._snapshots.setdefault(agent, {})
        before = trees.pop(cwd, None)
        trees[cwd] = snap
        for old in list(trees)[:-TREES_KEPT]:
            del trees[old]
        return before

    def _seen(self, agent: str, cwd: str | None, path: str) -> bool:
        """Whether the last ``git status`` look of ``cwd`` counted ``path`` as changed, as it is now: a tool's
        report of the same change (its hook event queued while that look ran) is not counted twice. A path
        the session's baseline merely listed (a look that counts nothing) is counted when a tool reports it."""
        counted = self._counted.get((agent, cwd or ""), {})
        got = counted.get(path) or counted.get(os.path.realpath(path))
        if not got:
            return False
        try:
            st = os.lstat(path)
        except OSError:
            return got.endswith(":gone")
        return got.split(":", 1)[1] == f"{st.st_size}:{st.st_mtime_ns}"

    def _changes_later(self, agent: str, cwd: str | None, base: dict[str, Any],
                       reported: list[tuple[dict[str, Any], str, str]]) -> None:
        """Queue the paths a tool reported and a look at ``git status`` in ``cwd``, unless one is queued already
        (it takes these paths too)."""
        key = (agent, cwd or "")
        queued = self._git_queued.get(key)
        if queued is not None:
            queued += reported[: PATHS_MAX - len(queued)]
            return
        self._git_queued[key] = list(reported)
        self.later(lambda: self._changes(agent, cwd, base, self._git_queued.pop(key, [])))

    def _changes(self, agent: str, cwd: str | None, base: dict[str, Any],
                 reported: list[tuple[dict[str, Any], str, str]]) -> None:
        """``files.changed``: the paths tools reported (each event's own), then what ``git status`` in ``cwd``
        shows changed since the last look; never tether's own files (``owned``), nor files git ignores."""
        by_tool: dict[tuple[str, str], tuple[dict[str, Any], list[str]]] = {}
        for event, tool, path in reported:
            by_tool.setdefault((repr(sorted(event.items())), tool), (event, []))[1].append(path)
        for (_, tool), (event, paths) in by_tool.items():
            kept = not_ignored(self._owned.drop(p for p in paths if not self._seen(agent, cwd, p)))
            if kept:
                self.store.emit("files.changed", agent, **event, paths=kept, tool=tool)
        snap = git_snapshot(cwd) if cwd else None
        if cwd is None or snap is None:
            return
        before = self._keep(agent, cwd, snap)
        if before is None:
            return
        done = {os.path.realpath(p) for _, _, p in reported}
        changed = sorted(p for p, v in snap.items() if before.get(p) != v and os.path.realpath(p) not in done)
        changed += sorted(p for p in before if p not in snap and os.path.realpath(p) not in done)  # reverted/committed
        changed = self._owned.drop(changed)
        self._counted[(agent, cwd)] = {p: snap.get(p, "?:gone") for p in changed}
        for old in list(self._counted)[:-TREES_KEPT]:
            del self._counted[old]
        if changed:
            self.store.emit("files.changed", agent, **base, paths=changed[:PATHS_MAX], tool="git", count=len(changed))

    # -- usage --------------------------------------------------------------------------------------------
    def _usage_later(self, client: str, agent: str, sid: str | None, tpath: str | None,
                     passes: int = PASSES) -> None:
        """Queue a read of the transcript, unless one is queued already (it reads to the end too)."""
        key = (agent, tpath or "")
        if tpath and passes > 0 and key not in self._usage_queued:
            self._usage_queued.add(key)
            self.later(lambda: self.usage(client, agent, sid, tpath, passes))

    def usage(self, client: str, agent: str, sid: str | None, tpath: str, passes: int = 1) -> None:
        """Read what the transcript gained since last time (one pass; ``passes`` left for this event); one
        ``usage`` event per model. A path that is not one of the agent's transcripts is refused."""
        self._usage_queued.discard((agent, tpath))
        spec = self._spec_of(agent) if self._spec_of is not None else None
        where = transcript.place(client, spec)
        if spec is not None and spec.sandbox == "on" and not host_off():  # a session the wall ran, or one by hand
            walled = transcript.place(client, spec, str(self.state.agent_dir(agent) / "home"))
            if transcript.inside(os.path.realpath(tpath), walled.roots):
                where = walled
        cursor = transcript.Cursor.of(sessions.read(self.state, agent).get("cursors", {}).get(tpath))
        try:
            got = transcript.read_usage(client, tpath, cursor, where)
        except transcript.Refused as err:
            self._refuse(client, agent, str(err))
            return
        with sessions.edit(self.state, agent) as data:  # only this thread writes cursors
            cursors = data.setdefault("cursors", {})
            cursors.pop(tpath, None)
            cursors[tpath] = cursor.saved()
            for old in list(cursors)[:-CURSORS_KEPT]:
                del cursors[old]
        by_result = client == "claude-code" and priced_by_result(self.state, agent, sid)
        for u in got.values():
            figures = u.as_event()
            if by_result:  # a run the supervisor ran: its cost is the one its own result says (agents._spend)
                figures.update(cost_usd=None, priced_by="result")
            self.store.emit("usage", agent, client=client, session_id=sid, source="transcript", **figures)
        if cursor.behind:  # the rest in later passes, with other work in between
            self._usage_later(client, agent, sid, tpath, passes - 1)

    def _refuse(self, client: str, agent: str, why: str) -> None:
        """One log line and one ``integration.error`` per agent every ``REFUSED_EVERY`` seconds."""
        now = time.monotonic()
        last, since = self._refused.get(agent, (-REFUSED_EVERY, 0))
        if now - last < REFUSED_EVERY:
            self._refused[agent] = (last, since + 1)
            return
        self._refused[agent] = (now, 0)
        more = f" ({since} more refused since the last report)" if since else ""
        message = _clip(f"{client} transcript refused: {why}{more}", 1000)
        print(f"tether: {agent}: {message}", file=sys.stderr, flush=True)
        self.store.emit("integration.error", agent, client=client, error=message)


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
