"""Archives and compressors: tar, zip, unzip, gzip and its kin, 7z, split."""

from __future__ import annotations

from typing import Final

from tether.classify.argv import parse
from tether.classify.scan import Cmd, Handler, Scan


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


HANDLERS: Final[dict[str, Handler]] = {
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
}
