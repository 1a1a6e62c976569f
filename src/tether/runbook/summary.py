"""What ``tether check`` prints: per agent, who answers for it and what it may do."""

from __future__ import annotations

from tether.durations import format_duration as d
from tether.runbook.load import LoadedRunbook
from tether.vocabulary import ACTION_CLASSES, VERDICTS


def summarise(loaded: LoadedRunbook) -> str:
    rb = loaded.runbook
    lines = [f"{loaded.path}: ok — {len(rb.agents)} agent(s); state in {loaded.state.root}"]
    if not rb.agents:
        lines.append("  no agents yet: add one under `agents:` (see `tether init`)")
    for name, agent in rb.agents.items():
        start = " ".join(agent.command) if agent.command else f"{agent.kind} with a prompt"
        lines += [
            "",
            f"{name} ({agent.kind}): {start}",
            f"  owner {agent.owner.name} <{agent.owner.contact}>, backup {agent.backup.name} <{agent.backup.contact}>",
            f"  works in {loaded.agent_cwd(name)}",
            f"  heartbeat every {d(agent.heartbeat.interval)}; stale after {d(agent.heartbeat.stale_after)}, "
            f"stuck after {d(agent.heartbeat.stuck_after)}",
            f"  restart {agent.restart.policy}, backoff {d(agent.restart.backoff.base)}"
            f"×{agent.restart.backoff.factor:g} "
            f"up to {d(agent.restart.backoff.cap)}; crashloop after {agent.restart.crashloop.limit} in "
            f"{d(agent.restart.crashloop.window)}",
            f"  kill: {agent.kill.signal}, then SIGKILL after {d(agent.kill.grace)}",
        ]
        by_verdict: dict[str, list[str]] = {v: [] for v in VERDICTS}
        for cls in ACTION_CLASSES:
            by_verdict[agent.verdict(cls)].append(cls)
        for verdict in VERDICTS:
            label = {"allow": "may", "log": "may (logged)", "ask": "asks first", "block": "never"}[verdict]
            if by_verdict[verdict]:
                lines.append(f"  {label:<13} {', '.join(by_verdict[verdict])}")
        scope = agent.scope
        parts = [f"{k}: {', '.join(v)}" for k, v in scope.model_dump().items() if v]
        lines.append(f"  scope        {'; '.join(parts) if parts else 'its workspace only'}")
        if agent.gates:
            gates = (f"{k} needs `{' '.join(g.command)}` to pass" for k, g in agent.gates.items())
            lines.append("  gates        " + "; ".join(gates))
        if agent.budgets.tokens_per_day or agent.budgets.usd_per_day:
            b = agent.budgets
            lines.append(f"  budget       {b.tokens_per_day or '∞'} tokens, ${b.usd_per_day or '∞'} a day")
    return "\n".join(lines)
