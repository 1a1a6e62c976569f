"""Signing in to the dashboard: an approver or admin token → a session cookie (HttpOnly, SameSite=Strict,
Secure over TLS), a CSRF token per session for every form, and a rate limit on login attempts.

Sessions live in the daemon's memory (a restart signs everyone out) and hold only the token's hash: every
request looks the token up again, so revoking it ends its sessions at once. Agent tokens never sign in.
"""

from __future__ import annotations

import hmac
import secrets
import threading
import time
from collections import deque
from dataclasses import dataclass, field

from tether.auth import Principal, digest

COOKIE = "tether_session"
LOGIN_COOKIE = "tether_login"  # the login form's CSRF value (double submit), before there is a session
#: A session ends this long after sign-in, or after this long unused.
LIFETIME = 12 * 3600.0
IDLE = 2 * 3600.0
MAX_SESSIONS = 1000


@dataclass
class Session:
    id: str
    token_hash: str
    role: str
    token_id: str | None
    csrf: str
    created: float
    seen: float

    def principal(self) -> Principal:
        return Principal(self.role, None, self.token_id)


@dataclass
class Sessions:
    lifetime: float = LIFETIME
    idle: float = IDLE
    _by_id: dict[str, Session] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def create(self, token: str, who: Principal, now: float | None = None) -> Session:
        now = time.time() if now is None else now
        s = Session(secrets.token_urlsafe(32), digest(token), who.role, who.token_id, secrets.token_urlsafe(32),
                    now, now)
        with self._lock:
            self._expire(now)
            if len(self._by_id) >= MAX_SESSIONS:  # the oldest goes: memory stays bounded whatever happens
                oldest = min(self._by_id.values(), key=lambda x: x.seen)
                self._by_id.pop(oldest.id, None)
            self._by_id[s.id] = s
        return s

    def get(self, session_id: str | None, now: float | None = None) -> Session | None:
        if not session_id:
            return None
        now = time.time() if now is None else now
        with self._lock:
            s = self._by_id.get(session_id)
            if s is None:
                return None
            if now - s.created > self.lifetime or now - s.seen > self.idle:
                self._by_id.pop(session_id, None)
                return None
            s.seen = now
            return s

    def drop(self, session_id: str | None) -> None:
        if session_id:
            with self._lock:
                self._by_id.pop(session_id, None)

    def _expire(self, now: float) -> None:
        for sid in [k for k, s in self._by_id.items() if now - s.created > self.lifetime or now - s.seen > self.idle]:
            del self._by_id[sid]

    def __len__(self) -> int:
        return len(self._by_id)


def same(a: str | None, b: str | None) -> bool:
    """Constant-time comparison of two CSRF values (never equal when either is missing)."""
    if not a or not b:
        return False
    return hmac.compare_digest(a.encode(), b.encode())


def new_csrf() -> str:
    return secrets.token_urlsafe(32)


@dataclass
class LoginLimiter:
    """At most ``per_client`` failed sign-ins per client address in ``window`` seconds, and ``overall``
    from all addresses together (a token is 256 random bits: this is to keep guessing loud and slow)."""

    per_client: int = 5
    overall: int = 50
    window: float = 60.0
    _failures: dict[str, deque[float]] = field(default_factory=dict)
    _all: deque[float] = field(default_factory=deque)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def retry_after(self, client: str, now: float | None = None) -> float | None:
        """None when ``client`` may try now; else how many seconds until it may."""
        now = time.time() if now is None else now
        with self._lock:
            self._trim(now)
            mine = self._failures.get(client)
            waits = []
            if mine is not None and len(mine) >= self.per_client:
                waits.append(mine[0] + self.window - now)
            if len(self._all) >= self.overall:
                waits.append(self._all[0] + self.window - now)
            return max(1.0, max(waits)) if waits else None

    def failed(self, client: str, now: float | None = None) -> None:
        now = time.time() if now is None else now
        with self._lock:
            self._failures.setdefault(client, deque()).append(now)
            self._all.append(now)
            self._trim(now)

    def _trim(self, now: float) -> None:
        cut = now - self.window
        while self._all and self._all[0] <= cut:
            self._all.popleft()
        for key in list(self._failures):
            q = self._failures[key]
            while q and q[0] <= cut:
                q.popleft()
            if not q:
                del self._failures[key]
