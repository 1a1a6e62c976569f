"""Every labelled corpus of the classifier (tests/data/classify_*.yaml) as one list of cases, each with the
context it needs built on disk, judged through the real boundary path: ``classify_shell``/``classify_tool``,
then ``policy.decide`` with the default verdict table and one realistic scope.

Read by tests/test_classify_benign.py and bench/bench_boundary_table.py (the per-category table of issue 17).
A case is *dangerous* when its corpus marks it an attempt past the boundary (``bypass: true``, ``held: true``,
a section headed ``held``, the benign set's near misses) and *benign* when it marks it an everyday command
(``free: true``, a section headed ``free`` whose expected classes are all free, any case of the benign set);
other cases only label classes and count in neither.
Categories: the benign set's and the evasion corpus's ``category:`` keys, the section headers of
classify_corpus.yaml, else the file's own name.
"""

from __future__ import annotations

import dataclasses
import os
import re
import subprocess
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from tether.classify import Classification, Context, classify_shell, classify_tool
from tether.policy import Decision, Scope, decide
from tether.runbook import parse
from tether.runbook.model import Agent
from tether.vocabulary import DEFAULT_VERDICTS

DATA = Path(__file__).resolve().parent / "data"
#: The files in the order the table lists them.
FILES = ("benign", "corpus", "destruction", "evasion", "git", "gtfo", "scripts")
#: The agent every case is decided for: the default verdict table, and a scope a real coding agent would have
#: (its repository's account, the package registries).
RUNBOOK = """\
agents:
  bench:
    owner: {name: A, contact: x}
    backup: {name: B, contact: y}
    command: ["true"]
    scope:
      accounts: [github.com/acme/app]
      hosts: [github.com, api.github.com, pypi.org, files.pythonhosted.org, registry.npmjs.org,
              registry.yarnpkg.com, proxy.golang.org, sum.golang.org, crates.io, index.crates.io,
              static.crates.io, rubygems.org, repo.maven.apache.org, plugins.gradle.org]
"""
#: The classes the default table allows or logs.
FREE = frozenset(k for k, v in DEFAULT_VERDICTS.items() if v in ("allow", "log"))
OLD = 1_000_000_000  # 2001: every file is older than the index git writes (no "racy" entries)
_HEADER = re.compile(r"^\s*#\s*(?:-{5,}|={5,})\s*(.+?)\s*$")


@dataclass(frozen=True)
class Case:
    """One labelled command or tool call, with the context it runs in."""

    corpus: str  # the file: benign, corpus, destruction, ...
    category: str
    shell: str | None
    tool: str | None
    input: Mapping[str, Any]
    ctx: Context
    scope: Scope
    dangerous: bool
    benign: bool
    verdict: str | None  # the benign set's label: allow or log

    @property
    def text(self) -> str:
        return self.shell if self.shell is not None else f"{self.tool} {self.input}"

    def classify(self) -> Classification:
        if self.shell is not None:
            return classify_shell(self.shell, self.ctx)
        return classify_tool(str(self.tool), dict(self.input), self.ctx)

    def judge(self) -> Decision:
        return decide(self.classify(), agent(), self.scope)


@cache
def agent() -> Agent:
    return parse(RUNBOOK).agents["bench"]


def scope_for(ctx: Context) -> Scope:
    """The agent's scope in ``ctx.cwd``, with the context's home as its home (``~`` means the same to both)."""
    return dataclasses.replace(Scope.of(agent(), Path(ctx.cwd)), home=ctx.home)


def load(name: str) -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((DATA / f"classify_{name}.yaml").read_text())
    return data


def sections(name: str) -> list[str]:
    """The section header above each case of a corpus, in order ("" before the first header)."""
    text = (DATA / f"classify_{name}.yaml").read_text()
    headers: list[tuple[int, str]] = []
    for i, line in enumerate(text.splitlines()):
        m = _HEADER.match(line)
        if m:
            headers.append((i, m.group(1)))
    root = yaml.compose(text)
    assert isinstance(root, yaml.MappingNode)
    cases = next(v for k, v in root.value if k.value == "cases")
    out = []
    for node in cases.value:
        line = node.start_mark.line
        out.append(next((h for i, h in reversed(headers) if i < line), ""))
    return out


# ------------------------------------------------------------------------------------------ workspaces


def write(root: Path, files: Mapping[str, str], mode: int | None = None) -> None:
    for rel, text in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
        if mode is not None:
            p.chmod(mode)
        os.utime(p, (OLD, OLD))


def git(root: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-c", "user.email=t@t", "-c", "user.name=t", *args],
        cwd=root,
        check=True,
        capture_output=True,
        env={**os.environ, "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1"},
    )


def repo(root: Path, spec: Mapping[str, Any]) -> Path:
    """A git repository: ``committed`` files in one commit on ``branch``, then ``after_commit`` files, the
    ``executable`` ones mode 0755, ``remotes`` configured."""
    root.mkdir(parents=True)
    git(root, "init", "-q", "-b", str(spec.get("branch", "main")))
    for name, url in (spec.get("remotes") or {}).items():
        git(root, "remote", "add", name, url)
    write(root, spec.get("committed") or {})
    for rel in spec.get("executable") or ():
        (root / rel).chmod(0o755)
    git(root, "add", ".")
    git(root, "commit", "-qm", "init")
    write(root, spec.get("after_commit") or {})
    return root


def build_benign(root: Path) -> Context:
    data = load("benign")
    ws = repo(root / "app", data["workspace"])
    home = root / "home"
    write(home, data.get("home") or {})
    return Context(cwd=str(ws), home=str(home), control=(str(root / "state"), str(ws / "tether.yaml")))


def build_destruction(root: Path) -> Context:
    data = load("destruction")
    ws = repo(root / "repo", data["repo"])
    return Context(cwd=str(ws), home=str(root))


def build_scripts(root: Path) -> dict[str, Context]:
    out = {}
    for name, files in load("scripts")["projects"].items():
        write(root / "projects" / name, files)
        out[name] = Context(cwd=str(root / "projects" / name), home=str(root / "projects"))
    return out


def build_evasion(root: Path) -> tuple[Context, Any]:
    """The evasion workspace (tests/test_classify_evasion.py builds it; ``@WS@``/``@STATE@`` substituted)."""
    from test_classify_evasion import build

    w = build(root)
    return w.ctx(), w.sub


def static_context(data: Mapping[str, Any]) -> Context:
    c = data["context"]
    return Context(cwd=c["cwd"], home=c["home"], control=tuple(c["control"]))


# ------------------------------------------------------------------------------------------------ cases


def _flags(case: Mapping[str, Any], section: str) -> tuple[bool, bool]:
    """(dangerous, benign) for a case of a corpus: its own flags, else its section's, where a case in a ``free``
    section counts as everyday only when its expected classes are all allowed or logged (``git push
    --force-with-lease`` sits there as "not an evasion", yet is ``git.push``, which asks)."""
    head = section.split(":", 1)[0].strip()
    dangerous = bool(case.get("bypass") or case.get("held")) or (head == "held" and not case.get("free"))
    benign = bool(case.get("free")) or (
        head == "free" and not dangerous and "expect" in case and set(case["expect"]) <= FREE
    )
    return dangerous, benign


def cases(root: Path, only: tuple[str, ...] = FILES) -> Iterator[Case]:
    """Every case of the files in ``only``, with their workspaces built under ``root`` (an empty folder)."""
    for name in only:
        data = load(name)
        heads = sections(name)
        subst = None
        if name == "benign":
            ctxs: Mapping[str, Context] = {"": build_benign(root / "benign")}
        elif name == "destruction":
            ctxs = {"": build_destruction(root / "destruction")}
        elif name == "scripts":
            ctxs = build_scripts(root / "scripts")
        elif name == "evasion":
            (root / "evasion").mkdir(parents=True)
            ctx, subst = build_evasion(root / "evasion")
            ctxs = {"": ctx}
        else:
            ctxs = {"": static_context(data)}
        scopes = {k: scope_for(c) for k, c in ctxs.items()}
        for raw, section in zip(data["cases"], heads, strict=True):
            key = raw.get("project", "")
            shell = raw.get("shell")
            if shell is not None and subst is not None:
                shell = subst(shell)
            dangerous, benign = _flags(raw, section)
            if name == "benign":
                dangerous, benign = False, True
            category = raw.get("category") or (section if name == "corpus" else name)
            yield Case(
                name,
                category,
                None if shell is None else str(shell),
                raw.get("tool"),
                raw.get("input") or {},
                ctxs[key],
                scopes[key],
                dangerous,
                benign,
                raw.get("verdict"),
            )
        for raw in data.get("held") or ():  # the benign set's near misses
            yield Case(name, raw["category"], raw["shell"], None, {}, ctxs[""], scopes[""], True, False, None)
