"""Flags through which a tool runs a program, writes, reads, loads a library or reaches a host.

One table (``gtfo.txt`` beside this module: our own, its facts from the tools' manuals and the GTFOBins
catalogue, see its header) drives one generic pass that the dispatcher runs before a tool's own handler:
a known flag form that runs a program classifies that program when it is written out, and is ``unknown``
when it is only known at run time; written and read paths are recorded like any other path.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib.resources import files
from typing import Final

from tether.classify.paths import PH
from tether.classify.scan import Cmd, Scan
from tether.classify.urls import is_local

_SHELL_CHARS: Final = frozenset("|&;<>()$`\\\"'*?[#~{}\n")


@dataclass(frozen=True, slots=True)
class Form:
    """One row: the option's value (after ``match``) has ``effect``."""

    match: str
    effect: str
    reason: str


@dataclass(slots=True)
class Tool:
    """Every form of one tool, by how its option is spelled."""

    exact: dict[str, list[Form]]  # -x, --long, -word
    glued: list[tuple[str, list[Form]]]  # -word=: the value glued on
    prefixes: list[tuple[str, list[Form]]]  # @, file://: any argument
    argv: list[Form]  # ARGV: the command from the first positional on
    args: list[Form]  # ARGS: each positional
    verbs: dict[str, list[Form]]  # VERB:word
    values: set[str]  # options that take a value
    clusters: bool = True  # -abx VALUE: only for tools without single-dash long options (gdb -nx, find -fls)


def _load(text: str) -> dict[str, Tool]:
    table: dict[str, Tool] = {}
    for n, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.split(None, 3)
        if len(parts) < 4:
            raise ValueError(f"gtfo.txt:{n}: expected TOOLS OPTION EFFECT REASON")
        names, option, effect, reason = parts
        opt, _, match = option.partition("~")
        form = Form(match.lower(), effect, reason)
        for name in names.split(","):
            t = table.setdefault(name, Tool({}, [], [], [], [], {}, set()))
            if opt.startswith("VALUES:"):
                t.values.update(opt[7:].split(","))
            elif opt == "ARGV":
                t.argv.append(form)
            elif opt == "ARGS":
                t.args.append(form)
            elif opt.startswith("VERB:"):
                t.verbs.setdefault(opt[5:], []).append(form)
            elif not opt.startswith("-"):
                t.prefixes.append((opt, [form]))
            elif opt.endswith("="):
                t.glued.append((opt, [form]))
                t.clusters = False
            else:
                t.exact.setdefault(opt, []).append(form)
                t.clusters = t.clusters and (opt[1] == "-" or len(opt) == 2)
                if effect != "flag":
                    t.values.add(opt)
    return table


TABLE: Final = _load(files("tether.classify").joinpath("gtfo.txt").read_text(encoding="utf-8"))
#: The command names the table knows (the dispatcher's cheap membership test).
TOOLS: Final = frozenset(TABLE)


def flag_effects(scan: Scan, cmd: Cmd) -> None:
    """Add what ``cmd``'s table-listed flags do to ``scan``."""
    tool = TABLE.get(cmd.name)
    if tool is None:
        return
    args = cmd.args
    exact, values = tool.exact, tool.values
    positional: list[int] = []
    i, n = 0, len(args)
    while i < n:
        a = args[i]
        i += 1
        for prefix, forms in tool.prefixes:
            v = a.split("=", 1)[1] if a[:2] == "--" and "=" in a else a
            if v.startswith(prefix):
                _apply(scan, cmd, forms, v[len(prefix) :])
        if a == "--":
            positional.extend(range(i, n))
            break
        if a[:1] != "-" or a == "-":
            positional.append(i - 1)
            continue
        found = exact.get(a)
        if found is not None:
            if found[0].effect == "flag":
                _apply(scan, cmd, found, "")
            elif i < n:
                _apply(scan, cmd, found, args[i])
                i += 1
            continue
        if a in values:
            i += 1
            continue
        name, eq, value = a.partition("=")
        if eq and name in exact:
            _apply(scan, cmd, exact[name], value)
            continue
        if a[1] != "-":
            for opt, forms in tool.glued:
                if a.startswith(opt):
                    _apply(scan, cmd, forms, a[len(opt) :])
            short = exact.get(a[:2])
            if short is not None and short[0].effect != "flag":
                _apply(scan, cmd, short, a[2:])  # -xVALUE
                continue
            last = exact.get("-" + a[-1])
            if last is not None and tool.clusters and a[1:].isalpha() and last[0].effect != "flag" and i < n:
                _apply(scan, cmd, last, args[i])  # -abx VALUE
                i += 1
    if not positional:
        return
    verb = tool.verbs.get(args[positional[0]]) if tool.verbs else None
    if verb:
        _apply(scan, cmd, verb, "")
    if tool.argv:
        _apply(scan, cmd, tool.argv, "", args[positional[0] :])
    for k in positional if tool.args else ():
        _apply(scan, cmd, tool.args, args[k])


def _apply(scan: Scan, cmd: Cmd, forms: list[Form], value: str, argv: list[str] | None = None) -> None:
    for form in forms:
        v = value
        if form.match:
            low = v.lower()
            spaced = form.match.endswith("=") and low.startswith(form.match[:-1] + " ")  # ssh -o 'Key value'
            if not (spaced or low.startswith(form.match)):
                continue
            v = v[len(form.match) :]
        _effect(scan, cmd, form, v.strip() if form.match else v, argv)


def _effect(scan: Scan, cmd: Cmd, form: Form, value: str, argv: list[str] | None) -> None:
    text, effect = cmd.text, form.effect
    what = f"{cmd.name} {form.reason}"
    if effect in ("exec", "shell", "rsh", "run"):
        if argv is not None:
            if any(PH in w for w in argv[:1]):
                scan.add("unknown", f"{what}, only known at run time", text)
            else:
                scan.run(cmd.sub(argv))
            return
        if PH in value:
            scan.add("unknown", f"{what}, only known at run time", text)
        elif not value.strip():
            scan.add("unknown", f"{what}, but names none", text)
        elif effect == "shell" or not _plain(value):
            scan.shell(value, text)
        else:
            sub = Cmd(value.split(), text, None, cmd.env, tail=True)
            if effect == "rsh" and sub.name in ("ssh", "autossh"):
                flag_effects(scan, sub)  # ssh's own command-running options; the host comes from the caller
            else:
                scan.run(sub)
    elif effect in ("code", "lib", "flag"):
        scan.add("unknown", what, text)
    elif effect in ("write", "read", "out"):
        if value and value != "-":
            scan.path(value, "read" if effect == "read" else "write", text)
            if effect == "write":
                scan.add("pr.draft", what, text)
    elif effect == "host":
        host = value.rsplit("@", 1)[-1]
        host = host[1:].split("]", 1)[0] if host.startswith("[") else host.split(":", 1)[0]
        if host and PH not in host:
            scan.host(host)
            if not is_local(host.lower()):
                scan.add("network.egress", f"{what} ({host})", text)
        elif host:
            scan.add("unknown", f"{what}, only known at run time", text)


def _plain(value: str) -> bool:
    """Whether ``value`` is plain words a tool splits itself (no shell syntax)."""
    return _SHELL_CHARS.isdisjoint(value)
