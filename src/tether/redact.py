"""Secrets never reach an event, a log line, a status file, a page or a notification.

Known token formats are matched by one compiled pattern; the resolved values of an agent's secret
references are registered at run time and replaced too. Stdlib only: it runs on every write.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterable

_PATTERNS: dict[str, str] = {
    "private-key": r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----.*?(?:-----END [A-Z0-9 ]*PRIVATE KEY-----|\Z)",
    "aws-key": r"\b(?:AKIA|ASIA|ABIA|ACCA)[0-9A-Z]{16}\b",
    "aws-secret": r"(?i:aws_secret_access_key)[\"']?\s*[:=]\s*[\"']?[A-Za-z0-9/+=]{40}",
    "github": r"\b(?:gh[pousr]_[A-Za-z0-9]{36,255}|github_pat_[A-Za-z0-9_]{22,255})\b",
    "anthropic": r"\bsk-ant-[A-Za-z0-9_\-]{20,}",
    "openai": r"\bsk-(?!ant-)(?:proj-|svcacct-|admin-)?[A-Za-z0-9_\-]{20,}",
    "slack": r"\bxox[abposr]-[A-Za-z0-9\-]{10,}|https://hooks\.slack\.com/services/[A-Za-z0-9/_\-]+",
    "bearer": r"(?i:bearer)\s+[A-Za-z0-9._\-]{16,}",
    "url-password": r"(?<=://)[^/\s:@\"']+:[^/\s@\"']+(?=@)",
}
_KNOWN = re.compile("|".join(f"(?P<{k.replace('-', '_')}>{v})" for k, v in _PATTERNS.items()), re.DOTALL)


def _maybe_secret(t: str) -> bool:
    """A cheap pre-check (plain substring tests, ~0.5 µs): most text has none of these markers, and
    then the big pattern never runs."""
    return (
        "sk-" in t or "gh" in t or "github_pat_" in t or "xox" in t
        or "AKIA" in t or "ASIA" in t or "ABIA" in t or "ACCA" in t
        or "@" in t or "PRIVATE KEY" in t or "ecret_access" in t or "ECRET_ACCESS" in t or "earer" in t
        or "EARER" in t or "hooks.slack" in t
    )


_lock = threading.Lock()
_values: frozenset[str] = frozenset()
_values_re: re.Pattern[str] | None = None

MIN_SECRET_LEN = 6


MARKER = "[REDACTED:secret]"


def forms(values: Iterable[str]) -> set[str]:
    """What counts as a secret value in text: each value of at least ``MIN_SECRET_LEN`` characters, and
    the same as it appears inside a JSON string."""
    got = {v for v in values if v and len(v) >= MIN_SECRET_LEN}
    return got | {json.dumps(v)[1:-1] for v in got}


def register(*values: str) -> None:
    """Treat these literal values (resolved secrets) as secrets from now on, in this process."""
    global _values, _values_re
    new = forms(values)
    if new <= _values:  # every agent start registers its secrets again: no recompile for nothing new
        return
    with _lock:
        _values = _values | frozenset(new)
        ordered = sorted(_values, key=len, reverse=True)
        _values_re = re.compile("|".join(re.escape(v) for v in ordered)) if ordered else None


def _replace(match: re.Match[str]) -> str:
    return f"[REDACTED:{(match.lastgroup or 'secret').replace('_', '-')}]"


def redact(text: str) -> str:
    """``text`` with every known secret replaced by ``[REDACTED:<kind>]``."""
    values_re = _values_re
    if values_re is not None:
        text = values_re.sub(MARKER, text)
    if _maybe_secret(text):
        text = _KNOWN.sub(_replace, text)
    return text


def redact_obj(value: object) -> object:
    """A JSON-able value with every string redacted."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {k: redact_obj(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact_obj(v) for v in value]
    return value
