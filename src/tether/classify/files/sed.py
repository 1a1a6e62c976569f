"""sed: in-place edits, and the scripts that run commands or write files (``e``, ``w``, ``s///e``)."""

from __future__ import annotations

import re
from typing import Final

from tether.classify.argv import parse
from tether.classify.paths import PH
from tether.classify.scan import Cmd, Handler, Scan

_SED_ADDR: Final = re.compile(r"\s*(?:\d+|\$|/(?:[^/\\\n]|\\.)*/[IM]*|\\(.)(?:(?!\1).)*\1[IM]*)(?:~\d+)?\s*")


def sed_risky(script: str) -> bool:
    """Whether a sed script runs commands (``e``, ``s///e``) or writes files (``w``, ``s///w``)."""
    i, n = 0, len(script)
    while i < n:
        ch = script[i]
        if ch in " \t\n;{}!":
            i += 1
            continue
        if ch == "#":
            nl = script.find("\n", i)
            i = n if nl < 0 else nl + 1
            continue
        m = _SED_ADDR.match(script, i)
        if m and m.end() > i:
            i = m.end()
            if i < n and script[i] == ",":
                i += 1
                m = _SED_ADDR.match(script, i)
                if m:
                    i = m.end()
            continue
        if ch in "ewW":
            return True
        if ch in "sy" and i + 1 < n:
            delim = script[i + 1]
            j = i + 2
            parts = 0
            while j < n and parts < 2:
                c = script[j]
                if c == "\\":
                    j += 2
                    continue
                if c == delim:
                    parts += 1
                j += 1
            k = j
            while k < n and script[k] not in ";\n}":
                if ch == "s" and script[k] in "ew":
                    return True
                k += 1
            i = k
            continue
        if ch in "aic":
            nl = script.find("\n", i)
            i = n if nl < 0 else nl + 1
            continue
        if ch in "rR:":
            nl = script.find("\n", i)
            i = n if nl < 0 else nl + 1
            continue
        if ch in "btTvlqQ":
            ends = [p for p in (script.find(";", i), script.find("\n", i), script.find("}", i)) if p >= 0]
            i = min(ends) if ends else n
            continue
        i += 1
    return False


def _sed(scan: Scan, cmd: Cmd) -> None:
    args = list(cmd.args)
    text = cmd.text
    inplace = False
    for k, a in enumerate(args):
        if a == "-i" or a.startswith("-i") or a.startswith("--in-place"):
            inplace = True
            if a == "-i" and k + 1 < len(args) and args[k + 1] == "":
                args[k + 1] = "--in-place"
    cleaned = [a for a in args if not (a.startswith("-i") or a.startswith("--in-place"))]
    o = parse(cleaned, "efl", frozenset({"--expression", "--file", "--line-length"}))
    scripts = o.all("-e", "--expression")
    pos = o.pos
    if not scripts and not o.all("-f", "--file"):
        scripts, pos = pos[:1], pos[1:]
    for f in o.all("-f", "--file"):
        scan.path(f, "read", text)
        scan.add("unknown", "sed runs a script from a file", text)
    for s in scripts:
        if PH in s:
            scan.add("unknown", "sed script only known at run time", text)
        elif sed_risky(s):
            scan.add("unknown", "sed script runs commands or writes files", text)
    for p in pos:
        scan.path(p, "write" if inplace else "read", text)
    if inplace and cmd.tail:
        scan.path(PH, "write", text)
    if inplace:
        scan.add("pr.draft", "sed -i edits files", text)
    else:
        scan.add("repo.read", "sed prints", text)


HANDLERS: Final[dict[str, Handler]] = {
    "sed": _sed,
    "gsed": _sed,
}
