"""Tools that write, move or delete files: rm, cp, mv, ln, install, tee, sed -i, dd, tar, find, ..."""

from __future__ import annotations

import os
import re
from typing import Final

from tether.classify.argv import parse
from tether.classify.paths import PH, has_magic, is_claude_settings, normalize
from tether.classify.programs import read_text, where
from tether.classify.recover import judge, matches, regenerable_pattern, rewrite
from tether.classify.scan import Cmd, Handler, Scan

_E: Final[frozenset[str]] = frozenset()


def _rm(scan: Scan, cmd: Cmd) -> None:
    """Judged by what can be undone (``recover``): git restores a tracked, unchanged file; build output
    is rebuilt; anything else is data."""
    o = parse(cmd.args, "", frozenset({"--interactive"}))
    text = cmd.text
    recursive = o.has("-r", "-R", "--recursive")
    for t in o.pos:
        judge(scan, scan.path(t, "delete", text), f"{cmd.name} deletes", text, recursive, "pr.draft")
    if cmd.tail or not o.pos:
        scan.add("data.delete", f"{cmd.name} deletes files chosen at run time", text)


def _shred(scan: Scan, cmd: Cmd) -> None:
    o = parse(cmd.args, "nsx", frozenset({"--iterations", "--size", "--random-source"}))
    for t in o.pos:
        scan.path(t, "delete", cmd.text)
    scan.add("data.delete", f"{cmd.name} destroys file contents", cmd.text)


def _unlink(scan: Scan, cmd: Cmd) -> None:
    targets = [a for a in cmd.args if not a.startswith("-")]
    for t in targets:
        judge(scan, scan.path(t, "delete", cmd.text), f"{cmd.name} deletes", cmd.text, False, "pr.draft")
    if cmd.tail or not targets:
        scan.add("data.delete", f"{cmd.name} deletes paths chosen at run time", cmd.text)


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


# ------------------------------------------------------------------------------------------- sed

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


# -------------------------------------------------------------------------------------- archives


def _tar(scan: Scan, cmd: Cmd) -> None:
    args = list(cmd.args)
    text = cmd.text
    if args and not args[0].startswith("-") and args[0].isalpha():
        args[0] = "-" + args[0]
    longs = frozenset(
        {
            "--file",
            "--directory",
            "--exclude",
            "--use-compress-program",
            "--to-command",
            "--transform",
            "--checkpoint-action",
            "--info-script",
            "--new-volume-script",
            "--rsh-command",
            "--owner",
            "--group",
            "--mode",
            "--files-from",
            "--exclude-from",
            "--format",
            "--strip-components",
        }
    )
    o = parse(args, "fCIFTXbHVLK", longs)
    names = o.names()
    for risky in (
        "--to-command",
        "--use-compress-program",
        "--checkpoint-action",
        "--info-script",
        "--new-volume-script",
        "--rsh-command",
        "-I",
        "-F",
    ):
        if risky in names:
            scan.add("unknown", f"tar {risky} runs a command", text)
    archive = o.get("-f", "--file")
    directory = o.get("-C", "--directory")
    if o.has("-x", "--extract", "--get"):
        if archive:
            scan.path(archive, "read", text)
        scan.path(directory or ".", "write", text, tree=True)
        for p in o.pos:
            scan.path(p if directory is None else directory.rstrip("/") + "/" + p, "write", text)
        scan.add("pr.draft", "tar extracts files", text)
    elif o.has("-c", "--create", "-r", "--append", "-u", "--update", "-A", "--concatenate"):
        if archive and archive != "-":
            scan.path(archive, "write", text)
        base = directory.rstrip("/") + "/" if directory else ""
        for p in o.pos:
            scan.path(base + p if not p.startswith("/") else p, "read", text)
        if o.has("--remove-files"):
            scan.add("data.delete", "tar --remove-files deletes the originals", text)
        scan.add("pr.draft", "tar writes an archive", text)
    else:
        if archive:
            scan.path(archive, "read", text)
        scan.add("repo.read", "tar lists an archive", text)


def _zip(scan: Scan, cmd: Cmd) -> None:
    o = parse(cmd.args, "bnPtxiO", frozenset({"--password", "--unzip-command", "--temp-path"}))
    text = cmd.text
    if o.has("-T", "--test") and ("-TT" in cmd.args or o.get("--unzip-command")):
        scan.add("unknown", "zip -TT runs a command", text)
    if o.pos:
        scan.path(o.pos[0], "write", text)
    for p in o.pos[1:]:
        scan.path(p, "delete" if o.has("-m", "--move") else "read", text)
    scan.add("pr.draft", "zip writes an archive", text)


def _unzip(scan: Scan, cmd: Cmd) -> None:
    o = parse(cmd.args, "dxP", frozenset())
    text = cmd.text
    if o.pos:
        scan.path(o.pos[0], "read", text)
    if o.has("-l", "-v", "-t", "-Z", "-z") or o.has("-p", "-c"):
        scan.add("repo.read", "unzip lists or prints", text)
        return
    scan.path(o.get("-d") or ".", "write", text, tree=True)
    scan.add("pr.draft", "unzip extracts files", text)


def _compress(scan: Scan, cmd: Cmd) -> None:
    o = parse(cmd.args, "SbTF", frozenset({"--suffix", "--threads", "--format"}))
    text = cmd.text
    if o.has("-c", "--stdout", "-l", "--list", "-t", "--test", "--to-stdout") or cmd.name in ("zcat",):
        for p in o.pos:
            scan.path(p, "read", text)
        scan.add("repo.read", f"{cmd.name} to stdout", text)
        return
    for p in o.pos:
        scan.path(p, "write", text)
    scan.add("pr.draft", f"{cmd.name} replaces files with their (de)compressed form", text)


def _7z(scan: Scan, cmd: Cmd) -> None:
    verb = cmd.args[0] if cmd.args else ""
    rest = [a for a in cmd.args[1:] if not a.startswith("-")]
    text = cmd.text
    if verb in ("l", "t", "i", "h", "b"):
        scan.add("repo.read", "7z lists or tests", text)
        return
    for p in rest[:1]:
        scan.path(p, "write" if verb in ("a", "u", "d", "rn") else "read", text)
    out = next((a[2:] for a in cmd.args if a.startswith("-o")), ".")
    if verb in ("x", "e"):
        scan.path(out, "write", text, tree=True)
    scan.add("data.delete" if verb == "d" else "pr.draft", f"7z {verb}", text)


def _split(scan: Scan, cmd: Cmd) -> None:
    o = parse(cmd.args, "abCdlnt", frozenset({"--bytes", "--lines", "--number", "--suffix-length"}))
    if o.pos:
        scan.path(o.pos[0], "read", cmd.text)
    scan.path(o.pos[1] if len(o.pos) > 1 else "x", "write", cmd.text)
    scan.add("pr.draft", f"{cmd.name} writes pieces of a file", cmd.text)


_PATCH_FILE: Final = re.compile(r"^(?:\+\+\+|---) (?:[ab]/)?(\S+)", re.M)
#: Files a git diff writes with no ---/+++ line: renames, copies, binary patches.
_PATCH_GIT: Final = re.compile(r"^(?:diff --git \S+ (?:b/)?|rename to |copy to )(\S+)", re.M)


def patch_targets(scan: Scan, patch: str, text: str, strip_prefix: bool = True) -> int:
    """Record the files a unified diff writes; how many it names (none: not a patch the classifier reads)."""
    n = 0
    for rx in (_PATCH_FILE, _PATCH_GIT):
        for m in rx.finditer(patch):
            path = m.group(1)
            if path != "/dev/null":
                scan.path(path, "write", text)
                n += 1
    return n


def patch_file(scan: Scan, raw: str, text: str) -> str | None:
    """The text of the patch file ``raw``, read now (``programs.read_text``: small text files, cached); None
    when it is only known at run time, written earlier in this command, or not readable text."""
    p = scan.path(raw, "read", text)
    return None if p is None or scan.wrote(p) else read_text(p)


_CODEX_PATCH: Final = re.compile(r"^\*\*\* (Add|Update|Delete) File: (.+?)\s*$|^\*\*\* Move to: (.+?)\s*$", re.M)


def apply_patch_effects(scan: Scan, patch: str, text: str) -> None:
    """Files a Codex ``apply_patch`` envelope adds, updates, moves or deletes."""
    touched: list[str] = []
    found = list(_CODEX_PATCH.finditer(patch))
    for i, m in enumerate(found):
        verb, path, moved = m.group(1), m.group(2), m.group(3)
        touched.append(moved or path)
        if moved:  # the file moves onto this path: what is there now is replaced whole
            rewrite(scan, scan.path(moved, "write", text), "apply_patch moves a file onto", text)
        elif verb == "Delete":
            judge(scan, scan.path(path, "delete", text), "apply_patch deletes", text)
        else:
            # judged by what its lines take away, as a Write or an Edit is (recover.rewrite)
            body = patch[m.end() : found[i + 1].start() if i + 1 < len(found) else len(patch)].splitlines()
            added = "\n".join(line[1:] for line in body if line[:1] == "+")
            p = scan.path(path, "write", text)
            if verb == "Add":
                rewrite(scan, p, "apply_patch replaces", text, added)
            else:
                removed = "\n".join(line[1:] for line in body if line[:1] == "-")
                rewrite(scan, p, "apply_patch takes away most of", text, edits=[(removed, added, False)])
    if not touched:
        if patch.lstrip().startswith(("---", "diff ", "Index:")):
            patch_targets(scan, patch, text)
            touched = [m.group(1) for m in _PATCH_FILE.finditer(patch)]
        else:
            scan.fail("apply_patch input is not a patch", text)
    if "disableallhooks" in patch.lower() and any(
        is_claude_settings(p) or p.lower().endswith((".json", ".jsonc")) for p in touched
    ):
        scan.add("tether.control", "patch writes disableAllHooks into a settings file", text)
    scan.add("pr.draft", "apply_patch edits files", text)


def _apply_patch(scan: Scan, cmd: Cmd) -> None:
    body = cmd.args[0] if cmd.args else (cmd.stdin or "")
    if PH in body:
        scan.add("unknown", "apply_patch with a patch only known at run time", cmd.text)
        return
    apply_patch_effects(scan, body, cmd.text)


def _patch(scan: Scan, cmd: Cmd) -> None:
    o = parse(cmd.args, "pdiBDFoVrYzg", frozenset({"--input", "--directory", "--output", "--strip"}))
    text = cmd.text
    src = o.get("-i", "--input")
    out = o.get("-o", "--output")
    if out is not None:
        scan.path(out, "write", text)
    if o.pos:
        scan.path(o.pos[0], "write", text)
        if len(o.pos) > 1:
            scan.path(o.pos[1], "read", text)
        scan.add("pr.draft", "patch edits files", text)
        return
    body = cmd.stdin if src is None else patch_file(scan, src, text)
    # -d: names relative to another folder; unread, or naming nothing: the files are not known
    seen = body is not None and PH not in body and o.get("-d", "--directory") is None
    if not (seen and patch_targets(scan, str(body), text)) and not o.has("--dry-run"):
        scan.add("unknown", "patch writes files named in a patch the classifier cannot see", text)
    scan.add("pr.draft", "patch edits files", text)


# ------------------------------------------------------------------------------------------ find

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
    "sed": _sed,
    "gsed": _sed,
    "tar": _tar,
    "gtar": _tar,
    "bsdtar": _tar,
    "zip": _zip,
    "unzip": _unzip,
    "gzip": _compress,
    "gunzip": _compress,
    "bzip2": _compress,
    "bunzip2": _compress,
    "xz": _compress,
    "unxz": _compress,
    "zstd": _compress,
    "unzstd": _compress,
    "lz4": _compress,
    "brotli": _compress,
    "compress": _compress,
    "uncompress": _compress,
    "7z": _7z,
    "7za": _7z,
    "split": _split,
    "csplit": _split,
    "patch": _patch,
    "apply_patch": _apply_patch,
    "applypatch": _apply_patch,
    "find": _find,
    "gfind": _find,
    "fd": _fd,
    "fdfind": _fd,
    "sponge": _sponge,
    "yq": _yq,
    "mkfifo": _simple_write("creates a named pipe"),
    "mknod": _simple_write("creates a device node"),
    "fallocate": _simple_write("allocates a file"),
    "mktemp": _simple_write("creates a temporary file"),
}
