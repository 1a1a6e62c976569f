"""Flags through which tools run programs (classify/gtfo.txt): the corpus tests/data/classify_gtfo.yaml,
and the table itself."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml

from test_classify_corpus import case_id, check_case
from tether.classify import Context, classify_shell
from tether.classify.gtfo import TABLE, _load

DATA = Path(__file__).parent / "data" / "classify_gtfo.yaml"


def load(path: Path) -> tuple[Context, list[dict[str, Any]]]:
    data = yaml.safe_load(path.read_text())
    c = data["context"]
    return Context(cwd=c["cwd"], home=c["home"], control=tuple(c["control"])), data["cases"]


CTX, CASES = load(DATA)


@pytest.mark.parametrize("case", CASES, ids=[case_id(c) for c in CASES])
def test_gtfo_case(case: Mapping[str, Any]) -> None:
    result = classify_shell(str(case["shell"]), CTX)
    problems = check_case(case, result)
    assert not problems, "\n".join([f"{case_id(case)}:", *problems, *(f"  {a}" for a in result.actions)])


def test_corpus_holds_and_frees() -> None:
    held = [c for c in CASES if c.get("bypass")]
    assert len(held) >= 45 and len(CASES) - len(held) >= 15


def test_table_covers_the_named_forms() -> None:
    for tool, opt in [("rg", "--pre"), ("tar", "--to-command"), ("tar", "--use-compress-program"),
                      ("sort", "--compress-program"), ("zip", "-TT"), ("rsync", "-e"), ("find", "-fprint")]:
        assert opt in TABLE[tool].exact, (tool, opt)
    effects = {f.effect for t in TABLE.values() for forms in t.exact.values() for f in forms}
    assert effects >= {"exec", "shell", "code", "lib", "write", "read", "host", "flag", "out", "rsh"}


def test_a_bad_table_row_says_where() -> None:
    with pytest.raises(ValueError, match=r"gtfo.txt:2: expected"):
        _load("# comment\nrg --pre\n")


def test_a_value_only_known_at_run_time_is_unknown() -> None:
    r = classify_shell('tar xf a.tar --to-command="$CMD"', CTX)
    assert any(a.klass == "unknown" and "run time" in a.reason for a in r.actions)
