"""The newcomer's wall time (issue 19): from nothing to a governed Claude Code session whose held call a
human approved, as tests/test_newcomer.py walks it (``tests/newcomer.py``: every step the CLI as a
subprocess, the wall on): ``python -m venv``, ``pip install CHECKOUT``, ``tether init --user --agent
claude-code`` in a fresh git repository, the runbook's scope edited, ``tether check``, ``tether up``, the
real Claude Code CLI (against the stand-in model API) held on ``make deploy``, ``tether approve``, the deploy
run and the session ended, ``tether status``, ``tether down``. Goal: ≤ 3 minutes including the installs.

- The npm download of the Claude Code CLI is not in the figure: it is reported on its own row
  (``.ci/install-agents``, run and timed only when the CLI is missing).
- The pip install is offline by default (``--no-deps --no-build-isolation --no-index`` into a venv that sees
  the development venv's packages: the build and install of the checkout, not the download of its
  dependencies); ``TETHER_BENCH_ONLINE=1`` runs the full ``pip install CHECKOUT`` a user runs, through this
  machine's pip configuration (its index and wheel folders), and reports that instead.
- Baseline: the same Claude Code session without tether (``claude -p``, the same stand-in steps; the deploy
  runs at once): what governing it adds, end to end, for a first session.

Needs root, the wall (bubblewrap, setpriv, socat) and the CLI; creates the ``tether-agent`` user when
missing and removes it afterwards.
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import row

TESTS = Path(__file__).resolve().parent.parent / "tests"
GOAL_S = 180.0


def _claude() -> tuple[str | None, float | None]:
    """The CLI's path, after installing it (timed: the npm download) when it is missing."""
    from fakes.tether_host import BIN

    exe = BIN / "claude"
    if exe.exists():
        return str(exe), None
    start = time.perf_counter()
    subprocess.run([str(TESTS.parent / ".ci" / "install-agents")], capture_output=True, timeout=1800, check=False)
    took = time.perf_counter() - start
    return (str(exe) if exe.exists() else None), took


def _newcomer(full: bool) -> dict[str, float]:
    from fakes.anthropic_api import FakeAnthropic
    from newcomer import STEPS, Newcomer, remove_user, user_exists

    exe, _ = _claude()
    assert exe is not None
    had_user = user_exists()
    root = Path(tempfile.mkdtemp(prefix="tether-bench-newcomer-", dir="/tmp"))
    root.chmod(0o755)
    me = Newcomer(root, exe)
    try:
        start = time.perf_counter()
        me.install(full=full)
        with FakeAnthropic(STEPS) as model:
            try:
                me.init()
                me.edit_runbook(model.url)
                me.check()
                me.up()
                held = me.held()
                me.approve(held["id"])
                me.timed("tether status", me.status_text)
                me.down()
            finally:
                me.clean_up()
        return {"total": time.perf_counter() - start, **me.times}
    finally:
        if not had_user and user_exists():
            remove_user()
        shutil.rmtree(root, ignore_errors=True)


def _plain_claude() -> float:
    """The same session with nothing governing it: ``claude -p`` in a copy of the app, against the stand-in."""
    from fakes.anthropic_api import FakeAnthropic
    from newcomer import MAKEFILE, STEPS

    exe, _ = _claude()
    assert exe is not None
    root = Path(tempfile.mkdtemp(prefix="tether-bench-plain-"))
    try:
        (root / "app").mkdir()
        (root / "app" / "Makefile").write_text(MAKEFILE)
        (root / "home").mkdir()
        with FakeAnthropic(STEPS) as model:
            env = {"HOME": str(root / "home"), "PATH": os.environ["PATH"], "ANTHROPIC_BASE_URL": model.url,
                   "ANTHROPIC_API_KEY": "sk-ant-test-dummy", "DISABLE_TELEMETRY": "1", "DISABLE_AUTOUPDATER": "1",
                   "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1"}
            start = time.perf_counter()
            subprocess.run([exe, "-p", "deploy it", "--output-format", "json", "--allowedTools", "Bash"],
                           cwd=root / "app", env=env, capture_output=True, timeout=300, check=True)
            took = time.perf_counter() - start
        if not (root / "app" / "deployed.txt").exists():
            raise RuntimeError("the plain claude -p session did not run the deploy")
        return took
    finally:
        shutil.rmtree(root, ignore_errors=True)


def run(quick: bool) -> list[dict[str, object]]:
    sys.path.insert(0, str(TESTS))
    from tether.wall import check

    why = check.problem() if os.geteuid() == 0 else "needs root (the wall runs the agent as its own user)"
    exe, npm = _claude()
    if why is None and exe is None:
        why = "the Claude Code CLI is not installed and .ci/install-agents could not install it"
    if why is not None:
        return [row(f"newcomer: skipped: {why}", float("nan"), float("nan"), "", "runs", False)]
    full = os.environ.get("TETHER_BENCH_ONLINE") == "1"
    runs = [_newcomer(full) for _ in range(1 if quick else 3)]
    plain = [_plain_claude() for _ in range(1 if quick else 3)]
    med = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
    install = "full pip install from the index" if full else "offline pip install --no-deps"
    label = f"median of {len(runs)}" if len(runs) > 1 else "one run"
    rows = [
        row(f"newcomer: venv, {install}, init, scope edit, up, held call, approve, done, status, down ({label}) "
            "vs the same claude -p session ungoverned", med["total"], statistics.median(plain), "s",
            "≤ 180 s", med["total"] <= GOAL_S),
        row("newcomer: of which venv + pip install", med["venv"] + med["pip install"], float("nan"), "s",
            "(reported)", True),
        row("newcomer: of which tether up -> the call held (canary, claude in the wall)",
            med["tether up"] + med["held call"], float("nan"), "s", "(reported)", True),
        row("newcomer: of which tether approve -> the deploy run and the session ended", med["approve -> done"],
            float("nan"), "s", "(reported)", True),
        row("npm download of the Claude Code CLI (not in the figure above)" + ("" if npm is not None else
            ": none, already installed by .ci/install-agents"), npm if npm is not None else 0.0, float("nan"),
            "s", "(reported apart)", True),
    ]
    return rows


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).parent))
    for r in run("--quick" in sys.argv):
        print(r)
