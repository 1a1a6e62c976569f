"""``tether integrate git [REPO]``: a pre-push hook. A push to a protected branch, a force push (the remote
branch is not an ancestor of what is pushed) and a branch deletion are ``git.push`` actions under the
runbook: the daemon allows, holds (the push fails with the approval id; the same push goes through once
approved) or blocks it. Every other push passes without asking anything.

The hook is ``.git/hooks/pre-push`` (or ``core.hooksPath``): a two-line sh script running this file with
tether's Python, stdlib only at run time. Whose push it is: ``--agent`` given at install, else
``$TETHER_AGENT``; no agent at all is a human's push and passes. An agent's push with no token or no daemon
fails (closed).
"""

from __future__ import annotations

import fnmatch
import json
import os
import shlex
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from tether.errors import UsageError

MARK = "# tether pre-push hook: `tether integrate git --remove` takes it out"
ZERO = "0" * 40
DEFAULT_PROTECTED = ("main", "master", "trunk", "production", "prod", "release", "release/*", "releases/*")


def _git(repo: str | os.PathLike[str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, stdin=subprocess.DEVNULL,
                          timeout=30)


def hook_path(repo: Path) -> Path:
    proc = _git(repo, "rev-parse", "--path-format=absolute", "--git-path", "hooks")
    if proc.returncode != 0:
        raise UsageError(f"{repo} is not a git repository ({proc.stderr.strip()})")
    return Path(proc.stdout.strip()) / "pre-push"


def script(*, agent: str | None, url: str | None, protected: tuple[str, ...], wait: float,
           python: str | None = None) -> str:
    argv = [python or sys.executable, "-I", str(Path(__file__).resolve()), "pre-push"]
    if agent:
        argv += ["--agent", agent]
    if url:
        argv += ["--url", url]
    for p in protected:
        argv += ["--protect", p]
    if wait:
        argv += ["--wait", f"{wait:g}"]
    return f'#!/bin/sh\n{MARK}\nexec {shlex.join(argv)} "$@"\n'


def install(repo: Path, **kw: Any) -> tuple[Path, bool, str]:
    """Write the hook; an existing pre-push hook that is not tether's is kept (renamed ``pre-push.local``)
    and run first."""
    path = hook_path(repo)
    text = script(**kw)
    old = path.read_text(encoding="utf-8", errors="replace") if path.exists() else None
    if old == text:
        return path, False, "already installed"
    path.parent.mkdir(parents=True, exist_ok=True)
    note = "installed"
    if old is not None and MARK not in old:
        path.rename(path.with_name("pre-push.local"))
        note = "installed (your pre-push hook runs first, as pre-push.local)"
    path.write_text(text, encoding="utf-8")
    path.chmod(0o755)
    return path, True, note


def remove(repo: Path) -> tuple[Path, bool, str]:
    path = hook_path(repo)
    if not path.exists() or MARK not in path.read_text(encoding="utf-8", errors="replace"):
        return path, False, "no tether pre-push hook"
    path.unlink()
    local = path.with_name("pre-push.local")
    if local.exists():
        local.rename(path)
        return path, True, "removed (your own pre-push hook is back)"
    return path, True, "removed"


# -- run time (stdlib only) ----------------------------------------------------------------------------------


def _branch(ref: str) -> str:
    return ref.removeprefix("refs/heads/")


def gated(lines: list[str], protected: tuple[str, ...], repo: str = ".") -> list[str]:
    """What in this push is a ``git.push`` action, one description per ref (empty: nothing to ask)."""
    out = []
    for line in lines:
        parts = line.split()
        if len(parts) != 4:
            continue
        _, local_sha, remote_ref, remote_sha = parts
        branch = _branch(remote_ref)
        if local_sha == ZERO:
            out.append(f"delete {branch}")
            continue
        force = remote_sha != ZERO and _git(repo, "merge-base", "--is-ancestor", remote_sha, local_sha).returncode != 0
        prot = remote_ref.startswith("refs/heads/") and any(fnmatch.fnmatchcase(branch, p) for p in protected)
        if force or prot:
            what = ("force push" if force else "push") + f" {local_sha[:12]} to {branch}"
            out.append(what + (" (protected branch)" if prot else ""))
    return out


def _ask(url: str, agent: str, token: str, detail: str, wait: float) -> dict[str, Any]:
    body = json.dumps({"action": "git.push", "detail": detail, "wait": wait}).encode()
    req = urllib.request.Request(f"{url.rstrip('/')}/v1/agents/{agent}/check", data=body, method="POST",
                                 headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=wait + 15) as resp:
        data: dict[str, Any] = json.loads(resp.read())
        return data


def main(argv: list[str]) -> int:
    if not argv or argv[0] != "pre-push":
        sys.stderr.write("usage: git.py pre-push [--agent A] [--url U] [--protect GLOB]... REMOTE URL\n")
        return 2
    opts: dict[str, Any] = {"agent": "", "url": "", "protect": [], "wait": 0.0}
    rest: list[str] = []
    it = iter(argv[1:])
    for arg in it:
        if arg in ("--agent", "--url", "--protect", "--wait"):
            value = next(it, "")
            if arg == "--protect":
                opts["protect"].append(value)
            else:
                opts[arg[2:]] = float(value) if arg == "--wait" else value
        else:
            rest.append(arg)
    local = Path(os.environ.get("GIT_DIR", ".git")) / "hooks" / "pre-push.local"
    stdin = sys.stdin.read()
    if local.exists() and os.access(local, os.X_OK):
        mine = subprocess.run([str(local), *rest], input=stdin, text=True)
        if mine.returncode != 0:
            return mine.returncode
    agent = opts["agent"] or os.environ.get("TETHER_AGENT", "")
    if not agent:
        return 0  # a human's push: tether governs agents
    protected = tuple(opts["protect"]) or DEFAULT_PROTECTED
    try:
        actions = gated(stdin.splitlines(), protected)
    except Exception as err:
        sys.stderr.write(f"tether: cannot inspect this push ({err}); refused (fail closed)\n")
        return 1
    if not actions:
        return 0
    url = opts["url"] or os.environ.get("TETHER_URL", "")
    token = os.environ.get("TETHER_TOKEN", "")
    for detail in actions:
        if not url or not token:
            sys.stderr.write(f"tether: {detail} is a git.push action for agent {agent}, and there is no "
                             "$TETHER_URL/$TETHER_TOKEN to ask the daemon; refused (fail closed)\n")
            return 1
        try:
            got = _ask(url, agent, token, detail, float(opts["wait"]))
        except (urllib.error.URLError, OSError, ValueError) as err:
            sys.stderr.write(f"tether: cannot ask the daemon about `{detail}` ({err}); refused (fail closed)\n")
            return 1
        if got.get("decision") != "allow":
            sys.stderr.write(f"tether: {detail}: {got.get('decision')}: {got.get('reason')}\n")
            if got.get("decision") == "pending":
                sys.stderr.write(f"tether: push again, unchanged, once approval {got.get('approval_id')} "
                                 "is approved\n")
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
