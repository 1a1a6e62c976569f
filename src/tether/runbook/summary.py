"""What ``tether check`` prints: per agent, who answers for it and what it may do."""

from __future__ import annotations

from tether.durations import format_duration as d
from tether.runbook.load import LoadedRunbook, _read_yaml
from tether.runbook.model import Agent
from tether.vocabulary import ACTION_CLASSES, VERDICTS


def summarise(loaded: LoadedRunbook) -> str:
    rb = loaded.runbook
    lines = [f"{loaded.path}: ok — {len(rb.agents)} agent(s); state in {loaded.state.root}"]
    if not rb.agents:
        lines.append("  no agents yet: add one under `agents:` (see `tether init`)")
    for name, agent in rb.agents.items():
        if agent.command:
            start = " ".join(agent.command)
        elif agent.prompt:
            start = f"runs its prompt: {_clip(agent.prompt)}"
        else:  # claude-code/codex without a prompt: one run per task from its queue (integrations.agents)
            start = f"no prompt: runs each task queued with `tether task add {name} TEXT`"
        lines += [
            "",
            f"{name} ({agent.kind}): {start}",
            f"  owner {agent.owner.name} <{agent.owner.contact}>, backup {agent.backup.name} <{agent.backup.contact}>",
            f"  works in {loaded.agent_cwd(name)}",
            f"  liveness: {liveness(agent)}",
            f"  heartbeat every {d(agent.heartbeat.interval)}; stale after {d(agent.heartbeat.stale_after)}, "
            + (f"stuck after {d(agent.heartbeat.stuck_after)}" if agent.heartbeat.stuck_after else
               "never stuck (stuck_after off)"),
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


def liveness(agent: Agent) -> str:
    """How the daemon knows the agent is alive (``heartbeat.source``), in words."""
    hb = agent.heartbeat
    if hb.file is not None:
        where = "" if hb.file.startswith(("/", "~", "$")) else ", in its working directory"
        return f"file: {hb.file} (its modification time is the beat, its first line the progress{where})"
    if hb.source == "process":
        return ("process (alive while it runs: the daemon beats for it; no progress signal"
                + (", so stuck only on progress it reports with `tether beat`)" if hb.stuck_after else ")"))
    if hb.source == "output":
        return "output (each line it prints is a beat, the last one its progress)"
    by = {"claude-code": "its Claude Code hooks", "codex": "its Codex hooks",
          "openclaw": "its gateway's /health and plugin"}.get(agent.kind, "the SDK, `tether beat` or HTTP")
    return f"sdk (the beats it sends: {by})"


def boundary(loaded: LoadedRunbook, label: str | None = None, uid: int | None = None) -> tuple[list[str], list[str]]:
    """``(errors, warnings)`` about agents that would run as the daemon's own user (``uid``, default
    ours: whoever checks the runbook is taken to be who runs the daemon).

    The approval boundary only holds for an agent running as a user of its own: as the daemon's user it
    could write the store, read ``admin.token`` and delete its own kill file. So ``run_as`` naming the
    daemon's own user is an error unless ``same_user: true`` says the boundary is knowingly advisory;
    no ``run_as`` at all (the default, and the example's) is a warning, as is ``same_user: true``.
    """
    import os
    import pwd

    uid = os.geteuid() if uid is None else uid
    try:
        me = pwd.getpwuid(uid).pw_name
    except KeyError:
        me = str(uid)
    label = label or str(loaded.path)
    try:
        _, lines = _read_yaml(loaded.text, label)
    except Exception:
        lines = {}

    def line(name: str, field: str) -> int:
        for loc in (("agents", name, field), ("agents", name)):
            if loc in lines:
                return lines[loc]
        return 1

    errors, warnings = [], []
    advisory = "its approval boundary is advisory (it could write the store, read admin.token and delete its kill file)"
    from tether.wall import plan as wall  # wall imports runbook: a package cycle

    for name, agent in loaded.runbook.agents.items():
        if agent.sandbox == "off":
            warnings.append(
                f"{label}:{line(name, 'sandbox')}: agents.{name}.sandbox: off: no wall; its scope is "
                "enforced only by classifying what it asks (it can write anywhere its user can)"
            )
        elif wall.enabled(loaded, name):
            found = wall.problems(agent, uid, resolve=loaded.resolve)
            warnings += [f"{label}:{line(name, 'sandbox')}: agents.{name}: {w}" for w in found]
            if agent.network == "open":
                warnings.append(
                    f"{label}:{line(name, 'network')}: agents.{name}.network: open: the wall leaves "
                    "it the host's network (no egress proxy, scope.hosts not enforced)"
                )
            continue
        if agent.run_as is not None:
            try:
                target = pwd.getpwnam(agent.run_as).pw_uid
            except KeyError:
                warnings.append(
                    f"{label}:{line(name, 'run_as')}: agents.{name}.run_as: no user {agent.run_as!r} "
                    "on this host yet; the agent cannot start until it exists"
                )
                continue
            if target != uid:
                continue
            if not agent.same_user:
                errors.append(
                    f"{label}:{line(name, 'run_as')}: agents.{name}.run_as: {agent.run_as!r} is the "
                    f"daemon's own user; give the agent a user of its own, or set same_user: true to "
                    "accept an advisory boundary"
                )
                continue
        if agent.same_user:
            warnings.append(
                f"{label}:{line(name, 'same_user')}: agents.{name}: runs as {me}, the daemon's own "
                f"user (same_user: true): {advisory}"
            )
        else:
            warnings.append(
                f"{label}:{line(name, 'run_as')}: agents.{name}: no run_as, so it runs as {me}, the "
                f"daemon's own user: {advisory}; set run_as: <a user of its own>"
            )
    return errors, warnings


def _clip(text: str, width: int = 60) -> str:
    """A prompt on one line, at most ``width`` characters."""
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"
