"""Make: the Makefile, its includes and prerequisites, expanded as far as can be known now."""

from __future__ import annotations

import os
import re
from typing import Final

from tether.classify.paths import PH
from tether.classify.scan import Cmd, Scan
from tether.classify.scripts.definitions import MAX_FILES, SHELLS, Plan, Unreadable, here, load, norm

_ASSIGN: Final = re.compile(r"^(?:(?:export|override|private)\s+)*([^:#=\s]+)\s*(:::=|::=|:=|\?=|\+=|!=|=)\s*(.*)$",
                            re.S)
_MAKE_FUNCS: Final = frozenset({
    "subst", "patsubst", "strip", "findstring", "filter", "filter-out", "sort", "word", "wordlist", "words",
    "firstword", "lastword", "dir", "notdir", "suffix", "basename", "addsuffix", "addprefix", "join", "wildcard",
    "realpath", "abspath", "error", "warning", "info", "origin", "flavor", "foreach", "if", "or", "and", "call",
    "value", "let", "intcmp",
})
_MAKE_UNSEEN: Final = frozenset({"eval", "file", "guile", "load"})
_MAKE_BUILTIN: Final = {"MAKE": "make", "CC": "cc", "CXX": "g++", "CPP": "cc -E", "RM": "rm -f", "AR": "ar",
                        "AS": "as", "SHELL": "/bin/sh", "FC": "f77", "LD": "ld", "LEX": "lex", "YACC": "yacc"}


class Makefile:
    __slots__ = ("default", "patterns", "problems", "rules", "shell_calls", "vars")

    def __init__(self) -> None:
        self.vars: dict[str, tuple[str, str]] = {}  # name -> (flavour: "=", ":=", "?=", value)
        self.rules: dict[str, tuple[list[str], list[str]]] = {}
        self.patterns: list[tuple[str, list[str], list[str]]] = []
        self.default = ""
        self.shell_calls: list[str] = []
        self.problems: list[str] = []


def _logical_lines(text: str) -> list[tuple[bool, str]]:
    """(is a recipe line, text) with backslash continuations joined."""
    out: list[tuple[bool, str]] = []
    lines = text.replace("\r\n", "\n").split("\n")
    i = 0
    while i < len(lines):
        line = lines[i]
        recipe = line.startswith("\t")
        while line.endswith("\\") and not line.endswith("\\\\") and i + 1 < len(lines):
            i += 1
            nxt = lines[i]
            line = line[:-1] + (nxt[1:] if recipe and nxt.startswith("\t") else " " + nxt.lstrip())
        out.append((recipe, line))
        i += 1
    return out


def _parse_make(text: str, path: str) -> list[tuple[bool, str]]:
    return _logical_lines(text)


def _read_make(mk: Makefile, path: str, plan: Plan, depth: int = 0) -> None:
    try:
        loaded = load(path, "make", _parse_make)
    except Unreadable as exc:  # `make -f /srv`: not a makefile tether can read, so what it runs is unknown
        plan.problems.append(str(exc))
        return
    if loaded is None:
        plan.problems.append(f"{path} is included but not there")
        return
    lines, digest = loaded
    plan.files.append((path, digest))
    current: list[list[str]] = []
    define: list[str] | None = None
    define_name = ""
    for recipe, line in lines:
        if define is not None:
            if line.strip() == "endef":
                mk.vars[define_name] = ("=", "\n".join(define))
                define = None
            else:
                define.append(line)
            continue
        if recipe and current:
            body = line[1:]
            for r in current:
                r.append(body)
            continue
        stripped = line.split("#", 1)[0].strip() if "#" in line else line.strip()
        if not stripped:
            continue
        word = stripped.split(None, 1)[0]
        if word in ("ifeq", "ifneq", "ifdef", "ifndef", "else", "endif"):
            continue  # both branches count
        if word == "define" or (word in ("export", "override") and stripped.split()[1:2] == ["define"]):
            parts = stripped.split()
            define_name = parts[-1] if parts[-1] not in ("=", ":=", "::=") else parts[-2]
            define = []
            continue
        if word in ("include", "-include", "sinclude"):
            for inc in stripped.split()[1:]:
                inc_path = _expand(inc, mk, {}, plan, 0)
                if PH in inc_path or any(c in inc_path for c in "*?["):
                    plan.problems.append(f"includes a makefile named at run time ({inc})")
                    continue
                full = os.path.normpath(os.path.join(os.path.dirname(path), inc_path))
                if len(plan.files) >= MAX_FILES or depth > 4:
                    plan.problems.append("too many included makefiles")
                elif os.path.exists(full) or word == "include":
                    _read_make(mk, full, plan, depth + 1)
            continue
        if word in ("vpath", "unexport", "export") and "=" not in stripped and ":" not in stripped:
            continue
        m = _ASSIGN.match(stripped)
        colon = stripped.find(":")
        if m and (colon < 0 or colon >= m.start(2)):
            name, op, value = m.group(1), m.group(2), m.group(3)
            if op == "!=":
                mk.shell_calls.append(value)
                mk.vars[name] = ("=", PH)
            elif op == "+=":
                old = mk.vars.get(name, ("=", ""))
                mk.vars[name] = (old[0], (old[1] + " " + value).strip())
            elif op == "?=":
                if name not in mk.vars:
                    mk.vars[name] = ("?=", value)
            else:
                mk.vars[name] = (":=" if op.endswith(":=") else "=", value)
            if op != "=" and op != "?=" and op != "+=":
                _expand(value, mk, {}, plan, 0)  # immediate: its $(shell) runs whatever the goal
            continue
        if colon > 0:
            head, _, rest = stripped.partition(":")
            double = rest.startswith(":")
            rest = rest[1:] if double else rest
            if rest.startswith("="):
                continue
            prereqs_text, _, inline = rest.partition(";")
            if _ASSIGN.match(prereqs_text.strip()):  # target-specific variable
                current = []
                continue
            prereqs = [p for p in prereqs_text.replace("|", " ").split() if p]
            current = []
            for t in head.split():
                if t.startswith(".") and "/" not in t and "%" not in t:
                    if t == ".ONESHELL" or t == ".POSIX" or t == ".PHONY" or t == ".SILENT":
                        continue
                    if t not in (".DEFAULT", ".SUFFIXES", ".PRECIOUS", ".INTERMEDIATE", ".SECONDARY",
                                 ".DELETE_ON_ERROR", ".NOTPARALLEL", ".EXPORT_ALL_VARIABLES", ".IGNORE",
                                 ".LOW_RESOLUTION_TIME", ".SECONDEXPANSION", ".NOTINTERMEDIATE", ".WAIT"):
                        continue
                    if t != ".DEFAULT":
                        continue
                recipe_lines: list[str] = [inline] if inline.strip() else []
                if "%" in t:
                    mk.patterns.append((t, prereqs, recipe_lines))
                else:
                    prev = mk.rules.get(t)
                    if prev is not None and not double:
                        prev[0].extend(prereqs)
                        if not recipe_lines:
                            recipe_lines = prev[1]
                        mk.rules[t] = (prev[0], recipe_lines)
                    else:
                        if prev is not None:  # double colon: every rule's recipe runs
                            recipe_lines = prev[1] + recipe_lines
                            prereqs = prev[0] + prereqs
                        mk.rules[t] = (prereqs, recipe_lines)
                    if not mk.default and not t.startswith("."):
                        mk.default = t
                current.append(recipe_lines)
            continue
        plan.problems.append(f"{os.path.basename(path)}: a line tether cannot read: {stripped[:60]}")


def _close(text: str, i: int, opener: str) -> int:
    """Index of the paren closing the one at ``i``, or -1."""
    closer = ")" if opener == "(" else "}"
    depth = 0
    for j in range(i, len(text)):
        c = text[j]
        if c == opener:
            depth += 1
        elif c == closer:
            depth -= 1
            if depth == 0:
                return j
    return -1


def _expand(text: str, mk: Makefile, auto: dict[str, str], plan: Plan, depth: int,
            cmdline: dict[str, str] | None = None) -> str:
    """Make's expansion, as far as it can be known now: run-time parts become ``PH``; ``$(shell X)`` is
    collected into ``mk.shell_calls``; ``$(eval)``, ``$(file)`` are problems."""
    if "$" not in text:
        return text
    if depth > 16:
        plan.problems.append("variables nest too deeply")
        return PH
    out: list[str] = []
    i = 0
    n = len(text)
    while i < n:
        c = text[i]
        if c != "$" or i + 1 >= n:
            out.append(c)
            i += 1
            continue
        nxt = text[i + 1]
        if nxt == "$":
            out.append("$")
            i += 2
            continue
        if nxt in "({":
            j = _close(text, i + 1, nxt)
            if j < 0:
                plan.problems.append("an unclosed $( in a makefile")
                return PH
            inner = text[i + 2 : j]
            i = j + 1
        else:
            inner = nxt
            i += 2
        out.append(_reference(inner, mk, auto, plan, depth, cmdline or {}))
        if sum(len(x) for x in out) > 65536:
            plan.problems.append("a variable expands past 64 KiB")
            return PH
    return "".join(out)


def _reference(inner: str, mk: Makefile, auto: dict[str, str], plan: Plan, depth: int,
               cmdline: dict[str, str]) -> str:
    head, sep, arg = inner.partition(" ")
    if not sep:
        head, sep, arg = inner.partition("\t")
    if sep and head == "shell":
        mk.shell_calls.append(_expand(arg, mk, auto, plan, depth + 1, cmdline))
        return PH
    if sep and head in _MAKE_UNSEEN:
        plan.problems.append(f"runs make code the classifier cannot see ($({head} ...))")
        return PH
    if sep and head in _MAKE_FUNCS:
        _expand(arg, mk, auto, plan, depth + 1, cmdline)  # for the $(shell) calls inside
        if head == "call":
            fn = arg.split(",", 1)[0].strip()
            if fn in mk.vars:
                _expand(mk.vars[fn][1], mk, auto, plan, depth + 1, cmdline)
        return PH
    if ":" in inner and "=" in inner:  # $(VAR:.c=.o)
        _expand(inner.split(":", 1)[0], mk, auto, plan, depth + 1, cmdline)
        return PH
    name = _expand(inner, mk, auto, plan, depth + 1, cmdline) if "$" in inner else inner
    if name in auto:
        return auto[name]
    if len(name) == 2 and name[0] in "@<^*?+|" and name[1] in "DF":
        return PH
    if name in cmdline:
        return cmdline[name]
    v = mk.vars.get(name)
    if v is not None:
        if v[0] == "?=" and name in os.environ:
            return PH  # the environment's value wins over ?=
        return _expand(v[1], mk, auto, plan, depth + 1, cmdline)
    if name in _MAKE_BUILTIN:
        return _MAKE_BUILTIN[name]
    if name == "CURDIR":
        return auto.get(".CURDIR", PH)
    return PH  # from the environment, or empty: not known now


def _make_goal(mk: Makefile, goal: str, plan: Plan, cmdline: dict[str, str], folder: str,
               seen: set[str]) -> None:
    if goal in seen or len(seen) > 200:
        return
    seen.add(goal)
    rule = mk.rules.get(goal)
    auto: dict[str, str] = {"@": goal, ".CURDIR": folder}
    if rule is None:
        for pattern, prereqs, recipe in mk.patterns:
            pre, _, post = pattern.partition("%")
            if goal.startswith(pre) and goal.endswith(post) and len(goal) >= len(pre) + len(post):
                stem = goal[len(pre) : len(goal) - len(post)]
                rule = ([p.replace("%", stem) for p in prereqs], recipe)
                auto["*"] = stem
                break
    if rule is None:
        return  # a file, or make's built-in rules (compilers)
    prereqs, recipe = rule
    for p in prereqs:
        _make_goal(mk, p, plan, cmdline, folder, seen)
    auto.update({"<": prereqs[0] if prereqs else "", "^": " ".join(prereqs), "+": " ".join(prereqs),
                 "?": " ".join(prereqs)})
    for line in recipe:
        text = _expand(line, mk, auto, plan, 0, cmdline).lstrip()
        while text[:1] in ("@", "-", "+"):
            text = text[1:].lstrip()
        if text:
            plan.line(text, folder)


def make_plan(scan: Scan, cmd: Cmd, goals: list[str], directory: str | None, files: list[str],
              cmdline: dict[str, str]) -> Plan | None:
    folder = norm(scan, directory) if directory else scan.cwd
    if files:
        paths = [norm(scan, f) if directory is None else os.path.normpath(os.path.join(folder, f)) for f in files]
    else:
        found = here(folder, ("GNUmakefile", "makefile", "Makefile"))
        if found is None:
            return None
        paths = [found]
    plan = Plan()
    mk = Makefile()
    for p in paths:
        _read_make(mk, p, plan)
    shell = _expand(mk.vars.get("SHELL", ("=", "/bin/sh"))[1], mk, {}, plan, 0, cmdline).strip()
    if shell not in SHELLS:
        plan.problems.append(f"recipes run with SHELL={shell.replace(PH, '$…')}")
    goal_default = _expand(mk.vars.get(".DEFAULT_GOAL", ("=", mk.default))[1], mk, {}, plan, 0, cmdline)
    seen: set[str] = set()
    for goal in goals or [goal_default]:
        if goal and PH not in goal:
            _make_goal(mk, goal, plan, cmdline, folder, seen)
        elif not goal:
            plan.problems.append("the makefile has no target")
        else:
            plan.problems.append("the goal is only known at run time")
    for call in mk.shell_calls:
        plan.line(call, folder)
    return plan
