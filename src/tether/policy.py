"""The policy: a classified action + the agent's scope + the runbook → a verdict and a reason.

Pure and fast (it runs on every tool call): no I/O except resolving paths (symlinks and ``..``) for
scope checks. The classifier says what an action *is*; this module adds what it means *for this
agent*: outside its scope (``scope.outside``), a host it may not reach (``network.egress``), a
protected path (at least ``ask``), a spent budget or an engaged kill switch (``block``).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from tether.classify import Classification, Resource
from tether.runbook.model import Agent
from tether.vocabulary import VERDICT_RANK

LOOPBACK = frozenset({"localhost", "127.0.0.1", "::1", "[::1]", "0.0.0.0"})
HARMLESS_PATHS = ("/dev/null", "/dev/stdout", "/dev/stderr", "/dev/tty", "/dev/zero", "/dev/urandom", "/dev/random")
#: Temporary space shared by every user and process on the host: never an agent's scratch space.
SHARED_TEMP = ("/tmp", "/var/tmp", "/dev/shm")
#: Files in the home directory that git reads on every call anyway (its global config): reading them is not
#: leaving the scope (`cat ~/.gitconfig`). Matched on the resolved path; writing them stays outside.
HOME_READS = (".gitconfig", ".config/git/config", ".config/git/ignore", ".config/git/attributes")


@dataclass(frozen=True)
class Scope:
    """An agent's scope, resolved to absolute paths once (at load), then checked per action.

    ``temp`` is the agent's own scratch space: the private ``TMPDIR`` the daemon gives it (under its run
    folder). Any other path in shared temporary space (``/tmp``, ``/var/tmp``, ``/dev/shm``) is outside,
    read or written, unless it is in one of the agent's roots (a workspace may live under ``/tmp``)."""

    roots: tuple[str, ...]
    hosts: tuple[str, ...]
    accounts: tuple[str, ...]
    repos: tuple[str, ...]
    temp: tuple[str, ...] = ()
    home: str = field(default_factory=lambda: os.path.expanduser("~"))

    @classmethod
    def of(cls, agent: Agent, cwd: Path, resolve: object = None, tmp: Path | str | None = None) -> Scope:
        """``resolve`` turns a runbook path into a Path (``LoadedRunbook.resolve``); ``tmp`` is the agent's
        private TMPDIR."""

        def res(p: str) -> str:
            path = resolve(p) if callable(resolve) else Path(p).expanduser()
            return os.path.realpath(path)

        local_repos = [r for r in agent.scope.repos if not _looks_remote(r)]
        remote_repos = [r for r in agent.scope.repos if _looks_remote(r)]
        roots = [os.path.realpath(cwd)] + [res(p) for p in (*agent.scope.folders, *local_repos)]
        return cls(
            roots=tuple(dict.fromkeys(roots)),
            hosts=tuple(h.lower() for h in agent.scope.hosts),
            accounts=tuple(agent.scope.accounts),
            repos=tuple(remote_repos),
            temp=(os.path.realpath(tmp),) if tmp else (),
        )

    def path_inside(self, path: str) -> bool:
        real = os.path.realpath(path)
        return any(_under(real, r) for r in self.roots)

    def scratch(self, real: str) -> bool:
        """A resolved path in the agent's own scratch space (its private TMPDIR)."""
        return any(_under(real, t) for t in self.temp)

    def host_allowed(self, host: str) -> bool:
        host = host.lower().split(":")[0] if host.count(":") == 1 else host.lower()
        if host in LOOPBACK:
            return True
        for allowed in self.hosts:
            if allowed.startswith("*.") and (host.endswith(allowed[1:]) or host == allowed[2:]):
                return True
            if host == allowed:
                return True
        return False

    def account_allowed(self, account: str) -> bool:
        return account in self.accounts or account in self.repos

    def repo_allowed(self, repo: str) -> bool:
        norm = _norm_repo(repo)
        return any(norm == _norm_repo(r) for r in (*self.repos, *self.accounts))


def _under(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip("/") + "/")


def _looks_remote(repo: str) -> bool:
    return "://" in repo or repo.startswith("git@") or (repo.count("/") == 2 and "." in repo.split("/")[0])


def _norm_repo(repo: str) -> str:
    r = repo.strip().removesuffix(".git").lower()
    for prefix in ("https://", "http://", "ssh://git@", "ssh://", "git@"):
        r = r.removeprefix(prefix)
    return r.replace(":", "/", 1) if ":" in r and "/" in r else r


@dataclass(frozen=True)
class Decision:
    verdict: str
    classes: tuple[str, ...]
    resources: tuple[Resource, ...]
    rule: str
    reason: str
    parsed: bool
    gates: tuple[str, ...] = ()

    @property
    def allowed(self) -> bool:
        return self.verdict in ("allow", "log")

    @property
    def gated(self) -> bool:
        return self.verdict != "allow"


def decide(
    c: Classification,
    agent: Agent,
    scope: Scope,
    *,
    killed: str | None = None,
    budget_spent: str | None = None,
) -> Decision:
    """The verdict for one classified action by one agent.

    ``killed`` (why the kill switch holds the agent) and ``budget_spent`` (why its budget is gone) block every
    action, whatever its verdict would have been: a killed agent takes no new action, a spent budget stops
    spending (reads and model calls included)."""
    found: list[tuple[str, str]] = [(a.klass, a.reason) for a in c.actions]
    if not c.parsed and "unknown" not in c.classes:  # what cannot be parsed is never allowed
        found.append(("unknown", "could not be parsed"))
    found += list(_scope_findings(c.resources, scope))
    classes = tuple(dict.fromkeys(k for k, _ in found))
    verdict, rule, reason = "allow", "", ""
    for klass, why in found:
        v = agent.verdict(klass)
        if VERDICT_RANK[v] > VERDICT_RANK[verdict] or not rule:
            overridden = klass in agent.approvals.verdicts
            source = f"agents.{agent.name}.approvals.verdicts.{klass}" if overridden else f"default table: {klass}"
            verdict, rule, reason = v, f"{source}: {v}", why
    for r in c.resources:
        if r.protected and r.op in ("write", "delete", "exec", "") and VERDICT_RANK[verdict] < VERDICT_RANK["ask"]:
            verdict, rule, reason = "ask", "approvals.protected_paths: ask", f"touches protected path {r.value}"
    if budget_spent:
        verdict, rule, reason = "block", "budgets", f"budget spent: {budget_spent}; a human must raise or reset it"
    if killed:
        verdict, rule, reason = "block", "kill switch", f"{killed} (`tether resume` lifts it)"
    gates = tuple(k for k in classes if k in agent.gates)
    return Decision(verdict, classes, c.resources, rule, reason, c.parsed, gates)


def _scope_findings(resources: Iterable[Resource], scope: Scope) -> Iterable[tuple[str, str]]:
    for r in resources:
        if r.kind == "path":
            if "\x00" in r.value:  # no file has such a name: whatever sent it is not what it seems
                yield "scope.outside", f"{r.op or 'use'} of a path with a NUL byte"
                continue
            if r.value in HARMLESS_PATHS or scope.path_inside(r.value):
                continue
            writes = r.op in ("write", "delete", "exec")
            real = os.path.realpath(r.value)
            if scope.scratch(real) and not (writes and real in scope.temp):
                continue
            home = scope.home.rstrip("/")
            if not writes and home and _under(real, home) and real[len(home) + 1 :] in HOME_READS:
                continue
            if any(_under(real, t) for t in SHARED_TEMP):
                yield "scope.outside", (f"{r.op or 'use'} of {r.value}: shared temporary space; the agent's "
                                        "scratch space is its own TMPDIR")
            elif writes:
                yield "scope.outside", f"{r.op} of {r.value}, outside the agent's scope"
            elif not writes and scope.home and real.startswith(scope.home.rstrip("/") + "/"):
                yield "scope.outside", f"reads {r.value}, in the home directory outside the agent's scope"
        elif r.kind in ("host", "url"):
            host = r.value if r.kind == "host" else _host_of(r.value)
            if host and not scope.host_allowed(host):
                yield "network.egress", f"reaches {host}, not in scope.hosts"
        elif r.kind == "account" and not scope.account_allowed(r.value):
            yield "scope.outside", f"uses account {r.value}, not in scope.accounts"
        elif r.kind == "repo" and not scope.repo_allowed(r.value):
            yield "scope.outside", f"touches repo {r.value}, not in scope.repos"


def _host_of(url: str) -> str:
    from urllib.parse import urlsplit

    try:
        return (urlsplit(url).hostname or "").lower()
    except ValueError:
        return ""
