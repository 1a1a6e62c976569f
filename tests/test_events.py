"""The event catalogue (``tether.events``): every kind the code records is declared there, once, and what
the store, the notifier and the dashboard know of a kind is derived from it."""

from __future__ import annotations

import ast
import typing
from pathlib import Path

import pytest

from tether import events
from tether.store import Event

SRC = Path(__file__).resolve().parents[1] / "src" / "tether"
#: Calls that record an event, their first argument the kind; ``_record`` takes (kind, data) pairs.
RECORDERS = {"emit", "NewEvent", "_record"}
#: Places whose kind is not written where they record it, each with where it is checked instead.
PASSED_ON = {
    ("store/base.py", "kind"),  # Store.emit: its callers are scanned
    ("drills/base.py", "kind"),  # Book.emit: its callers are scanned
    ("killswitch.py", "kind"),  # _record's pairs: scanned where _record is called
    ("killswitch.py", "e['kind']"),  # _record's pairs parked in a file for the daemon
    ("api/app.py", "body.kind"),  # an agent's report: the kinds of api.reports, checked below
}


def _name(func: ast.expr) -> str | None:
    return func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else None


def _constants(trees: dict[str, ast.Module]) -> dict[str, list[ast.expr]]:
    """Module-level ``NAME = value`` of every module (``EVENT``, ``RESULT_EVENT``), by name."""
    out: dict[str, list[ast.expr]] = {}
    for tree in trees.values():
        for node in tree.body:
            if isinstance(node, ast.Assign):
                for t in node.targets:
                    if isinstance(t, ast.Name) and t.id.isupper():
                        out.setdefault(t.id, []).append(node.value)
    return out


def _kinds(expr: ast.expr, local: dict[str, list[ast.expr]], consts: dict[str, list[ast.expr]]) -> list[str] | None:
    """The kinds ``expr`` can be (a trailing ``*``: an f-string's fixed start), or None when it cannot be told."""
    if isinstance(expr, ast.Constant) and isinstance(expr.value, str):
        return [expr.value]
    if isinstance(expr, ast.IfExp):
        a, b = _kinds(expr.body, local, consts), _kinds(expr.orelse, local, consts)
        return None if a is None or b is None else a + b
    if isinstance(expr, ast.JoinedStr) and expr.values and isinstance(expr.values[0], ast.Constant):
        texts = [""]
        for part in expr.values:
            got = [str(part.value)] if isinstance(part, ast.Constant) else None
            if isinstance(part, ast.FormattedValue) and isinstance(part.value, ast.Name):
                got = _kinds(part.value, local, consts)
            if got is None:  # a part the scan cannot tell: its fixed start, then anything
                return [f"{expr.values[0].value}*"]
            texts = [t + g for t in texts for g in got]
        return texts
    name = expr.id if isinstance(expr, ast.Name) else expr.attr if isinstance(expr, ast.Attribute) else None
    values = local.get(name or "") if isinstance(expr, ast.Name) else None
    values = values or consts.get(name or "")
    if not values:
        return None
    found: list[str] = []
    for v in values:
        got = _kinds(v, {}, consts)
        if got is None:
            return None
        found += got
    return found


def recorded() -> tuple[dict[str, set[str]], set[tuple[str, str]]]:
    """Every kind the source records, with where; and the places whose kind could not be told."""
    trees = {str(p.relative_to(SRC)): ast.parse(p.read_text()) for p in SRC.rglob("*.py")}
    consts = _constants(trees)
    kinds: dict[str, set[str]] = {}
    unknown: set[tuple[str, str]] = set()
    for path, tree in trees.items():
        functions = (n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef))
        scopes: list[ast.AST] = [tree, *functions]
        for scope in scopes:
            local: dict[str, list[ast.expr]] = {}
            for node in ast.walk(scope):
                if isinstance(node, ast.Assign):
                    for t in node.targets:
                        if isinstance(t, ast.Name):
                            local.setdefault(t.id, []).append(node.value)
            for node in ast.walk(scope):
                if not (isinstance(node, ast.Call) and _name(node.func) in RECORDERS and node.args):
                    continue
                if _name(node.func) == "_record":
                    args = [e.elts[0] for a in node.args if isinstance(a, ast.List) for e in a.elts
                            if isinstance(e, ast.Tuple) and len(e.elts) == 2]
                else:
                    args = [node.args[0]]
                for arg in args:
                    got = _kinds(arg, local, consts)
                    if got is None:
                        unknown.add((path, ast.unparse(arg)))
                    for k in got or ():
                        kinds.setdefault(k, set()).add(path)
    return kinds, unknown


def test_every_kind_the_code_records_is_declared() -> None:
    kinds, unknown = recorded()
    assert len(kinds) > 70, "the scan found the recorded kinds"
    missing = {k: sorted(where) for k, where in kinds.items() if not k.endswith("*") and not events.declared(k)}
    assert missing == {}, f"event kinds recorded but not declared in tether/events/kinds.py: {missing}"
    for prefix in (k[:-1] for k in kinds if k.endswith("*")):
        assert any(name.startswith(prefix) for name in events.KINDS), f"no declared kind starts {prefix!r}"
    assert unknown <= PASSED_ON, f"kinds the scan cannot tell: declare them as constants: {unknown - PASSED_ON}"


def test_every_kind_an_agent_may_report_is_declared() -> None:
    from tether.api import reports

    for model in typing.get_args(typing.get_args(reports.Report)[0]):
        for name in typing.get_args(model.model_fields["kind"].annotation):
            assert events.declared(name), name


def test_every_kind_the_code_records_reads_as_a_sentence() -> None:
    """The events list and timelines say what happened in words, not raw JSON."""
    from tether.web.views import describe

    kinds, _ = recorded()
    named = sorted(k for k in kinds if not k.endswith("*"))
    named += [n for n in events.KINDS for p in kinds if p.endswith("*") and n.startswith(p[:-1])]
    raw = [k for k in named if describe(Event(1, 0.0, k, "a", {"x": 1})).startswith("{")]
    assert raw == [], f"event kinds shown as raw JSON: {raw}"


def test_the_lists_others_read_are_the_catalogues() -> None:
    from tether.notify import notifier
    from tether.store import projections

    assert {k.name for k in events.KINDS.values() if k.audited} == projections.AUDITED
    assert set(notifier.WATCHED) == {k.name for k in events.KINDS.values() if k.notifies}
    # every projection the store registered hangs on its kind; audited kinds reach apply() too
    assert set(projections.PROJECTIONS) == {k.name for k in events.KINDS.values() if k.projection or k.audited}
    assert events.kind("agent.state").projection is projections.PROJECTIONS["agent.state"]


def test_a_kind_is_declared_once_and_projected_only_when_declared() -> None:
    from tether.events.catalogue import declare

    with pytest.raises(ValueError, match="declared twice"):
        declare("agent.state", dict)
    with pytest.raises(KeyError, match=r"not declared: add it to tether/events/kinds\.py"):
        events.project("no.such_kind")(lambda tx, e: None)
    with pytest.raises(ValueError, match="two projections"):
        events.project("agent.state")(lambda tx, e: None)


def test_a_sentence_that_does_not_fit_its_data_shows_the_data() -> None:
    """A sentence that cannot read its data (an ``info`` that is not an object) falls back to the data,
    never an error on the dashboard."""
    from tether.web.views import describe

    assert events.sentence("agent.registered", {"info": "not an object"}) is None
    assert describe(Event(1, 0.0, "agent.registered", "a", {"info": "x"})) == '{"info": "x"}'
    assert describe(Event(1, 0.0, "agent.started", "a", {"pid": 7})) == "started (pid 7)"


def test_every_field_the_code_records_is_in_its_kinds_payload() -> None:
    """What a recorder writes (``emit``'s keywords, ``NewEvent``'s and the kill switch's dict literals) are
    fields of the kind's declared data: the ``TypedDict`` says what a kind carries."""
    checked, extra = 0, []
    for path in SRC.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            found: list[tuple[ast.expr, list[str]]] = []
            if isinstance(node, ast.Call) and node.args and _name(node.func) == "emit":
                found.append((node.args[0], [kw.arg for kw in node.keywords if kw.arg]))
            elif isinstance(node, ast.Call) and _name(node.func) == "NewEvent" and len(node.args) > 2 \
                    and isinstance(node.args[2], ast.Dict):
                found.append((node.args[0], [k.value for k in node.args[2].keys if isinstance(k, ast.Constant)]))
            elif isinstance(node, ast.Tuple) and len(node.elts) == 2 and isinstance(node.elts[1], ast.Dict):
                found.append((node.elts[0], [k.value for k in node.elts[1].keys if isinstance(k, ast.Constant)]))
            for kind, keys in found:
                if not (isinstance(kind, ast.Constant) and isinstance(kind.value, str) and events.declared(kind.value)):
                    continue
                checked += 1
                fields = events.kind(kind.value).payload.__annotations__
                extra += [f"{path.relative_to(SRC)}:{node.lineno}: {kind.value}.{k}" for k in keys if k not in fields]
    assert checked > 100, "the scan found the recorders"
    assert extra == [], f"fields not declared in their kind's payload (tether/events/kinds.py): {extra}"
