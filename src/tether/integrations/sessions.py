"""What tether remembers about an agent CLI's sessions, in ``<state>/agents/<agent>/sessions.json`` (0600,
replaced atomically), so it survives a daemon crash or a reboot:

``last``      the latest session: client, session id, transcript path, cwd
``held``      tool calls held for a human, by tool-use id: the approval, the session, the client. The
              hook endpoint answers ``defer`` (Claude Code) or deny-and-retry (Codex) for them; the
              supervisor resumes the session once the approval is decided.
``cursors``   how far each transcript's usage has been read (``transcript.Cursor``)

One lock per state file in this process; the daemon is the only writer.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tether.atomic import write_atomic
from tether.paths import StateDir

_locks: dict[str, threading.Lock] = {}
_guard = threading.Lock()


def path_of(state: StateDir, agent: str) -> Path:
    return state.agent_dir(agent) / "sessions.json"


def _lock(path: Path) -> threading.Lock:
    with _guard:
        return _locks.setdefault(str(path), threading.Lock())


def _load(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


_cache: dict[str, tuple[tuple[int, int, int], dict[str, Any]]] = {}


def read(state: StateDir, agent: str) -> dict[str, Any]:
    """The agent's records, read only (cached while the file is unchanged: it is read on every PreToolUse)."""
    path = path_of(state, agent)
    try:
        st = os.stat(path)
    except OSError:
        return {}
    key = (st.st_ino, st.st_mtime_ns, st.st_size)
    got = _cache.get(str(path))
    if got is not None and got[0] == key:
        return got[1]
    data = _load(path)
    _cache[str(path)] = (key, data)
    return data


@contextmanager
def edit(state: StateDir, agent: str) -> Iterator[dict[str, Any]]:
    """Read, change in place, write back (atomically) under this file's lock."""
    path = path_of(state, agent)
    with _lock(path):
        data = _load(path)
        before = json.dumps(data, sort_keys=True)
        yield data
        if json.dumps(data, sort_keys=True) == before:
            return
        write_atomic(path, json.dumps(data, indent=1), 0o600)


def hold(state: StateDir, agent: str, tool_use_id: str, **info: Any) -> None:
    with edit(state, agent) as data:
        data.setdefault("held", {})[tool_use_id] = {**info, "at": time.time()}


def held(state: StateDir, agent: str, tool_use_id: str | None) -> dict[str, Any] | None:
    if not tool_use_id:
        return None
    got = read(state, agent).get("held", {}).get(tool_use_id)
    return got if isinstance(got, dict) else None


def release(state: StateDir, agent: str, tool_use_id: str) -> None:
    with edit(state, agent) as data:
        data.get("held", {}).pop(tool_use_id, None)


def remember_session(state: StateDir, agent: str, **info: Any) -> None:
    with edit(state, agent) as data:
        got = data.get("last")
        last: dict[str, Any] = got if isinstance(got, dict) else {}
        if last.get("session_id") != info.get("session_id"):
            last = {}
        data["last"] = {**last, **{k: v for k, v in info.items() if v is not None}, "at": time.time()}
