"""Agent tool calls: Claude Code (Bash, Read, Write, Edit, WebFetch, mcp__*, ...) and Codex
(exec_command, shell, apply_patch, ...)."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any, Final

from tether.classify import recover
from tether.classify.commands import dispatch
from tether.classify.db import sql_effects
from tether.classify.files.patches import apply_patch_effects
from tether.classify.net import url_effects
from tether.classify.paths import is_claude_settings, normalize
from tether.classify.scan import Cmd, Scan
from tether.classify.shell import walk_text

ToolHandler = Callable[[Scan, str, Mapping[str, Any]], None]
_HOOKS_OFF: Final = "disableallhooks"


def _str(inp: Mapping[str, Any], *keys: str) -> str | None:
    for k in keys:
        v = inp.get(k)
        if isinstance(v, str):
            return v
    return None


def hooks_check(scan: Scan, text: str, where: str) -> None:
    """Writing ``disableAllHooks`` anywhere by any means switches the agent's hooks off."""
    if ("ook" in text or "OOK" in text) and _HOOKS_OFF in text.lower() and scan.writes():
        scan.add("tether.control", f"{where} writes disableAllHooks", where)


def _shell_text(scan: Scan, name: str, inp: Mapping[str, Any]) -> None:
    cmd = _str(inp, "command", "cmd")
    if cmd is None:
        raw = inp.get("command", inp.get("cmd"))
        if isinstance(raw, (list, tuple)) and raw and all(isinstance(a, str) for a in raw):
            _argv(scan, name, inp)
            return
        scan.fail(f"{name} without a command")
        return
    _workdir(scan, inp)
    walk_text(scan, cmd)
    hooks_check(scan, cmd, cmd[:80])


def _workdir(scan: Scan, inp: Mapping[str, Any]) -> None:
    wd = _str(inp, "workdir", "cwd", "working_directory")
    if wd:
        scan.cwd = normalize(wd, scan.cwd, scan.home)


def _argv(scan: Scan, name: str, inp: Mapping[str, Any]) -> None:
    raw = inp.get("command", inp.get("cmd"))
    if isinstance(raw, str):
        _shell_text(scan, name, inp)
        return
    if not isinstance(raw, (list, tuple)) or not raw or not all(isinstance(a, str) for a in raw):
        scan.fail(f"{name} without a command")
        return
    _workdir(scan, inp)
    argv = [a.replace("\x00", "") for a in raw]
    text = " ".join(argv)
    dispatch(scan, Cmd(argv, text if len(text) < 240 else text[:239] + "…"))
    hooks_check(scan, text, text[:80])


def _read(scan: Scan, name: str, inp: Mapping[str, Any]) -> None:
    path = _str(inp, "file_path", "notebook_path", "path")
    if name in ("Glob", "Grep", "LS", "list_dir", "grep_files") and not path:
        path = scan.cwd
    if not path:
        scan.fail(f"{name} without a path")
        return
    scan.path(path, "read", name)
    pattern = _str(inp, "pattern") if name == "Glob" else _str(inp, "glob")
    if pattern and (pattern.startswith(("/", "~")) or ".." in pattern):
        scan.path(pattern if pattern.startswith(("/", "~")) else path.rstrip("/") + "/" + pattern, "read", name)
    scan.add("repo.read", f"{name} reads", name)


def _write(scan: Scan, name: str, inp: Mapping[str, Any]) -> None:
    path = _str(inp, "file_path", "notebook_path", "path")
    if not path:
        scan.fail(f"{name} without a file path")
        return
    _rewrites(scan, name, inp, scan.path(path, "write", name))
    parts: list[str] = []
    for key in ("content", "new_string", "new_source", "old_string"):
        v = inp.get(key)
        if isinstance(v, str):
            parts.append(v)
    edits = inp.get("edits")
    if isinstance(edits, (list, tuple)):
        for e in edits:
            if isinstance(e, Mapping):
                for key in ("new_string", "old_string"):
                    v = e.get(key)
                    if isinstance(v, str):
                        parts.append(v)
    body = "\n".join(parts)
    # Claude Code reads settings from .claude/, ~/.claude.json, managed-settings.json and any JSON
    # file given with --settings: a JSON file that gains disableAllHooks is treated as one.
    if _HOOKS_OFF in body.lower() and (is_claude_settings(path) or path.lower().endswith((".json", ".jsonc"))):
        scan.add("tether.control", f"{name} writes disableAllHooks into {path}", name)
    scan.add("pr.draft", f"{name} edits a file", name)


def _rewrites(scan: Scan, name: str, inp: Mapping[str, Any], p: str | None) -> None:
    """What a Write or an Edit takes away from the file there now, judged as destruction is (``recover``)."""
    if name == "Write":
        content = inp.get("content")
        recover.rewrite(scan, p, f"{name} overwrites", name, content if isinstance(content, str) else "")
        return
    if name not in ("Edit", "MultiEdit"):
        return
    raw = inp.get("edits") if name == "MultiEdit" else [inp]
    edits = [
        (e["old_string"], e["new_string"] if isinstance(e.get("new_string"), str) else "", bool(e.get("replace_all")))
        for e in (raw if isinstance(raw, (list, tuple)) else ())
        if isinstance(e, Mapping) and isinstance(e.get("old_string"), str)
    ]
    if edits:
        recover.rewrite(scan, p, f"{name} replaces most of", name, edits=edits)


def _web_fetch(scan: Scan, name: str, inp: Mapping[str, Any]) -> None:
    url = _str(inp, "url")
    if not url:
        scan.fail(f"{name} without a URL")
        return
    url_effects(scan, url, "GET", name, name)


def _read_only(reason: str) -> ToolHandler:
    def handle(scan: Scan, name: str, inp: Mapping[str, Any]) -> None:
        scan.add("repo.read", reason, name)

    return handle


def _unknown(reason: str) -> ToolHandler:
    def handle(scan: Scan, name: str, inp: Mapping[str, Any]) -> None:
        scan.add("unknown", reason, name)

    return handle


def _mcp_resource(scan: Scan, name: str, inp: Mapping[str, Any]) -> None:
    server = _str(inp, "server")
    if server:
        scan.resource("account", "mcp:" + server)
    scan.add("repo.read", f"{name} reads MCP resources", name)


def _apply_patch(scan: Scan, name: str, inp: Mapping[str, Any]) -> None:
    patch = _str(inp, "input", "patch", "content")
    if patch is None:
        scan.fail(f"{name} without a patch")
        return
    _workdir(scan, inp)
    apply_patch_effects(scan, patch, name)


def _slash(scan: Scan, name: str, inp: Mapping[str, Any]) -> None:
    cmd = (_str(inp, "command") or "").strip()
    if cmd.split(" ", 1)[0] in ("/help", "/status", "/cost", "/context", "/todos", "/doctor", "/memory"):
        scan.add("repo.read", f"slash command {cmd.split(' ', 1)[0]}", name)
    elif cmd.split(" ", 1)[0] in ("/hooks", "/permissions", "/config", "/settings", "/mcp", "/allowed-tools"):
        scan.add("tether.control", f"slash command {cmd.split(' ', 1)[0]} changes agent settings", name)
    else:
        scan.add("unknown", f"slash command {cmd.split(' ', 1)[0] or '?'}", name)


TOOLS: Final[dict[str, ToolHandler]] = {
    "Bash": _shell_text,
    "BashTool": _shell_text,
    "Read": _read,
    "NotebookRead": _read,
    "Glob": _read,
    "Grep": _read,
    "LS": _read,
    "Write": _write,
    "Edit": _write,
    "MultiEdit": _write,
    "NotebookEdit": _write,
    "WebFetch": _web_fetch,
    "WebSearch": _read_only("WebSearch searches the web"),
    "Task": _read_only("Task starts a sub-agent"),
    "Agent": _read_only("Agent starts a sub-agent"),
    "TodoWrite": _read_only("TodoWrite updates the to-do list"),
    "TodoRead": _read_only("TodoRead reads the to-do list"),
    "ExitPlanMode": _read_only("ExitPlanMode presents a plan"),
    "EnterPlanMode": _read_only("EnterPlanMode"),
    "BashOutput": _read_only("BashOutput reads a background shell's output"),
    "KillBash": _read_only("KillBash stops the agent's own background shell"),
    "KillShell": _read_only("KillShell stops the agent's own background shell"),
    "AskUserQuestion": _read_only("AskUserQuestion asks the user"),
    "Skill": _read_only("Skill loads instructions"),
    "ListMcpResourcesTool": _mcp_resource,
    "ReadMcpResourceTool": _mcp_resource,
    "SlashCommand": _slash,
    # Codex
    "exec_command": _argv,
    "shell": _argv,
    "local_shell": _argv,
    "container.exec": _argv,
    "unified_exec": _argv,
    "apply_patch": _apply_patch,
    "read_file": _read,
    "list_dir": _read,
    "grep_files": _read,
    "view_image": _read,
    "web_search": _read_only("web_search searches the web"),
    "update_plan": _read_only("update_plan updates the plan"),
    "write_stdin": _unknown("write_stdin types into a running command"),
}

_MCP_READ: Final = frozenset(
    {
        "get",
        "list",
        "search",
        "read",
        "fetch",
        "find",
        "describe",
        "view",
        "show",
        "lookup",
        "browse",
        "query",
        "snapshot",
        "screenshot",
        "count",
        "check",
        "status",
        "resolve",
        "retrieve",
        "info",
        "explain",
        "select",
        "download",
        "inspect",
        "preview",
        "analyze",
        "summarize",
        "diff",
        "whoami",
        "navigate",
        "take",
        "wait",
        "console",
        "network",
        "evaluate_readonly",
    }
)
_MCP_SEND: Final = frozenset(
    {
        "send",
        "post",
        "reply",
        "comment",
        "publish",
        "notify",
        "message",
        "email",
        "mail",
        "chat",
        "tweet",
        "dm",
        "broadcast",
        "invite",
        "share",
        "react",
        "forward",
    }
)
_MCP_DELETE: Final = frozenset({"delete", "remove", "drop", "destroy", "purge", "truncate", "erase", "wipe"})
_MCP_SPLIT: Final = re.compile(r"[_\-.]+|(?<=[a-z0-9])(?=[A-Z])")


def _mcp(scan: Scan, name: str, inp: Mapping[str, Any]) -> None:
    parts = name.split("__")
    server = parts[1] if len(parts) > 2 else ""
    tool = "__".join(parts[2:]) if len(parts) > 2 else (parts[1] if len(parts) > 1 else "")
    if server:
        scan.resource("account", "mcp:" + server)
    words = [w.lower() for w in _MCP_SPLIT.split(tool) if w]
    for key in ("url", "uri", "href"):
        v = inp.get(key)
        if isinstance(v, str) and "://" in v:
            u = scan.parse_url(v)
            if u:
                scan.url(u, name)
    runs_sql = any(w in ("query", "sql", "execute", "exec", "run") for w in words)
    sql = inp.get("sql", inp.get("query")) if runs_sql else None
    if isinstance(sql, str) and any(
        k in sql.upper()
        for k in ("SELECT", "DELETE", "DROP", "UPDATE", "INSERT", "TRUNCATE", "ALTER", "CREATE", "GRANT")
    ):
        sql_effects(scan, sql, f"MCP {server} {tool}", name)
        return
    verb = words[0] if words else ""
    if verb in _MCP_DELETE or (words and any(w in _MCP_DELETE for w in words[:2])):
        scan.add("data.delete", f"MCP tool {tool} deletes", name)
    elif (
        verb in _MCP_SEND
        or "create_message" in tool.lower()
        or (words[-1:] and words[-1] in ("message", "comment", "email"))
    ):
        scan.add("message.external", f"MCP tool {tool} sends a message", name)
    elif verb in _MCP_READ or (verb == "browser" and len(words) > 1 and words[1] in _MCP_READ):
        scan.add("repo.read", f"MCP tool {tool} reads", name)
    else:
        scan.add("unknown", f"MCP tool {tool or '?'} on {server or '?'}", name)


def classify_tool_into(scan: Scan, tool_name: str, tool_input: Mapping[str, Any]) -> None:
    handler = TOOLS.get(tool_name)
    if handler is not None:
        handler(scan, tool_name, tool_input)
    elif tool_name.startswith("mcp__"):
        _mcp(scan, tool_name, tool_input)
    else:
        scan.add("unknown", f"unknown tool {tool_name[:60]}", tool_name[:60])
