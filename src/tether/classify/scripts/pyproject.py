"""Python projects' scripts: pdm's and hatch's (``pyproject.toml``, ``hatch.toml``) and tox's environments
(``tox.ini``, or the ``legacy_tox_ini`` of ``pyproject.toml``)."""

from __future__ import annotations

import os
import re
import shlex
import tomllib
from typing import Any, Final

from tether.classify.paths import PH
from tether.classify.scripts.definitions import (
    Plan,
    Unreadable,
    here,
    load,
    missing,
    problem_plan,
    template,
    upward,
)


def _toml(text: str, path: str) -> Any:
    return tomllib.loads(text)


def get(data: Any, *keys: str) -> Any:
    for k in keys:
        if not isinstance(data, dict):
            return None
        data = data.get(k)
    return data


def _pdm(data: Any, name: str, args: list[str], plan: Plan, folder: str) -> bool:
    scripts = get(data, "tool", "pdm", "scripts")
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
    envs = get(data, "tool", "hatch", "envs") if data is not None else None
    if hatch_toml is not None:
        envs = get(hatch_toml, "envs")
    if not isinstance(envs, dict):
        return False
    e = envs.get(env)
    scripts = get(e, "scripts") if isinstance(e, dict) else None
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
            plan.line(template(c.replace("{args}", tail.strip())) + ("" if "{args" in c else tail), folder)
    if not isinstance(s, str | list):
        plan.problems.append(f"hatch script {name} has a form tether cannot read")
    return True


# ------------------------------------------------------------------------------------------- tox

_TOX_SUB: Final = re.compile(r"\{([^{}]*)\}")


def _tox_ini(text: str, path: str) -> Any:
    import configparser  # start-up: ~1 ms, needed only when a tox.ini is read

    cp = configparser.RawConfigParser(strict=False, interpolation=None)
    cp.read_string(text)
    return {s: dict(cp.items(s)) for s in cp.sections()}


def _tox_pyproject(text: str, path: str) -> Any:
    legacy = get(tomllib.loads(text), "tool", "tox", "legacy_tox_ini")
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


def pdm_or_hatch_plan(start: str, tool: str, name: str, args: list[str]) -> Plan | None:
    """What ``pdm run NAME`` or ``hatch run [ENV:]NAME`` runs; None with neither pyproject.toml nor hatch.toml."""
    path = upward(start, ("pyproject.toml",))
    hatch_path = upward(start, ("hatch.toml",)) if tool == "hatch" else None
    if path is None and hatch_path is None:
        return None
    plan = Plan()
    data = hatch_toml = None
    for p, slot in ((path, "py"), (hatch_path, "hatch")):
        if p is None:
            continue
        loaded = load(p, "toml", _toml)
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
    return plan if found else missing(tool, name, plan)


def tox_plan(start: str, args: list[str]) -> Plan | None:
    """What ``tox -e ENVS -- POSARGS`` runs (``args``: the environments, then ``--`` and the positional
    arguments); None with no tox configuration read here."""
    path = here(start, ("tox.ini",))
    loaded = load(path, "tox", _tox_ini) if path else None
    if path is None:
        path = here(start, ("pyproject.toml",))
        loaded = load(path, "tox-py", _tox_pyproject) if path else None
        if loaded is not None and loaded[0] is None:
            if here(start, ("tox.toml",)):
                return problem_plan("tox.toml is not read")
            return None
    if path is None or loaded is None:
        return problem_plan("tox.toml is not read") if here(start, ("tox.toml",)) else None
    plan = Plan()
    plan.files.append((path, loaded[1]))
    sep = args.index("--") if "--" in args else -1
    envs = [e for a in args[: sep if sep >= 0 else len(args)] for e in a.split(",") if a]
    _tox(loaded[0], [e for e in envs if e != "ALL"], args[sep + 1 :] if sep >= 0 else None, plan,
         os.path.dirname(path))
    return plan
