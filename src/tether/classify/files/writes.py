"""Tools that write, move or delete the files their arguments name: rm, cp, mv, ln, install, tee, touch, mkdir,
chmod and chown, truncate, dd, sponge, yq -i...; what deleting or overwriting loses is ``recover``'s."""

from __future__ import annotations

import os
import re
from typing import Final

from tether.classify.argv import parse
from tether.classify.paths import PH, has_magic, normalize
from tether.classify.programs import where
from tether.classify.recover import judge
from tether.classify.scan import Cmd, Handler, Scan


def _deletes(scan: Scan, cmd: Cmd, targets: list[str], recursive: bool, what: str) -> None:
    """Each target judged by what deleting it loses (``recover``): git restores a tracked, unchanged file; build
    output is rebuilt; anything else is data. Targets chosen at run time (``xargs``, ``-exec ... +``) are data."""
    for t in targets:
        judge(scan, scan.path(t, "delete", cmd.text), f"{cmd.name} deletes", cmd.text, recursive, "pr.draft")
    if cmd.tail or not targets:
        scan.add("data.delete", f"{cmd.name} deletes {what} chosen at run time", cmd.text)


def _rm(scan: Scan, cmd: Cmd) -> None:
    o = parse(cmd.args, "", frozenset({"--interactive"}))
    _deletes(scan, cmd, o.pos, o.has("-r", "-R", "--recursive"), "files")


def _shred(scan: Scan, cmd: Cmd) -> None:
    o = parse(cmd.args, "nsx", frozenset({"--iterations", "--size", "--random-source"}))
    for t in o.pos:
        scan.path(t, "delete", cmd.text)
    scan.add("data.delete", f"{cmd.name} destroys file contents", cmd.text)


def _unlink(scan: Scan, cmd: Cmd) -> None:
    _deletes(scan, cmd, [a for a in cmd.args if not a.startswith("-")], False, "paths")


def _into(dest: str, src: str) -> str:
    base = src.rstrip("/").rsplit("/", 1)[-1]
    return dest.rstrip("/") + "/" + base if base else dest


def _copy_like(scan: Scan, cmd: Cmd, short_val: str, long_val: frozenset[str], src_op: str, verb: str) -> None:
    o = parse(cmd.args, short_val, long_val)
    text = cmd.text
    target = o.get("-t", "--target-directory")
    pos = o.pos
    if target is None:
        if len(pos) < 2 and not cmd.tail:
            if cmd.name == "ln" and pos:
                scan.path(pos[0], "read", text)
                scan.path(_into(".", pos[0]), "write", text)
                scan.add("pr.draft", f"{cmd.name} {verb}", text)
                return
            scan.add("repo.read", f"{cmd.name} without a destination", text)
            return
        if cmd.tail:
            target, srcs = (pos[-1], pos[:-1]) if pos else (PH, [])
        else:
            target, srcs = pos[-1], pos[:-1]
    else:
        srcs = pos
    recursive = o.has("-r", "-R", "-a", "--recursive", "--archive") or cmd.name == "mv"
    tree = recursive and any(s.endswith("/") or has_magic(s) for s in srcs)
    dest: str | None = where(scan, target)
    if dest is not None and PH in dest:
        dest = None
    into = not o.has("-T", "--no-target-directory") and (
        dest is None or len(srcs) > 1 or cmd.tail or target.endswith("/") or os.path.isdir(dest)
    )
    # A relative symlink's target is read from the link's own folder (`ln -s ../README.md docs/`).
    symlink = cmd.name == "ln" and o.has("-s", "--symbolic") and not o.has("-r", "--relative")
    base = (dest if into else os.path.dirname(dest)) if symlink and dest else None
    for s in srcs:
        scan.path(normalize(s, base, "") if base and s[:1] not in ("/", "~") and PH not in s else s, src_op, text)
    if cmd.tail:
        scan.path(PH, src_op, text)
    if not into or tree or dest is None or cmd.tail or any(PH in s for s in srcs):
        # The destination itself is written, or it is all that is known of where the files land; copied into a
        # folder, each file's own path is the destination (`cp a.json conf/` writes conf/a.json, not conf).
        dest = scan.path(target, "write", text, tree=tree)
    if into:
        for s in srcs:
            if PH not in s and PH not in target:
                p = scan.path(_into(target, s), "write", text)
                if cmd.name != "ln" and not has_magic(s):
                    judge(scan, p, "overwrites", text)
    elif cmd.name != "ln" and dest is not None:
        judge(scan, dest, "overwrites", text)
    scan.add("pr.draft", f"{cmd.name} {verb}", text)


def _cp(scan: Scan, cmd: Cmd) -> None:
    _copy_like(scan, cmd, "tS", frozenset({"--target-directory", "--suffix"}), "read", "copies files")


def _mv(scan: Scan, cmd: Cmd) -> None:
    _copy_like(scan, cmd, "tS", frozenset({"--target-directory", "--suffix"}), "delete", "moves files")


def _ln(scan: Scan, cmd: Cmd) -> None:
    _copy_like(scan, cmd, "tS", frozenset({"--target-directory", "--suffix"}), "read", "creates links")


def _install(scan: Scan, cmd: Cmd) -> None:
    o = parse(cmd.args, "gmotSCZ", frozenset({"--group", "--mode", "--owner", "--target-directory", "--suffix"}))
    if o.has("-d", "--directory"):
        for p in o.pos:
            scan.path(p, "write", cmd.text)
        scan.add("pr.draft", "install -d creates directories", cmd.text)
        return
    _copy_like(
        scan,
        cmd,
        "gmotSCZ",
        frozenset({"--group", "--mode", "--owner", "--target-directory"}),
        "read",
        "installs files",
    )


def _tee(scan: Scan, cmd: Cmd) -> None:
    o = parse(cmd.args, "", frozenset({"--output-error"}))
    for p in o.pos:
        written = scan.path(p, "write", cmd.text)
        if not o.has("-a", "--append"):
            judge(scan, written, "overwrites", cmd.text)
    scan.add("pr.draft" if o.pos else "repo.read", "tee writes files" if o.pos else "tee to stdout", cmd.text)


def _touch(scan: Scan, cmd: Cmd) -> None:
    o = parse(cmd.args, "dtr", frozenset({"--date", "--reference", "--time"}))
    for p in o.pos:
        scan.path(p, "write", cmd.text)
    scan.add("pr.draft", f"{cmd.name} creates or updates files", cmd.text)


def _mkdir(scan: Scan, cmd: Cmd) -> None:
    o = parse(cmd.args, "mZ", frozenset({"--mode", "--context"}))
    for p in o.pos:
        scan.path(p, "write", cmd.text)
    scan.add("pr.draft", f"{cmd.name} creates directories", cmd.text)


_SETUID: Final = re.compile(r"^(?:[0-7]?[2467][0-7]{3}|[ugoa]*[+=][rwxXt]*s[rwxXst]*)$")


def _chmod(scan: Scan, cmd: Cmd) -> None:
    args = [a for a in cmd.args if not (a.startswith("-") and a[1:2] in ("r", "w", "x", "X", "s", "t"))]
    modes = [a for a in cmd.args if a.startswith("-") and a[1:2] in ("r", "w", "x", "X")]
    o = parse(args, "", frozenset({"--reference"}))
    text = cmd.text
    pos = o.pos
    if o.get("--reference") is None and pos:
        mode, pos = pos[0], pos[1:]
    else:
        mode = modes[0] if modes else ""
    for p in pos:
        scan.path(p, "write", text)
    if cmd.name == "chmod" and _SETUID.match(mode):
        scan.add("auth.modify", "chmod sets a setuid/setgid bit", text)
    elif cmd.name in ("chown", "chgrp"):
        scan.add("auth.modify", f"{cmd.name} changes file ownership", text)
    else:
        scan.add("pr.draft", "chmod changes file permissions", text)


def _chattr(scan: Scan, cmd: Cmd) -> None:
    for p in cmd.args:
        if not p.startswith(("+", "-", "=")):
            scan.path(p, "write", cmd.text)
    scan.add("unknown", f"{cmd.name} changes file attributes", cmd.text)


def _setfacl(scan: Scan, cmd: Cmd) -> None:
    o = parse(cmd.args, "mMxX", frozenset({"--modify", "--remove", "--set", "--modify-file", "--set-file"}))
    for p in o.pos:
        scan.path(p, "write", cmd.text)
    scan.add("auth.modify", "setfacl changes access-control lists", cmd.text)


def _truncate(scan: Scan, cmd: Cmd) -> None:
    o = parse(cmd.args, "sr", frozenset({"--size", "--reference"}))
    size = o.get("-s", "--size") or ""
    grows = size[:1] in ("+", ">") and o.get("-r", "--reference") is None
    for p in o.pos:
        written = scan.path(p, "write", cmd.text)
        if not grows:
            judge(scan, written, "truncates", cmd.text)
    scan.add("pr.draft", "truncate resizes files", cmd.text)


def _dd(scan: Scan, cmd: Cmd) -> None:
    text = cmd.text
    for a in cmd.args:
        key, _, val = a.partition("=")
        if key == "if" and val:
            scan.path(val, "read", text)
        elif key == "of" and val:
            if val.startswith("/dev/") and val not in ("/dev/null", "/dev/stdout", "/dev/stderr"):
                scan.add("data.delete", f"dd overwrites device {val}", text)
            else:
                judge(scan, scan.path(val, "write", text), "overwrites", text)
                scan.add("pr.draft", "dd writes a file", text)
    scan.add("repo.read", "dd copies data", text)


def _sponge(scan: Scan, cmd: Cmd) -> None:
    for p in cmd.args:
        if not p.startswith("-"):
            written = scan.path(p, "write", cmd.text)
            if "-a" not in cmd.args:
                judge(scan, written, "overwrites", cmd.text)
    scan.add("pr.draft", "sponge writes a file", cmd.text)


def _yq(scan: Scan, cmd: Cmd) -> None:
    o = parse(cmd.args, "IoP", frozenset({"--indent", "--output-format", "--input-format", "--front-matter"}))
    inplace = o.has("-i", "--inplace")
    for p in o.pos[1:]:
        scan.path(p, "write" if inplace else "read", cmd.text)
    scan.add("pr.draft" if inplace else "repo.read", "yq -i edits files" if inplace else "yq reads", cmd.text)


def _simple_write(reason: str) -> Handler:
    def handle(scan: Scan, cmd: Cmd) -> None:
        for p in cmd.args:
            if not p.startswith("-"):
                scan.path(p, "write", cmd.text)
        scan.add("pr.draft", f"{cmd.name} {reason}", cmd.text)

    return handle


HANDLERS: Final[dict[str, Handler]] = {
    "rm": _rm,
    "srm": _shred,
    "shred": _shred,
    "wipe": _shred,
    "unlink": _unlink,
    "rmdir": _unlink,
    "cp": _cp,
    "gcp": _cp,
    "mv": _mv,
    "ln": _ln,
    "install": _install,
    "tee": _tee,
    "touch": _touch,
    "mkdir": _mkdir,
    "chmod": _chmod,
    "chown": _chmod,
    "chgrp": _chmod,
    "chattr": _chattr,
    "setfacl": _setfacl,
    "truncate": _truncate,
    "dd": _dd,
    "sponge": _sponge,
    "yq": _yq,
    "mkfifo": _simple_write("creates a named pipe"),
    "mknod": _simple_write("creates a device node"),
    "fallocate": _simple_write("allocates a file"),
    "mktemp": _simple_write("creates a temporary file"),
}
