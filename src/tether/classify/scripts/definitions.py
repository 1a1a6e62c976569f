"""A script's plan (the shell lines it runs, the files it was read from, what could not be seen) and
the one way a definition file is read: found upward of a folder, bounded, hashed, cached by path, mtime,
inode and size."""

from __future__ import annotations

import hashlib
import os
import re
import stat
import threading
from collections.abc import Callable, Iterable
from typing import Any, Final

from tether.classify.paths import PH
from tether.classify.scan import Scan

MAX_BYTES: Final = 1 << 20
MAX_FILES: Final = 16  # a Makefile and its includes
MAX_LINES: Final = 400  # commands taken from one definition for one call
SHELLS: Final = frozenset({"sh", "bash", "dash", "zsh", "ksh", "/bin/sh", "/bin/bash", "/usr/bin/bash", "/bin/dash",
                           "/usr/bin/env bash", "/usr/bin/env sh", "/bin/zsh", "/usr/bin/zsh"})


class Plan:
    """What a script runs: shell lines (with the folder each runs in) and what could not be seen."""

    __slots__ = ("files", "lines", "problems")

    def __init__(self) -> None:
        self.lines: list[tuple[str, str]] = []
        self.problems: list[str] = []
        self.files: list[tuple[str, str]] = []

    def line(self, text: str, cwd: str) -> None:
        if len(self.lines) < MAX_LINES:
            self.lines.append((text, cwd))
        elif not self.problems or self.problems[-1] != "too many commands to check":
            self.problems.append("too many commands to check")


# ------------------------------------------------------------------------------------------ reading

_lock: Final = threading.Lock()
_cache: dict[tuple[str, str], tuple[tuple[int, int, int], Any]] = {}


class Unreadable(Exception):
    """A definition file that exists but cannot be read or parsed."""


def load(path: str, kind: str, parse: Callable[[str, str], Any]) -> tuple[Any, str] | None:
    """(parsed, sha256) of ``path``, None when it is not there; cached on (mtime_ns, inode, size)."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    if not stat.S_ISREG(st.st_mode):
        raise Unreadable(f"{path} is not a regular file")
    key = (st.st_mtime_ns, st.st_ino, st.st_size)
    hit = _cache.get((path, kind))
    if hit is not None and hit[0] == key:
        cached: tuple[Any, str] = hit[1]
        return cached
    if st.st_size > MAX_BYTES:
        raise Unreadable(f"{path} is larger than {MAX_BYTES >> 20} MiB")
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_BYTES + 1)
        text = data.decode("utf-8")
        value = (parse(text, path), hashlib.sha256(data).hexdigest())
    except Unreadable:
        raise
    except (OSError, UnicodeDecodeError, ValueError, TypeError, AttributeError, KeyError, IndexError,
            RecursionError) as exc:
        raise Unreadable(f"{path} cannot be read: {type(exc).__name__}") from None
    except Exception as exc:  # yaml's errors, without importing yaml here
        raise Unreadable(f"{path} cannot be parsed: {type(exc).__name__}") from None
    with _lock:
        if len(_cache) > 256:
            _cache.clear()
        _cache[(path, kind)] = (key, value)
    return value


def upward(start: str, names: Iterable[str]) -> str | None:
    """The first of ``names`` found in ``start`` or a folder above it."""
    d = start
    for _ in range(64):
        for n in names:
            p = (d.rstrip("/") or "") + "/" + n
            if os.path.exists(p):
                return p
        if d == "/":
            return None
        d = d.rsplit("/", 1)[0] or "/"
    return None


def here(start: str, names: Iterable[str]) -> str | None:
    for n in names:
        p = start.rstrip("/") + "/" + n
        if os.path.exists(p):
            return p
    return None


def norm(scan: Scan, raw: str) -> str:
    return os.path.normpath(raw if raw.startswith("/") else os.path.join(scan.cwd, raw))


def opened(start: str, names: tuple[str, ...], kind: str, parse: Callable[[str, str], Any]
            ) -> tuple[Plan, Any, str] | None:
    """The definition file found upward of ``start`` (the first of ``names``), parsed: a new plan that
    names it (hash included), the parsed content and its folder; None when there is none."""
    path = upward(start, names)
    loaded = load(path, kind, parse) if path is not None else None
    if path is None or loaded is None:
        return None
    plan = Plan()
    plan.files.append((path, loaded[1]))
    return plan, loaded[0], os.path.dirname(path)


def missing(tool: str, name: str, plan: Plan) -> Plan:
    """No script of that name: yarn, pnpm, bun, pdm and hatch run a command of that name instead."""
    plan.problems.append(f"@missing {name}")
    return plan


def problem_plan(problem: str) -> Plan:
    plan = Plan()
    plan.problems.append(problem)
    return plan


def template(text: str) -> str:
    """``text`` with its ``{{...}}`` parts (Task's and hatch's templates) as only known at run time."""
    return re.sub(r"\{\{.*?\}\}", PH, text)
