"""Secrets never reach an event, a log line, a status file, a page or a notification.

Two kinds of secret are replaced: the resolved values of secret references (and an agent's own token),
registered at run time and matched literally, by ``MARKER``; then anything shaped like a credential
(``CREDENTIALS``: tether's own tokens first, then well-known formats, then private keys) by
``[REDACTED:<kind>]``.

The credential patterns are written once, in the subset of POSIX extended regular expressions that
Python's ``re`` reads the same way (no ``\\d``, ``\\s``, ``\\b``, lookarounds or lazy repeats; where a
pattern could match several ways it takes the longest), and applied line by line, kind after kind: so the
agents' log filter (``sed -E``, see ``sed_script``) and this module replace exactly the same text. A
private key spans lines: every line from its BEGIN line to its END line becomes the marker (to the end of
the text when no END comes). Stdlib only: it runs on every write.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterable
from dataclasses import dataclass

MARKER = "[REDACTED:secret]"
MIN_SECRET_LEN = 6

WORD = "(^|[^A-Za-z0-9_])"  # where a token may start (POSIX ERE has no \\b): the character before it, kept
ANYWHERE = "()"
PEM_BEGIN = "-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----"
PEM_END = "-----END [A-Z0-9 ]*PRIVATE KEY-----"
PEM_MARKER = "[REDACTED:private-key]"


@dataclass(frozen=True)
class Credential:
    """One credential format. ``ere`` is a POSIX ERE whose group 1 is kept (what precedes the token); the
    rest of the match becomes the marker, followed by ``keep``. Every match contains one of ``hints``, so
    text holding none of them is never searched."""

    kind: str
    ere: str
    hints: tuple[str, ...]
    keep: str = ""

    @property
    def marker(self) -> str:
        return f"[REDACTED:{self.kind}]"


URLSAFE = "[A-Za-z0-9_-]"

#: In the order they are applied (a later pattern never sees what an earlier one replaced).
CREDENTIALS: tuple[Credential, ...] = (
    # tether's own (auth.create): tt_ + the role's first two letters + 8 hex + token_urlsafe(32)
    Credential("tether", ANYWHERE + f"tt_(ag|ap|ad)_[0-9a-f]{{8}}_{URLSAFE}{{20,}}", ("tt_",)),
    Credential("github", WORD + "(gh[pousr]_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{22,})",
               ("ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_")),
    Credential("anthropic", WORD + f"sk-ant-{URLSAFE}{{20,}}", ("sk-ant-",)),
    Credential("openai", WORD + f"sk-{URLSAFE}{{20,}}", ("sk-",)),  # also sk-proj-, sk-svcacct-, sk-admin-
    Credential("aws-key", WORD + "(AKIA|ASIA|ABIA|ACCA)[A-Z0-9]{16}", ("AKIA", "ASIA", "ABIA", "ACCA")),
    Credential("aws-secret", ANYWHERE + "[Aa][Ww][Ss]_(secret_access_key|SECRET_ACCESS_KEY)(\\\\?[\"'])?[ \t]*[:=]"
               "[ \t]*(\\\\?[\"'])?[A-Za-z0-9/+=]{40}", ("secret_access_key", "SECRET_ACCESS_KEY")),  # \\" in JSON
    Credential("slack", WORD + "(xox[abposr]-[A-Za-z0-9-]{10,}|https://hooks\\.slack\\.com/services/[A-Za-z0-9/_-]+)",
               ("xox", "hooks.slack.com")),
    Credential("google", WORD + f"AIza{URLSAFE}{{35}}", ("AIza",)),
    Credential("jwt", WORD + f"eyJ{URLSAFE}{{10,}}\\.ey{URLSAFE}{{10,}}\\.{URLSAFE}*", ("eyJ",)),
    Credential("bearer", WORD + "[Bb](earer|EARER)([ \t]|\\\\t)+[A-Za-z0-9._~+/=-]{16,}", ("earer", "EARER")),
    Credential("url-password", "(://)[^/ \t:@\"']+:[^/ \t@\"']+@", ("@",), keep="@"),
)
#: A private key, after the kinds above: a whole block on one line (as inside JSON), else its BEGIN line
#: from BEGIN on to its END line up to the last END on it; what follows goes through every pattern again.
PRIVATE_KEY = Credential("private-key", ANYWHERE + PEM_BEGIN, ("PRIVATE KEY",))

SED_DELIMITER = "#"  # in no pattern (a test checks)

_COMPILED = tuple((c.hints, re.compile(c.ere), f"\\g<1>{c.marker}{c.keep}") for c in CREDENTIALS)
_ANY_HINT = re.compile("|".join(re.escape(h) for c in (*CREDENTIALS, PRIVATE_KEY) for h in c.hints))
_BEGIN, _TO_END = re.compile(PEM_BEGIN), re.compile(f".*{PEM_END}")
_ONE_LINE_KEY = re.compile(f"{PEM_BEGIN}(-?[^-])*{PEM_END}")  # a block on one line (inside JSON)


def _line(line: str) -> tuple[str, bool]:
    """One line through every pattern; True when it opens a private key's block (BEGIN, no END after)."""
    for hints, pattern, replacement in _COMPILED:
        if any(h in line for h in hints):
            line = pattern.sub(replacement, line)
    if "PRIVATE KEY" not in line or _BEGIN.search(line) is None:
        return line, False
    line = _ONE_LINE_KEY.sub(PEM_MARKER, line)
    begin = _BEGIN.search(line)
    return (line, False) if begin is None else (line[:begin.start()] + PEM_MARKER, True)


def redact_credentials(text: str) -> str:
    """``text`` with everything shaped like a credential replaced, line by line as the log filter does."""
    if _ANY_HINT.search(text) is None:  # most text: one scan, no pattern runs
        return text
    out, in_key = [], False
    for line in text.split("\n"):
        if in_key:
            end = _TO_END.match(line)
            if end is None:
                out.append(PEM_MARKER)
                continue
            line = PEM_MARKER + line[end.end():]
        line, in_key = _line(line)
        out.append(line)
    return "\n".join(out)


def sed_script(first: bytes = b"") -> bytes:
    """The same as a ``sed -E`` script (run under ``LC_ALL=C``), after ``first`` (the agent's literal
    values): one ``s`` per kind in ``CREDENTIALS`` order, then the private keys. The lines of a key's block
    are printed as they are read; the rest of its END line goes through the whole script again."""
    d = SED_DELIMITER
    rules = [f"s{d}{c.ere}{d}\\1{c.marker}{c.keep}{d}g" for c in CREDENTIALS]
    rules += [
        f"/{PEM_BEGIN}/{{",
        f"s/{PEM_BEGIN}(-?[^-])*{PEM_END}/{PEM_MARKER}/g",
        f"/{PEM_BEGIN}/!b",
        f"s/{PEM_BEGIN}.*/{PEM_MARKER}/",
        ":key",
        "n",
        f"/{PEM_END}/!{{",
        f"s/.*/{PEM_MARKER}/",
        "bkey",
        "}",
        f"s/.*{PEM_END}/{PEM_MARKER}/",
        "btop",
        "}",
    ]
    return b":top\n" + first + "\n".join(rules).encode() + b"\n"


_lock = threading.Lock()
_values: frozenset[str] = frozenset()
_values_re: re.Pattern[str] | None = None


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


def redact(text: str) -> str:
    """``text`` with every registered value replaced by ``MARKER``, then every credential by its kind's."""
    values_re = _values_re
    if values_re is not None:
        text = values_re.sub(MARKER, text)
    return redact_credentials(text)


def redact_json(text: str) -> str:
    """A JSON document, redacted, and still JSON. Redacting the text as a whole is fastest, but a private
    key's header with no END runs to the end of its line, past the string's closing quote: then each
    string is redacted on its own (an event an agent shaped so must neither fail its write nor the others'
    written with it)."""
    out = redact(text)
    if out != text:
        try:
            json.loads(out)
        except ValueError:
            return json.dumps(redact_obj(json.loads(text)))
    return out


def redact_obj(value: object) -> object:
    """A JSON-able value with every string (keys too) redacted."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {redact(k) if isinstance(k, str) else k: redact_obj(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact_obj(v) for v in value]
    return value
