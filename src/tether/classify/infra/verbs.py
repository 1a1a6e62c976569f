"""The classes infrastructure commands fall in, and the fallback that judges a cloud verb alone: read, delete or
change live infrastructure."""

from __future__ import annotations

from typing import Final

from tether.classify.scan import Scan

READ: Final = "repo.read"
DEPLOY: Final = "deploy.production"
DELETE: Final = "data.delete"
UNKNOWN: Final = "unknown"
SECRETS: Final = "secrets.modify"
AUTH: Final = "auth.modify"
CREDS: Final = "credentials.rotate"
BILLING: Final = "billing.modify"
TESTS: Final = "tests.run"
DEPS: Final = "deps.install"
DRAFT: Final = "pr.draft"

_READ_PREFIXES: Final = (
    "describe", "list", "get", "head", "batch-get", "search", "lookup", "validate", "estimate", "preview",
    "filter-log-events", "tail", "wait", "help", "check", "detect", "simulate", "show", "view", "read", "query",
    "scan", "select", "logs", "log", "status", "info", "version", "whoami", "ls", "cat", "history", "diff",
    "inspect", "print", "export-", "download", "browse", "explain", "test-", "verify", "count", "top",
    "poll", "fetch", "summarize", "resolve", "plan", "can-i", "current", "config-get", "tree", "stats",
)
_DELETE_PREFIXES: Final = (
    "delete", "remove", "rm", "terminate", "purge", "deregister", "drop", "batch-delete", "destroy", "rb",
    "uninstall", "prune", "wipe", "erase", "disassociate", "release-address", "reset",
)


def is_read(verb: str) -> bool:
    return verb.startswith(_READ_PREFIXES)


def is_delete(verb: str) -> bool:
    return verb.startswith(_DELETE_PREFIXES)


def generic(scan: Scan, tool: str, verb: str, text: str) -> None:
    """Read, delete or change, from the verb alone."""
    if is_read(verb):
        scan.add(READ, f"{tool} {verb} reads", text)
    elif is_delete(verb):
        scan.add(DEPLOY, f"{tool} {verb} changes live infrastructure", text)
        scan.add(DELETE, f"{tool} {verb} deletes", text)
    else:
        scan.add(DEPLOY, f"{tool} {verb} changes live infrastructure", text)


def positionals(args: list[str], value_opts: frozenset[str] = frozenset()) -> list[str]:
    """Positional words, skipping ``--opt value`` pairs for the listed options."""
    out: list[str] = []
    skip = False
    for a in args:
        if skip:
            skip = False
            continue
        if a.startswith("-"):
            if "=" not in a and a in value_opts:
                skip = True
            continue
        out.append(a)
    return out
