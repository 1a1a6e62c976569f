"""The boring signals, per agent and per host, computed from the store (and psutil for the host):
"is it alive, useful, expensive, or dangerous?" Served by the API, ``/metrics`` and the status file.
Where each signal comes from, for each kind of agent: docs/SIGNALS.md."""

from __future__ import annotations

import os
import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from typing import Any

from tether.store import Store
from tether.vocabulary import VIOLATION_KINDS

#: Models and error kinds are names an agent chooses, and they become labels (``/metrics``, the status
#: file): each agent shows at most ``MAX_LABELS`` of each, the known ones first (a model ``prices.json``
#: prices, an error kind below), then the most used; the rest are added up under ``OTHER``.
MAX_LABELS = 10
OTHER = "other"
#: The error kinds the hook monitor records and the docs suggest to agents.
ERROR_KINDS = frozenset({"error", "interrupted", "timeout", "permission", "not_found", "exit_code", "hook",
                         "model", "tool", "api", "network", "rate_limit", "blocked"})


#: Accounts an agent touched, shown by name in its status (the newest); the count covers them all.
ACCOUNTS_SHOWN = 50

def today(now: float) -> str:
    return time.strftime("%Y-%m-%d", time.gmtime(now))


def bounded(weights: dict[str, float], known: Callable[[str], bool]) -> dict[str, str]:
    """Each name's label: itself for the first ``MAX_LABELS`` (known names first, then by weight), else
    ``OTHER``."""
    ranked = sorted(weights, key=lambda n: (not known(n), -weights[n], n))
    return {name: name if i < MAX_LABELS else OTHER for i, name in enumerate(ranked)}


def _known_model(name: str) -> bool:
    from tether.integrations.transcript import price_for  # +7 ms to tether status

    return price_for(name) is not None


def _fold_models(by_model: dict[str, dict[str, float]]) -> dict[str, dict[str, float]]:
    label = bounded({m: sum(u.values()) for m, u in by_model.items()}, _known_model)
    out: dict[str, dict[str, float]] = {}
    for model, u in by_model.items():
        got = out.setdefault(label[model], dict.fromkeys(u, 0))
        for key, value in u.items():
            got[key] = round(got[key] + value, 6) if key == "cost_usd" else got[key] + value
    return out


def _fold_errors(errors: dict[str, int]) -> dict[str, int]:
    label = bounded({k: float(n) for k, n in errors.items()}, ERROR_KINDS.__contains__)
    out: dict[str, int] = {}
    for kind, n in errors.items():
        out[label[kind]] = out.get(label[kind], 0) + n
    return out


def agent_signals(store: Store, now: float | None = None, agent: str | None = None) -> dict[str, dict[str, Any]]:
    """Per agent (or only ``agent``): tokens and spend today and in total by model, errors by kind,
    accounts touched, wall violations by kind (``vocabulary.VIOLATION_KINDS``: every kind, 0 when none)."""
    now = time.time() if now is None else now
    day = today(now)
    out: dict[str, dict[str, Any]] = defaultdict(lambda: {
        "tokens_today": {"input": 0, "output": 0, "cache_read": 0, "cache_write": 0},
        "spend_today_usd": 0.0,
        "usage_by_model": {},
        "errors": {},
        "accounts_touched": [],  # the ACCOUNTS_SHOWN touched last, by name
        "accounts_touched_count": 0,  # how many distinct accounts in all
        "violations": dict.fromkeys(VIOLATION_KINDS, 0),
        "unpriced": [],
    })
    for row in store.usage(agent):
        sig = out[row["agent"]]
        model = sig["usage_by_model"].setdefault(
            row["model"], {"input": 0, "output": 0, "cache_read": 0, "cache_write": 0, "cost_usd": 0.0}
        )
        for key in ("input", "output", "cache_read", "cache_write"):
            model[key] += row[f"{key}_tokens"]
            if row["day"] == day:
                sig["tokens_today"][key] += row[f"{key}_tokens"]
        model["cost_usd"] = round(model["cost_usd"] + row["cost_usd"], 6)
        if row["day"] == day:
            sig["spend_today_usd"] = round(sig["spend_today_usd"] + row["cost_usd"], 6)
    for row in store.signal_counts("agent_errors"):
        if agent is None or row["agent"] == agent:
            out[row["agent"]]["errors"][row["kind"]] = row["count"]
    touched: dict[str, list[tuple[float, str]]] = defaultdict(list)
    for row in store.signal_counts("agent_accounts"):
        if agent is None or row["agent"] == agent:
            touched[row["agent"]].append((row.get("last") or 0.0, row["account"]))
    for name, accounts in touched.items():  # an agent can name accounts without end: the newest, and the count
        out[name]["accounts_touched_count"] = len(accounts)
        out[name]["accounts_touched"] = sorted(a for _, a in sorted(accounts, reverse=True)[:ACCOUNTS_SHOWN])
    for row in store.signal_counts("agent_violations"):
        if (agent is None or row["agent"] == agent) and row["kind"] in VIOLATION_KINDS:
            out[row["agent"]]["violations"][row["kind"]] = row["count"]
    for sig in out.values():
        # tokens with no cost: neither the agent's own figure nor the price table gave one (never "$0")
        sig["unpriced"] = sorted(m for m, u in sig["usage_by_model"].items()
                                 if not u["cost_usd"] and any(u[k] for k in ("input", "output", "cache_read",
                                                                             "cache_write")))
        sig["usage_by_model"] = _fold_models(sig["usage_by_model"])
        sig["errors"] = _fold_errors(sig["errors"])
    return dict(out)


def status_signals(store: Store, now: float | None = None, agent: str | None = None) -> dict[str, dict[str, Any]]:
    """What the status document adds per agent (``row["signals"]`` for ``status_file.document``): the
    signals above, and the pending approvals (how many; the oldest is why the agent is blocked)."""
    out = agent_signals(store, now, agent)
    for a in store.approvals("pending", agent):
        sig = out.setdefault(a["agent"], {})
        if not sig.get("approvals_pending"):
            sig["blocked"] = f"waiting for approval #{a['id']}: {a['action']}"
        sig["approvals_pending"] = sig.get("approvals_pending", 0) + 1
    return out


def host_signals(paths: Iterable[str], started: float | None = None, now: float | None = None) -> dict[str, Any]:
    """Host uptime, daemon uptime, and disk usage of each path that exists (state dir, workspaces)."""
    import psutil

    now = time.time() if now is None else now
    disks = {}
    for p in dict.fromkeys(paths):
        if os.path.exists(p):
            try:
                u = psutil.disk_usage(p)
            except OSError:
                continue
            disks[p] = {
                "total_bytes": u.total, "used_bytes": u.used, "free_bytes": u.free, "used_ratio": u.percent / 100
            }
    return {
        "host_uptime_s": round(now - psutil.boot_time(), 1),
        "daemon_uptime_s": round(now - started, 1) if started else None,
        "disk": disks,
    }
