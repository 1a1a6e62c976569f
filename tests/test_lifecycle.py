"""An agent's state changes through one function (``tether.lifecycle.change``) and the store applies only
the legal ones (``lifecycle.legal``): a writer that decided on an old reading of the row cannot undo what
another recorded meanwhile."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

from tether import lifecycle
from tether.store import NewEvent, Store, open_store

SRC = Path(__file__).resolve().parents[1] / "src" / "tether"


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = open_store(f"sqlite:///{tmp_path / 'tether.db'}")
    yield s
    s.close()


def _is_change(node: ast.expr) -> bool:
    return isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "change"


def test_every_agent_state_the_code_records_is_made_by_change() -> None:
    """Each place that records ``agent.state`` (emit, NewEvent, the kill switch's pairs) builds its data
    with ``lifecycle.change``: a state tether knows, said the one way."""
    found, wrong = 0, []
    for path in SRC.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            data: list[ast.expr] = []
            if isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant) \
                    and node.args[0].value == "agent.state":
                name = node.func.id if isinstance(node.func, ast.Name) else getattr(node.func, "attr", None)
                if name == "emit":
                    data = [kw.value for kw in node.keywords] or [ast.Constant(None)]
                    data += [a for a in node.args[2:]]
                elif name == "NewEvent":
                    data = node.args[2:3] or [ast.Constant(None)]
            elif isinstance(node, ast.Tuple) and len(node.elts) == 2 and isinstance(node.elts[0], ast.Constant) \
                    and node.elts[0].value == "agent.state":
                data = [node.elts[1]]
            if data:
                found += 1
                if not all(_is_change(d) for d in data):
                    wrong.append(f"{path.relative_to(SRC)}:{node.lineno}")
    assert found >= 15, "the scan found the places"
    assert wrong == [], f"agent.state recorded without lifecycle.change: {wrong}"


def test_change_knows_the_states() -> None:
    assert lifecycle.change("stopped", "removed", note="n") == {"state": "stopped", "reason": "removed", "note": "n"}
    with pytest.raises(ValueError, match="'sleeping' is not one of starting, running"):
        lifecycle.change("sleeping")


@pytest.mark.parametrize(("current", "desired", "to", "ok"), [
    ("running", "running", "stale", True),
    ("stale", "running", "stuck", True),
    ("stale", "running", "running", True),  # recovered
    ("waiting_for_approval", "running", "running", True),  # the wait ended
    ("stopped", "stopped", "stale", False),  # a stopped agent cannot fall silent
    ("killed", "running", "stuck", False),
    ("crashloop", "running", "running", False),  # only a start (agent.started) runs it again
    ("stopped", "stopped", "waiting_for_approval", False),
    ("stale", "running", "waiting_for_approval", True),
    ("killed", "killed", "starting", False),  # only a human lifts a kill
    ("killed", "killed", "blocked", False),
    ("killed", "killed", "stopped", True),
    ("killed", "running", "blocked", True),  # resumed, then its start failed
    ("running", "killed", "killed", True),
    ("blocked", "running", "idle", True),
    (None, None, "running", True),  # no row yet
    ("running", "running", "nonsense", False),
])
def test_legal(current: str | None, desired: str | None, to: str, ok: bool) -> None:
    assert lifecycle.legal(current, to, desired) is ok


def test_every_state_has_its_sources() -> None:
    assert set(lifecycle.SOURCES) == lifecycle.STATES == lifecycle.LIVE | lifecycle.FLAGGED | lifecycle.ENDED


def _state(store: Store, agent: str) -> tuple[str, str | None]:
    row = store.agent(agent)
    assert row is not None
    return row["state"], row["reason"]


def test_the_store_applies_only_legal_changes(store: Store) -> None:
    """The monitor judged the row stale before the supervisor stopped the agent: its late ``stale`` stays
    in the log, and the agent stays stopped. A change from a legal state applies as before."""
    store.append([NewEvent("agent.registered", "a", {"info": {}}), NewEvent("agent.started", "a", {"pid": 1})])
    store.emit("agent.state", "a", **lifecycle.change("stopped", "operator"))
    late = store.emit("agent.state", "a", **lifecycle.change("stale", "no heartbeat for 1m"))
    assert _state(store, "a") == ("stopped", "operator")
    assert any(e.id == late and e.data["state"] == "stale" for e in store.last_events("a", 10))

    store.append([NewEvent("agent.started", "a", {"pid": 2})])
    store.emit("agent.state", "a", **lifecycle.change("stale", "no heartbeat for 1m"))
    assert _state(store, "a") == ("stale", "no heartbeat for 1m")
    store.emit("agent.state", "a", **lifecycle.change("running", "recovered from stale"))
    assert _state(store, "a") == ("running", "recovered from stale")


def test_a_kill_holds_until_a_human_lifts_it(store: Store) -> None:
    """While its desired state is killed, a late restart's ``starting`` or a run's ``waiting_for_approval``
    leaves a killed agent killed; once resumed (desired running), a failed start shows."""
    store.append([NewEvent("agent.registered", "a", {"info": {}}), NewEvent("agent.started", "a", {"pid": 1}),
                  NewEvent("agent.desired", "a", {"desired": "killed"}),
                  NewEvent("agent.state", "a", lifecycle.change("killed", "kill switch: r"))])
    store.emit("agent.state", "a", **lifecycle.change("starting", "exited -9; restarting in 1.00s"))
    store.emit("agent.state", "a", **lifecycle.change("waiting_for_approval", "held"))
    assert _state(store, "a") == ("killed", "kill switch: r")
    store.append([NewEvent("agent.resumed", "a", {}), NewEvent("agent.desired", "a", {"desired": "running"}),
                  NewEvent("agent.state", "a", lifecycle.change("blocked", "cannot start: no such file"))])
    assert _state(store, "a") == ("blocked", "cannot start: no such file")


def test_an_agent_without_a_row_takes_any_state(store: Store) -> None:
    store.emit("agent.state", "new", **lifecycle.change("idle"))
    assert _state(store, "new") == ("idle", None)
