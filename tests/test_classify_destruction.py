"""Destruction judged by whether it can be undone (tests/data/classify_destruction.yaml, on a real git
repository): git restores a tracked, unchanged file; build output is rebuilt; anything else is data."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml

from tether.classify import Classification, Context, classify_path, classify_shell, classify_tool, recover
from tether.vocabulary import DEFAULT_VERDICTS

DATA = yaml.safe_load((Path(__file__).parent / "data" / "classify_destruction.yaml").read_text())
CASES: list[dict[str, Any]] = DATA["cases"]
FREE = frozenset(k for k, v in DEFAULT_VERDICTS.items() if v in ("allow", "log"))
OLD = 1_000_000_000  # 2001: every file is older than the index git writes now (no "racy" entries)


def _write(root: Path, files: Mapping[str, str]) -> None:
    for rel, text in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
        os.utime(p, (OLD, OLD))


def _git(root: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-c", "user.email=t@t", "-c", "user.name=t", *args], cwd=root, check=True, capture_output=True
    )


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("destruction") / "repo"
    root.mkdir()
    _git(root, "init", "-q")
    _write(root, DATA["repo"]["committed"])
    _git(root, "add", ".")
    _git(root, "commit", "-qm", "init")
    _write(root, DATA["repo"]["after_commit"])
    return root


def _problems(case: Mapping[str, Any], got: frozenset[str]) -> list[str]:
    out = []
    if "expect" in case and got != frozenset(case["expect"]):
        out.append(f"classes {sorted(got)} != {sorted(case['expect'])}")
    if frozenset(case.get("include", ())) - got:
        out.append(f"classes {sorted(got)} lack {sorted(frozenset(case['include']) - got)}")
    if frozenset(case.get("exclude", ())) & got:
        out.append(f"classes {sorted(got)} include excluded {sorted(frozenset(case['exclude']) & got)}")
    if case.get("held") and got <= FREE:
        out.append(f"destroys data, yet only {sorted(got)}")
    if case.get("free") and not got <= FREE:
        out.append(f"everyday command held: {sorted(got)}")
    return out


def _name(case: Mapping[str, Any]) -> str:
    return str(case["shell"] if "shell" in case else f"{case['tool']} {case['input']}")[:60]


def _classify(case: Mapping[str, Any], ctx: Context) -> Classification:
    if "shell" in case:
        return classify_shell(case["shell"], ctx)
    return classify_tool(case["tool"], case["input"], ctx)


@pytest.mark.parametrize("case", CASES, ids=[_name(c) for c in CASES])
def test_destruction_case(repo: Path, case: Mapping[str, Any]) -> None:
    c = _classify(case, Context(cwd=str(repo), home=str(repo.parent)))
    problems = _problems(case, c.classes)
    assert not problems, "\n".join([_name(case), *problems, *(f"  {a}" for a in c.actions)])


def test_corpus_has_both_sides() -> None:
    assert sum(1 for c in CASES if c.get("held")) >= 25
    assert sum(1 for c in CASES if c.get("free")) >= 15


def test_the_reason_says_why(repo: Path) -> None:
    c = classify_shell("rm app.db", Context(cwd=str(repo)))
    assert [a.reason for a in c.actions] == [
        f"rm deletes {repo}/app.db, which is not tracked by git: nothing can restore it"
    ]
    c = classify_shell("rm README.md", Context(cwd=str(repo)))
    assert "has changes git does not hold" in c.actions[0].reason


def test_a_change_after_the_commit_is_seen_at_once(tmp_path: Path) -> None:
    """The cached index is keyed on the index file; the file's own stat says whether it changed since."""
    _git(tmp_path, "init", "-q")
    _write(tmp_path, {"a.txt": "one\n"})
    _git(tmp_path, "add", ".")
    _git(tmp_path, "commit", "-qm", "a")
    ctx = Context(cwd=str(tmp_path))
    assert classify_shell("rm a.txt", ctx).classes == {"pr.draft"}
    (tmp_path / "a.txt").write_text("two\n")
    assert "data.delete" in classify_shell("rm a.txt", ctx).classes
    _git(tmp_path, "add", "a.txt")  # staged: git holds the new content as a blob
    os.utime(tmp_path / "a.txt", (OLD, OLD))
    _git(tmp_path, "add", "a.txt")
    assert classify_shell("rm a.txt", ctx).classes == {"pr.draft"}


def test_racy_entries_count_as_changed(tmp_path: Path) -> None:
    """A file whose mtime is not older than the index may have changed unseen: git re-reads it, tether
    treats it as changed."""
    _git(tmp_path, "init", "-q")
    _write(tmp_path, {"a.txt": "one\n"})
    _git(tmp_path, "add", ".")
    idx = tmp_path / ".git" / "index"
    st = idx.stat()
    os.utime(tmp_path / "a.txt", ns=(st.st_mtime_ns, st.st_mtime_ns))
    _git(tmp_path, "update-index", "--refresh")
    os.utime(idx, ns=(st.st_mtime_ns, st.st_mtime_ns))
    assert "data.delete" in classify_shell("rm a.txt", Context(cwd=str(tmp_path))).classes


def test_index_versions_and_worktrees(tmp_path: Path) -> None:
    """Index format 4 (path-compressed names) and a linked worktree (.git is a file) read alike."""
    main = tmp_path / "main"
    main.mkdir()
    _git(main, "init", "-q")
    _write(main, {"pkg/a/one.py": "1\n", "pkg/a/two.py": "2\n", "pkg/b.py": "3\n"})
    _git(main, "add", ".")
    _git(main, "commit", "-qm", "a")
    _git(main, "update-index", "--index-version", "4")
    ctx = Context(cwd=str(main))
    assert classify_shell("rm pkg/a/two.py pkg/b.py", ctx).classes == {"pr.draft"}
    _git(main, "worktree", "add", "-q", str(tmp_path / "wt"))
    wt = Context(cwd=str(tmp_path / "wt"))
    for f in (tmp_path / "wt").rglob("*.py"):
        os.utime(f, (OLD, OLD))
    _git(tmp_path / "wt", "update-index", "--refresh")
    assert classify_shell("rm pkg/a/one.py", wt).classes == {"pr.draft"}
    (tmp_path / "wt" / "new.db").write_text("x")
    assert "data.delete" in classify_shell("rm new.db", wt).classes


def test_unreadable_index_is_data(tmp_path: Path) -> None:
    _git(tmp_path, "init", "-q")
    _write(tmp_path, {"a.txt": "one\n"})
    _git(tmp_path, "add", ".")
    (tmp_path / ".git" / "index").write_bytes(b"DIRC\x00\x00\x00\x09garbage")
    assert "data.delete" in classify_shell("rm a.txt", Context(cwd=str(tmp_path))).classes
    assert recover._parse_index(b"DIRC" + b"\x00\x00\x00\x02\x00\x00\x00\x05") is None


def test_a_big_tree_is_not_walked_past_the_bound(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _git(tmp_path, "init", "-q")
    _write(tmp_path, {f"d/f{i}": "x" for i in range(20)})
    _git(tmp_path, "add", ".")
    ctx = Context(cwd=str(tmp_path))
    assert classify_shell("rm -rf d", ctx).classes == {"pr.draft"}
    monkeypatch.setattr(recover, "MAX_WALK", 10)
    c = classify_shell("rm -rf d", ctx)
    assert "data.delete" in c.classes
    assert any("more than 10 entries" in a.reason for a in c.actions)


def test_regenerable_names() -> None:
    assert recover.regenerable_name("/w/node_modules/x/y.js")
    assert recover.regenerable_name("/w/src/__pycache__")
    assert recover.regenerable_name("/w/app.pyc")
    assert not recover.regenerable_name("/w/app.db")
    assert recover.regenerable_pattern("*.pyc")
    assert not recover.regenerable_pattern("*.db")
    assert not recover.regenerable_pattern("*")


def test_a_tool_write_through_a_symlink_is_judged_by_its_target(repo: Path) -> None:
    (repo / "db-link").symlink_to(repo / "app.db")
    try:
        c = classify_tool("Write", {"file_path": str(repo / "db-link"), "content": ""}, Context(cwd=str(repo)))
    finally:
        (repo / "db-link").unlink()
    assert "data.delete" in c.classes
    assert any(f"{repo}/app.db, which is not tracked by git" in a.reason for a in c.actions), c.actions


def test_what_a_tether_snapshot_holds_is_restorable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A folder outside git that rollback's store snapshotted (rollback/snapshot.py, taken for real): deleting or
    overwriting a file the latest snapshot holds as it is now is an edit; a file changed or made since is data."""
    from tether.rollback import manifest, snapshot

    folder = tmp_path / "notes"
    _write(folder, {"app.db": "SQLite format 3\n", "sub/rows.csv": "a,b\n1,2\n", "sub/more.csv": "c\n"})
    store = tmp_path / "state" / "snapshots"
    ctx = Context(cwd=str(folder), snapshots=str(store))

    def classes(command: str) -> frozenset[str]:
        return classify_shell(command, ctx).classes

    assert "data.delete" in classes("rm app.db")  # no snapshot yet
    snapshot.SnapshotStore(store).take(folder)
    # taken this instant: a file that changed within RACY_NS of it may differ from what was stored
    assert "data.delete" in classes("rm app.db")
    monkeypatch.setattr(manifest, "RACY_NS", 0)  # as for a snapshot taken at the task's start, minutes ago
    snapshot.SnapshotStore(store).take(folder)
    assert classes("rm app.db") == {"pr.draft"}
    assert [a.reason for a in classify_shell("rm app.db", ctx).actions] == [
        f"rm deletes {folder}/app.db; tether rollback can restore it"
    ]
    assert classes("rm -rf sub") == {"pr.draft"}
    assert classes("truncate -s0 sub/rows.csv") == {"pr.draft"}
    assert classify_tool("Write", {"file_path": "app.db", "content": ""}, ctx).classes == {"pr.draft"}
    assert "data.delete" in classify_shell("rm app.db", Context(cwd=str(folder))).classes
    (folder / "sub" / "rows.csv").write_text("a,b\n1,2\n3,4\n")  # changed since: the snapshot holds the old rows
    assert "data.delete" in classes("rm sub/rows.csv")
    assert "data.delete" in classes("rm -rf sub")
    (folder / "new.db").write_text("made since\n")
    assert "data.delete" in classes("rm new.db")
    assert classes("rm app.db") == {"pr.draft"}


def test_the_boundary_asks_its_own_snapshot_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Through the real path: a runbook, its state directory's store, Boundary.evaluate."""
    from test_policy import write_runbook
    from tether.boundary import Boundary, Request
    from tether.rollback import manifest, snapshot

    loaded = write_runbook(
        tmp_path / "host", "version: 1\nhost: {state_dir: ./state, workspace_root: ./ws}\nagents:\n  a:\nPEOPLE\n"
    )
    ws = loaded.agent_cwd("a")
    _write(ws, {"app.db": "SQLite format 3\n"})

    def verdict() -> str:
        return Boundary(loaded).evaluate("a", Request(command="rm app.db"))[1].verdict

    assert verdict() not in ("allow", "log")
    monkeypatch.setattr(manifest, "RACY_NS", 0)
    snapshot.SnapshotStore(loaded.state.root / "snapshots").take(ws)
    assert verdict() == "allow"


def test_a_path_delete_is_judged_like_rm(repo: Path) -> None:
    """``classify_path(P, "delete")`` (an agent asking through the API) follows the same rule."""
    ctx = Context(cwd=str(repo))
    assert "data.delete" in classify_path("app.db", "delete", ctx).classes
    assert "data.delete" in classify_path("data", "delete", ctx).classes
    assert classify_path("src/app.py", "delete", ctx).classes == {"pr.draft"}
    assert classify_path("node_modules", "delete", ctx).classes == {"pr.draft", "deps.install"}
    assert classify_path("app.db", "write", ctx).classes == {"pr.draft"}  # a write with no content: an edit
