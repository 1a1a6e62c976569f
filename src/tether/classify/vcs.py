"""git and gh: commits and branches, pushes (protected, forced, deleting), PRs, issues, the GitHub API."""

from __future__ import annotations

import re
from fnmatch import fnmatchcase
from typing import Final

from tether.classify import gitrepo
from tether.classify.argv import Opts, parse
from tether.classify.files import patch_file, patch_targets
from tether.classify.paths import PH
from tether.classify.scan import Cmd, Handler, Scan
from tether.classify.urls import host_of_remote, repo_from_remote

# ------------------------------------------------------------------------------------- git config

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


# ------------------------------------------------------------------------------------------- git

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
_DEPLOY_REMOTES: Final = frozenset({"heroku", "dokku", "production", "prod", "live", "deploy", "flynn", "piku"})


def _record_remote(scan: Scan, remote: str) -> bool:
    """Record a remote given as a URL; True when it was one."""
    if remote.startswith("ext::"):
        # git runs the rest as a command (when protocol.ext.allow lets it): classify it.
        scan.add("unknown", "the ext:: transport runs a command", remote)
        scan.shell(remote[5:].replace("% ", " ").replace("%%", "%"), remote)
        return True
    if remote.startswith("file://"):
        scan.path(remote[7:] or "/", "read")
        return True
    if PH in remote or not ("://" in remote or ("@" in remote and ":" in remote) or remote.endswith(".git")):
        return False
    repo = repo_from_remote(remote)
    if repo:
        scan.resource("repo", repo)
        host = host_of_remote(remote)
        if host:
            scan.host(host)
        return True
    return False


def _protected(scan: Scan, branch: str) -> bool:
    b = branch.lower()
    return any(fnmatchcase(b, p.lower()) for p in scan.ctx.protected_branches)


def _glob_may_hit_protected(scan: Scan, pattern: str) -> bool:
    """Whether a wildcard ref pattern (``*``, ``feature/*``) can name a protected branch."""
    fixed = pattern.split("*", 1)[0].lower()
    for p in scan.ctx.protected_branches:
        pfixed = p.split("*", 1)[0].lower()
        if fixed.startswith(pfixed) or pfixed.startswith(fixed):
            return True
    return False


def _branch_of(target: str) -> str | None:
    """The branch a push destination names (None for tags and other refs)."""
    t = target
    if t.startswith("refs/"):
        t = t[5:]
        if not t.startswith("heads/"):
            return None
        return t[6:]
    if t.startswith("heads/"):
        return t[6:]
    if t.startswith(("tags/", "remotes/", "notes/")):
        return None
    return t


def _push_remote(scan: Scan, remote: str, repo: gitrepo.Repo | None, text: str) -> None:
    """Record where a push goes: a URL or path as given, or the URLs a configured remote names."""
    urls = repo.remote_urls(remote) if repo is not None and remote and PH not in remote else None
    for url in urls if urls is not None else [remote]:
        if not url or PH in url:
            continue
        if urls is not None and url.startswith("ext::"):
            _record_remote(scan, url)
        elif url.startswith("file://") or url.startswith(("/", "./", "../", "~")) or (
            urls is None and "/" in url and "://" not in url and ":" not in url
        ):
            scan.path(url[7:] if url.startswith("file://") else url, "write", text)
        elif urls is not None:
            r = repo_from_remote(url)
            if r:
                scan.resource("repo", r)
            elif "://" not in url and ":" not in url:
                scan.path(url, "write", text)
        else:
            _record_remote(scan, url)


def _git_push(scan: Scan, cmd: Cmd, rest: list[str]) -> None:
    text = cmd.text
    o = parse(rest, "o", frozenset({"--push-option", "--repo", "--receive-pack", "--exec", "--recurse-submodules"}))
    names = o.names()
    if o.has("--receive-pack", "--exec"):
        scan.add("unknown", "git push --receive-pack runs a remote command", text)
    if o.has("--dry-run", "-n"):
        scan.add("repo.read", "git push --dry-run", text)
        return
    forced = bool(names & {"-f", "--force", "--force-with-lease", "--force-if-includes"}) or any(
        n.startswith("--force-with-lease") for n in names
    )
    reasons: list[str] = []
    if forced:
        reasons.append("git push --force rewrites remote history")
    if o.has("--mirror"):
        reasons.append("git push --mirror overwrites every remote ref")
    if o.has("--all", "--branches"):
        reasons.append("git push --all pushes every branch")
    if o.has("--tags"):
        reasons.append("git push --tags pushes tags (often releases)")
    if o.has("--prune"):
        reasons.append("git push --prune deletes remote branches")
    deleting = o.has("--delete", "-d")
    repo = gitrepo.find(scan.cwd) if PH not in scan.cwd else None
    remote = o.get("--repo") or (o.pos[0] if o.pos else "")
    refspecs = list(o.pos[1:]) if o.pos else []
    name = remote or (repo.push_remote() if repo is not None else "")
    configured = repo is not None and repo.remote_urls(name) is not None
    _push_remote(scan, name, repo, text)
    if remote and remote.lower() in _DEPLOY_REMOTES:
        scan.add("deploy.production", f"git push to the {remote} remote deploys", text)
    current = repo.branch if repo is not None else ""
    if not refspecs and not (names & {"--mirror", "--all", "--branches", "--tags"}):
        if repo is not None and configured and repo.get("remote", name, "mirror") == "true":
            reasons.append(f"remote {name} is configured as a mirror: every ref is overwritten")
        refspecs = list(repo.all("remote", name, "push")) if repo is not None and configured else []
        mode = (repo.get("push", "", "default") if repo is not None else None) or "simple"
        if not refspecs:
            merge = (repo.get("branch", current, "merge") or "") if repo is not None and current else ""
            if not current or mode == "matching":
                scan.resource("branch", "HEAD", "write")
                reasons.append("pushes the current branch, which may be protected")
            else:
                refspecs = [current] + ([merge] if mode != "current" and merge else [])
    for spec in refspecs:
        if spec.startswith("+"):
            reasons.append(f"force-push of {spec[1:]}")
            spec = spec[1:]
        if spec.startswith("tag ") or spec == "tag":
            reasons.append(f"pushes tag {spec[4:]}")
            continue
        src, colon, dst = spec.partition(":")
        if colon and not src:
            reasons.append(f"git push deletes remote ref {dst}")
        target = dst if colon else src
        if deleting:
            reasons.append(f"git push --delete {target}")
        if target in ("HEAD", "@") and current:
            target = current
        if target in ("HEAD", "@") or PH in target or not target:
            reasons.append("pushes the current branch, which may be protected")
            scan.resource("branch", "HEAD", "write")
            continue
        if target.startswith(("refs/tags/", "tags/")):
            reasons.append(f"pushes tag {target.split('tags/', 1)[1]}")
            continue
        branch = _branch_of(target)
        if branch is None:
            if "*" in target:
                reasons.append(f"pushes every ref matching {target}")
            else:
                reasons.append(f"pushes ref {target}, which is not a branch")
            continue
        if "*" in branch:
            if _glob_may_hit_protected(scan, branch):
                reasons.append(f"pushes every branch matching {branch}, protected ones included")
            scan.resource("branch", branch, "write")
            continue
        scan.resource("branch", branch, "write")
        if _protected(scan, branch):
            reasons.append(f"pushes to protected branch {branch}")
    if reasons:
        for r in reasons:
            scan.add("git.push", r, text)
    else:
        scan.add("pr.draft", "git push to a feature branch", text)


def _git_commit(scan: Scan, cmd: Cmd, rest: list[str]) -> None:
    o = parse(rest, _COMMIT_SHORT, _COMMIT_LONG)
    for f in o.all("-F", "--file"):
        if f != "-":
            scan.path(f, "read", cmd.text)
    scan.add("pr.draft", "git commit records a local commit", cmd.text)


def _git_config(scan: Scan, cmd: Cmd, rest: list[str]) -> None:
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
        _git_push(scan, cmd, rest)
    elif sub == "commit":
        _git_commit(scan, cmd, rest)
    elif sub == "config":
        _git_config(scan, cmd, rest)
    elif sub in _GIT_READ:
        if sub == "diff" and any(a.startswith("--output") for a in rest):
            scan.add("pr.draft", "git diff --output writes a file", text)
        elif sub == "ls-remote":
            for r in rest:
                _record_remote(scan, r)
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
            hit = [b for b in (o.pos if moving else o.pos[:1]) if _protected(scan, b)]
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
            _record_remote(scan, r)
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
            _record_remote(scan, o.pos[0])
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
        if not _record_remote(scan, o.pos[0]):
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
        _record_remote(scan, r)
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


# -------------------------------------------------------------------------------------------- gh

_GH_VALUE_SHORT: Final = "RtbFBHalmprLsqSAXfeowjgcdn"
_GH_VALUE_LONG: Final = frozenset(
    {
        "--repo", "--title", "--body", "--body-file", "--base", "--head", "--assignee", "--label", "--milestone",
        "--project", "--reviewer", "--limit", "--state", "--jq", "--template", "--json", "--search", "--author",
        "--method", "--field", "--raw-field", "--header", "--input", "--hostname", "--env", "--org", "--app",
        "--visibility", "--ref", "--branch", "--workflow", "--user", "--event", "--status", "--name", "--notes",
        "--notes-file", "--target", "--tag", "--subject", "--match-title", "--match-head-commit", "--commit",
        "--description", "--homepage", "--color", "--key", "--type", "--scopes", "--git-protocol", "--remote",
        "--clone", "--source", "--add-label", "--remove-label", "--add-reviewer", "--remove-reviewer",
        "--add-assignee", "--remove-assignee", "--add-project", "--remove-project", "--delete-branch-pr",
        "--author-email", "--comment", "--reason", "--discussion-category", "--cache",
        "--secrets-file", "--env-file", "--paginate-limit", "--format", "--keep", "--order", "--sort",
    }
)

_GH_READ_VERBS: Final = frozenset(
    {"list", "ls", "view", "status", "diff", "checks", "download", "watch", "search", "browse", "get"}
)


def _gh(scan: Scan, cmd: Cmd) -> None:
    text = cmd.text
    args = list(cmd.args)
    o = parse(args, _GH_VALUE_SHORT, _GH_VALUE_LONG)
    repo = o.get("-R", "--repo")
    if repo and PH not in repo:
        if "/" in repo and repo.count("/") == 1 and ":" not in repo:
            scan.resource("repo", "github.com/" + repo)
        else:
            scan.resource("repo", repo_from_remote(repo) or repo)
    pos = o.pos
    sub = pos[0] if pos else ""
    verb = pos[1] if len(pos) > 1 else ""
    if sub in ("", "help", "version", "--version", "completion", "status", "search", "browse", "org", "attestation"):
        scan.add("repo.read", f"gh {sub} reads", text)
    elif sub == "api":
        _gh_api(scan, cmd, o)
    elif sub == "pr":
        _gh_pr(scan, cmd, verb, o, pos)
    elif sub == "issue":
        if verb in _GH_READ_VERBS:
            scan.add("repo.read", f"gh issue {verb}", text)
        elif verb == "delete":
            scan.add("data.delete", "gh issue delete", text)
        else:
            scan.add("message.external", f"gh issue {verb} posts on GitHub", text)
    elif sub == "release":
        if verb in _GH_READ_VERBS:
            scan.add("repo.read", f"gh release {verb}", text)
        elif verb.startswith("delete"):
            scan.add("data.delete", f"gh release {verb}", text)
        else:
            scan.add("deploy.production", f"gh release {verb} publishes a release", text)
    elif sub == "repo":
        _gh_repo(scan, cmd, verb, pos)
    elif sub in ("secret", "variable"):
        if verb in _GH_READ_VERBS:
            scan.add("repo.read", f"gh {sub} {verb}", text)
        else:
            scan.add("secrets.modify", f"gh {sub} {verb} changes repository secrets", text)
    elif sub == "auth":
        if verb in ("status",):
            scan.add("repo.read", "gh auth status", text)
        elif verb == "token":
            scan.add("secrets.modify", "gh auth token prints a token", text)
        else:
            scan.add("credentials.rotate", f"gh auth {verb} changes GitHub credentials", text)
    elif sub in ("ssh-key", "gpg-key"):
        if verb in _GH_READ_VERBS:
            scan.add("repo.read", f"gh {sub} {verb}", text)
        else:
            scan.add("credentials.rotate", f"gh {sub} {verb} changes keys", text)
    elif sub == "workflow":
        if verb in _GH_READ_VERBS:
            scan.add("repo.read", f"gh workflow {verb}", text)
        elif verb == "run":
            name = (pos[2] if len(pos) > 2 else "").lower()
            if any(w in name for w in ("deploy", "release", "publish", "prod")):
                scan.add("deploy.production", f"gh workflow run {name} deploys", text)
            else:
                scan.add("unknown", f"gh workflow run {name} runs a CI workflow", text)
        else:
            scan.add("unknown", f"gh workflow {verb}", text)
    elif sub == "run":
        if verb in _GH_READ_VERBS:
            scan.add("repo.read", f"gh run {verb}", text)
        elif verb == "rerun":
            scan.add("tests.run", "gh run rerun re-runs CI", text)
        elif verb == "delete":
            scan.add("data.delete", "gh run delete", text)
        else:
            scan.add("unknown", f"gh run {verb}", text)
    elif sub == "cache":
        scan.add("data.delete" if verb == "delete" else "repo.read", f"gh cache {verb}", text)
    elif sub == "gist":
        if verb in _GH_READ_VERBS or verb == "clone":
            scan.add("repo.read", f"gh gist {verb}", text)
        elif verb == "delete":
            scan.add("data.delete", "gh gist delete", text)
        else:
            scan.add("network.egress", f"gh gist {verb} uploads content", text)
            for p in pos[2:]:
                scan.path(p, "read", text)
    elif sub == "label":
        if verb in _GH_READ_VERBS:
            scan.add("repo.read", "gh label list", text)
        elif verb == "delete":
            scan.add("data.delete", "gh label delete", text)
        else:
            scan.add("pr.open", f"gh label {verb}", text)
    elif sub == "extension" or sub == "ext":
        if verb in ("install", "upgrade", "remove", "create"):
            scan.add("deps.install", f"gh extension {verb}", text)
        else:
            scan.add("repo.read", f"gh extension {verb}", text)
    elif sub == "config":
        scan.add("repo.read" if verb in ("get", "list") else "unknown", f"gh config {verb}", text)
    elif sub == "alias":
        scan.add("repo.read" if verb == "list" else "unknown", f"gh alias {verb}", text)
    else:
        scan.add("unknown", f"gh {sub} {verb}".strip(), text)


def _gh_pr(scan: Scan, cmd: Cmd, verb: str, o: Opts, pos: list[str]) -> None:
    text = cmd.text
    if verb in _GH_READ_VERBS:
        scan.add("repo.read", f"gh pr {verb}", text)
    elif verb == "create" or verb == "new":
        base = o.get("-B", "--base")
        if base:
            scan.resource("branch", base, "write")
        if o.has("-d", "--draft"):
            scan.add("pr.draft", "gh pr create --draft opens a draft PR", text)
        else:
            scan.add("pr.open", "gh pr create opens a PR for review", text)
    elif verb == "merge":
        scan.add("pr.merge", "gh pr merge merges a PR", text)
        if o.has("--admin"):
            scan.add("git.push", "gh pr merge --admin bypasses branch protection", text)
    elif verb == "ready":
        scan.add("pr.draft" if o.has("--undo") else "pr.open", "gh pr ready", text)
    elif verb == "review":
        if o.has("-a", "--approve"):
            scan.add("pr.merge", "gh pr review --approve approves a PR", text)
        else:
            scan.add("message.external", "gh pr review posts a review", text)
    elif verb == "comment":
        scan.add("message.external", "gh pr comment posts a comment", text)
    elif verb in ("checkout", "co", "update-branch"):
        scan.add("pr.draft", f"gh pr {verb}", text)
    else:
        scan.add("pr.open", f"gh pr {verb} changes a PR", text)


def _gh_repo(scan: Scan, cmd: Cmd, verb: str, pos: list[str]) -> None:
    text = cmd.text
    target = pos[2] if len(pos) > 2 else ""
    if target and PH not in target and verb in ("clone", "view", "delete", "edit", "fork", "archive", "rename"):
        scan.resource("repo", "github.com/" + target if target.count("/") == 1 and ":" not in target else target)
    if verb in _GH_READ_VERBS or verb in ("clone", "set-default", "gitignore", "license"):
        scan.add("repo.read", f"gh repo {verb}", text)
    elif verb in ("sync", "fork"):
        scan.add("pr.draft", f"gh repo {verb}", text)
    elif verb == "delete":
        scan.add("data.delete", "gh repo delete deletes a repository", text)
    elif verb == "edit":
        scan.add("auth.modify", "gh repo edit changes repository settings", text)
    elif verb == "deploy-key":
        sub = pos[3] if len(pos) > 3 else ""
        if sub in _GH_READ_VERBS:
            scan.add("repo.read", "gh repo deploy-key list", text)
        else:
            scan.add("credentials.rotate", f"gh repo deploy-key {sub}", text)
    else:
        scan.add("unknown", f"gh repo {verb}", text)


_API_RULES: Final[tuple[tuple[re.Pattern[str], str, str], ...]] = (
    (re.compile(r"/pulls/\d+/merge$|/merges$"), "pr.merge", "merges through the GitHub API"),
    (re.compile(r"/pulls/\d+/reviews"), "message.external", "posts a review through the GitHub API"),
    (re.compile(r"/pulls$"), "pr.open", "opens a PR through the GitHub API"),
    (re.compile(r"/pulls/\d+$"), "pr.open", "edits a PR through the GitHub API"),
    (re.compile(r"/comments|/issues(?:/\d+)?$|/discussions|/reactions"), "message.external",
     "posts on GitHub through the API"),
    (re.compile(r"/releases"), "deploy.production", "publishes a release through the GitHub API"),
    (re.compile(r"/dispatches$|/deployments"), "deploy.production", "triggers a workflow or deployment"),
    (re.compile(r"/secrets|/variables"), "secrets.modify", "changes secrets through the GitHub API"),
    (re.compile(r"/keys|/gpg_keys|/ssh_signing_keys|/tokens|/installations/\d+/access_tokens"),
     "credentials.rotate", "changes keys or tokens through the GitHub API"),
    (re.compile(r"/collaborators|/teams|/members|/memberships|/permissions|/protection|/rulesets|/invitations"
                r"|/outside_collaborators|/environments"), "auth.modify", "changes access through the GitHub API"),
    (re.compile(r"/hooks"), "network.egress", "changes webhooks through the GitHub API"),
    (re.compile(r"/git/refs|/contents/|/git/commits|/merge-upstream"), "git.push",
     "writes commits or refs through the GitHub API"),
    (re.compile(r"/billing|/settings/billing|/copilot/billing"), "billing.modify",
     "changes billing through the GitHub API"),
)
_GRAPHQL_RULES: Final[tuple[tuple[str, str], ...]] = (
    ("mergepullrequest", "pr.merge"),
    ("enablepullrequestautomerge", "pr.merge"),
    ("createpullrequest", "pr.open"),
    ("addcomment", "message.external"),
    ("addpullrequestreview", "message.external"),
    ("createissue", "message.external"),
    ("delete", "data.delete"),
    ("updaterefs", "git.push"),
    ("createcommitonbranch", "git.push"),
)


def github_api_class(scan: Scan, method: str, endpoint: str, body: str, text: str) -> None:
    """Classify a call to the GitHub REST or GraphQL API."""
    ep = endpoint.split("?", 1)[0].rstrip("/").lower()
    if ep.endswith("graphql"):
        b = body.lower()
        if "mutation" not in b:
            scan.add("repo.read", "GitHub GraphQL query", text)
            return
        hits = [k for word, k in _GRAPHQL_RULES if word in b]
        if not hits:
            scan.add("unknown", "GitHub GraphQL mutation", text)
        for k in hits:
            scan.add(k, "GitHub GraphQL mutation", text)
        return
    if method in ("GET", "HEAD"):
        scan.add("repo.read", "GitHub API read", text)
        return
    if method == "DELETE":
        scan.add("data.delete", f"DELETE {ep} through the GitHub API", text)
        return
    for rx, klass, reason in _API_RULES:
        if rx.search(ep):
            if klass == "pr.open" and ep.endswith("/pulls") and '"draft":true' in body.replace(" ", "").lower():
                klass = "pr.draft"
            if klass == "message.external" and "/reviews" in ep and "approve" in body.lower():
                klass = "pr.merge"
            scan.add(klass, reason, text)
            return
    scan.add("unknown", f"{method} {ep} through the GitHub API", text)


def _gh_api(scan: Scan, cmd: Cmd, o: Opts) -> None:
    text = cmd.text
    endpoint = o.pos[1] if len(o.pos) > 1 else ""
    fields = o.all("-f", "-F", "--field", "--raw-field")
    method = (o.get("-X", "--method") or ("POST" if fields or o.has("--input") else "GET")).upper()
    host = o.get("--hostname") or "api.github.com"
    scan.host(host)
    m = re.match(r"/?repos/([^/]+/[^/]+)", endpoint)
    if m and "{" not in m.group(1) and PH not in m.group(1):
        scan.resource("repo", "github.com/" + m.group(1))
    inp = o.get("--input")
    if inp and inp != "-":
        scan.path(inp, "read", text)
    body = " ".join(fields)
    if PH in endpoint:
        scan.add("unknown", "gh api endpoint only known at run time", text)
        return
    github_api_class(scan, method, endpoint, body, text)


HANDLERS: Final[dict[str, Handler]] = {
    "git": _git,
    "gh": _gh,
}
