"""API tokens and roles. A token is printed once; only its SHA-256 is stored.

Roles: ``agent`` (beat, report, ask — for its own name only), ``approver`` (decide), ``admin``
(control). An agent's token never grants anything for another agent.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from dataclasses import dataclass

from tether.errors import UsageError
from tether.store import Store

ROLES = ("agent", "approver", "admin")
PREFIX = "tt_"


@dataclass(frozen=True)
class Principal:
    role: str
    agent: str | None = None
    token_id: str | None = None

    def may_act_for(self, agent: str) -> bool:
        return self.role == "admin" or (self.role == "agent" and self.agent == agent)

    @property
    def can_read(self) -> bool:
        return self.role in ("approver", "admin")


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create(store: Store, role: str, agent: str | None = None) -> str:
    """Make a token, record its hash, return the token (the only time it exists in clear)."""
    if role not in ROLES:
        raise UsageError(f"unknown role {role!r}; expected one of {', '.join(ROLES)}")
    if role == "agent" and not agent:
        raise UsageError("an agent token needs --agent NAME")
    if role != "agent" and agent:
        raise UsageError(f"--agent goes with --role agent, not {role}")
    token_id = secrets.token_hex(4)
    token = f"{PREFIX}{role[:2]}_{token_id}_{secrets.token_urlsafe(32)}"
    store.emit("token.created", None, token_id=token_id, hash=digest(token), role=role, for_agent=agent)
    return token


#: How long a verified token is trusted without asking the store again (a revoked token stops working
#: within this long). Every heartbeat and hook call authenticates: this keeps a query off each one.
CACHE_SECONDS = 2.0
_cache: dict[tuple[str, str], tuple[float, Principal]] = {}


def identify(store: Store, token: str) -> Principal | None:
    # Keyed by the token itself (held in memory only, like the request it came with): a hit costs no
    # hash. The store's URL, not id(): ids are reused after a store is closed.
    key = (store.url, token)
    now = time.monotonic()
    hit = _cache.get(key)
    if hit is not None and now - hit[0] < CACHE_SECONDS:
        return hit[1]
    row = store.token(digest(token))
    if row is None:
        _cache.pop(key, None)
        return None
    who = Principal(row["role"], row["agent"], row["id"])
    if len(_cache) > 10_000:
        _cache.clear()
    _cache[key] = (now, who)
    return who
