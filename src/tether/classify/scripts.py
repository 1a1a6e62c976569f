"""Project scripts classified by what they run, read from their definition at check time.

``npm run NAME`` (yarn, pnpm, bun: ``package.json``), ``make TARGET`` (the Makefile, its includes and
prerequisites), ``just RECIPE`` (justfile), ``task NAME`` (Taskfile), ``pdm run`` and ``hatch run``
(``pyproject.toml``, ``hatch.toml``), ``composer run`` (``composer.json``), ``tox -e ENV`` (``tox.ini``) and
``deno task`` (``deno.json``): the definition is looked up from the command's working directory, the commands
it runs are classified as shell text (recursively: a script that runs ``npm run other`` is followed), and each
definition file read becomes a ``script`` resource ``PATH@sha256:DIGEST`` so an approval is for that content.

What cannot be seen through is ``unknown``: an unreadable or unparseable definition, Make's ``$(eval)`` or
``$(file)``, a recipe for another interpreter, a callback into project code. No definition file at all leaves
the caller to judge by the name (the tool finds nothing to run either). Reads are cached by path, mtime, inode
and size; a definition written earlier in the same command line is not trusted (``unknown``).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shlex
import stat
import threading
import tomllib
from collections.abc import Callable, Iterable
from typing import Any, Final

from tether.classify.paths import PH
from tether.classify.scan import Cmd, Scan

MAX_BYTES: Final = 1 << 20
MAX_FILES: Final = 16  # a Makefile and its includes
MAX_LINES: Final = 400  # commands taken from one definition for one call
SHELLS: Final = frozenset({"sh", "bash", "dash", "zsh", "ksh", "/bin/sh", "/bin/bash", "/usr/bin/bash", "/bin/dash",
                           "/usr/bin/env bash", "/usr/bin/env sh", "/bin/zsh", "/usr/bin/zsh"})

PKG_TOOLS: Final = frozenset({"npm", "yarn", "yarnpkg", "pnpm", "bun"})
RUN_FALLBACK: Final = frozenset({"yarn", "yarnpkg", "pnpm", "bun", "pdm", "hatch"})  # no such script: a command


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


def _load(path: str, kind: str, parse: Callable[[str, str], Any]) -> tuple[Any, str] | None:
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


def _upward(start: str, names: Iterable[str]) -> str | None:
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


def _here(start: str, names: Iterable[str]) -> str | None:
    for n in names:
        p = start.rstrip("/") + "/" + n
        if os.path.exists(p):
            return p
    return None


def _norm(scan: Scan, raw: str) -> str:
    return os.path.normpath(raw if raw.startswith("/") else os.path.join(scan.cwd, raw))


# ----------------------------------------------------------------------------------- package.json


def _json(text: str, path: str) -> Any:
    data = json.loads(text)
    if not isinstance(data, dict):
        raise Unreadable(f"{path} is not a JSON object")
    return data


def _pkg_plan(plan: Plan, data: dict[str, Any], folder: str, name: str, args: list[str], tool: str) -> bool:
    scripts = data.get("scripts")
    if scripts is None:
        scripts = {}
    if not isinstance(scripts, dict):
        plan.problems.append("package.json scripts is not a mapping")
        return True
    body = scripts.get(name)
    if body is None:
        return False
    tail = (" " + shlex.join(args)) if args else ""
    for hook, extra in ((f"pre{name}", ""), (name, tail), (f"post{name}", "")):
        text = scripts.get(hook)
        if text is None:
            continue
        if not isinstance(text, str):
            plan.problems.append(f"script {hook} is not text")
            continue
        plan.line(text + extra, folder)
    return True


# ----------------------------------------------------------------------------------------- Make

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
        loaded = _load(path, "make", _parse_make)
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
    folder = _norm(scan, directory) if directory else scan.cwd
    if files:
        paths = [_norm(scan, f) if directory is None else os.path.normpath(os.path.join(folder, f)) for f in files]
    else:
        found = _here(folder, ("GNUmakefile", "makefile", "Makefile"))
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


# ------------------------------------------------------------------------------------------ just

_JUST_HEADER: Final = re.compile(r"^@?([A-Za-z_][A-Za-z0-9_-]*)((?:\s+[^:=]*?)?)\s*:(?!=)(.*)$")
_JUST_ASSIGN: Final = re.compile(r"^(?:export\s+)?([A-Za-z_][A-Za-z0-9_-]*)\s*:=\s*(.*)$")


class Justfile:
    __slots__ = ("default", "problems", "recipes", "shell_calls", "vars")

    def __init__(self) -> None:
        #: name -> (params, deps, body lines, script interpreter or "")
        self.recipes: dict[str, tuple[list[str], list[str], list[str], str]] = {}
        self.vars: dict[str, str] = {}
        self.default = ""
        self.shell_calls: list[str] = []
        self.problems: list[str] = []


def _parse_just(text: str, path: str) -> Justfile:
    jf = Justfile()
    current: list[str] | None = None
    attrs: list[str] = []
    for raw in text.replace("\r\n", "\n").split("\n"):
        if raw[:1] in (" ", "\t"):
            if current is not None:
                current.append(raw.strip())
            continue
        current = None
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("["):
            attrs.append(line)
            continue
        if line.startswith("set "):
            if line.split()[1:2] in (["shell"], ["windows-shell"], ["script-interpreter"]):
                interp = re.findall(r"['\"]([^'\"]+)['\"]", line)
                if not interp or interp[0].rsplit("/", 1)[-1] not in ("sh", "bash", "dash", "zsh"):
                    jf.problems.append(f"recipes run with {line}")
            continue
        if line.startswith(("import ", "import? ", "mod ", "mod? ", "alias ")):
            if line.startswith("alias "):
                m = re.match(r"alias\s+(\S+)\s*:=\s*(\S+)", line)
                if m:
                    jf.recipes.setdefault(m.group(1), ([], [m.group(2)], [], ""))
                continue
            jf.problems.append(f"{line.split()[0]} of another justfile is not followed")
            continue
        m = _JUST_ASSIGN.match(line)
        if m:
            value = m.group(2).strip()
            for bt in re.findall(r"`([^`]*)`", value):
                jf.shell_calls.append(bt)
            jf.vars[m.group(1)] = value[1:-1] if value[:1] in "'\"" and value[-1:] == value[:1] else PH
            continue
        m = _JUST_HEADER.match(line)
        if m:
            name = m.group(1)
            params = [p.split("=", 1)[0].lstrip("+*$") for p in m.group(2).split()]
            deps = [d.strip("()") for d in m.group(3).replace("&&", " ").split() if d.strip("()")]
            deps = [d for d in deps if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_-]*", d)]
            script = ""
            for a in attrs:
                if a.startswith("[script"):
                    script = (re.findall(r"['\"]([^'\"]+)['\"]", a) or ["sh"])[0]
            body: list[str] = []
            jf.recipes[name] = (params, deps, body, script)
            if not jf.default or any("default" in a for a in attrs):
                jf.default = name if (not jf.default or any("default" in a for a in attrs)) else jf.default
            current = body
            attrs = []
            continue
        jf.problems.append(f"{os.path.basename(path)}: a line tether cannot read: {line[:60]}")
    return jf


def _just_interp(text: str, jf: Justfile, values: dict[str, str]) -> str:
    def sub(m: re.Match[str]) -> str:
        expr = m.group(1).strip()
        if expr in values:
            return values[expr]
        if expr in jf.vars:
            return jf.vars[expr]
        return PH
    return re.sub(r"\{\{(.*?)\}\}", sub, text)


def _just_recipe(jf: Justfile, name: str, args: list[str], plan: Plan, folder: str, seen: set[str]) -> bool:
    recipe = jf.recipes.get(name)
    if recipe is None:
        return False
    if name in seen:
        return True
    seen.add(name)
    params, deps, body, script = recipe
    for d in deps:
        _just_recipe(jf, d, [], plan, folder, seen)
    values = dict(zip(params, [shlex.quote(a) for a in args], strict=False))
    lines = [_just_interp(b, jf, values) for b in body if b]
    if lines and lines[0].startswith("#!"):
        interp = lines[0][2:].strip()
        if interp not in SHELLS and interp.rsplit("/", 1)[-1] not in ("sh", "bash", "dash", "zsh"):
            plan.problems.append(f"recipe {name} is a {interp} script")
            return True
        plan.line("\n".join(lines[1:]), folder)
        return True
    if script and script.rsplit("/", 1)[-1] not in ("sh", "bash", "dash", "zsh"):
        plan.problems.append(f"recipe {name} is a {script} script")
        return True
    for b in lines:
        text = b.lstrip("@-").strip()
        if text and not text.startswith("#"):
            plan.line(text, folder)
    return True


# ------------------------------------------------------------------------------------------ Taskfile


def _parse_taskfile(text: str, path: str) -> Any:
    import yaml

    data = yaml.safe_load(text)
    if not isinstance(data, dict):
        raise Unreadable(f"{path} is not a mapping")
    return data


def _task_sh(value: Any, plan: Plan, folder: str) -> None:
    """Dynamic variables (``sh:``) anywhere in a mapping run when the Taskfile is read."""
    if isinstance(value, dict):
        sh = value.get("sh")
        if isinstance(sh, str):
            plan.line(_templ(sh), folder)
        for v in value.values():
            if isinstance(v, dict | list):
                _task_sh(v, plan, folder)
    elif isinstance(value, list):
        for v in value:
            _task_sh(v, plan, folder)


def _templ(text: str) -> str:
    return re.sub(r"\{\{.*?\}\}", PH, text)


def _task(data: dict[str, Any], name: str, plan: Plan, folder: str, seen: set[str]) -> bool:
    tasks = data.get("tasks")
    if not isinstance(tasks, dict) or name not in tasks:
        return False
    if name in seen:
        return True
    seen.add(name)
    t = tasks[name]
    if isinstance(t, str):
        t = {"cmds": [t]}
    elif isinstance(t, list):
        t = {"cmds": t}
    if not isinstance(t, dict):
        plan.problems.append(f"task {name} is not a mapping")
        return True
    here = folder
    d = t.get("dir")
    if isinstance(d, str):
        here = PH if "{{" in d else os.path.normpath(os.path.join(folder, d))
    for key in ("vars", "env", "preconditions"):
        _task_sh(t.get(key), plan, here)
    for dep in t.get("deps") or []:
        dn = dep.get("task") if isinstance(dep, dict) else dep
        if isinstance(dn, str) and not _task(data, dn, plan, folder, seen):
            plan.problems.append(f"task {name} depends on {dn}, which the Taskfile does not define")
    for key in ("status", "cmds"):
        for c in t.get(key) or []:
            if isinstance(c, dict):
                if "task" in c:
                    if not _task(data, str(c["task"]), plan, folder, seen):
                        plan.problems.append(f"task {name} calls {c['task']}, which the Taskfile does not define")
                    continue
                c = c.get("cmd", c.get("defer"))
            if isinstance(c, str):
                plan.line(_templ(c), here)
            elif c is not None:
                plan.problems.append(f"task {name} has a command tether cannot read")
    return True


# -------------------------------------------------------------------------------------- pyproject


def _toml(text: str, path: str) -> Any:
    return tomllib.loads(text)


def _get(data: Any, *keys: str) -> Any:
    for k in keys:
        if not isinstance(data, dict):
            return None
        data = data.get(k)
    return data


def _pdm(data: Any, name: str, args: list[str], plan: Plan, folder: str) -> bool:
    scripts = _get(data, "tool", "pdm", "scripts")
    if not isinstance(scripts, dict) or name not in scripts or name == "_":
        return False
    tail = (" " + shlex.join(args)) if args else ""
    for hook in (f"pre_{name}", name, f"post_{name}"):
        s = scripts.get(hook)
        if s is None:
            continue
        extra = tail if hook == name else ""
        if isinstance(s, str):
            plan.line(s + extra, folder)
        elif isinstance(s, dict) and isinstance(s.get("cmd"), str | list):
            c = s["cmd"]
            plan.line((c if isinstance(c, str) else shlex.join(map(str, c))) + extra, folder)
        elif isinstance(s, dict) and isinstance(s.get("shell"), str):
            plan.line(s["shell"] + extra, folder)
        elif isinstance(s, dict) and isinstance(s.get("composite"), list):
            for item in s["composite"]:
                plan.line(f"pdm run {item}", folder)
        elif isinstance(s, dict) and "call" in s:
            plan.problems.append(f"pdm script {hook} calls project code ({str(s['call'])[:60]})")
        else:
            plan.problems.append(f"pdm script {hook} has a form tether cannot read")
    return True


def _hatch(data: Any, hatch_toml: Any, target: str, args: list[str], plan: Plan, folder: str) -> bool:
    env, _, name = target.rpartition(":")
    env = env or "default"
    envs = _get(data, "tool", "hatch", "envs") if data is not None else None
    if hatch_toml is not None:
        envs = _get(hatch_toml, "envs")
    if not isinstance(envs, dict):
        return False
    e = envs.get(env)
    scripts = _get(e, "scripts") if isinstance(e, dict) else None
    if not isinstance(scripts, dict) or name not in scripts:
        return False
    s = scripts[name]
    for key in ("pre-install-commands", "post-install-commands"):
        for c in (e.get(key) or []) if isinstance(e, dict) else []:
            if isinstance(c, str):
                plan.line(c, folder)
    tail = (" " + shlex.join(args)) if args else ""
    for c in [s] if isinstance(s, str) else s if isinstance(s, list) else []:
        if not isinstance(c, str):
            plan.problems.append(f"hatch script {name} has a command tether cannot read")
            continue
        first = c.split(None, 1)[0] if c.strip() else ""
        if first in scripts and first != name:
            plan.line(f"hatch run {env}:{c}", folder)
        else:
            plan.line(_templ(c.replace("{args}", tail.strip())) + ("" if "{args" in c else tail), folder)
    if not isinstance(s, str | list):
        plan.problems.append(f"hatch script {name} has a form tether cannot read")
    return True


# ------------------------------------------------------------------------------------------- tox

_TOX_SUB: Final = re.compile(r"\{([^{}]*)\}")


def _tox_ini(text: str, path: str) -> Any:
    import configparser

    cp = configparser.RawConfigParser(strict=False, interpolation=None)
    cp.read_string(text)
    return {s: dict(cp.items(s)) for s in cp.sections()}


def _tox_pyproject(text: str, path: str) -> Any:
    legacy = _get(tomllib.loads(text), "tool", "tox", "legacy_tox_ini")
    if legacy is None:
        return None
    if not isinstance(legacy, str):
        raise Unreadable(f"{path}: legacy_tox_ini is not text")
    return _tox_ini(legacy, path)


def _tox(conf: dict[str, dict[str, str]], envs: list[str], posargs: list[str] | None, plan: Plan,
         folder: str) -> None:
    names = envs or [s.split(":", 1)[1] for s in conf if s.startswith("testenv:")] or ["py"]
    base = conf.get("testenv", {})

    def sub(m: re.Match[str]) -> str:
        key = m.group(1)
        if key == "posargs" or key.startswith("posargs:"):
            if posargs is not None:
                return shlex.join(posargs)
            return key[8:] if key.startswith("posargs:") else ""
        if key == "envpython":
            return "python"
        if key in ("toxinidir", "tox_root"):
            return folder
        return PH

    for env in names:
        sect = conf.get(f"testenv:{env}", {})
        for key in ("commands_pre", "commands", "commands_post"):
            body = sect.get(key, base.get(key, ""))
            for line in body.split("\n"):
                line = line.strip()
                if line and not line.startswith("#"):
                    plan.line(_TOX_SUB.sub(sub, line.lstrip("-! ")), folder)


# ----------------------------------------------------------------------------------------- entry


def _problem_plan(problem: str) -> Plan:
    plan = Plan()
    plan.problems.append(problem)
    return plan


def plan_for(scan: Scan, cmd: Cmd, tool: str, name: str, args: list[str], where: str | None = None) -> Plan | None:
    """What running project script ``name`` of ``tool`` runs, or None when there is no definition file
    (the caller judges by the name). ``where`` is a folder given on the command line (``--prefix``, ``-C``)."""
    start = _norm(scan, where) if where else scan.cwd
    try:
        if tool in PKG_TOOLS or tool in ("composer", "deno task"):
            names = {"composer": ("composer.json",), "deno task": ("deno.json", "deno.jsonc")}.get(
                tool, ("package.json",))
            opened = _opened(start, names, "json", _json)
            if opened is None:
                return None
            plan, data, folder = opened
            if tool == "composer":
                found = _composer(data, name, args, plan, folder, set())
            elif tool == "deno task":
                tasks = data.get("tasks")
                body = tasks.get(name) if isinstance(tasks, dict) else None
                found = body is not None
                if isinstance(body, dict):
                    body = body.get("command")
                if isinstance(body, str):
                    plan.line(body + ((" " + shlex.join(args)) if args else ""), folder)
                elif found:
                    plan.problems.append(f"deno task {name} has a form tether cannot read")
            else:
                found = _pkg_plan(plan, data, folder, name, args, tool)
            return plan if found else _missing(tool, name, plan)
        if tool == "just":
            opened = _opened(start, ("justfile", "Justfile", ".justfile", "JUSTFILE"), "just", _parse_just)
            if opened is None:
                return None
            plan, jf, folder = opened
            plan.problems.extend(jf.problems)
            for c in jf.shell_calls:
                plan.line(c, folder)
            goal = name or jf.default
            if not _just_recipe(jf, goal, args, plan, folder, set()):
                return _missing(tool, goal, plan)
            return plan
        if tool == "task":
            opened = _opened(start, ("Taskfile.yml", "taskfile.yml", "Taskfile.yaml", "taskfile.yaml",
                                     "Taskfile.dist.yml", "Taskfile.dist.yaml"), "task", _parse_taskfile)
            if opened is None:
                return None
            plan, data, folder = opened
            if data.get("includes"):
                plan.problems.append("the Taskfile includes others, which are not followed")
            _task_sh(data.get("vars"), plan, folder)
            _task_sh(data.get("env"), plan, folder)
            if not _task(data, name or "default", plan, folder, set()):
                return _missing(tool, name or "default", plan)
            return plan
        if tool in ("pdm", "hatch"):
            path = _upward(start, ("pyproject.toml",))
            hatch_path = _upward(start, ("hatch.toml",)) if tool == "hatch" else None
            if path is None and hatch_path is None:
                return None
            plan = Plan()
            data = hatch_toml = None
            for p, slot in ((path, "py"), (hatch_path, "hatch")):
                if p is None:
                    continue
                loaded = _load(p, "toml", _toml)
                if loaded is not None:
                    plan.files.append((p, loaded[1]))
                    if slot == "py":
                        data = loaded[0]
                    else:
                        hatch_toml = loaded[0]
            folder = os.path.dirname(path or hatch_path or start)
            if tool == "pdm":
                found = _pdm(data, name, args, plan, folder)
            else:
                found = _hatch(data, hatch_toml, name, args, plan, folder)
            return plan if found else _missing(tool, name, plan)
        if tool == "tox":
            path = _here(start, ("tox.ini",))
            loaded = _load(path, "tox", _tox_ini) if path else None
            if path is None:
                path = _here(start, ("pyproject.toml",))
                loaded = _load(path, "tox-py", _tox_pyproject) if path else None
                if loaded is not None and loaded[0] is None:
                    if _here(start, ("tox.toml",)):
                        return _problem_plan("tox.toml is not read")
                    return None
            if path is None or loaded is None:
                return _problem_plan("tox.toml is not read") if _here(start, ("tox.toml",)) else None
            plan = Plan()
            plan.files.append((path, loaded[1]))
            sep = args.index("--") if "--" in args else -1
            envs = [e for a in args[: sep if sep >= 0 else len(args)] for e in a.split(",") if a]
            _tox(loaded[0], [e for e in envs if e != "ALL"], args[sep + 1 :] if sep >= 0 else None, plan,
                 os.path.dirname(path))
            return plan
    except Unreadable as exc:
        return _problem_plan(str(exc))
    return None


def _opened(start: str, names: tuple[str, ...], kind: str, parse: Callable[[str, str], Any]
            ) -> tuple[Plan, Any, str] | None:
    """The definition file found upward of ``start`` (the first of ``names``), parsed: a new plan that
    names it (hash included), the parsed content and its folder; None when there is none."""
    path = _upward(start, names)
    loaded = _load(path, kind, parse) if path is not None else None
    if path is None or loaded is None:
        return None
    plan = Plan()
    plan.files.append((path, loaded[1]))
    return plan, loaded[0], os.path.dirname(path)


def _missing(tool: str, name: str, plan: Plan) -> Plan:
    """No script of that name: yarn, pnpm, bun, pdm and hatch run a command of that name instead."""
    plan.problems.append(f"@missing {name}")
    return plan


def _composer(data: dict[str, Any], name: str, args: list[str], plan: Plan, folder: str, seen: set[str]) -> bool:
    scripts = data.get("scripts")
    if not isinstance(scripts, dict) or name not in scripts:
        return False
    if name in seen:
        return True
    seen.add(name)
    body = scripts[name]
    for item in [body] if isinstance(body, str) else body if isinstance(body, list) else []:
        if not isinstance(item, str):
            continue
        if item.startswith("@putenv"):
            continue
        if item.startswith("@php "):
            plan.line("php " + item[5:], folder)
        elif item.startswith("@composer "):
            plan.line("composer " + item[10:], folder)
        elif item.startswith("@"):
            ref = item[1:].split()[0] if item[1:].split() else ""
            if not _composer(data, ref, [], plan, folder, seen):
                plan.problems.append(f"composer script {name} refers to {ref}, which composer.json does not define")
        elif " " not in item.strip() and "::" in item:
            plan.problems.append(f"composer script {name} calls PHP code ({item[:60]})")
        else:
            plan.line(item + ((" " + shlex.join(args)) if args else ""), folder)
    if not isinstance(body, str | list):
        plan.problems.append(f"composer script {name} has a form tether cannot read")
    return True


def run(scan: Scan, cmd: Cmd, tool: str, name: str, args: list[str], where: str | None = None,
        plan: Plan | None = None) -> bool:
    """Classify project script ``name`` of ``tool`` into ``scan`` from its definition; False when there is
    no definition file (the caller then judges by the name)."""
    if plan is None:
        plan = plan_for(scan, cmd, tool, name, args, where)
    if plan is None:
        return False
    text = cmd.text
    label = f"{tool} {name}".strip()
    for path, digest in plan.files:
        scan.resource("script", f"{path}@sha256:{digest[:16]}", "run")
        if scan.wrote(path) or scan.wrote(os.path.dirname(path)):
            scan.add("unknown", f"{label}: {path} is changed earlier in this command", text)
            return True
    missing = [p for p in plan.problems if p.startswith("@missing ")]
    for p in plan.problems:
        if not p.startswith("@missing "):
            scan.add("unknown", f"{label}: {p}", text)
    if missing and not plan.lines:
        if tool in RUN_FALLBACK and name:
            scan.run(cmd.sub([name, *args]))
        else:
            where_ = os.path.basename(plan.files[0][0]) if plan.files else "the definition"
            scan.add("repo.read", f"{label}: no such script in {where_}: nothing runs", text)
        return True
    if not plan.lines and not plan.problems:
        scan.add("repo.read", f"{label} runs nothing", text)
    cwd = scan.cwd
    try:
        for line, folder in plan.lines:
            if PH in folder:
                scan.add("unknown", f"{label} runs in a folder only known at run time", text)
                continue
            scan.cwd = folder
            scan.shell(line, text)
    finally:
        scan.cwd = cwd
    return True
