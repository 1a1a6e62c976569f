"""The ``claude-code`` and ``codex`` agent kinds: what the supervisor runs, and what an exit means.

The supervisor calls three functions (and nothing else changes for ``command`` and ``python`` agents)::

    why = agents.waiting(state, store, spec)        # not None: a held call waits for a human; start nothing
    run = agents.launch(spec, state, store, url)     # None: nothing to do (no prompt, empty queue)
    ...spawn run.argv with run.env added to the agent's environment, in the agent's folder...
    outcome = agents.exited(spec, state, store, code)  # "deferred" | "done" | "failed"

``launch`` resumes a session whose held call was decided (``claude -p --resume SESSION``; Codex: ``codex
exec resume THREAD`` with a note that the command was approved or denied), else starts a new one on the
agent's ``prompt``, or on its next queued task (claimed, then marked done or failed by ``exited``).

``exited``: a run that ended with a call still held is ``deferred`` (Claude Code exits 0 with
``stop_reason: tool_deferred``): no restart, no crash-loop count, the supervisor waits (``waiting``) and
starts again when the approval is decided. Exit 0 otherwise is ``done``; anything else ``failed``, and the
restart policy applies. What the run is about (task, session) is kept in ``sessions.json``, so this holds
across a daemon restart.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from tether.integrations import claude_code, codex, sessions
from tether.lifecycle import change
from tether.paths import StateDir
from tether.runbook.model import Agent
from tether.store import Store

KINDS = frozenset({"claude-code", "codex"})
PRICED_KEPT = 50  # sessions whose spend is their result's, remembered (the newest)
RESULT_TAIL = 256 * 1024  # bytes of the run's stdout read for its result line


@dataclass(frozen=True)
class Launch:
    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)
    task_id: int | None = None
    resume: str | None = None
    session_id: str | None = None  # claude-code: the session run (new or resumed), priced by its own result


def _held(state: StateDir, spec: Agent) -> list[tuple[str, dict[str, Any]]]:
    items = sessions.read(state, spec.name).get("held", {})
    return [(k, v) for k, v in items.items() if isinstance(v, dict) and v.get("client") == spec.kind]


def waiting(state: StateDir, store: Store, spec: Agent) -> str | None:
    """Why nothing may start now: a held call whose approval is still pending."""
    if spec.kind not in KINDS:
        return None
    for _, h in _held(state, spec):
        row = store.approval(int(h.get("approval_id") or 0))
        if row is not None and row["state"] == "pending":
            return f"waiting for approval {row['id']} (`tether approve {row['id']}`)"
    return None


def launch(spec: Agent, state: StateDir, store: Store, url: str, *, claude: str | None = None,
           codex_bin: str | None = None) -> Launch | None:
    if spec.kind not in KINDS or waiting(state, store, spec) is not None:
        return None
    if spec.command:  # an explicit command wins: the runbook runs the CLI its own way
        return Launch(list(spec.command), {"TETHER_HOLD": "defer"} if spec.kind == "claude-code" else {})
    for tool_use_id, h in _held(state, spec):
        sid = h.get("session_id")
        row = store.approval(int(h.get("approval_id") or 0))
        if not sid or row is None:
            sessions.release(state, spec.name, tool_use_id)
            continue
        store.emit("session.resumed", spec.name, client=spec.kind, session_id=sid, approval_id=row["id"],
                   approval=row["state"])
        if spec.kind == "claude-code":  # the call comes back to PreToolUse, which releases it
            argv = claude_code.argv(None, resume=str(sid), base=url, agent=spec.name, claude=claude)
            return _remember(state, spec, Launch(argv, {"TETHER_HOLD": "defer"}, resume=str(sid), session_id=str(sid)))
        sessions.release(state, spec.name, tool_use_id)
        note = (f"A human approved the held command (approval {row['id']}): run it again now, unchanged."
                if row["state"] == "approved" else
                f"A human {row['state']} the held command (approval {row['id']}: {row['note'] or 'no reason'}); "
                "do not run it. Continue another way, or stop.")
        return _remember(state, spec, Launch(codex.argv(note, codex=codex_bin, resume=str(sid)), resume=str(sid)))
    prompt, task_id = spec.prompt, None
    if not prompt:
        task = store.claim_task(spec.name)
        if task is None:
            return None
        prompt, task_id = task.text, task.id
    if spec.kind == "claude-code":  # its session id chosen here: its spend is its own result's (``priced``)
        sid = str(uuid.uuid4())
        argv = claude_code.argv(prompt, base=url, agent=spec.name, claude=claude, session_id=sid)
        return _remember(state, spec, Launch(argv, {"TETHER_HOLD": "defer"}, task_id=task_id, session_id=sid))
    return _remember(state, spec, Launch(codex.argv(prompt, codex=codex_bin), task_id=task_id))


def _remember(state: StateDir, spec: Agent, run: Launch) -> Launch:
    with sessions.edit(state, spec.name) as data:
        got = data.get("run")
        current: dict[str, Any] = got if isinstance(got, dict) else {}
        task_id = run.task_id if run.task_id is not None else (current.get("task_id") if run.resume else None)
        data["run"] = {"task_id": task_id, "resume": run.resume, "session_id": run.session_id}
        if run.session_id:  # the transcript's tokens are counted without a price: the result says the cost
            priced = data.setdefault("priced", {})
            priced.setdefault(run.session_id, {})
            for old in list(priced)[:-PRICED_KEPT]:
                del priced[old]
    return run


def priced_by_result(state: StateDir, agent: str, session_id: str | None) -> bool:
    """Whether the spend of ``session_id`` is what Claude Code's own result says (a session the supervisor
    ran), not the price table's figure for its transcript's tokens."""
    return bool(session_id) and session_id in (sessions.read(state, agent).get("priced") or {})


def deferred_session(state: StateDir, agent: str, session_id: str) -> bool:
    """Whether a call of ``session_id`` is held for a human: its session ended, its task did not (it goes on
    when the session is resumed, and ends when that run does)."""
    items = sessions.read(state, agent).get("held") or {}
    return any(isinstance(h, dict) and h.get("session_id") == session_id for h in items.values())


def _spend(spec: Agent, state: StateDir, store: Store, session_id: str) -> None:
    """The run's spend as Claude Code's result printed it (``usage`` events from ``source: result``, the cost
    only: the transcript counted the tokens): what the session's figures grew since the last run's."""
    try:
        with open(state.log_dir(spec.name) / "stdout.log", "rb") as f:
            f.seek(0, 2)
            f.seek(max(0, f.tell() - RESULT_TAIL))
            tail = f.read().decode("utf-8", "replace")
    except OSError:
        return
    got = claude_code.run_cost(tail, session_id)
    if got is None:
        return
    with sessions.edit(state, spec.name) as data:
        seen = data.setdefault("priced", {}).setdefault(session_id, {})
        grown = {m: round(c - float(seen.get(m, 0.0)), 8) for m, c in got.items()}
        seen.update(got)
    for model, cost in grown.items():
        if cost > 0:
            store.emit("usage", spec.name, client="claude-code", session_id=session_id, source="result",
                       model=model, cost_usd=cost)


def exited(spec: Agent, state: StateDir, store: Store, code: int | None) -> str:
    """Record how a ``claude-code``/``codex`` run ended: ``deferred``, ``done`` or ``failed``."""
    if spec.kind not in KINDS:
        return "done" if code == 0 else "failed"
    why = waiting(state, store, spec)
    if why is not None:
        run = sessions.read(state, spec.name).get("run") or {}
        if spec.kind == "claude-code" and run.get("session_id"):  # this run's spend, before the wait
            _spend(spec, state, store, str(run["session_id"]))
        store.emit("agent.state", spec.name, **change("waiting_for_approval", why))
        return "deferred"
    with sessions.edit(state, spec.name) as data:
        run = data.pop("run", None) or {}
    if spec.kind == "claude-code" and run.get("session_id"):
        _spend(spec, state, store, str(run["session_id"]))
    task_id = run.get("task_id")
    if task_id is not None:
        task = store.task(int(task_id))
        if task is not None and task.state == "started":
            kind = "task.done" if code == 0 else "task.failed"
            store.emit(kind, spec.name, task_id=task.id, text=task.text,
                       note=None if code == 0 else f"{spec.kind} exited {code}")
    return "done" if code == 0 else "failed"

