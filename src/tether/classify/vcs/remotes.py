"""Where git talks to and what a push overwrites: remotes given as URLs or paths, or configured in the
repository's own ``.git/config`` (``gitrepo``); refspecs, protected branches, forced and deleting pushes."""

from __future__ import annotations

from fnmatch import fnmatchcase
from typing import Final

from tether.classify import gitrepo
from tether.classify.argv import parse
from tether.classify.paths import PH
from tether.classify.scan import Cmd, Scan
from tether.classify.urls import host_of_remote, repo_from_remote

_DEPLOY_REMOTES: Final = frozenset({"heroku", "dokku", "production", "prod", "live", "deploy", "flynn", "piku"})


def record_remote(scan: Scan, remote: str) -> bool:
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


def protected(scan: Scan, branch: str) -> bool:
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
            record_remote(scan, url)
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
            record_remote(scan, url)


def push(scan: Scan, cmd: Cmd, rest: list[str]) -> None:
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
        if protected(scan, branch):
            reasons.append(f"pushes to protected branch {branch}")
    if reasons:
        for r in reasons:
            scan.add("git.push", r, text)
    else:
        scan.add("pr.draft", "git push to a feature branch", text)
