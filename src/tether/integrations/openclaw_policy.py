"""OpenClaw's own exec approvals: what ``tether doctor`` warns about and what ``tether integrate openclaw
--harden`` sets. tether's plugin judges every tool call; these are OpenClaw's second gate, for a gateway run
without the plugin (removed, not loaded, a plugin loader bug) and for what tether cannot see (a command another
plugin rewrote after tether judged it).

Where they live (openclaw 2026.9.6, docs/tools/exec-approvals.md of the package): the config's
``tools.exec`` (``mode``: deny | allowlist | ask | auto | full, or the legacy ``security`` + ``ask`` pair;
``strictInlineEval``), also per agent under ``agents.entries.ID.tools.exec``; and the host's approvals
document, a JSON row in ``STATE/state/openclaw.sqlite`` (``exec_approvals_config``; ``exec-approvals.json``
only before ``openclaw doctor --fix`` imported it), whose ``defaults`` and ``agents.ID`` can only tighten the
config, and which alone holds ``askFallback`` (what a prompt nobody can answer resolves to; ``deny`` when
unset). OpenClaw's defaults are ``security=full``, ``ask=off``: no prompt at all.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tether.store.foreign import openclaw_exec_approvals

#: tools.exec.mode as (security, ask).
MODES = {
    "deny": ("deny", "off"),
    "allowlist": ("allowlist", "off"),
    "ask": ("allowlist", "on-miss"),
    "auto": ("allowlist", "auto"),
    "full": ("full", "off"),
}
SECURITY_RANK = {"deny": 0, "allowlist": 1, "full": 2}
ASK_RANK = {"always": 0, "on-miss": 1, "auto": 1, "off": 2}


@dataclass(frozen=True)
class Finding:
    where: str  # "tools.exec", "agents.entries.main.tools.exec", "host approvals (defaults)"
    what: str  # the one-line warning


def host_approvals(state_dir: Path) -> dict[str, Any] | None:
    """The host approvals document of the state folder ``state_dir`` (read only), or None when there is none."""
    db = state_dir / "state" / "openclaw.sqlite"
    if db.exists():
        raw = openclaw_exec_approvals(db)
        if raw is not None:
            try:
                doc = json.loads(raw)
            except ValueError:
                return None
            return doc if isinstance(doc, dict) else None
    legacy = state_dir / "exec-approvals.json"
    try:
        doc = json.loads(legacy.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return doc if isinstance(doc, dict) else None


def _requested(exec_cfg: dict[str, Any], inherited: tuple[str, str]) -> tuple[str, str]:
    mode = exec_cfg.get("mode")
    if isinstance(mode, str) and mode in MODES:
        return MODES[mode]
    security, ask = inherited
    if isinstance(exec_cfg.get("security"), str):
        security = exec_cfg["security"]
    if isinstance(exec_cfg.get("ask"), str):
        ask = exec_cfg["ask"]
    return security, ask


def _stricter(a: str, b: str | None, rank: dict[str, int]) -> str:
    if b is None or b not in rank:
        return a
    return b if rank[b] < rank.get(a, 99) else a


def _exec_blocks(config: dict[str, Any]) -> list[tuple[str, str | None, dict[str, Any]]]:
    """(where, agent id or None, tools.exec) for the config and each agent entry that has one."""
    out: list[tuple[str, str | None, dict[str, Any]]] = []
    tools = config.get("tools")
    top = tools.get("exec") if isinstance(tools, dict) else None
    out.append(("tools.exec", None, top if isinstance(top, dict) else {}))
    agents = config.get("agents")
    entries = agents.get("entries") if isinstance(agents, dict) else None
    if isinstance(entries, dict):
        for aid, entry in entries.items():
            t = entry.get("tools") if isinstance(entry, dict) else None
            e = t.get("exec") if isinstance(t, dict) else None
            if isinstance(e, dict):
                out.append((f"agents.entries.{aid}.tools.exec", str(aid), e))
    return out


def findings(config: dict[str, Any], host: dict[str, Any] | None) -> list[Finding]:
    """What lets a command run without anyone asking: the effective policy (the config, tightened by the host
    document) of the config and of each agent entry that overrides it."""
    out: list[Finding] = []
    blocks = _exec_blocks(config)
    base = _requested(blocks[0][2], ("full", "off"))
    base_strict = blocks[0][2].get("strictInlineEval") is True
    doc: dict[str, Any] = host if isinstance(host, dict) else {}
    defaults: dict[str, Any] = doc["defaults"] if isinstance(doc.get("defaults"), dict) else {}
    host_agents: dict[str, Any] = doc["agents"] if isinstance(doc.get("agents"), dict) else {}
    for where, aid, block in blocks:
        security, ask = _requested(block, base) if aid else base
        got = host_agents.get(aid or "main")
        h: dict[str, Any] = got if isinstance(got, dict) else {}
        for layer in (defaults, h):
            security = _stricter(security, layer.get("security"), SECURITY_RANK)
            ask = _stricter(ask, layer.get("ask"), ASK_RANK)
        if security == "full":
            out.append(Finding(where, "security=full: a command runs without matching any allowlist"))
        if ask == "off" and security == "full":  # allowlist + off refuses a miss: strict, not open
            out.append(Finding(where, "ask=off: no command is ever held for a human by OpenClaw"))
        strict = block.get("strictInlineEval") if aid and "strictInlineEval" in block else base_strict
        if strict is not True and security != "deny":
            out.append(
                Finding(
                    where,
                    "strictInlineEval is off: `python -c`, `node -e`, `sh -c` ... run as "
                    "allowed interpreters without approval",
                )
            )
    for label, layer in (("defaults", defaults), *((f"agents.{k}", v) for k, v in host_agents.items())):
        if isinstance(layer, dict) and layer.get("askFallback") == "full":
            out.append(
                Finding(f"host approvals ({label})", "askFallback=full: a prompt nobody answers allows the command")
            )
    return out


def _harden_block(block: dict[str, Any]) -> dict[str, Any]:
    b = copy.deepcopy(block)
    mode = b.get("mode")
    if isinstance(mode, str) or not ({"security", "ask"} & b.keys()):
        if mode not in ("deny", "allowlist", "ask"):  # full, auto (a model reviews), unset (full): ask on a miss
            b["mode"] = "ask"
    else:  # the legacy pair: OpenClaw refuses a config that mixes it with mode
        if b.get("security") not in ("deny", "allowlist"):
            b["security"] = "allowlist"
        if b.get("ask") not in ("on-miss", "always"):
            b["ask"] = "on-miss"
    b["strictInlineEval"] = True
    return b


def hardened(config: dict[str, Any]) -> dict[str, Any]:
    """``config`` with safe exec settings: a command runs only when allowlisted or approved (``mode: ask``,
    or ``security: allowlist`` + ``ask: on-miss`` where the legacy pair is used), inline eval always asks; a
    stricter setting already there is kept, and so is everything else."""
    out = copy.deepcopy(config)
    tools = out.setdefault("tools", {})
    if not isinstance(tools, dict):
        raise ValueError('the config\'s "tools" is not an object')
    top = tools.get("exec")
    tools["exec"] = _harden_block(top if isinstance(top, dict) else {})
    for _where, aid, block in _exec_blocks(out)[1:]:
        out["agents"]["entries"][aid]["tools"]["exec"] = _harden_block(block)
    return out


def hardened_host(host: dict[str, Any]) -> dict[str, Any] | None:
    """The host document with every ``askFallback: full`` made ``deny``; None when none was."""
    out = copy.deepcopy(host)
    changed = False
    layers = [out.get("defaults"), *(out.get("agents") or {}).values()]
    for layer in layers:
        if isinstance(layer, dict) and layer.get("askFallback") == "full":
            layer["askFallback"] = "deny"
            changed = True
    return out if changed else None
