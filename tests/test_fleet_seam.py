"""The fleet meets the rest of tether at one seam (``tether.fleet.seam``): outside ``tether/fleet/`` only the
seam is imported (and the fleet's own commands, ``tether fleet`` and ``tether reload --node``), and on its own
the host's answers at every point are the single-host ones, asked of no store."""

from __future__ import annotations

import ast
import io
from contextlib import redirect_stdout
from pathlib import Path
from typing import Any

from tether.cli.render import status_table
from tether.fleet.seam import ALONE, MARKER, Alone, here, local_store, place_of, seen, store_url
from tether.store import open_store

SRC = Path(__file__).resolve().parent.parent / "src" / "tether"
#: The fleet's own commands: they are about nodes, not an agent that may run on one.
OWN = {"cli/commands/fleet.py", "cli/commands/daemon.py"}


def _fleet_imports(path: Path) -> set[str]:
    """Every tether.fleet module ``path`` imports, at import time or inside a function."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("tether.fleet"):
            out.update(f"{node.module}.{a.name}" if node.module == "tether.fleet" else node.module for a in node.names)
        elif isinstance(node, ast.Import):
            out.update(a.name for a in node.names if a.name.startswith("tether.fleet"))
    return out


def test_only_the_seam_is_imported_outside_the_fleet() -> None:
    seen_anywhere, wrong = set(), {}
    for f in SRC.rglob("*.py"):
        rel = f.relative_to(SRC).as_posix()
        if rel.startswith("fleet/"):
            continue
        got = _fleet_imports(f)
        seen_anywhere |= got
        beyond = {m for m in got if m != "tether.fleet.seam"}
        if beyond and rel not in OWN:
            wrong[rel] = sorted(beyond)
    assert "tether.fleet.seam" in seen_anywhere  # the scan reads imports, including function-local ones
    assert wrong == {}


class Refuses:
    """A daemon's parts, none of which a single host may need to answer where an agent runs."""

    def agent_names(self) -> list[str]:
        raise AssertionError("asked which agents this daemon runs")


def test_alone_answers_here_without_asking(tmp_path: Path) -> None:
    def no_store() -> Any:
        raise AssertionError("opened the store: a kill must not wait on it")

    alone = place_of(f"sqlite:///{tmp_path / 'tether.db'}", lambda: (_ for _ in ()).throw(AssertionError("runbook")))
    assert isinstance(alone, Alone)
    assert alone.send(no_store, "a", "kill", "why", wait=False) is None
    assert alone.route(Refuses(), "stop", "a") is None
    assert alone.elsewhere(Refuses(), "a") is False


def test_alone_is_seen_as_one_host(tmp_path: Path) -> None:
    root = tmp_path / "state"
    root.mkdir()
    assert here(str(root)) is None
    assert store_url(str(root), str(root / "tether.db")) == f"sqlite:///{root / 'tether.db'}"
    store = open_store(f"sqlite:///{root / 'tether.db'}")
    store.close()
    opened = local_store(str(root))
    assert opened is not None and opened[1] is None
    s, _ = opened
    try:
        place = seen(s)
    finally:
        s.close()
    assert place is ALONE and place.fleet is None and place.json() == {} and place.sections() == []
    docs = [{"agent": "a", "state": "running", "reason": None, "heartbeat_age_s": 1.0, "task": None,
             "restarts": 0, "files_changed": 0}]
    assert place.annotate(docs, note="fleet_note") == docs and "fleet_note" not in docs[0]
    out = io.StringIO()
    with redirect_stdout(out):
        status_table(docs, 0.0, place)
    assert "NODE" not in out.getvalue() and "AGENT" in out.getvalue()


def test_a_node_state_dir_names_its_store(tmp_path: Path) -> None:
    (tmp_path / MARKER).write_text('{"store": "postgresql://u@127.0.0.1/test", "node": "n1"}\n')
    assert here(str(tmp_path)) == "n1"
    assert store_url(str(tmp_path), str(tmp_path / "tether.db")) == "postgresql://u@127.0.0.1/test"
    (tmp_path / MARKER).write_text("{}\n")
    assert local_store(str(tmp_path)) is None  # names no store: the click path answers
