"""git's subcommands: what each reads, changes locally, discards or runs; ``-C``, ``--git-dir`` and ``-c``
handled first. Pushes are ``remotes``', configuration ``config``'s."""

from __future__ import annotations

from typing import Final

from tether.classify.argv import parse
from tether.classify.files.patches import patch_file, patch_targets
from tether.classify.paths import PH
from tether.classify.scan import Cmd, Handler, Scan
from tether.classify.vcs.config import config, git_config_effect
from tether.classify.vcs.remotes import protected, push, record_remote

_GIT_READ: Final = frozenset(
    {
        "status", "log", "diff", "show", "blame", "annotate", "shortlog", "describe", "rev-parse", "rev-list",
        "ls-files", "ls-tree", "ls-remote", "cat-file", "grep", "whatchanged", "show-ref", "show-branch",
        "name-rev", "merge-base", "for-each-ref", "count-objects", "fsck", "verify-commit", "verify-tag",
        "check-ignore", "check-attr", "check-ref-format", "check-mailmap", "cherry", "range-diff", "help",
        "version", "var", "request-pull", "diff-tree", "diff-index", "diff-files", "fast-export", "column",
        "get-tar-commit-id", "unpack-file", "verify-pack", "show-index", "stripspace", "interpret-trailers",
        "fetch-pack", "merge-tree", "patch-id", "bugreport", "diagnose",
    }
)
_GIT_DRAFT: Final = frozenset(
    {
        "add", "mv", "cherry-pick", "revert", "init", "commit-tree", "update-index", "read-tree", "write-tree",
        "hash-object", "mktree", "mktag", "pack-refs", "maintenance", "sparse-checkout", "format-patch",
        "merge-file", "repack", "replace", "rerere", "stage", "citool", "fetch", "pull", "merge", "rebase",
        "restore", "switch", "checkout", "notes", "worktree", "stash", "tag", "branch", "remote", "commit",
        "bisect", "archive", "bundle", "gc",
    }
)
_GIT_UNKNOWN: Final = {
    "filter-branch": "rewrites history",
    "filter-repo": "rewrites history",
    "daemon": "serves repositories over the network",
    "instaweb": "starts a web server",
    "imap-send": "uploads patches to a mail server",
    "mergetool": "runs a configured merge tool",
    "difftool": "runs a configured diff tool",
    "hook": "runs a hook",
    "gui": "starts a GUI",
    "gitk": "starts a GUI",
    "shell": "runs a restricted shell",
    "upload-pack": "serves a repository",
    "receive-pack": "receives a push",
    "http-backend": "serves a repository",
    "fast-import": "rewrites objects",
    "p4": "talks to Perforce",
    "svn": "talks to Subversion",
    "cvsserver": "serves CVS",
    "quiltimport": "applies patches",
    "web--browse": "starts a browser",
    "am": "applies mailed patches",
}
_NO_VERIFY_SUBS: Final = frozenset({"commit", "push", "merge", "pull", "rebase", "am", "cherry-pick", "revert"})
_COMMIT_SHORT: Final = "mFCct"
_COMMIT_LONG: Final = frozenset(
    {"--message", "--file", "--reuse-message", "--reedit-message", "--template", "--author", "--date",
     "--trailer", "--cleanup", "--fixup", "--squash", "--pathspec-from-file"}
)


def _git_commit(scan: Scan, cmd: Cmd, rest: list[str]) -> None:
    o = parse(rest, _COMMIT_SHORT, _COMMIT_LONG)
    for f in o.all("-F", "--file"):
        if f != "-":
            scan.path(f, "read", cmd.text)
    scan.add("pr.draft", "git commit records a local commit", cmd.text)


def _git_pathspecs(scan: Scan, cmd: Cmd, pos: list[str], op: str) -> bool:
    """Record pathspecs; True when one of them covers the whole tree or a wildcard."""
    broad = False
    for p in pos:
        if p in (".", ":/", "*", ":") or p.startswith(":(") or "*" in p or PH in p:
            broad = True
        if not p.startswith(":"):
            scan.path(p, op, cmd.text)
    return broad


def _git_sub(scan: Scan, cmd: Cmd, sub: str, rest: list[str]) -> None:
    text = cmd.text
    if sub in _NO_VERIFY_SUBS and ("--no-verify" in rest or (sub == "commit" and _commit_no_verify(rest))):
        scan.add("tether.control", f"git {sub} --no-verify skips the hooks", text)
    if sub == "push":
        push(scan, cmd, rest)
    elif sub == "commit":
        _git_commit(scan, cmd, rest)
    elif sub == "config":
        config(scan, cmd, rest)
    elif sub in _GIT_READ:
        if sub == "diff" and any(a.startswith("--output") for a in rest):
            scan.add("pr.draft", "git diff --output writes a file", text)
        elif sub == "ls-remote":
            for r in rest:
                record_remote(scan, r)
        scan.add("repo.read", f"git {sub} only reads", text)
    elif sub in ("clean",):
        o = parse(rest, "eo", frozenset({"--exclude"}))
        if o.has("-n", "--dry-run"):
            scan.add("repo.read", "git clean --dry-run", text)
        elif o.has("-i", "--interactive"):
            scan.add("unknown", "git clean -i is interactive", text)
        elif o.has("-f", "--force"):
            _git_pathspecs(scan, cmd, o.pos, "delete")
            scan.add("data.delete", "git clean -f deletes untracked files", text)
        else:
            scan.add("repo.read", "git clean without --force does nothing", text)
    elif sub == "reset":
        if "--hard" in rest:
            scan.add("data.delete", "git reset --hard discards uncommitted work", text)
        else:
            scan.add("pr.draft", "git reset moves HEAD or unstages", text)
    elif sub in ("checkout", "switch", "restore"):
        _git_checkout(scan, cmd, sub, rest)
    elif sub == "rm":
        o = parse(rest, "", frozenset({"--pathspec-from-file"}))
        _git_pathspecs(scan, cmd, o.pos, "delete")
        if o.has("-f", "--force") and not o.has("--cached"):
            scan.add("data.delete", "git rm -f deletes files with local changes", text)
        else:
            scan.add("pr.draft", "git rm removes tracked files", text)
    elif sub == "stash":
        verb = rest[0] if rest else "push"
        if verb in ("drop", "clear"):
            scan.add("data.delete", f"git stash {verb} deletes stashed work", text)
        elif verb in ("list", "show"):
            scan.add("repo.read", f"git stash {verb}", text)
        else:
            scan.add("pr.draft", f"git stash {verb}", text)
    elif sub == "branch":
        o = parse(rest, "utc", frozenset({"--set-upstream-to", "--contains", "--merged", "--no-merged",
                                            "--points-at", "--sort", "--format", "--color"}))
        if o.has("-d", "-D", "--delete", "-m", "-M", "--move", "-c", "-C", "--copy", "-u", "--set-upstream-to",
                 "--unset-upstream", "--edit-description", "-f", "--force") or (
            o.pos and not o.has("-l", "--list", "-a", "-r", "--all", "--remotes", "--contains", "--merged")
        ):
            for b in o.pos:
                scan.resource("branch", b, "write")
            moving = o.has("-d", "-D", "--delete", "-m", "-M", "--move", "-f", "--force")
            hit = [b for b in (o.pos if moving else o.pos[:1]) if protected(scan, b)]
            if hit and o.has("-d", "-D", "--delete"):
                scan.add("data.delete", f"git branch deletes protected branch {hit[0]}", text)
            elif hit and (moving or o.has("-C", "-c", "--copy")):
                scan.add("data.delete", f"git branch moves or overwrites protected branch {hit[0]}", text)
            elif o.has("-D") or (o.has("-d", "--delete") and o.has("-f", "--force")):
                scan.add("pr.draft", "git branch -D deletes local branches (their commits stay in the reflog)", text)
            scan.add("pr.draft", "git branch changes local branches", text)
        else:
            scan.add("repo.read", "git branch lists branches", text)
    elif sub == "tag":
        o = parse(rest, "mFu", frozenset({"--message", "--file", "--local-user", "--sort", "--contains",
                                           "--points-at", "--format"}))
        if o.has("-l", "--list", "-n", "-v", "--verify") or not (o.pos or o.has("-d", "--delete")):
            scan.add("repo.read", "git tag lists tags", text)
        elif o.has("-d", "--delete"):
            scan.add("data.delete", "git tag -d deletes release tags", text)
        elif o.has("-f", "--force"):
            scan.add("data.delete", "git tag -f moves an existing tag", text)
        else:
            scan.add("pr.draft", "git tag changes local tags", text)
    elif sub == "remote":
        verb = next((r for r in rest if not r.startswith("-")), "")
        for r in rest:
            record_remote(scan, r)
        if verb in ("add", "set-url", "remove", "rm", "rename", "prune", "set-head", "set-branches"):
            scan.add("pr.draft", f"git remote {verb} changes remotes", text)
        else:
            scan.add("repo.read", "git remote lists remotes", text)
    elif sub == "clone":
        _git_clone(scan, cmd, rest)
    elif sub in ("fetch", "pull"):
        o = parse(rest, "oj", frozenset({"--upload-pack", "--depth", "--jobs", "--server-option", "--shallow-since",
                                          "--refmap", "--negotiation-tip", "--recurse-submodules"}))
        if o.has("--upload-pack"):
            scan.add("unknown", f"git {sub} --upload-pack runs a remote command", text)
        if o.pos:
            record_remote(scan, o.pos[0])
        if sub == "fetch":
            scan.add("repo.read", "git fetch downloads refs", text)
        else:
            scan.add("pr.draft", "git pull merges remote work", text)
    elif sub == "rebase":
        o = parse(rest, "xsX", frozenset({"--exec", "--onto", "--strategy", "--strategy-option"}))
        for c in o.all("-x", "--exec"):
            scan.shell(c, text)
        scan.add("pr.draft", "git rebase rewrites local commits", text)
    elif sub == "apply":
        _git_apply(scan, cmd, rest)
    elif sub == "reflog":
        verb = rest[0] if rest else "show"
        if verb in ("expire", "delete", "drop"):
            scan.add("data.delete", f"git reflog {verb} drops recovery points", text)
        else:
            scan.add("repo.read", "git reflog", text)
    elif sub == "prune" or (sub == "gc" and any(a.startswith("--prune") and a != "--no-prune" for a in rest)):
        scan.add("data.delete", f"git {sub} deletes unreachable objects", text)
    elif sub == "update-ref":
        if "-d" in rest or "--stdin" in rest:
            scan.add("data.delete", "git update-ref -d deletes a ref", text)
        else:
            scan.add("pr.draft", "git update-ref moves a ref", text)
    elif sub == "symbolic-ref":
        pos = [a for a in rest if not a.startswith("-")]
        if len(pos) > 1 or "-d" in rest or "--delete" in rest:
            scan.add("pr.draft", "git symbolic-ref changes a ref", text)
        else:
            scan.add("repo.read", "git symbolic-ref reads", text)
    elif sub == "submodule":
        _git_submodule(scan, cmd, rest)
    elif sub == "worktree":
        verb = rest[0] if rest else ""
        if verb == "list":
            scan.add("repo.read", "git worktree list", text)
        elif verb == "remove" and ("-f" in rest or "--force" in rest):
            scan.add("data.delete", "git worktree remove --force discards changes", text)
        else:
            for p in [a for a in rest[1:] if not a.startswith("-")][:1]:
                scan.path(p, "write", text)
            scan.add("pr.draft", f"git worktree {verb}", text)
    elif sub == "bisect":
        if rest[:1] == ["run"]:
            scan.run(cmd.sub(rest[1:]))
        scan.add("pr.draft", "git bisect checks out commits", text)
    elif sub == "init":
        if any(a.startswith("--template") for a in rest):
            scan.add("tether.control", "git init --template installs hooks", text)
        for p in [a for a in rest if not a.startswith("-")][:1]:
            scan.path(p, "write", text)
        scan.add("pr.draft", "git init creates a repository", text)
    elif sub == "add":
        o = parse(rest, "", frozenset({"--chmod", "--pathspec-from-file"}))
        _git_pathspecs(scan, cmd, o.pos, "read")
        scan.add("pr.draft", "git add stages changes", text)
    elif sub == "mv":
        pos = [a for a in rest if not a.startswith("-")]
        for p in pos[:-1]:
            scan.path(p, "delete", text)
        for p in pos[-1:]:
            scan.path(p, "write", text)
        scan.add("pr.draft", "git mv moves files", text)
    elif sub in ("send-email",):
        scan.add("message.external", "git send-email sends mail", text)
    elif sub.startswith("credential"):
        scan.add("secrets.modify", f"git {sub} handles stored credentials", text)
    elif sub == "lfs":
        _git_lfs(scan, cmd, rest)
    elif sub == "submodule--helper":
        scan.add("unknown", "git internal helper", text)
    elif sub in _GIT_DRAFT:
        if sub == "update-index":
            _git_pathspecs(scan, cmd, [a for a in rest if not a.startswith("-")], "write")
        if sub == "archive" or sub == "format-patch":
            o = parse(rest, "o", frozenset({"--output", "--output-directory", "--format", "--prefix"}))
            for out in o.all("-o", "--output", "--output-directory"):
                scan.path(out, "write", text)
        scan.add("pr.draft", f"git {sub} changes the local repository", text)
    elif sub in _GIT_UNKNOWN:
        scan.add("unknown", f"git {sub} {_GIT_UNKNOWN[sub]}", text)
    else:
        scan.add("unknown", f"git {sub or '?'} is an alias, extension or unknown subcommand", text)


def _commit_no_verify(rest: list[str]) -> bool:
    o = parse(rest, _COMMIT_SHORT, _COMMIT_LONG)
    return o.has("-n", "--no-verify")


def _git_checkout(scan: Scan, cmd: Cmd, sub: str, rest: list[str]) -> None:
    text = cmd.text
    o = parse(rest, "bBc" if sub != "restore" else "s", frozenset({"--orphan", "--source", "--create",
                                                                       "--force-create", "--conflict",
                                                                       "--pathspec-from-file", "--track"}))
    if "--" in rest:
        paths = rest[rest.index("--") + 1 :]
    elif sub == "restore" or (sub == "checkout" and len(o.pos) == 1 and o.pos[0] in (".", ":/")):
        paths = o.pos
    elif sub == "checkout" and len(o.pos) > 1 and not o.has("-b", "-B", "--orphan"):
        paths = o.pos[1:]
    else:
        paths = []
    for b in o.all("-b", "-B", "-c", "-C", "--orphan", "--create", "--force-create"):
        scan.resource("branch", b, "write")
    forced = o.has("-f", "--force", "--discard-changes")
    staged_only = sub == "restore" and o.has("--staged", "-S") and not o.has("--worktree", "-W")
    broad = _git_pathspecs(scan, cmd, paths, "write") if paths else False
    if forced:
        scan.add("data.delete", f"git {sub} --force discards local changes", text)
    elif broad and not staged_only:
        scan.add("data.delete", f"git {sub} of the whole tree discards uncommitted work", text)
    else:
        scan.add("pr.draft", f"git {sub} changes the working tree", text)


def _git_clone(scan: Scan, cmd: Cmd, rest: list[str]) -> None:
    text = cmd.text
    o = parse(rest, "obcju", frozenset({"--origin", "--branch", "--config", "--jobs", "--upload-pack", "--depth",
                                          "--template", "--reference", "--separate-git-dir", "--filter",
                                          "--shallow-since", "--server-option", "--bundle-uri"}))
    if o.has("-u", "--upload-pack"):
        scan.add("unknown", "git clone --upload-pack runs a remote command", text)
    if o.has("--template"):
        scan.add("tether.control", "git clone --template installs hooks", text)
    for kv in o.all("-c", "--config"):
        key, _, value = kv.partition("=")
        git_config_effect(scan, key, value, text)
    if o.pos:
        if not record_remote(scan, o.pos[0]):
            scan.path(o.pos[0], "read", text)
        dest = o.pos[1] if len(o.pos) > 1 else o.pos[0].rstrip("/").rsplit("/", 1)[-1].rsplit(":", 1)[-1]
        if dest.endswith(".git"):
            dest = dest[:-4]
        if dest:
            scan.path(dest, "write", text)
    scan.add("repo.read", "git clone copies a repository", text)


def _git_apply(scan: Scan, cmd: Cmd, rest: list[str]) -> None:
    text = cmd.text
    o = parse(rest, "pC", frozenset({"--directory", "--exclude", "--include", "--whitespace", "--build-fake-ancestor"}))
    if o.has("--check", "--stat", "--numstat", "--summary") and not o.has("--apply"):
        scan.add("repo.read", "git apply --check", text)
        return
    patches = [p for p in o.pos if p != "-"]
    bodies = [patch_file(scan, p, text) for p in patches] if patches else [cmd.stdin]
    named = [b is not None and PH not in b and patch_targets(scan, b, text) > 0 for b in bodies]
    if not all(named) or o.get("--directory") is not None:
        scan.add("unknown", "git apply writes files named in a patch the classifier cannot see", text)
    scan.add("pr.draft", "git apply edits files", text)


def _git_submodule(scan: Scan, cmd: Cmd, rest: list[str]) -> None:
    text = cmd.text
    verb = next((r for r in rest if not r.startswith("-")), "status")
    idx = rest.index(verb) if verb in rest else len(rest)
    if verb == "foreach":
        scan.shell(" ".join(a for a in rest[idx + 1 :] if a != "--recursive"), text)
        return
    for r in rest[idx + 1 :]:
        record_remote(scan, r)
    if verb in ("status", "summary"):
        scan.add("repo.read", f"git submodule {verb}", text)
    elif verb in ("add", "update", "init", "sync", "absorbgitdirs", "set-url", "set-branch"):
        scan.add("deps.install", f"git submodule {verb} fetches code", text)
    elif verb == "deinit":
        scan.add("data.delete" if ("-f" in rest or "--force" in rest) else "pr.draft", "git submodule deinit", text)
    else:
        scan.add("unknown", f"git submodule {verb}", text)


def _git_lfs(scan: Scan, cmd: Cmd, rest: list[str]) -> None:
    text = cmd.text
    verb = rest[0] if rest else ""
    if verb in ("install", "uninstall", "update") and "--skip-repo" not in rest:
        scan.add("tether.control", f"git lfs {verb} writes git hooks", text)
    elif verb in ("ls-files", "status", "env", "logs", "version", "track", "locks", "fsck", "ext", "pointer"):
        scan.add("repo.read" if verb != "track" else "pr.draft", f"git lfs {verb}", text)
    elif verb in ("pull", "fetch", "checkout", "prune", "untrack", "lock", "unlock", "dedup", "fetch-all"):
        scan.add("pr.draft", f"git lfs {verb}", text)
    elif verb == "push":
        scan.add("pr.draft", "git lfs push uploads objects", text)
    elif verb == "migrate":
        scan.add("unknown", "git lfs migrate rewrites history", text)
    else:
        scan.add("unknown", f"git lfs {verb}", text)


def _git(scan: Scan, cmd: Cmd) -> None:
    args = cmd.args
    text = cmd.text
    cwd = scan.cwd
    elsewhere: list[str] = []
    i = 0
    try:
        while i < len(args):
            a = args[i]
            if a == "-C" and i + 1 < len(args):
                scan.cwd = scan.path(args[i + 1], "read", text) or PH
                elsewhere.append(scan.cwd if scan.cwd != PH else args[i + 1])
                i += 2
            elif a == "-c" and i + 1 < len(args):
                key, _, value = args[i + 1].partition("=")
                git_config_effect(scan, key, value, text)
                i += 2
            elif a.startswith("-c") and len(a) > 2 and "=" in a:
                key, _, value = a[2:].partition("=")
                git_config_effect(scan, key, value, text)
                i += 1
            elif a.startswith(("--git-dir", "--work-tree", "--namespace", "--exec-path", "--config-env",
                               "--super-prefix", "--list-cmds", "--attr-source")):
                name, eq, value = a.partition("=")
                if not eq and i + 1 < len(args) and name not in ("--exec-path",):
                    value = args[i + 1]
                    i += 1
                if name == "--exec-path" and eq:
                    scan.add("unknown", "git --exec-path changes which programs git runs", text)
                elif name == "--config-env":
                    git_config_effect(scan, value.split("=", 1)[0], PH, text)
                elif name in ("--git-dir", "--work-tree") and value:
                    elsewhere.append(scan.path(value, "read", text) or value)
                i += 1
            elif a in ("--version", "--help", "-h", "--html-path", "--man-path", "--info-path", "-v"):
                scan.add("repo.read", f"git {a}", text)
                return
            elif a.startswith("-"):
                i += 1
            else:
                break
        if i >= len(args):
            scan.add("repo.read", "git without a subcommand prints help", text)
            return
        sub = args[i]
        _git_sub(scan, cmd, sub, args[i + 1 :])
        if sub not in _GIT_READ and sub not in ("clone", "ls-remote", "help", "version"):
            # The repository this writes to: -C, --git-dir, --work-tree, or a directory cd'ed into.
            for d in elsewhere or ([scan.cwd] if scan.cwd != scan.ctx.cwd and PH not in scan.cwd else []):
                scan.path(d, "write", text)
    finally:
        scan.cwd = cwd


HANDLERS: Final[dict[str, Handler]] = {
    "git": _git,
}
