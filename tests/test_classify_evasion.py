"""The classifier sees through names (tests/data/classify_evasion.yaml, on a real workspace): a
path-qualified program is the file it names, links made earlier in the line are followed, text piped
into a shell is classified, scripts are judged by their text; everyday project tools stay free."""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml

from tether.classify import Context, classify_shell, programs
from tether.vocabulary import DEFAULT_VERDICTS

DATA = yaml.safe_load((Path(__file__).parent / "data" / "classify_evasion.yaml").read_text())
CASES: list[dict[str, Any]] = DATA["cases"]
FREE = frozenset(k for k, v in DEFAULT_VERDICTS.items() if v in ("allow", "log"))
CATEGORIES = ("programs", "links", "stdin", "scripts")


class Workspace:
    def __init__(self, root: Path) -> None:
        self.ws = root / "ws"
        self.state = root / "state"
        self.ws.mkdir()
        self.state.mkdir()

    def sub(self, text: str) -> str:
        return text.replace("@WS@", str(self.ws)).replace("@STATE@", str(self.state))

    def path(self, rel: str) -> Path:
        rel = self.sub(rel)
        return Path(rel) if rel.startswith("/") else self.ws / rel

    def ctx(self) -> Context:
        return Context(
            cwd=str(self.ws), home=str(self.ws.parent / "home"), control=(str(self.state), str(self.ws / "tether.yaml"))
        )


def build(root: Path) -> Workspace:
    w = Workspace(root)
    spec = DATA["workspace"]
    for rel, text in spec["files"].items():
        p = w.path(rel)
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(w.sub(text))
        p.chmod(0o755)
    for rel, src in spec["copies"].items():
        p = w.path(rel)
        p.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(src, p)
    for rel, target in spec["links"].items():
        p = w.path(rel)
        p.parent.mkdir(parents=True, exist_ok=True)
        p.symlink_to(w.sub(target))
    for rel, src in spec["tampered"].items():
        p = w.path(rel)
        shutil.copy(src, p)
        with p.open("ab") as f:
            f.write(b"\0")
    return w


@pytest.fixture(scope="module")
def ws(tmp_path_factory: pytest.TempPathFactory) -> Workspace:
    return build(tmp_path_factory.mktemp("evasion"))


def problems(case: Mapping[str, Any], got: frozenset[str], guarded: bool = False) -> list[str]:
    """What is wrong with classes ``got``; ``guarded``: it changes a protected path (the policy asks)."""
    out = []
    if "expect" in case and got != frozenset(case["expect"]):
        out.append(f"classes {sorted(got)} != {sorted(case['expect'])}")
    if frozenset(case.get("include", ())) - got:
        out.append(f"classes {sorted(got)} lack {sorted(frozenset(case['include']) - got)}")
    if frozenset(case.get("exclude", ())) & got:
        out.append(f"classes {sorted(got)} include excluded {sorted(frozenset(case['exclude']) & got)}")
    if case.get("held") and got <= FREE and not guarded:
        out.append(f"an evasion comes out allowed: {sorted(got)}")
    if case.get("free") and not got <= FREE:
        out.append(f"an everyday command is held: {sorted(got)}")
    return out


def test_corpus_shape() -> None:
    for case in CASES:
        assert case["category"] in CATEGORIES, case
        assert "expect" in case or "include" in case or "held" in case or "free" in case, case
    for cat in CATEGORIES:
        assert sum(1 for c in CASES if c["category"] == cat and c.get("held")) >= 5, cat
        assert sum(1 for c in CASES if c["category"] == cat and c.get("free")) >= 4, cat


@pytest.mark.parametrize("case", CASES, ids=[f"{c['category']}:{c['shell'][:60]}" for c in CASES])
def test_case(ws: Workspace, case: Mapping[str, Any]) -> None:
    r = classify_shell(ws.sub(case["shell"]), ws.ctx())
    guarded = any(res.protected and res.op in ("write", "delete", "exec") for res in r.resources)
    found = problems(case, r.classes, guarded)
    assert not found, "\n".join([case["shell"], *found, *(f"  {a.klass}: {a.reason}" for a in r.actions)])


def test_unknown_program_says_what_it_could_not_see(ws: Workspace) -> None:
    r = classify_shell("./head -n 3 README.md", ws.ctx())
    assert r.classes == {"unknown"}
    assert any("./head" in a.reason and "no system binary" in a.reason for a in r.actions), r.actions
    r = classify_shell("bash missing.sh", ws.ctx())
    assert any("missing.sh" in a.reason and "could not read: it is not there" in a.reason for a in r.actions), r.actions


def test_a_replaced_file_is_judged_afresh(tmp_path: Path) -> None:
    """The answer is cached by inode, mtime and size: a program swapped for another is seen at once."""
    w = build(tmp_path)
    prog = w.ws / "fmt"
    shutil.copy("/bin/ls", prog)
    assert classify_shell("./fmt data", w.ctx()).classes == {"repo.read"}
    tmp = w.ws / "fmt.new"
    shutil.copy("/bin/rm", tmp)
    os.replace(tmp, prog)
    assert "data.delete" in classify_shell("./fmt -rf data", w.ctx()).classes
    prog.unlink()
    prog.write_text("#!/bin/sh\nls\n")
    prog.chmod(0o755)
    assert classify_shell("./fmt", w.ctx()).classes == {"repo.read"}


def test_copy_check_hashes_only_same_size_files(ws: Workspace, monkeypatch: pytest.MonkeyPatch) -> None:
    """A program no system binary has the size of is never hashed (the size index answers)."""
    big = ws.ws / "big-tool"
    big.write_bytes(b"\x7fELF" + b"\0" * 123_457)
    hashed: list[str] = []
    real = programs._digest

    def spy(path: str, s: os.stat_result) -> str | None:
        hashed.append(path)
        return real(path, s)

    monkeypatch.setattr(programs, "_digest", spy)
    sizes = programs._system_index()
    assert os.stat(big).st_size not in sizes
    assert classify_shell("./big-tool", ws.ctx()).classes == {"unknown"}
    assert hashed == []
    shutil.copy("/bin/rm", ws.ws / "nl")
    assert "data.delete" in classify_shell("./nl -rf data", ws.ctx()).classes
    assert str(ws.ws / "nl") in hashed  # same size as rm: hashed once, then the answer is cached
    hashed.clear()
    assert "data.delete" in classify_shell("./nl -rf data", ws.ctx()).classes
    assert hashed == []


def test_links_do_not_leak_between_commands(ws: Workspace) -> None:
    ctx = ws.ctx()
    assert "tether.control" in classify_shell(ws.sub("ln -s @STATE@ s2 && rm s2/agents/a1/KILL"), ctx).classes
    # s2 does not exist on disk: another command's rm of it is an ordinary path in the workspace.
    assert "tether.control" not in classify_shell("rm s2/agents/a1/KILL", ctx).classes
