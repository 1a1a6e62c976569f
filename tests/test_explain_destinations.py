"""``tether explain`` names what ``cp``, ``mv``, ``ln`` and ``install`` really write (issue 17): the file itself
when the destination is a file or a new name, the file inside when it is a folder (never a folder's name as
a file, nor ``settings.local.json/x.json``), and a relative symlink's target from the link's own folder.
Run as a real process against a runbook and a workspace on disk."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from helpers import one_agent_runbook, run_cli


@pytest.fixture(scope="module")
def runbook(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path, ws = one_agent_runbook(tmp_path_factory.mktemp("explain") / "host")
    for rel in (".claude/settings.local.json", "x.json", "y.json", "conf/old.json", "docs/guide.md", "README.md"):
        (ws / rel).parent.mkdir(parents=True, exist_ok=True)
        (ws / rel).write_text("{}\n")
    return path


def explain(runbook: Path, command: str) -> dict[str, object]:
    proc = run_cli("-f", str(runbook), "explain", "--json", "--", command, cwd=runbook.parent, timeout=30)
    assert proc.returncode == 0, proc.stderr
    got: dict[str, object] = json.loads(proc.stdout)
    return got


def written(runbook: Path, command: str) -> list[str]:
    """The paths ``command`` writes, relative to the agent's workspace."""
    ws = str(runbook.parent / "ws" / "a")
    res = explain(runbook, command)["resources"]
    assert isinstance(res, list)
    return sorted(r["value"].removeprefix(ws + "/") for r in res if r["kind"] == "path" and r["op"] == "write")


@pytest.mark.parametrize(
    ("command", "paths"),
    [
        # onto a file that exists, or a new name: that file
        ("cp x.json .claude/settings.local.json", [".claude/settings.local.json"]),
        ("mv x.json .claude/settings.local.json", [".claude/settings.local.json"]),
        ("cp -f y.json x.json", ["x.json"]),
        ("cp x.json new.json", ["new.json"]),
        ("install -m 644 x.json .claude/settings.local.json", [".claude/settings.local.json"]),
        ("cp -T x.json conf", ["conf"]),
        # into a folder (it exists, ends in /, or several sources): the file inside, not the folder
        ("cp x.json .claude", [".claude/x.json"]),
        ("cp x.json conf/", ["conf/x.json"]),
        ("mv x.json newdir/", ["newdir/x.json"]),
        ("cp x.json y.json conf", ["conf/x.json", "conf/y.json"]),
        ("cp -t conf x.json", ["conf/x.json"]),
        ("cp --target-directory=.claude x.json", [".claude/x.json"]),
        ("cd conf && cp ../x.json .", ["conf/x.json"]),
        ("ln -s ../README.md docs", ["docs/README.md"]),
        # files with names only known when it runs: the folder they land in
        ("cp -r conf/ .claude", [".claude", ".claude/conf"]),
    ],
)
def test_destinations(runbook: Path, command: str, paths: list[str]) -> None:
    assert written(runbook, command) == paths


def test_the_printed_lines_name_the_file(runbook: Path) -> None:
    proc = run_cli(
        "-f", str(runbook), "explain", "--", "cp x.json .claude/settings.local.json", cwd=runbook.parent, timeout=30
    )
    assert proc.returncode == 0, proc.stderr
    ws = runbook.parent / "ws" / "a"
    assert f"touches   path: {ws}/.claude/settings.local.json (write) PROTECTED" in proc.stdout
    assert "settings.local.json/" not in proc.stdout
    assert "verdict   block" in proc.stdout  # tether.control: Claude Code's settings are never the agent's to write


def test_a_relative_link_reads_from_its_own_folder(runbook: Path) -> None:
    ws = str(runbook.parent / "ws" / "a")
    got = explain(runbook, "ln -s ../README.md docs/readme.md")
    reads = [r["value"] for r in got["resources"] if r["op"] == "read"]  # type: ignore[attr-defined, index]
    assert reads == [f"{ws}/README.md"]  # not the workspace's parent: the link points from docs/
    assert got["verdict"] == "allow"
