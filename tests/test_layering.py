"""The package graph, computed from the source: no import cycle between modules or between packages at
import time (imports under ``if TYPE_CHECKING:`` and inside functions are not import-time edges); and no
SQL statement outside the store package."""

from __future__ import annotations

import ast
import re
from pathlib import Path

SRC = Path(__file__).resolve().parent.parent / "src"


def _modules() -> dict[str, Path]:
    out = {}
    for f in (SRC / "tether").rglob("*.py"):
        parts = list(f.relative_to(SRC).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = f
    return out


def _edges(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The tether modules ``name`` imports when it is imported."""
    out: set[str] = set()

    def visit(body: list[ast.stmt]) -> None:
        for node in body:
            if isinstance(node, ast.If):
                if "TYPE_CHECKING" not in ast.unparse(node.test):
                    visit(node.body)
                    visit(node.orelse)
            elif isinstance(node, ast.Try):
                visit(node.body)
                visit(node.orelse)
                visit(node.finalbody)
                for handler in node.handlers:
                    visit(handler.body)
            elif isinstance(node, ast.Import):
                out.update(a.name for a in node.names if a.name.startswith("tether"))
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
                    base = base[: len(base) - node.level + 1]
                    module = ".".join([*base, *([node.module] if node.module else [])])
                else:
                    module = node.module or ""
                if module.startswith("tether"):
                    for a in node.names:
                        sub = f"{module}.{a.name}"
                        out.add(sub if sub in modules else module)

    visit(ast.parse(path.read_text()).body)
    return {m for m in out if m in modules and m != name}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one node (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    found: list[list[str]] = []
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                elif child in on:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                comp = []
                while True:
                    top = stack.pop()
                    on.discard(top)
                    comp.append(top)
                    if top == node:
                        break
                if len(comp) > 1:
                    found.append(sorted(comp))
    return found


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    return {name: _edges(name, path, modules) for name, path in modules.items()}


def _package(module: str) -> str:
    return ".".join(module.split(".")[:2])


def test_the_cycle_finder_finds_cycles() -> None:
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycle_between_modules() -> None:
    graph = _graph()
    assert len(graph) > 150 and graph["tether.api.app"]  # the graph is read, not empty
    assert _cycles(graph) == []


def test_no_import_cycle_between_packages() -> None:
    packages: dict[str, set[str]] = {}
    for name, deps in _graph().items():
        packages.setdefault(_package(name), set()).update(_package(d) for d in deps if _package(d) != _package(name))
    assert "tether.api" in packages["tether.web"]  # the delivery layer's pages use the API's access checks
    assert _cycles(packages) == []


# -- all SQL in the store (issue 18) -----------------------------------------------------------------------

#: A string that starts with one of these words, in capitals, is a SQL statement.
SQL_START = re.compile(r"\s*(SELECT|INSERT|UPDATE|DELETE|CREATE|ALTER|DROP)\s")
#: Where SQL may be: the store, and the classifier, whose SQL strings are data (statements it judges).
SQL_HOMES = ("store", "classify")


def _sql_literals(source: str) -> list[tuple[int, str]]:
    """(line, text) of each string literal (or f-string's leading text) that starts a SQL statement."""
    found = []
    nodes = list(ast.walk(ast.parse(source)))
    parts = {id(v) for n in nodes if isinstance(n, ast.JoinedStr) for v in n.values}  # seen as the f-string
    for node in nodes:
        text = None
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in parts:
            text = node.value
        elif isinstance(node, ast.JoinedStr) and node.values and isinstance(node.values[0], ast.Constant):
            text = str(node.values[0].value)
        if text is not None and SQL_START.match(text):
            found.append((node.lineno, text.split("\n")[0][:60]))
    return found


def sql_outside_the_store(src: Path = SRC) -> list[str]:
    out = []
    for f in sorted((src / "tether").rglob("*.py")):
        rel = f.relative_to(src / "tether")
        if rel.parts[0] in SQL_HOMES:
            continue
        out += [f"{rel}:{line}: {text}" for line, text in _sql_literals(f.read_text())]
    return out


def test_the_sql_finder_finds_statements() -> None:
    source = ('x = "SELECT * FROM t WHERE a = ?"\n'
              'y = f"SELECT {cols} FROM t"\n'
              'z = ("UPDATE nodes SET last_beat = ? "\n     "WHERE name = ?")\n'
              'help = "Delete events older than this."\n'  # prose, not SQL
              'w = "CREATED"\n')
    assert [line for line, _ in _sql_literals(source)] == [1, 2, 3]


def test_no_sql_outside_the_store() -> None:
    assert (SRC / "tether" / "store" / "reads.py").read_text().count("SELECT") > 10  # the scan reads sources
    assert sql_outside_the_store() == []
