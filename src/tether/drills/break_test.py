"""The break-test drill: in a temporary ``git worktree`` of the agent's repo (never its live workspace), on a
drill branch, add a test that fails, commit it, and ask the boundary to open a PR from there. Pass when the
agent's ``pr.open`` gate denies it and the reason the agent is told carries the failing output.

The gate first runs on the untouched branch: a gate that already fails on HEAD denies every PR and so
shows nothing about broken tests. The boundary is the real one (``Gatekeeper.check``, with the agent's
workspace pointed at the worktree); it records its ``gate.ran`` and ``verdict`` events like any check,
and leaves sealing the audit chain to the daemon.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from tether.approvals import Approvals
from tether.boundary import Boundary, Gatekeeper, Outcome, Request
from tether.drills.base import Host, Result, Trace, first_line
from tether.errors import TetherError

PR_COMMAND = "gh pr create --title 'tether drill: a broken test' --body 'tether drill: this PR must not open'"


class DrillError(TetherError):
    pass


def run(host: Host, agent: str) -> Result:
    t = Trace(agent, "break-test")
    repo = find_repo(host, agent)
    if repo is None:
        return t.skipped("no git repository in its scope or workspace: it has nothing to open a PR from")
    gate = host.spec(agent).gates.get("pr.open")
    if gate is None:
        return t.failed(f"no pr.open gate: a broken test in {repo} would not stop a PR "
                        "(add gates: {pr.open: {command: [your tests]}} to its runbook entry)")
    marker = f"tether drill {host.run_id}: this test was broken on purpose"
    branch = f"tether-drill/{host.run_id}-{agent}"
    try:
        with worktree(repo, branch) as wt:
            base = _run_gate(list(gate.command), wt, gate.timeout)
            t.mark("gate_on_head_s", base[2])
            if base[0] != 0:
                return t.failed(f"the pr.open gate already fails on HEAD of {repo} (exit {base[0]}: "
                                f"{first_line(base[1][-400:], 200)}): it denies every PR, so it shows nothing")
            broken = break_a_test(wt, tuple(gate.command), marker)
            if broken is None:
                return t.failed(f"found no test file to break in {repo} (Python, JavaScript/TypeScript, Go or Rust)")
            commit = _git(wt, "-c", "user.name=tether drill", "-c", "user.email=drill@tether.invalid",
                          "-c", "commit.gpgsign=false", "commit", "-q", "--no-verify", "-am",
                          "tether drill: break a test on purpose")
            if commit.returncode != 0:
                return t.failed(f"could not commit the broken test on {branch}: {first_line(commit.stderr)}")
            cursor = host.cursor()
            asked = time.monotonic()
            outcome = gatekeeper(host, agent, wt).check(agent, Request(command=PR_COMMAND, cwd=str(wt)))
            t.mark("gate_s", time.monotonic() - asked)
            for e in host.events(cursor, agent, ["gate.ran", "verdict", "approval.requested"]):
                t.cite(e.id)
            return _judge(host, t, outcome, broken, marker, branch)
    except DrillError as err:
        return t.failed(str(err))


def _judge(host: Host, t: Trace, outcome: Outcome, broken: str, marker: str, branch: str) -> Result:
    where = f"{broken} on {branch}"
    if outcome.decision == "allow":
        return t.failed(f"a failing test ({where}) did not stop the PR: it would open as a false success "
                        f"({outcome.rule or outcome.reason})")
    if outcome.decision == "pending":
        _deny(host, outcome.approval_id)
        return t.failed(f"the pr.open gate let a failing test ({where}) through; only approval "
                        f"{outcome.approval_id} stood before the PR (denied by the drill)")
    if not outcome.reason.startswith("gate for pr.open"):
        return t.degraded(f"the PR was denied, but not by the pr.open gate: {first_line(outcome.reason, 200)}")
    if marker not in outcome.reason:
        return t.degraded(f"the pr.open gate denied the PR ({where}), but what the agent is told does not name "
                          f"the failing test: {first_line(outcome.reason, 200)}")
    head = outcome.reason.splitlines()[0]
    said = next(line.strip() for line in reversed(outcome.reason.splitlines()) if marker in line)
    return t.passed(f"the pr.open gate denied the PR with a failing test ({where}) in {t.timings['gate_s']:.2f}s; "
                    f"the agent is told: {first_line(head, 120)} … {first_line(said, 160)}")


def _deny(host: Host, approval_id: int | None) -> None:
    if approval_id is None:
        return
    try:
        host.api("POST", f"/v1/approvals/{approval_id}/deny", {"reason": "drill"})
    except TetherError:
        with contextlib.suppress(TetherError):
            Approvals(host.store).decide(approval_id, False, "tether drill", "drill")


class _Gatekeeper(Gatekeeper):
    def _seal(self) -> None:
        """The daemon seals the audit chain (``audit.chain``); a second process appending to it could
        interleave lines, so the events recorded here are sealed by the daemon's next seal."""
        return None


def gatekeeper(host: Host, agent: str, workspace: Path) -> Gatekeeper:
    """The boundary as the daemon runs it, with ``agent``'s workspace moved to ``workspace`` (gates run
    in the agent's workspace)."""
    loaded = host.loaded
    agents = dict(loaded.runbook.agents)
    agents[agent] = agents[agent].model_copy(update={"cwd": str(workspace)})
    moved = dataclasses.replace(loaded, runbook=loaded.runbook.model_copy(update={"agents": agents}))
    return _Gatekeeper(Boundary(moved), Approvals(host.store))


def _run_gate(argv: list[str], cwd: Path, timeout: float) -> tuple[int, str, float]:
    started = time.monotonic()
    try:
        proc = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=timeout,
                              stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        return 124, f"timed out after {timeout:g}s", time.monotonic() - started
    except OSError as err:
        return 127, f"could not run {argv[0]}: {err.strerror}", time.monotonic() - started
    return proc.returncode, (proc.stdout + proc.stderr).strip(), time.monotonic() - started


# -- the repository ---------------------------------------------------------------------------------------


def _git(repo: Path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env["GIT_TERMINAL_PROMPT"] = "0"
    try:
        return subprocess.run(["git", "-c", "safe.directory=*", "-C", str(repo), *args], capture_output=True,
                              text=True, timeout=timeout, stdin=subprocess.DEVNULL, env=env)
    except FileNotFoundError:
        raise DrillError("git is not on PATH") from None
    except subprocess.TimeoutExpired:
        raise DrillError(f"git {' '.join(args[:2])} timed out in {repo}") from None


def git_top(path: Path) -> Path | None:
    """The top of the git work tree that holds ``path``, or None."""
    if not path.is_dir():
        return None
    try:
        proc = _git(path, "rev-parse", "--show-toplevel", timeout=30)
    except DrillError:
        return None
    if proc.returncode != 0 or not proc.stdout.strip():
        return None
    return Path(proc.stdout.strip()).resolve()


def _remote(repo: str) -> bool:
    return "://" in repo or repo.startswith("git@") or (repo.count("/") == 2 and "." in repo.split("/")[0])


def find_repo(host: Host, agent: str) -> Path | None:
    """The agent's repository: the first local one in ``scope.repos``, else its workspace when that is in
    a git work tree (a default workspace only when it is the top of one: the folder around it is not
    the agent's)."""
    return next(iter(repos_of(host, agent)), None)


def repos_of(host: Host, agent: str) -> list[Path]:
    spec = host.spec(agent)
    found: list[Path] = []
    for entry in spec.scope.repos:
        if _remote(entry):
            continue
        top = git_top(host.loaded.resolve(entry))
        if top is not None and top not in found:
            found.append(top)
    cwd = host.cwd(agent).resolve()
    top = git_top(cwd)
    if top is not None and top not in found and (spec.cwd is not None or top == cwd):
        found.append(top)
    return found


@contextlib.contextmanager
def worktree(repo: Path, branch: str) -> Iterator[Path]:
    """A temporary worktree of ``repo`` on a new ``branch`` from HEAD; removed with the branch after."""
    tmp = Path(tempfile.mkdtemp(prefix="tether-drill-"))
    wt = tmp / (repo.name or "repo")
    added = _git(repo, "worktree", "add", "-q", "-b", branch, str(wt), "HEAD")
    if added.returncode != 0:
        shutil.rmtree(tmp, ignore_errors=True)
        raise DrillError(f"git worktree add failed in {repo}: {first_line(added.stderr)}")
    try:
        yield wt
    finally:
        _git(repo, "worktree", "remove", "--force", "--force", str(wt))
        _git(repo, "branch", "-D", branch)
        shutil.rmtree(tmp, ignore_errors=True)
        _git(repo, "worktree", "prune")


# -- breaking a test ----------------------------------------------------------------------------------------

PY_TEST = re.compile(r"(^|/)(test_[^/]*|[^/]*_test|tests)\.py$")
JS_TEST = re.compile(r"(^|/)[^/]*\.(test|spec)\.(js|jsx|mjs|cjs|ts|tsx|mts|cts)$")
GO_TEST = re.compile(r"(^|/)[^/]*_test\.go$")
RS_TEST = re.compile(r"(^|/)tests/[^/]*\.rs$")

PY_BREAK = '''

import unittest as _tether_drill_unittest


class TetherDrillBrokenTest(_tether_drill_unittest.TestCase):
    def test_tether_drill_broken(self):
        self.fail({marker!r})
'''
JS_BREAK = '''

// {note}
if (typeof test === "function") {{ test("tether drill", () => {{ throw new Error({marker}); }}); }}
else if (typeof it === "function") {{ it("tether drill", () => {{ throw new Error({marker}); }}); }}
else {{ throw new Error({marker}); }}
'''
GO_BREAK = '''

func TestTetherDrillBroken(t *testing.T) {{
	t.Fatal({marker})
}}
'''
RS_BREAK = '''

#[test]
fn tether_drill_broken() {{
    panic!("{{}}", {marker});
}}
'''
HINTS = {
    "python": ("python", "pytest", "unittest", "tox", "nox", "hatch", "uv", "poetry"),
    "js": ("npm", "npx", "pnpm", "yarn", "node", "jest", "vitest", "mocha", "bun", "deno"),
    "go": ("go",),
    "rust": ("cargo",),
}


def _quoted(text: str) -> str:
    import json

    return json.dumps(text)


def break_a_test(wt: Path, gate: tuple[str, ...], marker: str) -> str | None:
    """Add a failing test to one of the worktree's test files (the language the gate runs first); return
    the file's path in the repo, or None when none was found."""
    listed = _git(wt, "ls-files")
    files = listed.stdout.splitlines() if listed.returncode == 0 else []
    langs = {
        "python": [f for f in files if PY_TEST.search(f)],
        "js": [f for f in files if JS_TEST.search(f) and "node_modules/" not in f],
        "go": [f for f in files if GO_TEST.search(f) and '"testing"' in _read(wt / f)],
        "rust": [f for f in files if RS_TEST.search(f)],
    }
    words = {Path(a).name.lower() for a in gate}
    order = sorted(langs, key=lambda lang: 0 if words & set(HINTS[lang]) else 1)
    args = [a.strip("/") for a in gate[1:] if not a.startswith("-") and (wt / a).exists()]
    for lang in order:
        candidates = langs[lang]
        if not candidates:
            continue
        named = [f for f in candidates if any(f == a or f.startswith(a + "/") for a in args)]
        path = min(named or candidates, key=lambda f: (f.count("/"), len(f), f))
        text = {
            "python": PY_BREAK.format(marker=marker),
            "js": JS_BREAK.format(marker=_quoted(marker), note="tether drill: broken on purpose"),
            "go": GO_BREAK.format(marker=_quoted(marker)),
            "rust": RS_BREAK.format(marker=_quoted(marker)),
        }[lang]
        with open(wt / path, "a", encoding="utf-8") as f:
            f.write(text)
        return path
    return None


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
