"""Getopt-style argument splitting shared by the per-tool handlers."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

_EMPTY: frozenset[str] = frozenset()


class Opts:
    """Options (``-x`` / ``--name``, each with its value or ``""``) and positional arguments."""

    __slots__ = ("_names", "opts", "pos")

    def __init__(self) -> None:
        self.opts: list[tuple[str, str]] = []
        self.pos: list[str] = []
        self._names: set[str] = set()

    def add(self, name: str, value: str) -> None:
        self.opts.append((name, value))
        self._names.add(name)

    def has(self, *names: str) -> bool:
        return not self._names.isdisjoint(names)

    def get(self, *names: str) -> str | None:
        """The last value given for any of ``names``."""
        if self._names.isdisjoint(names):
            return None
        val: str | None = None
        for o, v in self.opts:
            if o in names:
                val = v
        return val

    def all(self, *names: str) -> list[str]:
        if self._names.isdisjoint(names):
            return []
        return [v for o, v in self.opts if o in names]

    def names(self) -> set[str]:
        return set(self._names)


def parse(
    args: Sequence[str],
    short_val: str = "",
    long_val: Iterable[str] = _EMPTY,
    stop_at_positional: bool = False,
) -> Opts:
    """Split ``args``.

    ``short_val`` lists the short options that take a value (``-n 5`` or ``-n5``); ``long_val``
    the long ones (``--name v`` or ``--name=v``; given with their dashes). Short clusters
    (``-rf``) are expanded. ``--`` ends the options, as does the first positional argument with
    ``stop_at_positional`` (the rest are then all positional).
    """
    out = Opts()
    longs = long_val if isinstance(long_val, (set, frozenset)) else frozenset(long_val)
    i, n = 0, len(args)
    while i < n:
        a = args[i]
        i += 1
        if a == "--":
            out.pos.extend(args[i:])
            break
        if a.startswith("--") and len(a) > 2:
            name, eq, val = a.partition("=")
            if not eq and name in longs and i < n:
                val = args[i]
                i += 1
            out.opts.append((name, val))
            out._names.add(name)
        elif a.startswith("-") and len(a) > 1 and not a[1].isdigit():
            j = 1
            while j < len(a):
                c = a[j]
                j += 1
                if c in short_val:
                    val = a[j:]
                    if not val and i < n:
                        val = args[i]
                        i += 1
                    out.opts.append(("-" + c, val))
                    out._names.add("-" + c)
                    break
                out.opts.append(("-" + c, ""))
                out._names.add("-" + c)
        else:
            out.pos.append(a)
            if stop_at_positional:
                out.pos.extend(args[i:])
                break
    return out


def first_positional(args: Sequence[str], short_val: str = "", long_val: Iterable[str] = _EMPTY) -> int:
    """Index in ``args`` of the first positional argument (``len(args)`` when there is none)."""
    longs = frozenset(long_val)
    i, n = 0, len(args)
    while i < n:
        a = args[i]
        if a == "--":
            return i + 1
        if a.startswith("--") and len(a) > 2:
            if "=" not in a and a in longs:
                i += 1
        elif a.startswith("-") and len(a) > 1:
            j = 1
            while j < len(a):
                if a[j] in short_val:
                    if j == len(a) - 1:
                        i += 1
                    break
                j += 1
        else:
            return i
        i += 1
    return n
