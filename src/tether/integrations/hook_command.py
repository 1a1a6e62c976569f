"""tether's command hook for agent CLIs: Codex CLI (which has no http hook type), Claude Code's
SessionStart (which runs command hooks only), and a Claude Code fallback for setups without the daemon.

    python hook_command.py --client codex --url http://127.0.0.1:7717 [--agent NAME] [--wait S]
    python hook_command.py --client claude-code --local --runbook tether.yaml --agent NAME

The event arrives as JSON on stdin. **Relay** (the default, stdlib only so it starts fast): POST it to the
daemon's ``/v1/hooks/<client>[/<agent>]`` with ``Authorization: Bearer $TETHER_TOKEN`` and turn the answer
into what the CLI understands. **Local** (``--local``): decide with the runbook in this process, no daemon
(nothing can be held for a human then: what needs approval is asked in the session, or denied).

It fails closed: at PreToolUse (and Codex's PermissionRequest) any error -- daemon down, bad token, bad
input, a timeout of its own (``--deadline``, kept below the CLI's hook timeout) -- exits 2 with the reason
on stderr. Codex blocks on exit 2 only when stderr is not empty, so the reason is never empty. Other
events are monitoring: an error there is reported on stderr and exit 0, so the agent goes on.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import urllib.error
import urllib.request
from typing import Any, NoReturn

GATING = frozenset({"PreToolUse", "PermissionRequest"})
CLIENTS = ("claude-code", "codex")


def _fail(reason: str) -> NoReturn:
    """Refused because the gate could not decide (an error, no answer): fail closed, and say so."""
    _refuse(f"{reason or 'denied'}; denied (fail closed)")


def _refuse(reason: str) -> NoReturn:
    """Refused by a decision (blocked, held for a human, denied): Codex shows the agent tether's words as they are."""
    sys.stderr.write(f"tether: {reason or 'denied'}\n")
    sys.stderr.flush()
    os._exit(2)


def _args(argv: list[str]) -> dict[str, Any]:
    opts: dict[str, Any] = {"client": "claude-code", "url": os.environ.get("TETHER_URL", ""), "agent": "",
                            "wait": 0.0, "deadline": 25.0, "local": False, "runbook": "", "event": ""}
    it = iter(argv)
    for arg in it:
        key = arg.removeprefix("--")
        if key == "local":
            opts["local"] = True
        elif key in opts and arg.startswith("--"):
            value = next(it, None)
            if value is None:
                raise ValueError(f"{arg} needs a value")
            opts[key] = float(value) if key in ("wait", "deadline") else value
        else:
            raise ValueError(f"unknown argument {arg!r}")
    if opts["client"] not in CLIENTS:
        raise ValueError(f"--client must be one of {', '.join(CLIENTS)}")
    return opts


def relay(opts: dict[str, Any], raw: bytes) -> tuple[int, dict[str, Any]]:
    """POST the event to the daemon; (HTTP status, JSON answer)."""
    base = str(opts["url"]).rstrip("/")
    if not base:
        raise RuntimeError("no daemon URL (--url or $TETHER_URL)")
    path = f"/v1/hooks/{opts['client']}" + (f"/{opts['agent']}" if opts["agent"] else "")
    token = os.environ.get("TETHER_TOKEN", "")
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {token}"}
    if opts["wait"]:
        headers["X-Tether-Wait"] = str(opts["wait"])
    hold = os.environ.get("TETHER_HOLD")
    if hold:
        headers["X-Tether-Hold"] = hold
    req = urllib.request.Request(base + path, data=raw, headers=headers, method="POST")
    timeout = max(1.0, float(opts["deadline"]) - 1.0)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, json.loads(resp.read() or b"{}")
    except urllib.error.HTTPError as err:
        try:
            detail = json.loads(err.read() or b"{}").get("detail", err.reason)
        except ValueError:
            detail = err.reason
        return err.code, {"detail": detail}


def local(opts: dict[str, Any], event: dict[str, Any]) -> dict[str, Any]:
    """Decide with the runbook in this process: the daemon's answer shape, without holds or gates."""
    from tether.boundary import Boundary, Request  # local: the hook's start-up path (a process per tool call), +260 ms
    from tether.runbook import load  # local: the hook's start-up path, with tether.boundary

    loaded = load(opts["runbook"] or None)
    agent = opts["agent"] or os.environ.get("TETHER_AGENT", "")
    if not agent:
        raise RuntimeError("--local needs --agent NAME (or $TETHER_AGENT)")
    tool, inp = event.get("tool_name"), event.get("tool_input")
    if not isinstance(tool, str) or not isinstance(inp, dict):
        raise RuntimeError("the event has no tool_name/tool_input")
    _, d = Boundary(loaded).evaluate(agent, Request(tool=tool, input=inp, cwd=event.get("cwd") or None))
    why = f"{d.reason or d.verdict} [rule: {d.rule or 'default table'}]"
    if d.verdict in ("allow", "log") and not d.gates:
        return {"decision": "allow", "reason": f"tether allowed it: {why}"}
    if d.verdict == "block":
        return {"decision": "deny", "reason": f"tether blocked it: {why}; the runbook must change for it to run"}
    if d.gates:
        return {"decision": "deny", "reason": f"tether: {why}; its gates need the daemon (`tether up`)"}
    return {"decision": "ask", "reason": f"tether: {why}; needs a human, and no daemon holds approvals here"}


def claude_output(event: str, answer: dict[str, Any]) -> dict[str, Any]:
    decision = answer.get("decision")
    if decision not in ("allow", "deny", "ask"):
        raise RuntimeError(f"no decision in the answer ({answer})")
    return {"hookSpecificOutput": {"hookEventName": event, "permissionDecision": decision,
                                   "permissionDecisionReason": str(answer.get("reason") or decision)}}


def main(argv: list[str]) -> int:
    event = argv[argv.index("--event") + 1] if "--event" in argv[:-1] else ""
    try:
        opts = _args(argv)
        deadline = float(opts["deadline"])
        if deadline > 0:
            signal.signal(signal.SIGALRM, lambda *_: _fail(f"no answer within {deadline:g}s"))
            signal.setitimer(signal.ITIMER_REAL, deadline)
        raw = sys.stdin.buffer.read()
        payload = json.loads(raw or b"{}")
        if not isinstance(payload, dict):
            raise ValueError("the event is not a JSON object")
        event = str(opts["event"] or payload.get("hook_event_name") or "")
        if opts["local"]:
            if event != "PreToolUse":
                return 0
            answer = local(opts, payload)
            print(json.dumps(claude_output(event, answer) if opts["client"] == "claude-code" else answer))
            if opts["client"] == "codex" and answer["decision"] != "allow":
                _refuse(str(answer["reason"]))
            return 0
        status, answer = relay(opts, raw)
        if status != 200:
            raise RuntimeError(f"the daemon answered HTTP {status}: {answer.get('detail', '')}")
    except Exception as err:  # fail closed at the gate, never at monitoring
        if event in GATING or not event:
            _fail(f"hook error: {type(err).__name__}: {err}")
        sys.stderr.write(f"tether: hook error: {err}\n")
        return 0
    if opts["client"] == "codex":
        if event in GATING and answer.get("decision") != "allow":
            if not answer.get("reason"):
                _fail("the daemon's answer has no decision")
            _refuse(str(answer["reason"]))
        if answer.get("output"):
            print(json.dumps(answer["output"]))
        return 0
    if event in GATING:
        try:
            answer = claude_output(event, {"decision": answer["hookSpecificOutput"]["permissionDecision"],
                                           "reason": answer["hookSpecificOutput"].get("permissionDecisionReason")})
        except (KeyError, TypeError, RuntimeError):
            _fail(f"the daemon's answer has no decision ({answer})")
    if answer:
        print(json.dumps(answer))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
