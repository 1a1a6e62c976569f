"""Agent hook endpoints: Claude Code's http hooks and the Codex command hook's relay.

``POST /v1/hooks/claude-code[/{agent}]`` takes any Claude Code hook event. PreToolUse is decided by the
runbook (``Gatekeeper.check``, the same as ``/v1/agents/{agent}/check``) and answered with
``hookSpecificOutput.permissionDecision``:

- ``allow`` / ``deny``, with ``permissionDecisionReason`` naming the runbook rule and how to get approval;
- held for a human: ``defer`` when the session runs headless under tether (header ``X-Tether-Hold: defer``,
  which the supervisor sets): Claude Code stops with ``stop_reason: tool_deferred``, the supervisor resumes
  the session once a human decided, and the same call comes back here to be allowed or denied. An
  interactive session waits up to ``X-Tether-Wait`` seconds for the decision, then gets ``ask``.

Every answer to PreToolUse is explicit: an empty answer would let Claude Code fall back to its own rules,
so errors answer ``deny`` (and a failed request is blocked by the hook's ``onFailure: block``).

``POST /v1/hooks/codex[/{agent}]`` answers the command hook (``tether.integrations.hook_command``) with
``{"decision": "allow" | "deny", "reason"}``: Codex honours only a denial at PreToolUse, so a held call is
denied with its approval id (waiting up to ``X-Tether-Wait`` first), and the identical retry goes through
once a human approved it.

``POST /v1/hooks/openclaw[/{agent}]`` answers tether's OpenClaw plugin (``before_tool_call``) with
``{"decision": "allow" | "block", "reason"}``; the plugin blocks anything but ``allow``. A held call waits up
to ``X-Tether-Wait`` for a human, then is blocked with its approval id (the identical retry goes through once
approved). Its other events (tool results, sessions, usage) are monitoring (``integrations.openclaw``), but
``exec_approval``: the gateway's own exec approval, made a tether approval and waited on up to
``X-Tether-Wait`` (``integrations.openclaw_approvals``; anything but ``allow-once`` is a deny to the plugin).

The agent is the path's, or the token's own (an agent token). Other events feed ``Monitor``.

Whatever goes wrong past the token check (a body that is not a JSON object, too large or too deep, the
store failing, a bug) is answered with HTTP 200: a ``deny`` in the hook's own shape for PreToolUse (and for
an event that cannot be read), ``{}`` for a monitoring event, which never blocks.
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from tether import tasks
from tether.api import body as bodies
from tether.api import waits
from tether.api.access import principal, require
from tether.api.approvals import MAX_WAIT, _gatekeeper
from tether.auth import Principal
from tether.boundary import Gatekeeper, Outcome
from tether.boundary import Request as ActionRequest
from tether.integrations import CLAUDE_PATH, CODEX_PATH, OPENCLAW_PATH, canary, openclaw, openclaw_approvals, sessions
from tether.integrations.agents import deferred_session
from tether.integrations.monitor import Monitor

router = APIRouter(route_class=bodies.StrictRoute)
GATING = frozenset({"PreToolUse"})
CODEX_GATING = frozenset({"PreToolUse", "PermissionRequest"})
OPENCLAW_GATING = frozenset({"before_tool_call"})


def monitor(request: Request) -> Monitor:
    got: Monitor | None = getattr(request.app.state, "hook_monitor", None)
    if got is None:
        control = request.app.state.control
        got = Monitor(
            control.store,
            control.loaded.state,
            lambda agent, task: control.beat(agent, task, None),
            session_task=lambda agent, sid, started: session_task(control, agent, sid, started),
            spec_of=lambda agent: control.loaded.runbook.agents.get(agent),
            runbook=str(control.loaded.path),
        )
        request.app.state.hook_monitor = got
    return got


def session_task(control: Any, agent: str, session_id: str, started: bool) -> None:
    """A Claude Code or Codex session is a task: at its start a branch per repository in scope and
    snapshots (rollback); at its end, where the work ended, and the task done (``tether.tasks``)."""
    store, text = control.store, f"session {session_id}"
    if started:
        if store.tasks(agent, ["started"], text=text, limit=1):  # one indexed lookup: this session's open task
            return
        # a workspace mid-merge cancels the task: the session runs, without a task branch
        tasks.start_new(control.loaded, store, agent, text, meta={"session_id": session_id}, strict=False)
        return
    if deferred_session(control.loaded.state, agent, session_id):  # held for a human: it goes on when resumed
        return
    row = store.agent(agent)
    shown = row.get("task") if row is not None else None  # the user's prompt, as the status shows the task
    for t in store.tasks(agent, ["started"], text=text):
        if t.text == text:
            tasks.finish(control.loaded, store, t, ok=True, text=shown or text)


def _agent(who: Principal, agent: str | None, gk: Gatekeeper) -> str:
    name = agent or who.agent
    if not name:
        raise HTTPException(400, "which agent? use an agent token, or /v1/hooks/<client>/<agent>")
    if name not in gk.loaded.runbook.agents:
        raise HTTPException(404, f"no agent named {name!r}")
    require(who, "act", name)
    return name


def _seconds(value: str | None) -> float:
    """``X-Tether-Wait``: seconds from 0 to ``MAX_WAIT``; anything else (``nan``, ``abc``) is 0."""
    try:
        got = float(value or 0)
    except ValueError:
        return 0.0
    return min(max(got, 0.0), MAX_WAIT) if math.isfinite(got) else 0.0


def _rule(o: Outcome) -> str:
    return o.rule or "default table"


def _how(o: Outcome) -> str:
    return f"`tether approve {o.approval_id}` (or `tether deny {o.approval_id} --reason ...`)"


def decide(gk: Gatekeeper, agent: str, p: dict[str, Any], wait: float) -> Outcome:
    tool, inp = p.get("tool_name"), p.get("tool_input")
    if not isinstance(tool, str) or not isinstance(inp, dict):
        raise ValueError("the event has no tool_name and tool_input")
    cwd = p.get("cwd") if isinstance(p.get("cwd"), str) and p.get("cwd") else None
    sid = p.get("session_id") if isinstance(p.get("session_id"), str) and p.get("session_id") else None
    return gk.check(agent, ActionRequest(tool=tool, input=inp, cwd=cwd, session=sid), wait)


def _claude(decision: str, reason: str) -> JSONResponse:
    return JSONResponse(
        {
            "hookSpecificOutput": {
                "hookEventName": "PreToolUse",
                "permissionDecision": decision,
                "permissionDecisionReason": reason,
            }
        }
    )


def claude_pre_tool_use(request: Request, gk: Gatekeeper, agent: str, p: dict[str, Any],
                        wait: float = 0.0) -> JSONResponse:
    headless = request.headers.get("x-tether-hold", "") == "defer"
    state = gk.loaded.state
    tool_use_id = p.get("tool_use_id") if isinstance(p.get("tool_use_id"), str) else None
    held = sessions.held(state, agent, tool_use_id) if tool_use_id else None
    if held is not None and tool_use_id is not None:  # a resumed call that was held for a human
        row = gk.approvals.store.approval(int(held["approval_id"]))
        if row is not None and row["state"] in ("denied", "expired"):
            sessions.release(state, agent, tool_use_id)
            by = row["decided_by"] or "timeout"
            return _claude(
                "deny",
                f"tether: approval {row['id']} was {row['state']} by {by}: "
                f"{row['note'] or 'no reason given'}. Do not retry it; choose another way.",
            )
        if row is not None and row["state"] == "pending" and headless:
            return _claude(
                "defer", f"tether: still held for a human (approval {row['id']}): `tether approve {row['id']}`"
            )
    try:
        o = decide(gk, agent, p, 0.0 if headless else wait)
    except Exception as err:  # an explicit deny: an empty answer would let Claude Code's own rules decide
        return _refuse("claude-code", f"{type(err).__name__}: {err}")
    if held is not None and tool_use_id is not None and o.decision != "pending":
        sessions.release(state, agent, tool_use_id)
    if o.decision == "allow":
        return _claude("allow", f"tether allowed it ({_rule(o)}): {o.reason or ', '.join(o.classes) or 'in scope'}")
    if o.decision == "deny":
        if o.approval_id is not None:
            return _claude("deny", f"tether denied it: {o.reason} (approval {o.approval_id}). Do not retry it.")
        return _claude(
            "deny",
            f"tether blocked it: {o.reason} [rule {_rule(o)}]. No approval can let this "
            "through: the runbook would have to change. Choose another way or stop.",
        )
    why = f"{o.cause} [rule {_rule(o)}]"
    if headless and tool_use_id is not None:
        _hold(state, agent, tool_use_id, o.approval_id, "claude-code", p)
        gk.approvals.store.emit(
            "session.deferred",
            agent,
            client="claude-code",
            session_id=p.get("session_id"),
            tool_use_id=tool_use_id,
            approval_id=o.approval_id,
        )
        return _claude(
            "defer",
            f"tether is holding it for a human: {why}; approval {o.approval_id}: {_how(o)}. "
            "The session resumes when they decide.",
        )
    return _claude(
        "ask",
        f"tether needs a human for this: {why}. It is also waiting as approval "
        f"{o.approval_id} ({_how(o)}); the runbook's approvers should decide.",
    )


@dataclass(frozen=True)
class _No:
    """How a client that honours only a final answer (Codex, OpenClaw) is told no, in its own words."""

    word: str  # its decision for no: "deny" (Codex) or "block" (OpenClaw)
    done: str  # the same, done: the tail of "tether could not decide (...); ..."
    refused: str  # after "(approval N)", when a human denied the approval
    final: str  # after "[rule R]", when the runbook denies outright
    retried: str  # what goes through once approved: "command" or "call"


_CODEX_NO = _No("deny", "denied", "", "; no approval can let this through", "command")
_OPENCLAW_NO = _No(
    "block", "blocked", ". Do not retry it.", ". No approval can let this through; choose another way or stop.", "call"
)


def _final_gate(
    no: _No, request: Request, gk: Gatekeeper, agent: str, p: dict[str, Any], wait: float = 0.0
) -> tuple[dict[str, Any], Outcome | None]:
    """The answer for a client with no way to wait for a human: allow, or no with the reason and, for a call
    held for approval, its id and that the identical retry goes through once approved (with the outcome then,
    so the caller can note the hold)."""
    try:
        o = decide(gk, agent, p, wait)
    except Exception as err:
        return {
            "decision": no.word,
            "reason": f"tether could not decide ({type(err).__name__}: {err}); {no.done}",
        }, None
    if o.decision == "allow":
        return {"decision": "allow", "reason": f"tether allowed it ({_rule(o)})"}, None
    if o.decision == "deny":
        extra = (
            f" (approval {o.approval_id}){no.refused}" if o.approval_id is not None else f" [rule {_rule(o)}]{no.final}"
        )
        return {"decision": no.word, "reason": f"tether blocked it: {o.reason}{extra}"}, None
    why = o.cause
    reason = (
        f"tether is holding it for a human: {why} [rule {_rule(o)}]; approval {o.approval_id}: {_how(o)}. "
        f"Once approved, the identical {no.retried} goes through: retry it then, unchanged."
    )
    return {"decision": no.word, "reason": reason}, o


def _hold(state: Any, agent: str, tool_use_id: str, approval_id: int | None, client: str, p: dict[str, Any],
          **extra: Any) -> None:
    """Remember a call held for a human, so the identical call after the decision finds it."""
    sessions.hold(state, agent, tool_use_id, approval_id=approval_id, client=client, session_id=p.get("session_id"),
                  tool=p.get("tool_name"), cwd=p.get("cwd"), **extra)


def codex_gate(request: Request, gk: Gatekeeper, agent: str, p: dict[str, Any], wait: float = 0.0) -> dict[str, Any]:
    answer, held = _final_gate(_CODEX_NO, request, gk, agent, p, wait)
    if held is not None:  # the identical retry finds it by its tool_use_id
        raw_id = p.get("tool_use_id")
        tool_use_id = raw_id if isinstance(raw_id, str) else f"approval-{held.approval_id}"
        _hold(gk.loaded.state, agent, tool_use_id, held.approval_id, "codex", p, input=p.get("tool_input"))
    return answer


def openclaw_gate(request: Request, gk: Gatekeeper, agent: str, p: dict[str, Any],
                  wait: float = 0.0) -> dict[str, Any]:
    answer, held = _final_gate(_OPENCLAW_NO, request, gk, agent, p, wait)
    if held is not None:  # the plugin passes the id on to the agent
        return {"decision": answer["decision"], "approval_id": held.approval_id, "reason": answer["reason"]}
    return answer


def _fast(gk: Gatekeeper, agent: str, p: dict[str, Any], request: Request) -> bool:
    """True when ``Gatekeeper.check`` will answer at once without I/O (a plain allow, no gates, no wait, no
    held call): then the answer is computed on the event loop, sparing two thread hand-offs. Anything else
    (store writes, gates, waits for a human) runs in the thread pool."""
    tool, inp = p.get("tool_name"), p.get("tool_input")
    if not isinstance(tool, str) or not isinstance(inp, dict):
        return False
    tool_use_id = p.get("tool_use_id")
    if isinstance(tool_use_id, str) and sessions.held(gk.loaded.state, agent, tool_use_id) is not None:
        return False
    cwd = p.get("cwd") if isinstance(p.get("cwd"), str) and p.get("cwd") else None
    try:
        _, d = gk.boundary.evaluate(agent, ActionRequest(tool=tool, input=inp, cwd=cwd))
    except Exception:
        return False
    return d.verdict == "allow" and not d.gates


def _gate(client: str, request: Request, gk: Gatekeeper, name: str, p: dict[str, Any], wait: float = 0.0) -> Any:
    if client == "claude-code":
        return claude_pre_tool_use(request, gk, name, p, wait)
    if client == "openclaw":
        return JSONResponse(openclaw_gate(request, gk, name, p, wait))
    return JSONResponse(codex_gate(request, gk, name, p, wait))


def _refuse(client: str, why: str) -> JSONResponse:
    """The deny of a call tether could not decide, in the client's shape."""
    reason = f"tether could not decide ({why}); denied"
    if client == "claude-code":
        return _claude("deny", reason)
    if client == "openclaw":
        return JSONResponse({"decision": "block", "reason": reason.replace("; denied", "; blocked")})
    return JSONResponse({"decision": "deny", "reason": reason})


async def _handle(client: str, agent: str | None, request: Request) -> Any:
    gating = GATING if client == "claude-code" else OPENCLAW_GATING if client == "openclaw" else CODEX_GATING
    event: Any = None
    try:
        who = principal(request)  # a read of the token table: fast, done here rather than in a thread
        p = bodies.parse(await request.body())
        if not isinstance(p, dict):
            raise bodies.BadBody("the body is not a JSON object")
        if not isinstance(p.get("hook_event_name", ""), str):
            raise bodies.BadBody("hook_event_name is not a string")
        event = p.get("hook_event_name")
        gk = _gatekeeper(request)
        name = _agent(who, agent, gk)
        flight = canary.flight(who.token_id)
        if flight is not None:  # a canary session (integrations.canary): judged, never held, not monitored
            if event not in gating:
                return JSONResponse({})
            decision, reason = await run_in_threadpool(canary.judge, flight, gk.boundary, name, p)
            return (
                _claude(decision, reason)
                if client == "claude-code"
                else JSONResponse({"decision": decision, "reason": reason})
            )
        mon = monitor(request)
        if client == "openclaw":  # its tool names and inputs, as the classifier and the monitor know them
            if event in openclaw_approvals.EVENTS:  # the gateway's own exec approvals: one inbox
                wait = _seconds(request.headers.get("x-tether-wait"))
                return JSONResponse(await waits.of(request).run(
                    name, wait, lambda w: openclaw_approvals.handle(gk, name, p, w)))
            if event not in gating:
                await run_in_threadpool(openclaw.monitor_event, mon, name, p)
                return JSONResponse({})
            p = openclaw.request(p)
        if event in gating:
            mon.heartbeat(name)
            if _fast(gk, name, p, request):
                return _gate(client, request, gk, name, p)
            wait = _seconds(request.headers.get("x-tether-wait"))  # a wait runs on a thread of its own
            return await waits.of(request).run(name, wait, lambda w: _gate(client, request, gk, name, p, w))
        await run_in_threadpool(mon.event, client, name, p)
        return JSONResponse({})
    except HTTPException as err:
        if err.status_code in (400, 401, 403, 404):  # the token, the agent, its rights: as documented
            raise
        why = str(err.detail)
    except Exception as err:  # any failure: fail closed at the gate, never at monitoring
        why = f"{type(err).__name__}: {err}"
    why = " ".join(why.split())[:300]
    sys.stderr.write(f"tether: {client} hook {str(event)[:40]!r}: {why}\n")
    if not isinstance(event, str) or event in gating:  # an event it could not read is refused too
        return _refuse(client, why)
    return JSONResponse({})


AUTH = {"security": [{"bearer": []}], "description": "Authorization: Bearer <agent token>"}


@router.post(f"{CLAUDE_PATH}/{{agent}}", openapi_extra=AUTH, max_body_size=bodies.MAX_HOOK)
async def claude_code_agent(agent: str, request: Request) -> Any:
    """One Claude Code hook event (JSON body) for ``agent``."""
    return await _handle("claude-code", agent, request)


@router.post(CLAUDE_PATH, openapi_extra=AUTH, max_body_size=bodies.MAX_HOOK)
async def claude_code(request: Request) -> Any:
    """One Claude Code hook event for the agent whose token calls."""
    return await _handle("claude-code", None, request)


@router.post(f"{CODEX_PATH}/{{agent}}", openapi_extra=AUTH, max_body_size=bodies.MAX_HOOK)
async def codex_agent(agent: str, request: Request) -> Any:
    """One Codex hook event (from tether's command hook) for ``agent``."""
    return await _handle("codex", agent, request)


@router.post(CODEX_PATH, openapi_extra=AUTH, max_body_size=bodies.MAX_HOOK)
async def codex(request: Request) -> Any:
    """One Codex hook event for the agent whose token calls."""
    return await _handle("codex", None, request)


@router.post(f"{OPENCLAW_PATH}/{{agent}}", openapi_extra=AUTH, max_body_size=bodies.MAX_HOOK)
async def openclaw_agent(agent: str, request: Request) -> Any:
    """One event of tether's OpenClaw plugin for ``agent``."""
    return await _handle("openclaw", agent, request)


@router.post(OPENCLAW_PATH, openapi_extra=AUTH, max_body_size=bodies.MAX_HOOK)
async def openclaw_hook(request: Request) -> Any:
    """One event of tether's OpenClaw plugin for the agent whose token calls."""
    return await _handle("openclaw", None, request)
