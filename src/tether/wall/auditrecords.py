"""The kernel's audit records of a denied write, read back into one ``Denial`` each.

A failed call the rules of ``auditrules`` match becomes several records with one serial: ``SYSCALL``
(the call, its result, the process: uid, session, pid, comm, exe, the rule's key), ``CWD``, one ``PATH``
per name the call used (a create or removal the kernel refused before it looked the name up names only
the folder), ``PROCTITLE`` (the command line, which tells the rest), and ``EOE`` at the end.
``Assembler`` gathers them by serial and gives a ``Denial`` at ``EOE`` (or when a record set stays
incomplete for ``STALE_S``). Everything in them is the kernel's but the names and the process's comm, exe
and command line, which the agent chose: they are bounded and decoded as the kernel encodes them (a
quoted string, or hex when it holds a space, a quote or a byte outside ASCII), never interpreted. Records
of other rules (other keys) are skipped.
"""

from __future__ import annotations

import errno as errnos
import os
import re
import time
from collections import OrderedDict
from dataclasses import dataclass, field

from tether.wall.auditrules import KEY, call_name

SYSCALL, PATH, CWD, EOE, PROCTITLE = 1300, 1302, 1307, 1320, 1327
PENDING_MAX = 256  # record sets being gathered at once
STALE_S = 2.0
PATHS_MAX = 4
TEXT_MAX = 1000
RECORD_MAX = 9000  # the kernel's records are at most ~8,970 bytes: more is not read
_HEAD = re.compile(r"^audit\((\d+)\.(\d+):(\d+)\):\s*")
_FIELD = re.compile(r'(\w+)=("[^"]*"|\S*)')
_CWD = re.compile(r'\bcwd=("[^"]*"|\S*)')
_TITLE = re.compile(r'\bproctitle=("[^"]*"|\S*)')
_NAME = re.compile(r'\bname=("[^"]*"|\S*)')
_NAMETYPE = re.compile(r'\bnametype=(\S*)')
_KEY = f'key="{KEY}"'


def _one(pattern: re.Pattern[str], text: str, start: int) -> str:
    m = pattern.search(text, start)
    return "" if m is None else _value(m.group(1))


@dataclass
class Denial:
    """One write the kernel refused an audited process."""

    ts: float
    uid: int
    session: int
    pid: int
    call: str
    error: str  # the errno's name: EROFS, EACCES, EPERM
    paths: list[str] = field(default_factory=list)
    comm: str = ""
    exe: str = ""
    command: str = ""  # the process's command line as the kernel keeps it (128 bytes at most), NULs as spaces

    @property
    def path(self) -> str:
        return self.paths[0] if self.paths else "?"


def _value(raw: str) -> str:
    """A field's value as the kernel wrote it: quoted, hex (an untrusted string with odd bytes) or bare."""
    if raw.startswith('"') and raw.endswith('"') and len(raw) >= 2:
        return raw[1:-1][:TEXT_MAX]
    if raw and len(raw) % 2 == 0 and len(raw) <= 2 * TEXT_MAX and all(c in "0123456789ABCDEFabcdef" for c in raw):
        try:
            return bytes.fromhex(raw).decode(errors="replace").replace("\0", " ")[:TEXT_MAX]
        except ValueError:
            return raw[:TEXT_MAX]
    return raw[:TEXT_MAX]


def fields(text: str) -> tuple[tuple[float, int] | None, dict[str, str]]:
    """``((time, serial), {name: raw value})`` of one record's text; None for the head when it has none."""
    head = _HEAD.match(text)
    if head is None:
        return None, {}
    ts = float(f"{head.group(1)}.{head.group(2)}")
    # the kernel writes each field once; an agent's text (comm, exe, names) is quoted or hex, never a field:
    # the first of a name is kept all the same (the pairs reversed into the dict)
    pairs = _FIELD.findall(text, head.end(), head.end() + RECORD_MAX)
    return (ts, int(head.group(3))), dict(reversed(pairs))


@dataclass
class _Set:
    ts: float
    seen: float
    syscall: dict[str, str] | None = None
    cwd: str = ""
    command: str = ""
    paths: list[tuple[str, str]] = field(default_factory=list)  # (name, nametype)


class Assembler:
    """Feed it records (``add``); it returns the ``Denial`` each complete set makes."""

    def __init__(self, clock: float | None = None) -> None:
        self._sets: OrderedDict[int, _Set] = OrderedDict()

    def add(self, kind: int, text: str, now: float | None = None) -> list[Denial]:
        now = time.monotonic() if now is None else now
        out = self._expire(now)
        if kind not in (SYSCALL, PATH, CWD, EOE, PROCTITLE):
            return out
        head = _HEAD.match(text)
        if head is None:
            return out
        serial = int(head.group(3))
        if kind == EOE:
            done = self._sets.pop(serial, None)
            if done is not None:
                d = _denial(done)
                if d is not None:
                    out.append(d)
            return out
        s = self._sets.get(serial)
        if s is None:
            if kind != SYSCALL or _KEY not in text:  # not a set of ours (or one already given up)
                return out
            _, got = fields(text)
            if _value(got.get("key", "")) != KEY:
                return out
            s = self._sets[serial] = _Set(float(f"{head.group(1)}.{head.group(2)}"), now)
            while len(self._sets) > PENDING_MAX:  # the oldest given as it stands: bounded, nothing dropped
                d = _denial(self._sets.popitem(last=False)[1])
                if d is not None:
                    out.append(d)
        if kind == SYSCALL:
            s.syscall = got
        elif kind == CWD:  # only the fields wanted of the others: the reader must keep up with a flood
            s.cwd = _one(_CWD, text, head.end())
        elif kind == PROCTITLE:
            s.command = _one(_TITLE, text, head.end()).strip()
        elif kind == PATH and len(s.paths) < 2 * PATHS_MAX:
            s.paths.append((_one(_NAME, text, head.end()), _one(_NAMETYPE, text, head.end())))
        return out

    def _expire(self, now: float) -> list[Denial]:
        out = []
        while self._sets:
            serial, s = next(iter(self._sets.items()))
            if now - s.seen < STALE_S:
                break
            del self._sets[serial]
            d = _denial(s)
            if d is not None:
                out.append(d)
        return out

    def flush(self) -> list[Denial]:
        return self._expire(float("inf"))


def _int(raw: str | None, base: int = 10, default: int = -1) -> int:
    try:
        return int(raw or "", base)
    except ValueError:
        return default


def _denial(s: _Set) -> Denial | None:
    sc = s.syscall
    if sc is None:
        return None
    arch, nr = _int(sc.get("arch"), 16), _int(sc.get("syscall"))
    call = call_name(arch, nr)
    code = -_int(sc.get("exit"), default=0)
    if call is None or code <= 0:
        return None
    # UNKNOWN: a name the lookup did not get to the end of (ENOENT: a folder on the way is missing)
    targets = [n for n, t in s.paths if t in ("CREATE", "DELETE", "NORMAL", "UNKNOWN") and n and n != "(null)"]
    parents = [n for n, t in s.paths if t == "PARENT" and n and n != "(null)"]
    paths: list[str] = []
    for name in targets or parents:
        full = name if name.startswith("/") or not s.cwd else os.path.normpath(os.path.join(s.cwd, name))
        if full not in paths:
            paths.append(full[:TEXT_MAX])
    return Denial(
        ts=s.ts,
        uid=_int(sc.get("uid")),
        session=_int(sc.get("ses")),
        pid=_int(sc.get("pid")),
        call=call,
        error=errnos.errorcode.get(code, str(code)),
        paths=paths[:PATHS_MAX],
        comm=_value(sc.get("comm", ""))[:64],
        exe=_value(sc.get("exe", ""))[:TEXT_MAX],
        command=s.command[:TEXT_MAX],
    )
