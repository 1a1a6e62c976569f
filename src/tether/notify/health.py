"""Whether each phone channel (a Telegram bot, an ntfy reply topic, a Slack app) works: its state, kept by the daemon in
``STATE/channels.json`` so ``tether status``, the dashboard and ``tether doctor`` read it without asking the
daemon. ``tether status`` imports it on its fast path: the stdlib, ``atomic`` and ``durations`` (which that path
loads anyway), nothing more at import time.

A channel is ``up`` after its last call succeeded, ``down`` after one failed (with the error and when the next
try is), ``starting`` before its first answer. A failed call is retried with backoff (``RETRY_BASE`` doubling
up to ``RETRY_CAP``); a channel down for ``incident_after()`` opens a ``channel.down`` incident for the owners
of the agents it serves, which the notifier sends by their ``contact`` (apprise), another route.
"""

from __future__ import annotations

import json
import os
import threading
import time
from typing import Any

from tether.atomic import write_atomic
from tether.checks import Check, Status
from tether.durations import parse_duration

FILE = "channels.json"
RETRY_BASE = 1.0
RETRY_CAP = 60.0
INCIDENT_AFTER = 300.0  # seconds down before the incident


def incident_after() -> float:
    """``TETHER_CHANNEL_INCIDENT_AFTER`` (a duration) from the daemon's environment, else ``INCIDENT_AFTER``."""
    raw = os.environ.get("TETHER_CHANNEL_INCIDENT_AFTER", "")
    if raw:
        try:
            return max(0.0, float(parse_duration(raw)))
        except ValueError:
            print(
                f"tether: channels: TETHER_CHANNEL_INCIDENT_AFTER={raw!r} is not a duration; {INCIDENT_AFTER:g}s it is",
                flush=True,
            )
    return INCIDENT_AFTER


class Health:
    """One channel's health, updated by its threads; ``changed`` is called on every change of state."""

    def __init__(self, name: str, kind: str, people: list[str], changed: Any = None) -> None:
        self.name = name
        self.kind = kind
        self.people = people
        self.state = "starting"
        self.since = time.time()
        self.failures = 0
        self.error: str | None = None
        self.last_ok: float | None = None
        self.next_try: float | None = None
        self._changed = changed
        self._lock = threading.Lock()

    def ok(self) -> None:
        with self._lock:
            flipped = self.state != "up"
            now = time.time()
            if flipped:
                self.state, self.since = "up", now
            self.failures, self.error, self.last_ok, self.next_try = 0, None, now, None
        if flipped and self._changed is not None:
            self._changed(self)

    def failed(self, error: str) -> float:
        """Record a failed call; return how long to wait before the next try (the backoff)."""
        with self._lock:
            now = time.time()
            flipped = self.state != "down"
            if flipped:
                self.state, self.since = "down", now
            self.failures += 1
            self.error = error[:500]
            delay = float(min(RETRY_CAP, RETRY_BASE * 2 ** min(self.failures - 1, 16)))
            self.next_try = now + delay
        if self._changed is not None:
            self._changed(self)
        return delay

    def as_dict(self) -> dict[str, Any]:
        with self._lock:
            return {
                "channel": self.name,
                "kind": self.kind,
                "state": self.state,
                "since": self.since,
                "failures": self.failures,
                "error": self.error,
                "last_ok": self.last_ok,
                "next_try": self.next_try,
                "people": list(self.people),
            }


def write(root: str | os.PathLike[str], channels: list[dict[str, Any]]) -> None:
    write_atomic(os.path.join(root, FILE), json.dumps({"updated": time.time(), "channels": channels}), 0o600)


def read(root: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """The channels as the daemon last wrote them ([] with no file, or an unreadable one)."""
    try:
        with open(os.path.join(root, FILE), encoding="utf-8") as f:
            got = json.load(f).get("channels")
    except (OSError, ValueError, AttributeError):
        return []
    return [c for c in got if isinstance(c, dict)] if isinstance(got, list) else []


def line(c: dict[str, Any], now: float) -> str:
    """One channel in one line: ``channel telegram env:TG_TOKEN: down for 42s (3 failures): ...; next try in 4s``."""
    state = c.get("state")
    since = c.get("since") or now
    people = ", ".join(c.get("people") or [])
    head = f"channel {c.get('channel')}" + (f" ({people})" if people else "")
    if state == "up":
        return f"{head}: up"
    if state == "starting":
        return f"{head}: starting (no answer yet, {now - since:.0f}s)"
    nxt = c.get("next_try")
    retry = f"; next try in {max(0.0, nxt - now):.0f}s" if nxt else ""
    return f"{head}: down for {now - since:.0f}s ({c.get('failures')} failure(s)): {c.get('error') or '?'}{retry}"


def status_lines(root: str, now: float) -> str:
    """What ``tether status`` prints about channels: one line for each that is not up ("" when all are)."""
    return "".join(line(c, now) + "\n" for c in read(root) if c.get("state") != "up")


def checks(loaded: Any, state_root: Any) -> list[Any]:
    """``tether doctor``: each phone channel's secrets resolve, and its state as the running daemon last saw it."""
    from tether.secrets import SecretError, resolve  # local: `tether status`'s fast path imports this module, +2.5 ms

    out: list[Check] = []
    refs: dict[str, str] = {}
    for name, agent in loaded.runbook.agents.items():
        for role, person in (
            ("owner", agent.owner),
            ("backup", agent.backup),
            *(("approver", p) for p in agent.approvers),
        ):
            for kind, conf in (("telegram", person.telegram), ("ntfy", person.ntfy), ("slack", person.slack)):
                for field in ("token", "app_token", "bot_token"):
                    ref = getattr(conf, field, None) if conf is not None else None
                    if ref:
                        refs.setdefault(ref, f"{kind} of {person.name} ({role} of {name})")
    for ref, who in refs.items():
        try:
            resolve(ref)
        except SecretError as err:
            out.append(Check("channels", "fail", f"{who}: {err}", "set the secret the runbook names"))
    if not refs and not any(p.ntfy for a in loaded.runbook.agents.values() for p in (a.owner, a.backup, *a.approvers)):
        return out
    now = time.time()
    seen = read(state_root)
    if not seen:
        out.append(Check("channels", "unknown", "no channel state yet (is the daemon running?)", "tether up"))
    for c in seen:
        status: Status = "ok" if c.get("state") == "up" else ("warn" if c.get("state") == "starting" else "fail")
        out.append(
            Check(
                "channels",
                status,
                line(c, now).removeprefix("channel "),
                "check the token, the network and the service's status; the daemon keeps retrying",
            )
        )
    return out
