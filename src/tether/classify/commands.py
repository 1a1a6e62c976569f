"""The per-tool dispatcher: argv -> action classes; the plain read-only and test-runner tools judged from
their tables (``commands_tables``).

Tools with subcommands or side effects live in their own modules and packages (``files``, ``vcs``, ``pkg``,
``infra``, ``net``, ``db``, ``hostops``, ``interp``, ``wrappers``); each exports ``HANDLERS``.
Anything not known here is ``unknown``.
"""

from __future__ import annotations

from typing import Final

from tether.classify import db, files, gtfo, hostops, infra, interp, net, pkg, vcs, wrappers
from tether.classify.argv import parse
from tether.classify.commands_tables import LISTING, READ_ONLY, READ_PATHS, TESTS
from tether.classify.envvars import SECRET_VAR, env_effects
from tether.classify.paths import PH
from tether.classify.programs import TRACKED, resolve_into, track
from tether.classify.scan import Cmd, Handler, Scan


def _generic_read(scan: Scan, cmd: Cmd, spec: tuple[str, frozenset[str], int]) -> None:
    args = cmd.args
    if not args:
        scan.add("repo.read", f"{cmd.name} reads", cmd.text)
        return
    short_val, long_val, skip = spec
    if cmd.name in ("head", "tail"):
        args = [a for a in args if not (a[:1] == "-" and a[1:].isdigit())]
    o = parse(args, short_val, long_val)
    pos = o.pos
    if skip == -1:
        skip = 0 if o.has("-e", "-f", "--regexp", "--file") else 1
    contents = cmd.name not in LISTING
    for p in pos[skip:]:
        if p != "-":
            scan.path(p, "read", cmd.text, contents=contents)
    for f in o.all("-f", "--file", "--from-file", "--slurpfile", "--rawfile"):
        scan.path(f, "read", cmd.text)
    scan.add("repo.read", f"{cmd.name} reads", cmd.text)


def _read_extra(scan: Scan, cmd: Cmd) -> bool:
    """Side effects hiding in otherwise read-only tools; True when handled."""
    name, args, text = cmd.name, cmd.args, cmd.text
    if name == "sort":
        o = parse(args, "kotST", frozenset({"--output", "--key", "--field-separator", "--buffer-size"}))
        for out in o.all("-o", "--output"):
            scan.path(out, "write", text)
            scan.add("pr.draft", "sort -o writes a file", text)
        for p in o.pos:
            scan.path(p, "read", text)
        scan.add("repo.read", "sort reads", text)
        return True
    if name == "uniq":
        o = parse(args, "fsw", frozenset({"--skip-fields", "--skip-chars", "--check-chars"}))
        if o.pos:
            scan.path(o.pos[0], "read", text)
        if len(o.pos) > 1:
            scan.path(o.pos[1], "write", text)
            scan.add("pr.draft", "uniq writes its output file", text)
        scan.add("repo.read", "uniq reads", text)
        return True
    if name == "tree" and ("-o" in args or any(a.startswith("-o") for a in args)):
        o = parse(args, "LIPHo")
        for out in o.all("-o"):
            scan.path(out, "write", text)
        scan.add("pr.draft", "tree -o writes a file", text)
        return True
    if name == "date" and any(a in ("-s", "--set") or a.startswith(("--set=", "-s")) for a in args):
        scan.add("unknown", "date --set changes the system clock", text)
        return True
    if name == "hostname" and any(not a.startswith("-") or a in ("-F", "--file", "-b") for a in args):
        scan.add("unknown", "hostname changes the host name", text)
        return True
    if name == "sysctl" and any("=" in a or a == "-w" for a in args):
        scan.add("unknown", "sysctl -w changes kernel settings", text)
        return True
    if name in ("less", "more", "man") and any(
        a.startswith("+") or a in ("-P", "--pager", "-H", "--html") or a.startswith(("--pager=", "-P")) for a in args
    ):
        scan.add("unknown", f"{name} runs a command", text)
        return True
    if name in ("xclip", "xsel", "pbcopy", "wl-copy"):
        scan.add("repo.read", "copies to the clipboard", text)
        return True
    if name == "printenv" and any(SECRET_VAR.search(a) for a in args):
        scan.add("secrets.modify", "printenv prints a secret variable", text)
        return True
    if name in ("export", "declare", "typeset", "readonly", "local"):
        if cmd.args and cmd.args[0] in ("-f", "-F") and name in ("declare", "typeset"):
            scan.add("repo.read", f"{name} lists functions", text)
            return True
        scan.add("repo.read", f"{name} sets shell variables", text)
        return True
    return False


def _tests(scan: Scan, cmd: Cmd) -> None:
    scan.add("tests.run", f"{cmd.name} runs tests, linters or builds", cmd.text)


def dispatch(scan: Scan, cmd: Cmd) -> None:
    """Classify one simple command into ``scan``."""
    if cmd.env:
        env_effects(scan, cmd.env, cmd.text, persistent=not cmd.argv)
    if not cmd.argv:
        return
    name = cmd.name
    text = cmd.text
    if not name or PH in name:
        scan.add("unknown", "command name only known at run time", text)
        return
    if "/" in cmd.argv[0] and resolve_into(scan, cmd, name in TESTS or name in pkg.HANDLERS):
        return
    if name in gtfo.TOOLS:
        gtfo.flag_effects(scan, cmd)
    handler = HANDLERS.get(name)
    if handler is not None:
        handler(scan, cmd)
        if name in TRACKED:
            track(scan, cmd)
        return
    if name in ("less", "more", "man") and _read_extra(scan, cmd):
        return
    spec = READ_PATHS.get(name)
    if spec is not None:
        _generic_read(scan, cmd, spec)
        return
    if name in READ_ONLY or name in ("sort", "uniq", "tree", "date", "hostname", "printenv"):
        if not _read_extra(scan, cmd):
            scan.add("repo.read", f"{name} has no side effects", text)
        return
    if name in TESTS:
        _tests(scan, cmd)
        return
    scan.add("unknown", f"unknown command {name}: the classifier does not know what it does", text)
    if "/" in cmd.argv[0]:
        scan.path(cmd.argv[0], "exec", text, kind="script")


HANDLERS: Final[dict[str, Handler]] = {}
for _mod in (wrappers, interp, files, vcs, pkg, infra, net, db, hostops):
    HANDLERS.update(_mod.HANDLERS)
