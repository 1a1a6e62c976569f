"""Numbers as the timeline, the dashboard and ``tether top`` write them: an age, a count, a sum of money; and an
event in one line."""

from __future__ import annotations

import json
from typing import Any

from tether.events.catalogue import sentence
from tether.redact import redact


def age(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    s = max(0.0, float(seconds))
    if s < 60:
        return f"{s:.0f}s" if s >= 10 else f"{s:.1f}s"
    if s < 3600:
        return f"{s // 60:.0f}m{s % 60:02.0f}s"
    if s < 86400:
        return f"{s // 3600:.0f}h{(s % 3600) // 60:02.0f}m"
    return f"{s // 86400:.0f}d{(s % 86400) // 3600:.0f}h"


def money(usd: float | None) -> str:
    if not usd:
        return "$0"
    return f"${usd:,.2f}" if usd >= 0.01 else f"${usd:.4f}"


def count(n: float | None) -> str:
    if not n:
        return "0"
    v = float(n)
    for unit, div in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(v) >= div:
            return f"{v / div:.1f}{unit}"
    return f"{v:.0f}"


def line(kind: str, data: dict[str, Any]) -> str:
    """One line saying what an event was: its kind's sentence (``tether.events``), else its data; redacted."""
    text = sentence(kind, data)
    if text is not None:
        return redact(text)[:500]
    text = json.dumps({key: v for key, v in data.items() if key not in ("hash", "fingerprint")}, default=str)
    return redact(text if len(text) <= 300 else text[:297] + "...")
