"""find and fd: the roots they list, what ``-exec`` runs, and what ``-delete`` (or ``-exec rm {}``) loses."""

from __future__ import annotations

import os
from typing import Final

from tether.classify.argv import parse
from tether.classify.paths import PH, has_magic
from tether.classify.recover import judge, matches, regenerable_pattern
from tether.classify.scan import Cmd, Handler, Scan

_FIND_VALUE: Final = frozenset(
    {
        "-name",
        "-iname",
        "-path",
        "-ipath",
        "-wholename",
        "-iwholename",
        "-regex",
        "-iregex",
        "-type",
        "-xtype",
        "-maxdepth",
        "-mindepth",
        "-size",
        "-mtime",
        "-mmin",
        "-atime",
        "-amin",
        "-ctime",
        "-cmin",
        "-newer",
        "-anewer",
        "-cnewer",
        "-perm",
        "-user",
        "-group",
        "-uid",
        "-gid",
        "-links",
        "-inum",
        "-samefile",
        "-lname",
        "-ilname",
        "-used",
        "-fstype",
        "-context",
        "-printf",
        "-regextype",
        "-D",
        "-newermt",
        "-newerct",
        "-newerat",
        "-files0-from",
    }
)
_FIND_EXEC: Final = frozenset({"-exec", "-execdir", "-ok", "-okdir"})
_FIND_WRITE: Final = frozenset({"-fprint", "-fprint0", "-fls"})


def _find(scan: Scan, cmd: Cmd) -> None:
    args = cmd.args
    text = cmd.text
    i = 0
    while i < len(args) and args[i] in ("-H", "-L", "-P", "-O0", "-O1", "-O2", "-O3"):
        i += 1
    roots: list[str] = []
    while i < len(args) and not args[i].startswith(("-", "(", "!", ")")) and args[i] not in (",",):
        roots.append(args[i])
        i += 1
    deletes = False
    filtered = False
    execs = False
    names: list[str] = []
    inames: list[str] = []
    rm_found = ""  # -exec rm [-r] {}: judged like -delete
    while i < len(args):
        a = args[i]
        i += 1
        if a == "-delete":
            deletes = True
        elif a in _FIND_EXEC:
            start = i
            while i < len(args) and args[i] not in (";", "+"):
                i += 1
            inner = [PH if "{}" in x else x for x in args[start:i]]
            execs = True
            batch = i < len(args) and args[i] == "+"
            i += 1
            if inner[:1] == ["rm"] and inner[-1:] == [PH] and all(x.startswith("-") for x in inner[1:-1]):
                rm_found = rm_found or ("-r" if any("r" in x.lower() for x in inner[1:-1]) else "-")
            elif inner:
                scan.run(cmd.sub(inner, tail=batch))
        elif a in _FIND_WRITE:
            if i < len(args):
                scan.path(args[i], "write", text)
                scan.add("pr.draft", f"find {a} writes a file", text)
            i += 1
        elif a == "-fprintf":
            if i < len(args):
                scan.path(args[i], "write", text)
                scan.add("pr.draft", "find -fprintf writes a file", text)
            i += 2
        elif a in _FIND_VALUE:
            if a not in ("-maxdepth", "-mindepth", "-D", "-regextype", "-printf"):
                filtered = True
            if a in ("-name", "-iname") and i < len(args):
                names.append(args[i])
                if a == "-iname":
                    inames.append(args[i])
            i += 1
    for r in roots or ["."]:
        scan.path(r, "delete" if deletes and not filtered else "read", text, contents=False)
        if execs or deletes:
            # What -exec/-delete acts on: the names the filters pick (find ~ -name '*.pem' -exec cat).
            for name in names:
                if "/" not in name and PH not in name:
                    scan.path(r.rstrip("/") + "/" + name, "delete" if deletes else "read", text)
    if deletes or rm_found:
        _find_delete(scan, roots or ["."], names, bool(inames), text, rm_found == "-r")
    scan.add("repo.read", "find lists files", text)


def _find_delete(scan: Scan, roots: list[str], names: list[str], icase: bool, text: str, recursive: bool) -> None:
    """What ``find -delete`` (or ``-exec rm {}``) loses: what its ``-name`` filters match (other filters only
    narrow it)."""
    if any(PH in n for n in names):
        scan.add("data.delete", "find -delete deletes files chosen at run time", text)
        return
    for r in roots:
        root = scan.path(r, "read", text, contents=False)
        if root is None or has_magic(root):
            scan.add("data.delete", "find -delete deletes files under a path known at run time", text)
        elif names and all(regenerable_pattern(n) for n in names):
            scan.add("deps.install", f"find -delete deletes regenerable output ({', '.join(names)})", text)
        elif not names:
            judge(scan, root, "find deletes", text, recursive=True)
        elif not os.path.isdir(root):
            scan.add("data.delete", "find -delete deletes files", text)
        else:
            found = False
            for p in matches(root, names, icase):
                found = True
                judge(scan, p, "find deletes", text, recursive=True)  # a matched folder: find goes on inside it
            if not found:
                scan.add("repo.read", f"find -delete matches nothing under {root} now", text)


def _fd(scan: Scan, cmd: Cmd) -> None:
    args = cmd.args
    text = cmd.text
    for k, a in enumerate(args):
        if a in ("-x", "--exec", "-X", "--exec-batch"):
            inner = [PH if "{" in x else x for x in args[k + 1 :] if x != ";"]
            if inner:
                scan.run(cmd.sub(inner, tail=True))
            args = args[:k]
            break
    o = parse(args, "etdEcxXjS", frozenset({"--extension", "--type", "--max-depth", "--exclude", "--size"}))
    for p in o.pos[1:]:
        scan.path(p, "read", text, contents=False)
    scan.add("repo.read", "fd lists files", text)


HANDLERS: Final[dict[str, Handler]] = {
    "find": _find,
    "gfind": _find,
    "fd": _fd,
    "fdfind": _fd,
}
