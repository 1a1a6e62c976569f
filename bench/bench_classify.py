"""The approval boundary on every shell command of the labelled corpus: ``classify_shell`` plus the
runbook's decision (``policy.decide``: the agent's verdicts, scope checks with symlinks resolved,
protected paths), against one cedarpy ``is_authorized`` call on an equivalent pre-parsed policy set
(goal ≤ 1× the cedarpy median).

Both sides run on the same commands, alternately, in the same run; the cedarpy side is given the
classes ready-made, so it only pays for the policy decision. Medians and 99th percentiles.

The same on the benign set (tests/data/classify_benign.yaml: 333 everyday commands in a real git repository,
built by ``tests/corpora.py`` under ``bench/results/``), where the classifier reads what it judges by effect
(package.json, the Makefile, git's index and config, patch files, programs): file reads included.

Also measured: what isolating the parser would cost, with ``classify_shell`` run in a persistent forked
worker answering over a pipe (the cheapest isolation: no spawn per call), then ``policy.decide`` as before.
tether does not do this (tree-sitter only ever sees ASCII; see ``classify/shell.py``): the row says why.
"""

from __future__ import annotations

import gc
import os
import pickle
import statistics
import struct
import sys
import time
from pathlib import Path
from typing import Any

import yaml

from tether.classify import Classification, Context, classify_shell
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


def p99(samples: list[float]) -> float:
    return statistics.quantiles(samples, n=100)[98]


class Worker:
    """``classify_shell`` in a forked child, over two pipes: a crash there would cost one answer only."""

    def __init__(self, ctx: Context) -> None:
        req_r, self._req = os.pipe()
        self._resp, resp_w = os.pipe()
        self.pid = os.fork()
        if self.pid == 0:  # the worker: one command in, one pickled Classification out, until EOF
            os.close(self._req)
            os.close(self._resp)
            with os.fdopen(req_r, "rb") as rin, os.fdopen(resp_w, "wb") as wout:
                while head := rin.read(4):
                    out = pickle.dumps(classify_shell(rin.read(struct.unpack("<I", head)[0]).decode(), ctx))
                    wout.write(struct.pack("<I", len(out)) + out)
                    wout.flush()
            os._exit(0)
        os.close(req_r)
        os.close(resp_w)
        self._in = os.fdopen(self._resp, "rb")

    def classify(self, command: str) -> Classification:
        data = command.encode()
        os.write(self._req, struct.pack("<I", len(data)) + data)
        size = struct.unpack("<I", self._in.read(4))[0]
        result: Classification = pickle.loads(self._in.read(size))
        return result

    def close(self) -> None:
        os.close(self._req)
        self._in.close()
        os.waitpid(self.pid, 0)


def on_the_benign_set(rounds: int, policies: Any, entities: Any) -> tuple[list[float], list[float], int]:
    """classify + decide against cedarpy, alternately, on the benign set in its own workspace (samples in s)."""
    import tempfile

    import cedarpy

    from tether.policy import decide

    sys.path.insert(0, str(ROOT / "tests"))
    import corpora

    (ROOT / "bench" / "results").mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory(dir=ROOT / "bench" / "results", prefix="classify-") as root:
        cases = [c for c in corpora.cases(Path(root), ("benign",)) if c.benign and c.shell is not None]
        agent = corpora.agent()
        requests = [{"principal": 'Agent::"agent"', "action": 'Action::"run"', "resource": f'Command::"b{i}"',
                     "context": {"classes": sorted(c.classify().classes)}} for i, c in enumerate(cases)]
        perf = time.perf_counter
        ours: list[float] = []
        theirs: list[float] = []
        for r in range(rounds + 1):  # the first round warms the caches (file reads are then cache hits or stats)
            for i, c in enumerate(cases):
                cmd, ctx, scope, req = str(c.shell), c.ctx, c.scope, requests[i]
                if (i + r) % 2:  # which side goes first alternates, as above
                    t0 = perf()
                    cedarpy.is_authorized(req, policies, entities)
                    t1 = perf()
                    decide(classify_shell(cmd, ctx), agent, scope)
                    t2 = perf()
                    mine, cedar = t2 - t1, t1 - t0
                else:
                    t0 = perf()
                    decide(classify_shell(cmd, ctx), agent, scope)
                    t1 = perf()
                    cedarpy.is_authorized(req, policies, entities)
                    t2 = perf()
                    mine, cedar = t1 - t0, t2 - t1
                if r:
                    ours.append(mine)
                    theirs.append(cedar)
    return ours, theirs, len(cases)


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
    worker_s: list[float] = []
    cedar_w: list[float] = []
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
    # The same through an isolating worker, against cedarpy again (its own samples: same conditions).
    worker = Worker(ctx)
    try:
        for cmd in commands:  # warm the pipe and the child
            worker.classify(cmd)
        for r in range(rounds):
            for i, cmd in enumerate(commands):
                req = requests[i]
                if (i + r) % 2:
                    t = perf()
                    cedarpy.is_authorized(req, policies, entities)
                    cedar_w.append(perf() - t)
                t = perf()
                decide(worker.classify(cmd), agent, scope)
                worker_s.append(perf() - t)
                if not (i + r) % 2:
                    t = perf()
                    cedarpy.is_authorized(req, policies, entities)
                    cedar_w.append(perf() - t)
    finally:
        worker.close()
    real_s, real_cedar_s, real_n = on_the_benign_set(rounds, policies, entities)
    us = 1e6
    ours, cedar, alone = (statistics.median(x) * us for x in (ours_s, cedar_s, alone_s))
    real, real_cedar = statistics.median(real_s) * us, statistics.median(real_cedar_s) * us
    ours99, cedar99, alone99 = (p99(x) * us for x in (ours_s, cedar_s, alone_s))
    isolated, cedar_iso = statistics.median(worker_s) * us, statistics.median(cedar_w) * us
    n = len(commands)
    return [
        row(f"classify_shell + policy.decide vs cedarpy is_authorized (pre-parsed), median of {n} commands",
            ours, cedar, "µs", "≤ 1.0× cedarpy median", ours <= cedar),
        row("same, p99", ours99, cedar99, "µs", "(reported)", True),
        row(f"classify_shell alone, median of {n} corpus commands, vs a {BUDGET_US:.0f} µs budget",
            alone, BUDGET_US, "µs", f"≤ {BUDGET_US:.0f} µs", alone <= BUDGET_US),
        row("classify_shell alone, p99", alone99, BUDGET_US, "µs", "(reported)", True),
        row(f"classify_shell + policy.decide vs cedarpy on the {real_n} benign-set commands in a real repository "
            "(file reads included), median", real, real_cedar, "µs", "≤ 1.0× cedarpy median", real <= real_cedar),
        row("same, p99", p99(real_s) * us, p99(real_cedar_s) * us, "µs", "(reported)", True),
        row("classify_shell in a forked worker over a pipe + policy.decide vs cedarpy, median (not used)",
            isolated, cedar_iso, "µs", "(reported: isolation per decision)", True),
        row("same, p99 (not used)", p99(worker_s) * us, p99(cedar_w) * us, "µs", "(reported)", True),
    ]


if __name__ == "__main__":
    for r in run(quick="--quick" in sys.argv):
        print(r)
