"""Checks for ``tether doctor`` about agent CLI hooks (``host.doctor.run`` appends ``checks(loaded)``).

- codex agents: tether's PreToolUse hook is there and will run (managed, or trusted): Codex's own answer,
  from ``codex app-server`` ``hooks/list``; a hook pending trust is skipped silently by Codex.
- claude-code agents: whether the agent can switch its hooks off is ``host.doctor.check_claude_hooks``.
- both: the last canary (``integrations.canary``): did tether's hook deny it through the real CLI, when.
- openclaw agents: OpenClaw's own exec approvals (``integrations.openclaw_policy``): security=full, ask=off,
  an askFallback that allows, strictInlineEval off are warnings; and whether an ``openclaw`` is there to run.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from tether.checks import Check
from tether.errors import UsageError
from tether.integrations import canary, codex, openclaw, openclaw_policy

if TYPE_CHECKING:
    from tether.runbook import LoadedRunbook


def codex_hooks(loaded: LoadedRunbook, codex_bin: str | None = None,
                env: dict[str, str] | None = None) -> list[Check]:
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


def openclaw_exec(loaded: LoadedRunbook) -> list[Check]:
    """Each openclaw agent's exec approvals: the config its gateway runs with (the one tether wrote at its last
    start, else the runbook's ``OPENCLAW_CONFIG_PATH``, else none: OpenClaw's defaults) and its state
    folder's host approvals."""
    out = []
    for name, spec in loaded.runbook.agents.items():
        if spec.kind != "openclaw":
            continue
        label = f"openclaw exec approvals ({name})"
        state = Path(spec.env.get("OPENCLAW_STATE_DIR") or loaded.state.agent_dir(name) / "home" / ".openclaw")
        source = spec.env.get("OPENCLAW_CONFIG_PATH")
        written = state.expanduser() / "tether-gateway.json"
        path = written if written.exists() else Path(source).expanduser() if source else None
        try:
            config = openclaw.read_config(path) if path is not None else {}
        except UsageError as err:
            out.append(Check(label, "unknown", str(err)))
            continue
        found = openclaw_policy.findings(config, openclaw_policy.host_approvals(state.expanduser()))
        fix = (f"tether integrate openclaw --config {source} --harden" if source else
               f"give {name} a config (env OPENCLAW_CONFIG_PATH in the runbook), then "
               "tether integrate openclaw --config FILE --harden")
        if found:
            shown = "; ".join(f"{f.where}: {f.what}" for f in found[:4]) + (f"; {len(found) - 4} more"
                                                                           if len(found) > 4 else "")
            out.append(Check(label, "warn", f"OpenClaw's own gate is open ({shown}); only tether's plugin "
                             "stands between the model and the host", fix))
        else:
            out.append(Check(label, "ok", "OpenClaw asks on an allowlist miss, inline eval included, and no "
                             "askFallback allows"))
        if not spec.command and openclaw.binary() is None:
            out.append(Check(f"openclaw ({name})", "fail", "no openclaw to run the gateway",
                             "npm install -g openclaw (Node >= 24.16), or set TETHER_OPENCLAW (and "
                             "TETHER_OPENCLAW_NODE) for the daemon, or give the agent a command"))
    return out


def checks(loaded: LoadedRunbook) -> list[Check]:
    return codex_hooks(loaded) + openclaw_exec(loaded) + canary.checks(loaded)
