"""Patches: the files a unified diff or a Codex ``apply_patch`` envelope writes, moves or deletes (patch,
apply_patch; ``git apply`` reads them through here too)."""

from __future__ import annotations

import re
from typing import Final

from tether.classify.argv import parse
from tether.classify.paths import PH, is_claude_settings
from tether.classify.programs import read_text
from tether.classify.recover import judge, rewrite
from tether.classify.scan import Cmd, Handler, Scan

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


HANDLERS: Final[dict[str, Handler]] = {
    "patch": _patch,
    "apply_patch": _apply_patch,
    "applypatch": _apply_patch,
}
