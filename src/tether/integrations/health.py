"""Checks for ``tether doctor`` about agent CLI hooks (``host.doctor.run`` appends ``checks(loaded)``).

- codex agents: tether's PreToolUse hook is there and will run (managed, or trusted): Codex's own answer,
  from ``codex app-server`` ``hooks/list``; a hook pending trust is skipped silently by Codex.
- claude-code agents: whether the agent can switch its hooks off is ``host.doctor.check_claude_hooks``.
- both: the last canary (``integrations.canary``): did tether's hook deny it through the real CLI, when.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tether.host.doctor import Check

if TYPE_CHECKING:
    from tether.runbook import LoadedRunbook


def codex_hooks(loaded: LoadedRunbook, codex_bin: str | None = None,
                env: dict[str, str] | None = None) -> list[Check]:
    from tether.integrations import codex

    names = [n for n, a in loaded.runbook.agents.items() if a.kind == "codex"]
    if not names:
        return []
    exe = codex_bin or codex.binary()
    if exe is None:
        return [Check("codex hooks", "unknown", f"codex agent(s) {', '.join(names)}: no codex CLI on PATH to ask",
                      "install it, or set $TETHER_CODEX")]
    out = []
    for name in names:
        label = f"codex hooks ({name})"
        try:
            listed = codex.list_hooks(exe, loaded.agent_cwd(name), env)
        except (OSError, RuntimeError) as err:
            out.append(Check(label, "unknown", f"codex app-server did not list hooks: {err}"))
            continue
        gates = [h for h in codex.ours(listed) if h.get("eventName") == "preToolUse"]
        pending = codex.pending_trust(gates)
        if not gates:
            out.append(Check(label, "fail", "no tether PreToolUse hook: every command runs unchecked",
                             "sudo tether integrate codex --managed"))
        elif pending:
            keys = ", ".join(str(h.get("key")) for h in pending)
            out.append(Check(label, "warn", f"tether's hooks are pending trust and Codex skips them ({keys}), "
                             "except in runs tether starts with --dangerously-bypass-hook-trust",
                             "tether integrate codex --trust, or sudo tether integrate codex --managed"))
        elif all(h.get("isManaged") for h in gates):
            out.append(Check(label, "ok", "tether's hooks are managed (requirements.toml): no trust step, "
                             "and the agent cannot switch them off"))
        else:
            out.append(Check(label, "warn", "tether's hooks are trusted, but not managed: the agent can edit "
                             "its hooks.json or config.toml", "sudo tether integrate codex --managed"))
    return out


def checks(loaded: LoadedRunbook) -> list[Check]:
    from tether.integrations import canary

    return codex_hooks(loaded) + canary.checks(loaded)
