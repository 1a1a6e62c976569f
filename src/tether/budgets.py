"""Daily budgets: what an agent has spent today, whether that is over its runbook's budget, and whether it
is burning far faster than it usually does.

A spent budget pauses the agent like a kill with the reason ``budget`` (every check refused, its processes
stopped, the owner told through the ``budget`` incident); only a human lifts it: a higher budget in the
runbook (then ``tether resume``), or ``tether budget reset AGENT``, which starts today's count afresh from
that moment (a ``budget.reset`` event holds what had been spent, and today's figures are counted above it).

Pure functions of the store's daily ``usage`` rows and one ``now``; the daemon's monitor calls ``judge``.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass
from typing import Any

from tether.runbook.model import Budgets
from tether.store import Store

#: The kill reason that marks a pause for a spent budget (``tether resume`` shows it like any kill).
REASON = "budget"
#: How much faster than usual today's spending must run, before the budget is gone, to open an incident.
BURN_FACTOR = 3.0
#: ... and how much of the budget it must have used already (a quiet morning's first calls are no alarm).
BURN_MIN_SHARE = 0.25
#: Days of history that make "usual" (at least two days with spending are needed).
HISTORY_DAYS = 7


@dataclass(frozen=True)
class Spend:
    tokens: int = 0
    usd: float = 0.0


def day_of(ts: float) -> str:
    return time.strftime("%Y-%m-%d", time.gmtime(ts))


def daily(rows: list[dict[str, Any]]) -> dict[str, Spend]:
    """``usage`` rows (one per agent, day and model) → spend per day."""
    out: dict[str, Spend] = {}
    for r in rows:
        s = out.get(r["day"], Spend())
        out[r["day"]] = Spend(s.tokens + int(r["input_tokens"]) + int(r["output_tokens"]), s.usd + float(r["cost_usd"]))
    return out


def last_reset(store: Store, agent: str, day: str) -> Spend:
    """What had been spent on ``day`` when a human last reset the budget (zero without a reset that day)."""
    row = store.budget_reset(agent, day)
    return Spend(int(row["tokens"]), float(row["usd"])) if row else Spend()


def today(store: Store, agent: str, now: float) -> Spend:
    """Today's spend (UTC day), counted from the last reset today."""
    day = day_of(now)
    got = daily(store.usage(agent, since_day=day)).get(day, Spend())
    base = last_reset(store, agent, day)
    return Spend(max(0, got.tokens - base.tokens), max(0.0, got.usd - base.usd))


def over(b: Budgets, spend: Spend) -> str | None:
    """Why ``spend`` is over budget ``b``, or None."""
    if b.tokens_per_day is not None and spend.tokens >= b.tokens_per_day:
        return f"{spend.tokens:,} tokens today, budget {b.tokens_per_day:,} (budgets.tokens_per_day)"
    if b.usd_per_day is not None and spend.usd >= b.usd_per_day:
        return f"${spend.usd:.2f} spent today, budget ${b.usd_per_day:.2f} (budgets.usd_per_day)"
    return None


def spent(store: Store, agent: str, b: Budgets, now: float | None = None) -> str | None:
    """Why the agent's daily budget is spent, or None (no budget: never)."""
    if b.tokens_per_day is None and b.usd_per_day is None:
        return None
    return over(b, today(store, agent, time.time() if now is None else now))


def burning(b: Budgets, history: dict[str, Spend], spend: Spend, now: float) -> str | None:
    """Why today's spending runs far above the agent's usual pace while the budget is not yet gone, or None.

    Usual is the median of the earlier days with spending (at least two); the pace is today's spend over the
    fraction of the UTC day gone, against the usual day."""
    day = day_of(now)
    earlier = sorted(d for d in history if d < day)[-HISTORY_DAYS:]
    elapsed = (now % 86400) / 86400
    if len(earlier) < 2 or elapsed <= 0:
        return None
    for unit, limit, got, usual in (
        ("tokens", b.tokens_per_day, float(spend.tokens), statistics.median(history[d].tokens for d in earlier)),
        ("usd", b.usd_per_day, spend.usd, statistics.median(history[d].usd for d in earlier)),
    ):
        if limit is None or limit <= 0 or usual <= 0 or got >= limit:
            continue
        pace = got / elapsed
        if got >= BURN_MIN_SHARE * limit and pace >= BURN_FACTOR * usual:
            shown, cap = (f"${got:.2f}", f"${limit:.2f}") if unit == "usd" else (f"{int(got):,}", f"{int(limit):,}")
            return (f"{shown} by {time.strftime('%H:%M', time.gmtime(now))} UTC, a pace {pace / usual:.1f}x its usual "
                    f"day; at this pace the budget ({cap}) is gone before the day ends")
    return None


def history(store: Store, agent: str, now: float) -> dict[str, Spend]:
    return daily(store.usage(agent, since_day=day_of(now - HISTORY_DAYS * 86400)))


def reset(store: Store, agent: str, by: str, now: float | None = None) -> Spend:
    """Start today's count afresh: record what has been spent so far today (``budget.reset``)."""
    now = time.time() if now is None else now
    day = day_of(now)
    got = daily(store.usage(agent, since_day=day)).get(day, Spend())
    store.emit("budget.reset", agent, day=day, tokens=got.tokens, usd=round(got.usd, 6), by=by)
    return got


def incident(store: Store, agent: str, kind: str, summary: str) -> bool:
    """One open incident of ``kind`` per agent (the owner is told once, not on every refused call)."""
    if any(i["kind"] == kind for i in store.incidents("open", agent)):
        return False
    store.emit("incident.opened", agent, kind=kind, summary=summary)
    return True
