"""git's configuration: the keys whose value is a command git runs, or that send it elsewhere (hooks, aliases,
credential helpers, transports), and ``git config`` itself."""

from __future__ import annotations

from typing import Final

from tether.classify.argv import parse
from tether.classify.paths import PH
from tether.classify.scan import Cmd, Scan

#: Config keys whose value is a command git runs (or that redirect where git talks to).
_EXEC_KEYS: Final = (
    "core.sshcommand",
    "core.pager",
    "core.editor",
    "core.fsmonitor",
    "core.askpass",
    "core.gitproxy",
    "core.worktree",
    "diff.external",
    "sequence.editor",
    "uploadpack.packobjectshook",
    "gpg.program",
    "include.path",
    "safe.directory",
    "pager.",
    "credential.helper",
    "protocol.",
    "url.",
    "filter.",
    "merge.",
    "difftool.",
    "mergetool.",
    "remote.",
    "includeif.",
    "gpg.",
    "interactive.difffilter",
    "web.browser",
    "browser.",
    "man.",
)
_EXEC_SUFFIXES: Final = (".textconv", ".command", ".driver", ".clean", ".smudge", ".process", ".cmd",
                         ".receivepack", ".uploadpack", ".program", ".proxy")


def git_config_effect(scan: Scan, key: str, value: str, text: str) -> None:
    """What setting ``key`` to ``value`` in git's configuration does."""
    k = key.lower()
    if k == "core.hookspath" or k.startswith("hook."):
        scan.add("tether.control", "changes where git hooks come from (core.hooksPath)", text)
    elif k.startswith("alias."):
        if value.startswith("!") and PH not in value:
            scan.shell(value[1:], text)
        scan.add("unknown", f"defines git alias {key[6:]}", text)
    elif k.startswith("credential."):
        scan.add("secrets.modify", f"changes git credential settings ({key})", text)
    elif k.startswith(_EXEC_KEYS) or k.endswith(_EXEC_SUFFIXES):
        scan.add("unknown", f"sets {key}, which makes git run a command or talk elsewhere", text)


def config(scan: Scan, cmd: Cmd, rest: list[str]) -> None:
    text = cmd.text
    o = parse(rest, "f", frozenset({"--file", "--blob", "--type", "--default", "--comment", "--value"}))
    names = o.names()
    pos = list(o.pos)
    if pos and pos[0] in ("get", "list"):
        scan.add("repo.read", "git config reads", text)
        return
    reading = bool(
        names & {"--get", "--get-all", "--get-regexp", "--list", "-l", "--get-urlmatch", "--get-color",
                 "--get-colorbool", "--show-origin", "--show-scope", "--name-only"}
    )
    if pos and pos[0] in ("set", "unset", "rename-section", "remove-section", "edit"):
        verb = pos.pop(0)
        if verb == "edit":
            names.add("--edit")
        elif verb == "unset":
            names.add("--unset")
        reading = False
    if "--edit" in names or "-e" in names:
        scan.add("unknown", "git config --edit opens an editor", text)
        return
    writing = not reading and (len(pos) >= 2 or bool(names & {"--unset", "--unset-all", "--add", "--replace-all",
                                                                "--remove-section", "--rename-section"}))
    if not writing:
        scan.add("repo.read", "git config reads", text)
        return
    f = o.get("-f", "--file")
    if f:
        scan.path(f, "write", text)
    if pos:
        git_config_effect(scan, pos[0], pos[1] if len(pos) > 1 else "", text)
    if names & {"--global", "--system"}:
        scan.resource("path", scan.home + "/.gitconfig" if "--global" in names else "/etc/gitconfig", "write")
    scan.add("pr.draft", "git config changes repository settings", text)
