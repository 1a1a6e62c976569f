"""Token usage and cost per model from an agent CLI's transcript (JSONL), read incrementally.

Claude Code writes one line per content block of an assistant message, each repeating the message's
``message.usage`` (input, output, cache creation and cache read tokens): a message counts once, keyed by
``message.id`` and ``requestId``. Codex writes ``event_msg`` lines of type ``token_count`` whose
``last_token_usage`` is the usage of one model call (``input_tokens`` includes ``cached_input_tokens``), and
``turn_context`` lines naming the model.

Prices come from ``prices.json`` beside this file (USD per million tokens by model id prefix).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

PRICES = Path(__file__).with_name("prices.json")
SEEN_KEPT = 500  # message keys remembered per transcript, for lines that repeat across reads


@cache
def prices() -> dict[str, dict[str, float]]:
    data: dict[str, dict[str, float]] = json.loads(PRICES.read_text(encoding="utf-8"))["models"]
    return data


def price_for(model: str) -> dict[str, float] | None:
    best = ""
    for key in prices():
        if model.startswith(key) and len(key) > len(best):
            best = key
    return prices()[best] if best else None


@dataclass
class Usage:
    model: str
    input_tokens: int = 0  # not cached (Anthropic: input_tokens; OpenAI: input_tokens - cached_input_tokens)
    output_tokens: int = 0
    cache_creation_input_tokens: int = 0
    cache_read_input_tokens: int = 0
    calls: int = 0

    @property
    def cost_usd(self) -> float | None:
        p = price_for(self.model)
        if p is None:
            return None
        total = (self.input_tokens * p["input"] + self.output_tokens * p["output"]
                 + self.cache_creation_input_tokens * p["cache_write"] + self.cache_read_input_tokens * p["cache_read"])
        return round(total / 1e6, 8)

    @property
    def tokens(self) -> int:
        return self.input_tokens + self.output_tokens + self.cache_creation_input_tokens + self.cache_read_input_tokens

    def as_event(self) -> dict[str, Any]:
        return {**asdict(self), "tokens": self.tokens, "cost_usd": self.cost_usd}


@dataclass
class Cursor:
    """Where reading a transcript stopped: a byte offset at a line boundary, recent message keys, the model."""

    offset: int = 0
    seen: list[str] = field(default_factory=list)
    model: str = ""

    @classmethod
    def of(cls, data: Any) -> Cursor:
        if not isinstance(data, dict):
            return cls()
        return cls(int(data.get("offset", 0)), [str(s) for s in data.get("seen", [])][-SEEN_KEPT:],
                   str(data.get("model", "")))


def _int(v: Any) -> int:
    return int(v) if isinstance(v, (int, float)) and v > 0 else 0


def read_new(path: Path, cursor: Cursor) -> list[dict[str, Any]]:
    """The complete JSON lines after ``cursor.offset`` (a partly written last line waits for the next read)."""
    try:
        with open(path, "rb") as f:
            f.seek(cursor.offset)
            data = f.read()
    except OSError:
        return []
    end = data.rfind(b"\n")
    if end < 0:
        return []
    cursor.offset += end + 1
    out = []
    for line in data[: end + 1].splitlines():
        try:
            obj = json.loads(line)
        except ValueError:
            continue
        if isinstance(obj, dict):
            out.append(obj)
    return out


def claude_usage(lines: list[dict[str, Any]], cursor: Cursor) -> dict[str, Usage]:
    seen = set(cursor.seen)
    got: dict[str, Usage] = {}
    for entry in lines:
        msg = entry.get("message")
        if entry.get("type") != "assistant" or not isinstance(msg, dict) or not isinstance(msg.get("usage"), dict):
            continue
        key = f"{msg.get('id', '')}:{entry.get('requestId', '')}"
        if key == ":" or key in seen:
            continue
        seen.add(key)
        cursor.seen.append(key)
        u = msg["usage"]
        model = str(msg.get("model") or "unknown")
        if model == "<synthetic>":
            continue
        acc = got.setdefault(model, Usage(model))
        acc.input_tokens += _int(u.get("input_tokens"))
        acc.output_tokens += _int(u.get("output_tokens"))
        acc.cache_creation_input_tokens += _int(u.get("cache_creation_input_tokens"))
        acc.cache_read_input_tokens += _int(u.get("cache_read_input_tokens"))
        acc.calls += 1
    del cursor.seen[:-SEEN_KEPT]
    return got


def codex_usage(lines: list[dict[str, Any]], cursor: Cursor) -> dict[str, Usage]:
    got: dict[str, Usage] = {}
    for entry in lines:
        payload = entry.get("payload")
        if not isinstance(payload, dict):
            continue
        if entry.get("type") == "turn_context" and isinstance(payload.get("model"), str):
            cursor.model = payload["model"]
        if entry.get("type") != "event_msg" or payload.get("type") != "token_count":
            continue
        info = payload.get("info")
        last = info.get("last_token_usage") if isinstance(info, dict) else None
        if not isinstance(last, dict):
            continue
        model = cursor.model or "unknown"
        acc = got.setdefault(model, Usage(model))
        cached = _int(last.get("cached_input_tokens"))
        acc.input_tokens += max(0, _int(last.get("input_tokens")) - cached)
        acc.cache_read_input_tokens += cached
        acc.cache_creation_input_tokens += _int(last.get("cache_write_input_tokens"))
        acc.output_tokens += _int(last.get("output_tokens"))
        acc.calls += 1
    return got


def read_usage(client: str, path: Path, cursor: Cursor) -> dict[str, Usage]:
    """Usage by model in what was appended to the transcript since ``cursor`` (which moves on)."""
    lines = read_new(path, cursor)
    return claude_usage(lines, cursor) if client == "claude-code" else codex_usage(lines, cursor)
