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

One module per kind of definition: ``manifests`` (package.json, composer.json, deno.json), ``make``,
``just``, ``taskfile``, ``pyproject`` (pdm, hatch, tox); ``definitions`` reads them all.
"""

from __future__ import annotations

import os
from typing import Final

from tether.classify.paths import PH
from tether.classify.scan import Cmd, Scan
from tether.classify.scripts import just, manifests, pyproject, taskfile
from tether.classify.scripts.definitions import Plan, Unreadable, norm, problem_plan

PKG_TOOLS: Final = frozenset({"npm", "yarn", "yarnpkg", "pnpm", "bun"})
RUN_FALLBACK: Final = frozenset({"yarn", "yarnpkg", "pnpm", "bun", "pdm", "hatch"})  # no such script: a command


def plan_for(scan: Scan, cmd: Cmd, tool: str, name: str, args: list[str], where: str | None = None) -> Plan | None:
    """What running project script ``name`` of ``tool`` runs, or None when there is no definition file
    (the caller judges by the name). ``where`` is a folder given on the command line (``--prefix``, ``-C``)."""
    start = norm(scan, where) if where else scan.cwd
    try:
        if tool in PKG_TOOLS or tool in ("composer", "deno task"):
            return manifests.plan(start, tool, name, args)
        if tool == "just":
            return just.plan(start, name, args)
        if tool == "task":
            return taskfile.plan(start, name)
        if tool in ("pdm", "hatch"):
            return pyproject.pdm_or_hatch_plan(start, tool, name, args)
        if tool == "tox":
            return pyproject.tox_plan(start, args)
    except Unreadable as exc:
        return problem_plan(str(exc))
    return None


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
