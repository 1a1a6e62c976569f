"""The labelled corpus (tests/data/classify_corpus.yaml): every command and tool call classifies as
labelled, and no bypass attempt comes out all-allowed under the default verdict table."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml

from tether.classify import Classification, Context, classify_shell, classify_tool
from tether.vocabulary import ACTION_CLASSES, DEFAULT_VERDICTS

CORPUS_PATH = Path(__file__).parent / "data" / "classify_corpus.yaml"
ALLOWED = frozenset(k for k, v in DEFAULT_VERDICTS.items() if v == "allow")


def load_corpus() -> tuple[Context, list[dict[str, Any]]]:
    data = yaml.safe_load(CORPUS_PATH.read_text())
    c = data["context"]
    ctx = Context(cwd=c["cwd"], home=c["home"], control=tuple(c["control"]))
    return ctx, data["cases"]


CTX, CASES = load_corpus()


def case_id(case: Mapping[str, Any]) -> str:
    if "shell" in case:
        return "sh:" + str(case["shell"])[:60]
    return "tool:" + str(case["tool"])


def classify_case(case: Mapping[str, Any], ctx: Context = CTX) -> Classification:
    if "shell" in case:
        return classify_shell(str(case["shell"]), ctx)
    return classify_tool(case["tool"], case.get("input") or {}, ctx)


def check_case(case: Mapping[str, Any], result: Classification) -> list[str]:
    """Problems with ``result`` for ``case`` (empty when it is as labelled)."""
    problems: list[str] = []
    got = result.classes
    if "expect" in case and got != frozenset(case["expect"]):
        problems.append(f"classes {sorted(got)} != expected {sorted(case['expect'])}")
    missing = frozenset(case.get("include", ())) - got
    if missing:
        problems.append(f"classes {sorted(got)} lack {sorted(missing)}")
    extra = frozenset(case.get("exclude", ())) & got
    if extra:
        problems.append(f"classes {sorted(got)} include excluded {sorted(extra)}")
    if "parsed" in case and result.parsed != case["parsed"]:
        problems.append(f"parsed={result.parsed}, expected {case['parsed']}")
    if case.get("bypass") and got <= ALLOWED:
        problems.append(f"bypass classified as allowed: {sorted(got)}")
    have = {(r.kind, r.value, r.op, r.protected) for r in result.resources}
    for spec in case.get("resources", ()):
        kind, value, *rest = spec
        ok = any(
            h[0] == kind and h[1] == value and (not rest or h[2] == rest[0]) and (len(rest) < 2 or h[3] == rest[1])
            for h in have
        )
        if not ok:
            problems.append(f"resource {spec} not in {sorted(have)}")
    return problems


def test_corpus_size() -> None:
    assert len(CASES) >= 320
    assert sum(1 for c in CASES if c.get("bypass")) >= 60


def test_corpus_labels_are_valid() -> None:
    for case in CASES:
        assert ("shell" in case) != ("tool" in case), case
        assert "expect" in case or "include" in case, case
        for k in (*case.get("expect", ()), *case.get("include", ()), *case.get("exclude", ())):
            assert k in ACTION_CLASSES, (case, k)


@pytest.mark.parametrize("case", CASES, ids=[case_id(c) for c in CASES])
def test_corpus_case(case: Mapping[str, Any]) -> None:
    result = classify_case(case)
    assert result.actions, "actions must never be empty"
    assert not (not result.parsed and "unknown" not in result.classes)
    problems = check_case(case, result)
    assert not problems, "\n".join([f"{case_id(case)}:", *problems, *(f"  {a}" for a in result.actions)])


def test_every_bypass_is_gated() -> None:
    leaks = [case_id(c) for c in CASES if c.get("bypass") and classify_case(c).classes <= ALLOWED]
    assert not leaks
