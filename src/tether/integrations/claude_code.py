"""Claude Code: which settings file, tether's hooks in it, and how the supervisor runs ``claude -p``.

Hooks (checked on Claude Code 2.1.332, see docs/INTEGRATIONS.md):

- PreToolUse is a ``type: "http"`` hook to the daemon (no process per tool call) with ``onFailure: "block"``:
  without it a daemon that is down, slow or refusing lets the tool run.
- The token travels as ``Authorization: Bearer $TETHER_TOKEN`` (``allowedEnvVars``); ``X-Tether-Hold:
  $TETHER_HOLD`` is ``defer`` for sessions the supervisor runs headless.
- PostToolUse, PostToolUseFailure, UserPromptSubmit, Stop, SessionEnd, Notification and PermissionRequest
  are http hooks too, for monitoring (they never block). SessionStart runs command hooks only, so it is
  tether's command hook relaying to the daemon.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import sys
from pathlib import Path
from typing import Any

from tether.integrations import CLAUDE_PATH
from tether.integrations.settings import Change, install_json, remove_json

#: Claude Code's managed settings (admin-owned; ``allowManagedHooksOnly`` there keeps an agent from removing
#: tether's hook in its own settings)
if sys.platform == "darwin":  # macOS (untested)
    MANAGED_SETTINGS = Path("/Library/Application Support/ClaudeCode/managed-settings.json")
else:
    MANAGED_SETTINGS = Path("/etc/claude-code/managed-settings.json")

HOOK_SCRIPT = Path(__file__).with_name("hook_command.py")
MONITORED = ("PostToolUse", "PostToolUseFailure", "PermissionRequest", "UserPromptSubmit", "Stop", "SessionEnd",
             "Notification")
WITH_MATCHER = frozenset({"PreToolUse", "PostToolUse", "PostToolUseFailure", "PermissionRequest"})
DEFAULT_WAIT = 20.0


def user_settings() -> Path:
    return Path(os.environ.get("CLAUDE_CONFIG_DIR") or "~/.claude").expanduser() / "settings.json"


def settings_path(scope: str, project: Path | None = None) -> Path:
    if scope == "managed":
        return MANAGED_SETTINGS
    if scope == "user":
        return user_settings()
    return (project or Path.cwd()) / ".claude" / "settings.json"


def hook_url(base: str, agent: str | None) -> str:
    return base.rstrip("/") + CLAUDE_PATH + (f"/{agent}" if agent else "")


def hooks(base: str, agent: str | None, wait: float = DEFAULT_WAIT, python: str | None = None) -> dict[str, Any]:
    """tether's hook groups by event, for ``base`` (the daemon's URL) and ``agent`` (None: the token's)."""
    url = hook_url(base, agent)

    def http(timeout: float, block: bool) -> dict[str, Any]:
        h: dict[str, Any] = {
            "type": "http", "url": url, "timeout": int(timeout),
            "headers": {"Authorization": "Bearer $TETHER_TOKEN", "X-Tether-Hold": "$TETHER_HOLD",
                        "X-Tether-Wait": f"{wait:g}"},
            "allowedEnvVars": ["TETHER_TOKEN", "TETHER_HOLD"],
        }
        if block:
            h["onFailure"] = "block"
        return h

    def group(event: str, hook: dict[str, Any]) -> list[dict[str, Any]]:
        return [{"matcher": "*", "hooks": [hook]} if event in WITH_MATCHER else {"hooks": [hook]}]

    argv = [python or sys.executable, "-I", str(HOOK_SCRIPT), "--client", "claude-code", "--event", "SessionStart",
            "--url", base.rstrip("/"), "--deadline", "8"]
    if agent:
        argv += ["--agent", agent]
    out: dict[str, Any] = {"PreToolUse": group("PreToolUse", http(wait + 30, True))}
    for event in MONITORED:
        out[event] = group(event, http(10, False))
    out["SessionStart"] = group("SessionStart", {"type": "command", "command": shlex.join(argv), "timeout": 10})
    return out


def install(path: Path, base: str, agent: str | None, *, managed: bool = False, wait: float = DEFAULT_WAIT) -> Change:
    top = {"allowManagedHooksOnly": True} if managed else None
    return install_json(path, hooks(base, agent, wait), top)


def remove(path: Path) -> Change:
    return remove_json(path)


def switch_off_risk(project: Path) -> str | None:
    """Why the hooks of a session in ``project`` can be switched off by the agent itself, or None when only
    managed hooks count (``allowManagedHooksOnly`` in the managed settings)."""
    try:
        managed = json.loads(MANAGED_SETTINGS.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        managed = {}
    if isinstance(managed, dict) and managed.get("allowManagedHooksOnly") is True:
        return None
    return (f"{MANAGED_SETTINGS} does not set allowManagedHooksOnly: an agent can write "
            f'"disableAllHooks": true into {project / ".claude" / "settings.local.json"} and run unchecked')


# -- the supervisor's side: running ``claude -p`` ------------------------------------------------------------


def binary() -> str | None:
    """``$TETHER_CLAUDE`` or ``claude`` on PATH."""
    return os.environ.get("TETHER_CLAUDE") or shutil.which("claude")


#: What Claude Code submits as the prompt of ``claude -p --resume SESSION`` given none: not the user's task.
RESUME_PROMPT = "Continue from where you left off."


def argv(prompt: str | None, *, resume: str | None = None, base: str, agent: str, claude: str | None = None,
         extra: tuple[str, ...] = (), session_id: str | None = None) -> list[str]:
    """``claude -p`` for a headless run: a new session on ``prompt``, or ``--resume`` a deferred one. The
    hooks go in with ``--settings`` too (flag settings), so an agent run by tether is gated even where
    ``tether integrate`` was not run; Claude Code's own permission mode is left at its default, so a
    session whose hooks were switched off still cannot write without a prompt nobody answers."""
    exe = claude or binary() or "claude"
    settings = json.dumps({"hooks": hooks(base, agent)})
    out = [exe, "-p"]
    if resume:
        out += ["--resume", resume]
    elif prompt:
        out.append(prompt)
    if session_id and not resume:  # its id chosen here: the supervisor knows the session before it starts
        out += ["--session-id", session_id]
    return [*out, "--output-format", "json", "--settings", settings, *extra]


def result(stdout: str) -> dict[str, Any] | None:
    """The final JSON object ``claude -p --output-format json`` printed (its last JSON line)."""
    for line in reversed(stdout.strip().splitlines()):
        line = line.strip()
        if line.startswith("{"):
            try:
                data = json.loads(line)
            except ValueError:
                continue
            if isinstance(data, dict) and data.get("type") == "result":
                return data
    return None


def run_cost(stdout_tail: str, session_id: str) -> dict[str, float] | None:
    """Claude Code's own spend for session ``session_id``, by model, as the last ``result`` of its run printed
    it (``modelUsage[MODEL].costUSD``, else ``total_cost_usd`` under ``unknown``): the whole session's so far
    (a resumed session's figures include the runs before), or None when no result of that session is there."""
    for line in reversed(stdout_tail.strip().splitlines()):
        got = result(line)
        if got is None or got.get("session_id") != session_id:
            continue
        by_model = got.get("modelUsage")
        out: dict[str, float] = {}
        if isinstance(by_model, dict):
            for model, u in by_model.items():
                cost = u.get("costUSD") if isinstance(u, dict) else None
                if isinstance(cost, int | float) and not isinstance(cost, bool) and cost >= 0:
                    out[str(model)[:200]] = float(cost)
        total = got.get("total_cost_usd")
        if not out and isinstance(total, int | float) and not isinstance(total, bool) and total >= 0:
            out["unknown"] = float(total)
        return out
    return None
