"""The runbook's fixed vocabulary: verdicts, action classes and the default policy table.

Stdlib only and import-free on purpose: the classifier, the hook endpoint and the CLI all speak it,
and it must cost nothing to import.
"""

from __future__ import annotations

from typing import Final, Literal

Verdict = Literal["allow", "log", "ask", "block"]

#: ``log`` means allow and record.
VERDICTS: Final[tuple[str, ...]] = ("allow", "log", "ask", "block")

#: Strictness order, used to combine several verdicts into one (the strictest wins).
VERDICT_RANK: Final[dict[str, int]] = {"allow": 0, "log": 1, "ask": 2, "block": 3}

ACTION_CLASSES: Final[tuple[str, ...]] = (
    "repo.read",
    "tests.run",
    "pr.draft",
    "pr.open",
    "pr.merge",
    "git.push",
    "deps.install",
    "deploy.production",
    "billing.modify",
    "auth.modify",
    "secrets.modify",
    "message.external",
    "data.delete",
    "credentials.rotate",
    "network.egress",
    "scope.outside",
    "tether.control",
    "unknown",
)

#: What each class means, for `tether check`, `tether explain` and the docs.
ACTION_DESCRIPTIONS: Final[dict[str, str]] = {
    "repo.read": "read files and history in a repository in scope",
    "tests.run": "run the project's tests, linters and builds",
    "pr.draft": "write a draft pull request (local commits, draft PRs)",
    "pr.open": "open a pull request for review",
    "pr.merge": "merge a pull request",
    "git.push": "push to a protected branch, or force-push",
    "deps.install": "install or upgrade dependencies",
    "deploy.production": "deploy to production (terraform apply, kubectl apply, helm upgrade, ...)",
    "billing.modify": "change billing, plans or payment settings",
    "auth.modify": "change users, roles, permissions or auth settings",
    "secrets.modify": "read or write secrets and credential files",
    "message.external": "send a message outside the host (mail, chat, issue comments)",
    "data.delete": "delete data (rm -rf, DROP TABLE, bucket deletes, ...)",
    "credentials.rotate": "rotate or revoke credentials and keys",
    "network.egress": "reach a network host outside the agent's scope",
    "scope.outside": "touch a path, repo, app or account outside the agent's scope",
    "tether.control": "approve, resume, lift a kill switch, edit the runbook or state, or switch off hooks",
    "unknown": "anything that could not be parsed or classified",
}

#: The seed's policy table. Gated = anything that is not a plain allow.
DEFAULT_VERDICTS: Final[dict[str, str]] = {
    "repo.read": "allow",
    "tests.run": "allow",
    "pr.draft": "allow",
    "pr.open": "ask",
    "pr.merge": "ask",
    "git.push": "ask",
    "deps.install": "log",
    "deploy.production": "ask",
    "billing.modify": "ask",
    "auth.modify": "ask",
    "secrets.modify": "ask",
    "message.external": "ask",
    "data.delete": "block",
    "credentials.rotate": "block",
    "network.egress": "ask",
    "scope.outside": "block",
    "tether.control": "block",
    "unknown": "ask",
}

#: Classes whose verdict a runbook may never loosen below ``ask``/``block``.
NEVER_ALLOW: Final[frozenset[str]] = frozenset({"tether.control", "unknown"})

#: Paths protected whatever the runbook adds (globs relative to a workspace, plus the runbook and the
#: state directory, which are added at load time).
DEFAULT_PROTECTED_PATHS: Final[tuple[str, ...]] = (
    ".claude/**",
    ".codex/**",
    ".git/hooks/**",
    ".git/config",
    ".env",
    ".env.*",
    "**/secrets/**",
    ".github/workflows/**",
)

#: What a wall violation was (``wall.violation`` events): a connection the egress proxy refused, a write the
#: wall denied. A fixed set: it is the ``kind`` label of ``tether_agent_wall_violations_total``.
VIOLATION_KINDS: Final[tuple[str, ...]] = ("connect", "write")

AGENT_STATES: Final[tuple[str, ...]] = (
    "starting",
    "running",
    "idle",
    "waiting_for_approval",
    "blocked",
    "stale",
    "stuck",
    "crashloop",
    "stopped",
    "killed",
)


def strictest(verdicts: list[str]) -> str:
    """The strictest of several verdicts (``allow`` for none)."""
    best = "allow"
    for v in verdicts:
        if VERDICT_RANK[v] > VERDICT_RANK[best]:
            best = v
    return best
