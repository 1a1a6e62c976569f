"""The four entry points. Each is total: any internal error gives ``unknown`` with ``parsed=False``.

Such an error is a classifier bug: it is logged with its traceback (the input named by a short sha256,
never its text) and counted (``errors_total``, shown in /metrics; the test suite fails on it)."""

from __future__ import annotations

import hashlib
import logging
import os.path
import threading
from collections.abc import Mapping
from typing import Any, Final

from tether.classify.commands import dispatch
from tether.classify.model import Classification, Context, make_action, make_classification
from tether.classify.net import url_effects
from tether.classify.recover import judge
from tether.classify.scan import Scan
from tether.classify.shell import walk_text
from tether.classify.tools import classify_tool_into, hooks_check

_PATH_OPS: Final = frozenset({"read", "write", "delete", "exec"})
_DEFAULT: Final = Context()
_log: Final = logging.getLogger("tether.classify")
_lock: Final = threading.Lock()
_errors = 0


def errors_total() -> int:
    """How many classifier errors this process has had (each answered ``unknown``)."""
    return _errors


def input_hash(*parts: object) -> str:
    """A short name for an input in logs and incidents: the first 12 hex digits of its sha256."""
    text = "\x00".join(p if isinstance(p, str) else repr(p) for p in parts)
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:12]


def _failure(reason: str) -> Classification:
    return make_classification((make_action("unknown", reason, ""),), (), False)


def _error(entry: str, exc: Exception, *parts: object) -> Classification:
    global _errors
    with _lock:
        _errors += 1
    try:
        name = input_hash(*parts)
    except Exception:  # an input whose repr fails is still answered
        name = "?"
    _log.error("classifier error in %s on input sha256:%s", entry, name, exc_info=exc)
    return _failure(f"classifier error: {type(exc).__name__}")


def _scan(ctx: Context) -> Scan:
    return Scan(ctx, walk_text, dispatch)


def classify_shell(command: str, ctx: Context = _DEFAULT) -> Classification:
    """Classify a shell command line (every simple command inside it)."""
    try:
        if not isinstance(command, str):
            return _failure("command is not text")
        scan = Scan(ctx, walk_text, dispatch)
        text = command
        if "\x00" in text:
            # A shell never sees a NUL byte; it also marks run-time text internally.
            scan.fail("command contains a NUL byte", text[:80].replace("\x00", " "))
            text = text.replace("\x00", " ")
        walk_text(scan, text)
        if "ook" in text or "OOK" in text:
            hooks_check(scan, text, text[:80])
        return scan.finish()
    except Exception as exc:
        return _error("classify_shell", exc, command)


def classify_tool(tool_name: str, tool_input: Mapping[str, Any], ctx: Context = _DEFAULT) -> Classification:
    """Classify an agent tool call (Claude Code or Codex names; ``mcp__server__tool``)."""
    try:
        if not isinstance(tool_name, str):
            return _failure("tool name is not text")
        if not isinstance(tool_input, Mapping):
            return _failure("tool input is not a mapping")
        scan = _scan(ctx)
        classify_tool_into(scan, tool_name, tool_input)
        return scan.finish()
    except Exception as exc:
        return _error("classify_tool", exc, tool_name, tool_input)


def classify_path(path: str, op: str, ctx: Context = _DEFAULT) -> Classification:
    """Classify reading, writing, deleting or executing one path."""
    try:
        if not isinstance(path, str) or not path or op not in _PATH_OPS:
            return _failure(f"cannot classify {op!r} of {path!r}"[:120])
        scan = _scan(ctx)
        p = scan.path(path.replace("\x00", ""), op, path[:120])
        if op == "read":
            scan.add("repo.read", "reads a file", path[:120])
        elif op == "exec":
            scan.add("unknown", "executes a file", path[:120])
        else:
            if op == "delete":  # judged by what can be undone, as rm is
                judge(scan, p, "deletes", path[:120], p is not None and os.path.isdir(p), "pr.draft")
            scan.add("pr.draft", f"{op}s a file", path[:120])
        return scan.finish()
    except Exception as exc:
        return _error("classify_path", exc, path, op)


def classify_url(url: str, method: str = "GET", ctx: Context = _DEFAULT) -> Classification:
    """Classify one request to ``url`` with ``method``."""
    try:
        if not isinstance(url, str) or not isinstance(method, str):
            return _failure("url or method is not text")
        scan = _scan(ctx)
        url_effects(scan, url.replace("\x00", ""), method, "request", url[:120])
        return scan.finish()
    except Exception as exc:
        return _error("classify_url", exc, url, method)
