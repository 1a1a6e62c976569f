"""API tokens and roles. A token is printed once; only its SHA-256 is stored.

Roles: ``agent`` (beat, report, ask — for its own name only), ``approver`` (decide), ``admin``
(control). An agent's token never grants anything for another agent. A token may expire; any token
can be revoked, and is refused at once by the process that revoked it and within ``REFRESH`` seconds
by every other (a daemon, another node).
"""

from __future__ import annotations

import hashlib
import secrets
import threading
import time
from dataclasses import dataclass
from typing import Any

from tether.errors import NotFound, TetherError, UsageError
from tether.store import Store

ROLES = ("agent", "approver", "admin")
PREFIX = "tt_"
UNKNOWN = "unknown or revoked token"


class Refused(TetherError):
    """A token that grants nothing: unknown, revoked or expired (one line, for a 401)."""


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


def create(store: Store, role: str, agent: str | None = None, expires_in: float | None = None) -> str:
    """Make a token, record its hash, return the token (the only time it exists in clear).
    ``expires_in``: seconds from now after which it is refused ("token expired")."""
    if role not in ROLES:
        raise UsageError(f"unknown role {role!r}; expected one of {', '.join(ROLES)}")
    if role == "agent" and not agent:
        raise UsageError("an agent token needs --agent NAME")
    if role != "agent" and agent:
        raise UsageError(f"--agent goes with --role agent, not {role}")
    if expires_in is not None and not expires_in > 0:
        raise UsageError(f"--expires must be a positive duration (like 30d or 12h), not {expires_in:g}s")
    token_id = secrets.token_hex(4)
    token = f"{PREFIX}{role[:2]}_{token_id}_{secrets.token_urlsafe(32)}"
    expires = None if expires_in is None else round(time.time() + expires_in, 3)
    store.emit("token.created", None, token_id=token_id, hash=digest(token), role=role, for_agent=agent,
               expires=expires)
    return token


def tokens(store: Store, now: float | None = None) -> list[dict[str, Any]]:
    """Every token (no hashes), each with its ``state``: live, expired or revoked."""
    now = time.time() if now is None else now
    rows = store.tokens()
    for r in rows:
        r["state"] = "revoked" if r["revoked"] else "expired" if _expired(r["expires"], now) else "live"
    return rows


def revoke(store: Store, ref: str) -> tuple[dict[str, Any], bool]:
    """Revoke a token by its id (or the token itself); return its row and whether this call revoked it
    (a revoked token stays as it was). Refused here at once, in every other process within ``REFRESH``."""
    ref = ref.strip()
    if ref.startswith(PREFIX):  # the whole token, pasted
        found = store.token(digest(ref))
        ref = found["id"] if found else ref.split("_")[2] if ref.count("_") >= 3 else ref
    row = next((r for r in tokens(store) if r["id"] == ref), None)
    if row is None:
        raise NotFound(f"no token with id {ref!r}; `tether token list` shows every token's id")
    if row["revoked"] is not None:
        return row, False
    store.emit("token.revoked", row["agent"], token_id=ref, role=row["role"])
    _revocations.pop(store.url, None)  # this process: at once
    return next(r for r in tokens(store) if r["id"] == ref), True


# -- checking a token: on every heartbeat and hook call, so a hit is a few dictionary lookups ---------

#: How often a process asks the store whether any token was revoked (one small query, whatever the
#: number of tokens or requests): a revocation elsewhere is seen within this long.
REFRESH = 0.5
#: A token's ``last_used`` is written at most this often per process (off the caller's thread).
TOUCH_EVERY = 60.0


class _Entry:
    __slots__ = ("expires", "generation", "touched", "who")

    def __init__(self, who: Principal, expires: float | None, generation: int) -> None:
        self.who, self.expires, self.generation = who, expires, generation
        self.touched = float("-inf")


# Keyed by the token itself (held in memory only, like the request it came with): a hit costs no
# hash. The store's URL, not id(): ids are reused after a store is closed.
_cache: dict[tuple[str, str], _Entry] = {}
#: store URL -> (monotonic time of the check, tokens revoked so far): an entry verified under another
#: count is read again.
_revocations: dict[str, tuple[float, int]] = {}


def identify(store: Store, token: str) -> Principal | None:
    """The token's principal, or None when it grants nothing (``verify`` says why)."""
    try:
        return verify(store, token)
    except Refused:
        return None


def verify(store: Store, token: str) -> Principal:
    """The token's principal; ``Refused`` (unknown or revoked, expired) otherwise."""
    url = store.url
    now = time.monotonic()
    seen = _revocations.get(url)
    if seen is None or now - seen[0] >= REFRESH:
        seen = _revocations[url] = (now, store.revoked_tokens())
    key = (url, token)
    hit = _cache.get(key)
    if hit is None or hit.generation != seen[1]:
        row = store.token(digest(token))
        if row is None:
            _cache.pop(key, None)
            raise Refused(UNKNOWN)
        if len(_cache) > 10_000:
            _cache.clear()
        hit = _cache[key] = _Entry(Principal(row["role"], row["agent"], row["id"]), row.get("expires"), seen[1])
    if hit.expires is not None and _expired(hit.expires, time.time()):
        raise Refused(f"token expired at {_iso(hit.expires)}; create a new one with `tether token create`")
    if now - hit.touched >= TOUCH_EVERY:
        hit.touched = now
        _touch(store, hit.who.token_id or "", time.time())
    return hit.who


def _expired(expires: float | None, now: float) -> bool:
    return expires is not None and now >= expires


def _iso(ts: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(ts))


# -- last use: recorded off the request's thread, all pending uses of a store in one write ------------
_touch_lock = threading.Lock()
_pending: dict[str, dict[str, float]] = {}


def _touch(store: Store, token_id: str, at: float) -> None:
    with _touch_lock:
        waiting = store.url in _pending
        _pending.setdefault(store.url, {})[token_id] = at
    if not waiting:
        threading.Thread(target=_flush, args=(store,), name="tether-token-uses", daemon=True).start()


def _flush(store: Store) -> None:
    with _touch_lock:
        used = _pending.pop(store.url, {})
    try:
        store.touch_tokens(used.items())
    except Exception:  # advisory: a failing store says so elsewhere; the next touch is a minute on
        pass
