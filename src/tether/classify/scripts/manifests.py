"""Scripts in JSON manifests: ``package.json`` (npm, yarn, pnpm, bun: with its ``pre``/``post`` hooks),
``composer.json`` (its ``@`` references followed) and ``deno.json`` (tasks)."""

from __future__ import annotations

import json
import shlex
from typing import Any

from tether.classify.scripts.definitions import Plan, Unreadable, missing, opened


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


def plan(start: str, tool: str, name: str, args: list[str]) -> Plan | None:
    """What script ``name`` of ``tool`` (a package manager, ``composer`` or ``deno task``) runs; None with no
    manifest."""
    names = {"composer": ("composer.json",), "deno task": ("deno.json", "deno.jsonc")}.get(tool, ("package.json",))
    found = opened(start, names, "json", _json)
    if found is None:
        return None
    plan, data, folder = found
    if tool == "composer":
        known = _composer(data, name, args, plan, folder, set())
    elif tool == "deno task":
        tasks = data.get("tasks")
        body = tasks.get(name) if isinstance(tasks, dict) else None
        known = body is not None
        if isinstance(body, dict):
            body = body.get("command")
        if isinstance(body, str):
            plan.line(body + ((" " + shlex.join(args)) if args else ""), folder)
        elif known:
            plan.problems.append(f"deno task {name} has a form tether cannot read")
    else:
        known = _pkg_plan(plan, data, folder, name, args, tool)
    return plan if known else missing(tool, name, plan)
