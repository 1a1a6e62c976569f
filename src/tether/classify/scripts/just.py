"""just: the justfile's recipes, their dependencies and parameters; a recipe for another interpreter is not
seen through."""

from __future__ import annotations

import os
import re
import shlex
from typing import Final

from tether.classify.paths import PH
from tether.classify.scripts.definitions import SHELLS, Plan, missing, opened

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


def plan(start: str, name: str, args: list[str]) -> Plan | None:
    """What ``just NAME ARGS`` runs (the default recipe without a name); None with no justfile."""
    found = opened(start, ("justfile", "Justfile", ".justfile", "JUSTFILE"), "just", _parse_just)
    if found is None:
        return None
    plan, jf, folder = found
    plan.problems.extend(jf.problems)
    for c in jf.shell_calls:
        plan.line(c, folder)
    goal = name or jf.default
    if not _just_recipe(jf, goal, args, plan, folder, set()):
        return missing("just", goal, plan)
    return plan
