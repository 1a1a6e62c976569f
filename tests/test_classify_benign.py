"""The benign set (tests/data/classify_benign.yaml): everyday commands of coding agents, in a real git repository
with a home folder beside it, decided through the real path (classify, then ``policy.decide`` with the default
table). At most 1% of them may be held, each one listed; every other gets exactly its labelled verdict; the
near misses of the fixes the set needed stay held."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

import corpora
from tether.policy import Decision

#: Held today, and why. None: Python reading ``sys``'s interpreter facts (pyinert.SYS_READS) and inline JavaScript
#: that only prints (jsinert) were the last two, and are free now.
KNOWN_HELD: frozenset[str] = frozenset()


@pytest.fixture(scope="module")
def judged(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[tuple[corpora.Case, Decision]]]:
    yield [(c, c.judge()) for c in corpora.cases(tmp_path_factory.mktemp("benign"), ("benign",))]


def benign(judged: list[tuple[corpora.Case, Decision]]) -> list[tuple[corpora.Case, Decision]]:
    return [(c, d) for c, d in judged if c.benign]


def test_the_set_is_big_and_labelled() -> None:
    data = corpora.load("benign")
    assert len(data["cases"]) >= 300
    for case in data["cases"]:
        assert set(case) == {"category", "verdict", "shell"}, case
        assert case["verdict"] in ("allow", "log"), case
    assert len({c["shell"] for c in data["cases"]}) == len(data["cases"]), "a command is listed twice"
    must = {
        "python3 script.py",
        "python3 -c 'print(1)'",
        "find . -name '*.pyc' -delete",
        "rm -rf node_modules",
        "rm -rf build dist",
        "cat ~/.gitconfig",
        "./gradlew test",
        "npm run build",
        "git push -u origin feature-x",
        "pip install -r requirements.txt",
        "docker build -t app:dev .",
        "gh pr view",
        "gh pr create --draft --fill",
    }
    assert must <= {c["shell"] for c in data["cases"]}


def test_at_most_one_percent_is_held(judged: list[tuple[corpora.Case, Decision]]) -> None:
    cases = benign(judged)
    held = [f"  {c.text!r}: {d.verdict} by {d.rule}: {d.reason}" for c, d in cases if not d.allowed]
    assert len(held) * 100 <= len(cases), f"{len(held)} of {len(cases)} everyday commands held:\n" + "\n".join(held)


def test_the_held_ones_are_the_known_ones(judged: list[tuple[corpora.Case, Decision]]) -> None:
    held = {c.text for c, d in benign(judged) if not d.allowed}
    assert held <= KNOWN_HELD, f"newly held: {sorted(held - KNOWN_HELD)}"


def test_each_free_one_gets_its_verdict(judged: list[tuple[corpora.Case, Decision]]) -> None:
    wrong = [
        f"  {c.text!r}: {d.verdict} ({', '.join(d.classes)}), labelled {c.verdict}"
        for c, d in benign(judged)
        if d.allowed and d.verdict != c.verdict
    ]
    assert not wrong, "\n".join(wrong)


def test_the_required_ones(judged: list[tuple[corpora.Case, Decision]]) -> None:
    """The issue's list, by name: free, and logged where it installs or rebuilds."""
    got = {c.text: d.verdict for c, d in benign(judged)}
    assert got["python3 -c 'print(1)'"] == "allow"
    assert got['python3 -c "import sys; print(sys.version)"'] == "allow"
    assert got["node -e 'console.log(1)'"] == "allow"
    assert got["cat ~/.gitconfig"] == "allow"
    assert got["npm run build"] == "allow"  # package.json's build script: tsc and vite
    assert got["git push -u origin feature-x"] == "allow"  # origin is github.com/acme/app, in scope
    assert got["pip install -r requirements.txt"] == "log"
    assert got["rm -rf node_modules"] == got["find . -name '*.pyc' -delete"] == "log"


def test_near_misses_are_held(judged: list[tuple[corpora.Case, Decision]]) -> None:
    near = [(c, d) for c, d in judged if c.dangerous]
    assert len(near) >= 20
    free = [f"  {c.text!r}: {d.verdict} ({', '.join(d.classes)})" for c, d in near if d.allowed]
    assert not free, "\n".join(free)


def test_only_gits_own_config_is_readable_in_the_home_folder(tmp_path: Path) -> None:
    """Only git's own global config is readable in the home folder: not a link to elsewhere named like it."""
    from tether.classify import Context, classify_shell
    from tether.policy import decide

    home, ws = tmp_path / "home", tmp_path / "ws"
    (home / ".config" / "git").mkdir(parents=True)
    ws.mkdir()
    (home / ".gitconfig").write_text("[user]\n")
    (home / ".netrc").write_text("machine x password y\n")
    (home / ".config" / "git" / "config").symlink_to(home / ".netrc")
    ctx = Context(cwd=str(ws), home=str(home))
    scope = corpora.scope_for(ctx)

    def verdict(command: str) -> str:
        return decide(classify_shell(command, ctx), corpora.agent(), scope).verdict

    assert verdict("cat ~/.gitconfig") == "allow"
    assert verdict("head -5 ~/.gitconfig && git status") == "allow"
    assert verdict("cat ~/.config/git/config") == "block"  # a link to ~/.netrc: judged as what it is
    assert verdict("cat ~/.netrc") == "block"
    assert verdict("echo x >> ~/.gitconfig") == "block"
