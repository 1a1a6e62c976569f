"""Token usage and cost per model from an agent CLI's transcript (JSONL), read incrementally.

Claude Code writes one line per content block of an assistant message, each repeating the message's
``message.usage`` (input, output, cache creation and cache read tokens): a message counts once, keyed by
``message.id`` and ``requestId``. Codex writes ``event_msg`` lines of type ``token_count`` whose
``last_token_usage`` is the usage of one model call (``input_tokens`` includes ``cached_input_tokens``), and
``turn_context`` lines naming the model.

The path comes from the agent (the hook event's ``transcript_path``), so it is read only when it is what it
claims to be (``Place``, ``open_checked``): a regular file, not a link, under that CLI's transcript root for
the agent, owned by the agent's user. Reading is streamed from the cursor, at most ``PASS_MAX`` bytes a pass
and ``LINE_MAX`` a line (a longer line is skipped); the cursor says where the next pass goes on.

Prices come from ``prices.json`` beside this file (USD per million tokens by model id prefix).
"""

from __future__ import annotations

import errno
import json
import os
import pwd
import stat
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tether.runbook.model import Agent

PRICES = Path(__file__).with_name("prices.json")
SEEN_KEPT = 500  # message keys remembered per transcript, for lines that repeat across reads
CHUNK = 1 << 20  # bytes read at a time
PASS_MAX = 16 << 20  # bytes read in one pass; the next pass goes on from the cursor
LINE_MAX = 1 << 20  # a longer line is skipped whole
PATH_MAX = 4096
#: Where each CLI keeps its transcripts: (the variable naming its config folder, the folder under $HOME,
#: the transcripts' folder inside it).
ROOTS = {"claude-code": ("CLAUDE_CONFIG_DIR", ".claude", "projects"), "codex": ("CODEX_HOME", ".codex", "sessions")}


@cache
def prices() -> dict[str, dict[str, float]]:
    data: dict[str, dict[str, float]] = json.loads(PRICES.read_text(encoding="utf-8"))["models"]
    return data


def price_for(model: str) -> dict[str, float] | None:
    best = ""
    for key in prices():
        if model.startswith(key) and len(key) > len(best):
            best = key
    return prices()[best] if best else None


@dataclass
class Usage:
    model: str
    input_tokens: int = 0  # not cached (Anthropic: input_tokens; OpenAI: input_tokens - cached_input_tokens)
    output_tokens: int = 0
    cache_creation_input_tokens: int = 0
    cache_read_input_tokens: int = 0
    calls: int = 0

    @property
    def cost_usd(self) -> float | None:
        p = price_for(self.model)
        if p is None:
            return None
        total = (self.input_tokens * p["input"] + self.output_tokens * p["output"]
                 + self.cache_creation_input_tokens * p["cache_write"] + self.cache_read_input_tokens * p["cache_read"])
        return round(total / 1e6, 8)

    @property
    def tokens(self) -> int:
        return self.input_tokens + self.output_tokens + self.cache_creation_input_tokens + self.cache_read_input_tokens

    def as_event(self) -> dict[str, Any]:
        # the usage table's names for the cache figures (``store/projections.py``), beside Anthropic's own
        return {**asdict(self), "tokens": self.tokens, "cost_usd": self.cost_usd,
                "cache_read_tokens": self.cache_read_input_tokens,
                "cache_write_tokens": self.cache_creation_input_tokens}


@dataclass
class Cursor:
    """Where reading a transcript stopped: a byte offset (at a line boundary, or inside a line too long to
    read, with ``skip``), recent message keys, the model. ``behind``: bytes the last pass left for the next."""

    offset: int = 0
    seen: list[str] = field(default_factory=list)
    model: str = ""
    skip: bool = False
    behind: int = 0

    @classmethod
    def of(cls, data: Any) -> Cursor:
        if not isinstance(data, dict):
            return cls()
        offset = data.get("offset", 0)
        return cls(offset if isinstance(offset, int) and offset > 0 else 0,
                   [str(s) for s in data.get("seen", [])][-SEEN_KEPT:], str(data.get("model", ""))[:200],
                   data.get("skip") is True)

    def saved(self) -> dict[str, Any]:
        return {"offset": self.offset, "seen": self.seen, "model": self.model, "skip": self.skip}


# -- which files may be read ----------------------------------------------------------------------------------


class Refused(Exception):
    """A transcript path that is not what it claims to be; the message says why."""


@dataclass(frozen=True)
class Place:
    """Where an agent's transcripts of one CLI may be, and whose they must be."""

    roots: tuple[str, ...]
    uid: int
    hint: str = ""  # how to name another folder


def place(client: str, spec: Agent | None, wall_home: str | None = None) -> Place:
    """The transcript roots of ``client`` for the agent ``spec`` (None: one run as the daemon's user with the
    daemon's environment): the config folder its environment names, else the one in its home (its ``run_as``
    user's home, else ``HOME``); and the uid that must own them (``run_as``, else the daemon's). An agent
    inside the wall has the home the wall gave it (``wall_home``) and runs as the wall's user."""
    var, default, sub = ROOTS.get(client, ROOTS["claude-code"])
    env = spec.env if spec is not None else {}
    run_as = spec.run_as if spec is not None else None
    if wall_home is not None and spec is not None:
        from tether.wall import users  # local: tether.wall +220 ms for this module's readers (signals.price_for)

        try:
            who = users.lookup(run_as or users.DEFAULT_USER) if os.geteuid() == 0 else users.lookup_uid(os.geteuid())
        except users.UserError as exc:
            return Place((), -1, str(exc))
        dirs = [env.get(var), wall_home + "/" + default]
        roots = tuple(dict.fromkeys(os.path.join(d, sub) for d in dirs if d and os.path.isabs(d)))
        return Place(roots, who.uid, f"if its transcripts are elsewhere, set {var} in the agent's env: in the runbook")
    if run_as:
        try:
            pw = pwd.getpwnam(run_as)
        except KeyError:
            return Place((), -1, f"run_as user {run_as!r} does not exist")
        uid, home = pw.pw_uid, pw.pw_dir
    else:
        uid, home = os.geteuid(), env.get("HOME") or os.environ.get("HOME") or os.path.expanduser("~")
    dirs = [env.get(var), None if run_as else os.environ.get(var), os.path.join(home, default)]
    roots = tuple(dict.fromkeys(os.path.join(os.path.expanduser(d), sub) for d in dirs if d and os.path.isabs(
        os.path.expanduser(d))))
    return Place(roots, uid, f"if its transcripts are elsewhere, set {var} in the agent's env: in the runbook")


def inside(path: str, roots: Iterable[str]) -> bool:
    return any(os.path.commonpath([path, r]) == r for r in roots)


def _held_path(fd: int) -> str | None:
    try:
        return os.readlink(f"/proc/self/fd/{fd}")
    except OSError:  # no /proc (macOS): the resolved name, checked against the open file below
        return None


def open_checked(path: str, where: Place | None) -> int | None:
    """An fd open on ``path`` for reading, or None when there is no such file (yet). Raises ``Refused`` for
    anything but a regular file of ``where.uid`` under one of ``where.roots`` (None: any folder, the daemon's
    uid). Opened without following a final link and without blocking (a FIFO or device is never read)."""
    if not path or len(path) > PATH_MAX or "\0" in path or not os.path.isabs(path):
        raise Refused("not an absolute file path")
    head, name = os.path.split(path)
    real = os.path.join(os.path.realpath(head), name)
    roots = [os.path.realpath(r) for r in where.roots] if where is not None else [os.path.dirname(real)]
    uid = where.uid if where is not None else os.geteuid()
    if not inside(real, roots):
        hint = f"; {where.hint}" if where is not None and where.hint else ""
        raise Refused(f"{path} is outside the transcript folder ({', '.join(where.roots if where else roots)}){hint}")
    try:
        st = os.lstat(real)
    except FileNotFoundError:
        return None
    except OSError as err:
        raise Refused(f"{path}: {err.strerror}") from None
    if stat.S_ISLNK(st.st_mode):
        raise Refused(f"{path} is a symbolic link")
    if not stat.S_ISREG(st.st_mode):  # refused before it is opened: a device may act on open
        raise Refused(f"{path} is not a regular file")
    try:
        fd = os.open(real, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NOCTTY)
    except FileNotFoundError:
        return None
    except OSError as err:
        raise Refused(f"{path} is a symbolic link" if err.errno == errno.ELOOP else f"{path}: {err.strerror}") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise Refused(f"{path} is not a regular file")
        if st.st_uid != uid:
            raise Refused(f"{path} is owned by uid {st.st_uid}, not the agent's user (uid {uid})")
        held = _held_path(fd)
        if held is None:
            now = os.stat(os.path.realpath(real))
            held = os.path.realpath(real) if (now.st_dev, now.st_ino) == (st.st_dev, st.st_ino) else ""
        if not inside(held, roots):
            raise Refused(f"{path} resolves to {held or 'another file'}, outside the transcript folder")
    except BaseException:
        os.close(fd)
        raise
    return fd


# -- reading ------------------------------------------------------------------------------------------------


def _lines(fd: int, cursor: Cursor) -> Iterator[bytes]:
    """The complete lines after ``cursor.offset``, at most ``PASS_MAX`` bytes of them; the cursor moves past
    each line yielded and past a line longer than ``LINE_MAX`` (skipped). A partly written last line waits."""
    pos = cursor.offset
    stop = pos + PASS_MAX
    size = os.fstat(fd).st_size
    line = bytearray()
    while pos < stop:
        chunk = os.pread(fd, min(CHUNK, stop - pos), pos)
        if not chunk:
            break
        base, pos, start = pos, pos + len(chunk), 0
        while (nl := chunk.find(b"\n", start)) >= 0:
            if not cursor.skip:
                line += chunk[start:nl]
                out = bytes(line) if len(line) <= LINE_MAX else None
            else:
                out = None
            line.clear()
            cursor.offset, cursor.skip, start = base + nl + 1, False, nl + 1
            if out:
                yield out
        if not cursor.skip:
            line += chunk[start:]
            if len(line) > LINE_MAX:
                line.clear()
                cursor.skip = True
        if cursor.skip:
            cursor.offset = pos
    cursor.behind = max(0, size - pos) if pos >= stop else 0


def read_new(path: str | Path, cursor: Cursor, where: Place | None = None) -> Iterator[dict[str, Any]]:
    """The JSON objects on the complete lines after ``cursor`` (which moves on). Raises ``Refused`` for a
    path that is not a transcript (see ``open_checked``)."""
    fd = open_checked(str(path), where)
    if fd is None:
        return
    try:
        for raw in _lines(fd, cursor):
            try:
                obj = json.loads(raw)
            except ValueError:
                continue
            if isinstance(obj, dict):
                yield obj
    finally:
        os.close(fd)


def _int(v: Any) -> int:
    return int(v) if isinstance(v, (int, float)) and v > 0 else 0


def claude_usage(lines: Iterable[dict[str, Any]], cursor: Cursor) -> dict[str, Usage]:
    seen = set(cursor.seen)
    got: dict[str, Usage] = {}
    for entry in lines:
        msg = entry.get("message")
        if entry.get("type") != "assistant" or not isinstance(msg, dict) or not isinstance(msg.get("usage"), dict):
            continue
        key = f"{msg.get('id', '')}:{entry.get('requestId', '')}"[:300]
        if key == ":" or key in seen:
            continue
        seen.add(key)
        cursor.seen.append(key)
        u = msg["usage"]
        model = str(msg.get("model") or "unknown")[:200]
        if model == "<synthetic>":
            continue
        acc = got.setdefault(model, Usage(model))
        acc.input_tokens += _int(u.get("input_tokens"))
        acc.output_tokens += _int(u.get("output_tokens"))
        acc.cache_creation_input_tokens += _int(u.get("cache_creation_input_tokens"))
        acc.cache_read_input_tokens += _int(u.get("cache_read_input_tokens"))
        acc.calls += 1
        del cursor.seen[:-SEEN_KEPT]
    return got


def codex_usage(lines: Iterable[dict[str, Any]], cursor: Cursor) -> dict[str, Usage]:
    got: dict[str, Usage] = {}
    for entry in lines:
        payload = entry.get("payload")
        if not isinstance(payload, dict):
            continue
        if entry.get("type") == "turn_context" and isinstance(payload.get("model"), str):
            cursor.model = payload["model"][:200]
        if entry.get("type") != "event_msg" or payload.get("type") != "token_count":
            continue
        info = payload.get("info")
        last = info.get("last_token_usage") if isinstance(info, dict) else None
        if not isinstance(last, dict):
            continue
        model = cursor.model or "unknown"
        acc = got.setdefault(model, Usage(model))
        cached = _int(last.get("cached_input_tokens"))
        acc.input_tokens += max(0, _int(last.get("input_tokens")) - cached)
        acc.cache_read_input_tokens += cached
        acc.cache_creation_input_tokens += _int(last.get("cache_write_input_tokens"))
        acc.output_tokens += _int(last.get("output_tokens"))
        acc.calls += 1
    return got


def read_usage(client: str, path: str | Path, cursor: Cursor, where: Place | None = None) -> dict[str, Usage]:
    """Usage by model in what was appended to the transcript since ``cursor`` (which moves on). Raises
    ``Refused`` for a path that is not a transcript of ``where``."""
    lines = read_new(path, cursor, where)
    return claude_usage(lines, cursor) if client == "claude-code" else codex_usage(lines, cursor)
