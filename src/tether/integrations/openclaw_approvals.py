"""OpenClaw's own exec approvals as tether approvals: one inbox.

When the gateway's exec policy asks a human (``tools.exec`` ``ask: always``, or ``on-miss`` outside its
allowlist), it broadcasts ``exec.approval.requested`` to its operator clients. tether's plugin runs one
(``openclaw_plugin/index.js``, the service ``tether-approvals``) and hands each request to the hook endpoint
as the event ``exec_approval``; here it becomes a tether approval that the CLI, the dashboard, the
notifications and the audit chain see like any other, and a human's decision there is the gateway's answer
(``allow-once`` or ``deny``). ``exec_approval_resolved``: somebody answered in OpenClaw itself (its Control
UI, a chat channel): the tether approval is closed as expired, with that answer as its note.

tether's own policy still comes first: a command the runbook blocks is denied without asking anybody. A
command reaches the gateway's exec approval only after the plugin's ``before_tool_call`` let it through, so
this is OpenClaw asking a second time, which tether hands to its humans rather than deciding itself.
"""

from __future__ import annotations

import hashlib
import time
from typing import Any

from tether import waiting
from tether.approvals import APPROVED, DENIED, EXPIRED, PENDING, USED, TooManyPending, denied_line, session_key
from tether.boundary import Gatekeeper
from tether.boundary import Request as ActionRequest
from tether.store import NewEvent

RULE = "openclaw.exec_approvals"
EVENTS = frozenset({"exec_approval", "exec_approval_resolved"})


def _s(p: dict[str, Any], key: str, limit: int = 300) -> str | None:
    v = p.get(key)
    return v[:limit] if isinstance(v, str) and v else None


def fingerprint(agent: str, approval_id: str) -> str:
    """One tether approval per OpenClaw approval: the gateway binds its id to the exact command."""
    return hashlib.sha256(f"openclaw-exec-approval\0{agent}\0{approval_id}".encode()).hexdigest()


def handle(gk: Gatekeeper, agent: str, p: dict[str, Any], wait: float) -> dict[str, Any]:
    """The answer to one of the plugin's approval events."""
    if p.get("hook_event_name") == "exec_approval_resolved":
        return resolved(gk, agent, p)
    return ask(gk, agent, p, wait)


def ask(gk: Gatekeeper, agent: str, p: dict[str, Any], wait: float) -> dict[str, Any]:
    """``{"decision": "allow-once" | "deny" | "pending", "approval_id", "reason"}`` for the gateway's exec
    approval ``p["approval_id"]``: its tether approval is made (once) and waited on up to ``wait`` seconds."""
    oc_id, command = _s(p, "approval_id", 200), _s(p, "command", 20000)
    if oc_id is None or command is None:
        return {"decision": "deny", "reason": "tether: the exec approval has no id or no command"}
    cwd, sid = _s(p, "cwd", 4096), _s(p, "session_id")
    spec = gk.loaded.runbook.agents[agent]
    req = ActionRequest(tool="Bash", input={"command": command, "openclaw_tool": "exec"}, cwd=cwd, session=sid)
    _, d = gk.boundary.evaluate(agent, req, budget_spent=gk.budget_spent(agent))
    if d.verdict == "block":  # what the runbook refuses is refused without asking anybody
        reason = f"tether blocked it: {d.reason} [rule {d.rule or 'default table'}]"
        gk.store.emit("verdict", agent, decision="deny", verdict=d.verdict, classes=list(d.classes), rule=d.rule,
                      reason=reason, action=req.describe()[:2000])
        return {"decision": "deny", "reason": reason}
    fp = fingerprint(agent, oc_id)
    now = time.time()
    expires_ms = p.get("expires_at_ms")
    left = (float(expires_ms) / 1000 - now) if isinstance(expires_ms, (int, float)) else spec.approvals.timeout
    timeout = max(1.0, min(spec.approvals.timeout, left))
    detail = f"OpenClaw asks to run: {command}" + (f" (in {cwd})" if cwd else "")
    earlier = gk.store.approvals(None, agent, fp, limit=1)  # asked before (the plugin asks again after each wait)
    try:
        row = earlier[-1] if earlier else gk.approvals.request(
            agent, d.classes[0] if d.classes else "unknown", fp, classes=d.classes, detail=detail, rule=RULE,
            reason=f"OpenClaw's own exec approvals ask a human (its approval {oc_id})", timeout=timeout,
            escalate_after=min(spec.approvals.escalate_after, timeout), session=session_key(sid),
            window=spec.approvals.retry_window,
            extra={"openclaw_approval": oc_id, "cwd": cwd, "host": _s(p, "host", 40),
                   "openclaw_agent": _s(p, "openclaw_agent", 200), "session": session_key(sid)},
        )
    except TooManyPending as err:
        return {"decision": "deny", "reason": str(err)}
    if row["state"] == PENDING and wait > 0:
        waiting.begin(gk.store, agent, row)
        row = gk.approvals.wait(row["id"], wait)
        if row["state"] != PENDING:
            waiting.done(gk.store, agent, f"approval {row['id']} {row['state']}")
    if row["state"] == PENDING:
        return {"decision": "pending", "approval_id": row["id"],
                "reason": f"waiting for a human: `tether approve {row['id']}` or `tether deny {row['id']}`"}
    if row["state"] in (APPROVED, USED):
        if row["state"] == APPROVED:
            gk.approvals.use(row, row["decided"])  # the gateway runs it once: the grant is spent
        return {"decision": "allow-once", "approval_id": row["id"],
                "reason": f"approved by {row['decided_by']} (approval {row['id']})"}
    why = denied_line(row) if row["state"] == DENIED else f"{row['state']}: {row['note'] or row['state']}"
    return {"decision": "deny", "approval_id": row["id"], "reason": why}


def resolved(gk: Gatekeeper, agent: str, p: dict[str, Any]) -> dict[str, Any]:
    """Somebody answered the gateway's approval in OpenClaw: its tether approval, still pending, closes."""
    oc_id = _s(p, "approval_id", 200)
    if oc_id is None:
        return {}
    answer = _s(p, "decision", 40) or "answered"
    rows = gk.store.approvals(PENDING, agent, fingerprint(agent, oc_id))
    if rows:
        gk.store.append([NewEvent("approval.expired", agent, {
            "approval_id": r["id"], "state": EXPIRED, "by": "openclaw",
            "note": f"answered in OpenClaw itself ({answer})"}) for r in rows])
    return {"closed": [r["id"] for r in rows]}
