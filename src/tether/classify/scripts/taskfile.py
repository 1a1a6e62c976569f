"""Task (taskfile.dev): the Taskfile's tasks, their dependencies, calls and dynamic variables."""

from __future__ import annotations

import os
from typing import Any

from tether.classify.paths import PH
from tether.classify.scripts.definitions import Plan, Unreadable, missing, opened, template


def _parse_taskfile(text: str, path: str) -> Any:
    import yaml  # start-up: importing the classifier loads no yaml (test_import_is_light); only a Taskfile needs it

    data = yaml.safe_load(text)
    if not isinstance(data, dict):
        raise Unreadable(f"{path} is not a mapping")
    return data


def _task_sh(value: Any, plan: Plan, folder: str) -> None:
    """Dynamic variables (``sh:``) anywhere in a mapping run when the Taskfile is read."""
    if isinstance(value, dict):
        sh = value.get("sh")
        if isinstance(sh, str):
            plan.line(template(sh), folder)
        for v in value.values():
            if isinstance(v, dict | list):
                _task_sh(v, plan, folder)
    elif isinstance(value, list):
        for v in value:
            _task_sh(v, plan, folder)


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
                plan.line(template(c), here)
            elif c is not None:
                plan.problems.append(f"task {name} has a command tether cannot read")
    return True


def plan(start: str, name: str) -> Plan | None:
    """What ``task NAME`` runs (``default`` without a name); None with no Taskfile."""
    found = opened(start, ("Taskfile.yml", "taskfile.yml", "Taskfile.yaml", "taskfile.yaml", "Taskfile.dist.yml",
                           "Taskfile.dist.yaml"), "task", _parse_taskfile)
    if found is None:
        return None
    plan, data, folder = found
    if data.get("includes"):
        plan.problems.append("the Taskfile includes others, which are not followed")
    _task_sh(data.get("vars"), plan, folder)
    _task_sh(data.get("env"), plan, folder)
    if not _task(data, name or "default", plan, folder, set()):
        return missing("task", name or "default", plan)
    return plan
