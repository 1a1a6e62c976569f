"""The approval boundary on every shell command of the labelled corpus: ``classify_shell`` plus the
runbook's decision (``policy.decide``: the agent's verdicts, scope checks with symlinks resolved,
protected paths), against one cedarpy ``is_authorized`` call on an equivalent pre-parsed policy set
(goal ≤ 1× the cedarpy median).

Both sides run on the same commands, alternately, in the same run; the cedarpy side is given the
classes ready-made, so it only pays for the policy decision.
"""

from __future__ import annotations

import gc
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import yaml

from tether.classify import Context, classify_shell
from tether.vocabulary import DEFAULT_VERDICTS, VERDICT_RANK

from common import row

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "tests" / "data" / "classify_corpus.yaml"
BUDGET_US = 40.0


def load_commands() -> tuple[Context, list[str]]:
    data = yaml.safe_load(CORPUS.read_text())
    c = data["context"]
    ctx = Context(cwd=c["cwd"], home=c["home"], control=tuple(c["control"]))
    return ctx, [str(case["shell"]) for case in data["cases"] if "shell" in case]


def agent_and_scope(cwd: str) -> tuple[Any, Any]:
    """A runbook agent with the default table, working in ``cwd``."""
    from tether.policy import Scope
    from tether.runbook import parse

    rb = parse(
        "agents:\n  bench:\n    owner: {name: A, contact: x}\n    backup: {name: B, contact: y}\n"
        "    command: [\"true\"]\n    scope: {hosts: [api.github.com, pypi.org]}\n"
    )
    agent = rb.agents["bench"]
    return agent, Scope.of(agent, Path(cwd))


def verdict(classes: frozenset[str]) -> str:
    """The trivial lookup a caller does after classifying: the strictest verdict of the classes."""
    best = "allow"
    for k in classes:
        v = DEFAULT_VERDICTS[k]
        if VERDICT_RANK[v] > VERDICT_RANK[best]:
            best = v
    return best


def cedar_policies() -> str:
    """DEFAULT_VERDICTS as Cedar: allow/log classes are permitted, every other class forbidden."""
    out = []
    for klass, v in DEFAULT_VERDICTS.items():
        effect = "permit" if v in ("allow", "log") else "forbid"
        out.append(
            f'@id("{klass}")\n{effect}(principal, action == Action::"run", resource)\n'
            f'when {{ context.classes.contains("{klass}") }};'
        )
    return "\n".join(out)


def run(quick: bool) -> list[dict[str, Any]]:
    import cedarpy

    ctx, commands = load_commands()
    if quick:
        commands = commands[::2][:300]
    rounds = 1 if quick else 5
    policies = cedarpy.PolicySet.from_str(cedar_policies())
    entities = cedarpy.Entities.from_json_str("[]")
    requests = []
    for i, cmd in enumerate(commands):
        classes = sorted(classify_shell(cmd, ctx).classes)
        requests.append({"principal": 'Agent::"agent"', "action": 'Action::"run"', "resource": f'Command::"c{i}"',
                         "context": {"classes": classes}})
    # Warm both sides up, and check they agree on allow vs not-allow.
    for cmd, req in zip(commands, requests, strict=True):
        ours = verdict(classify_shell(cmd, ctx).classes) in ("allow", "log")
        theirs = cedarpy.is_authorized(req, policies, entities).allowed
        if ours != theirs:
            raise AssertionError(f"tether and cedar disagree on {cmd!r}")

    perf = time.perf_counter
    ours_s: list[float] = []
    cedar_s: list[float] = []
    alone_s: list[float] = []
    gc.collect()
    # classify_shell on its own: passes over the corpus, one call per command, as a hook would see it.
    for _ in range(rounds + 2):
        for cmd in commands:
            t = perf()
            classify_shell(cmd, ctx)
            alone_s.append(perf() - t)
    from tether.policy import decide

    agent, scope = agent_and_scope(ctx.cwd)
    # tether (classify + the runbook's decision) against cedarpy, alternately, on the same commands.
    for r in range(rounds):
        for i, cmd in enumerate(commands):
            req = requests[i]
            if (i + r) % 2:
                t = perf()
                cedarpy.is_authorized(req, policies, entities)
                cedar_s.append(perf() - t)
                t = perf()
                decide(classify_shell(cmd, ctx), agent, scope)
                ours_s.append(perf() - t)
            else:
                t = perf()
                decide(classify_shell(cmd, ctx), agent, scope)
                ours_s.append(perf() - t)
                t = perf()
                cedarpy.is_authorized(req, policies, entities)
                cedar_s.append(perf() - t)
    ours = statistics.median(ours_s) * 1e6
    alone = statistics.median(alone_s) * 1e6
    cedar = statistics.median(cedar_s) * 1e6
    n = len(commands)
    return [
        row(f"classify_shell + policy.decide vs cedarpy is_authorized (pre-parsed), median of {n} commands",
            ours, cedar, "µs", "≤ 1.0× cedarpy median", ours <= cedar),
        row(f"classify_shell alone, median of {n} corpus commands, vs a {BUDGET_US:.0f} µs budget",
            alone, BUDGET_US, "µs", f"≤ {BUDGET_US:.0f} µs", alone <= BUDGET_US),
    ]


if __name__ == "__main__":
    for r in run(quick="--quick" in sys.argv):
        print(r)
