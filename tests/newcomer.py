"""The newcomer's way to a governed Claude Code session, as a user walks it: every step a subprocess of the
commands docs/GUIDE.md gives, nothing of tether imported. Shared by tests/test_newcomer.py (which asserts
what each step shows) and bench/bench_newcomer.py (which times them). No tests in here.

A fresh venv and the package installed from the checkout; ``tether init --user --agent claude-code`` in a
fresh git repository; one hand edit of the runbook (the agent's scope, and the model API's address, which
is the stand-in's here); ``tether up``; the real Claude Code CLI, inside the wall, asked by the stand-in
model for ``make deploy`` (held by the default table); ``tether approve``; ``tether status``.

The install is offline. ``full=False`` (the tests): a venv that also sees the development venv's
site-packages (a ``.pth`` line) and ``pip install --no-deps --no-build-isolation --no-index CHECKOUT``:
the same build of the same checkout, without the download of its dependencies. ``full=True`` (the
bench, opt-in): ``pip install CHECKOUT`` as a user runs it, through this machine's pip configuration.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import socket
import subprocess
import sys
import sysconfig
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from test_daemon_kit import kill_marked

ROOT = Path(__file__).resolve().parent.parent
GUIDE = ROOT / "docs" / "GUIDE.md"
DEFAULT_PORT = 7717  # the listen address `tether init` writes
#: What the stand-in model asks for: a deploy (the Makefile's recipe runs kubectl apply: held by default),
#: then the end of the turn.
STEPS: list[dict[str, Any]] = [
    {"tool": "Bash", "input": {"command": "make deploy", "description": "deploy"}},
    {"text": "Deployed."},
]
MAKEFILE = "deploy:\n\t-kubectl apply -f deploy.yaml 2>/dev/null\n\techo deployed > deployed.txt\n"
GIT_ID = {"GIT_AUTHOR_NAME": "New Comer", "GIT_AUTHOR_EMAIL": "new@example.com",
          "GIT_COMMITTER_NAME": "New Comer", "GIT_COMMITTER_EMAIL": "new@example.com"}


#: The agent ``tether init --agent KIND`` writes, and the folder docs/GUIDE.md makes for it.
AGENTS = {"claude-code": "claude", "sdk": "my-agent", "command": "worker"}
PROJECTS = {"claude-code": "shop", "sdk": "bot", "command": "ops"}


class StepFailed(AssertionError):
    pass


def port_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


class Newcomer:
    """One newcomer's machine in ``root`` (a folder under /tmp): their HOME (so tether's state dir is the
    default one under it), their venv (``venv``: one installed already), their project with one agent of
    ``kind`` (the guide's: claude-code, sdk or command). ``claude``: the real CLI, put on their PATH."""

    def __init__(self, root: Path, claude: str | None = None, venv: Path | None = None,
                 kind: str = "claude-code") -> None:
        self.root = root
        self.home = root / "home"
        self.venv = venv or root / "venv"
        self.kind = kind
        self.name = AGENTS[kind]
        self.project = root / PROJECTS[kind]
        self.workspace = self.project / "workspaces" / self.name
        self.runbook = self.project / "tether.yaml"
        self.mark = uuid.uuid4().hex
        self.claude = claude
        self.times: dict[str, float] = {}
        self.home.mkdir(parents=True, exist_ok=True)

    # -- the shell they type in ---------------------------------------------------------------------------
    def env(self) -> dict[str, str]:
        """A login-like environment: their HOME, the venv and the claude CLI on PATH, their model API key
        (the runbook reads it with ``env:ANTHROPIC_API_KEY``); nothing of the developer's tether settings."""
        cli = [str(Path(self.claude).parent)] if self.claude else []
        path = os.pathsep.join([str(self.venv / "bin"), *cli, "/usr/local/bin", "/usr/bin", "/bin",
                                "/usr/local/sbin", "/usr/sbin", "/sbin"])
        env = {"HOME": str(self.home), "PATH": path, "LANG": "C.UTF-8", "USER": "root", "SHELL": "/bin/sh",
               "ANTHROPIC_API_KEY": "sk-ant-test-dummy", "OPENAI_API_KEY": "sk-test-dummy", "COLUMNS": "80",
               "TETHER_TEST_MARK": self.mark}
        for name in ("TETHER_AGENTS_DIR", "TMPDIR"):
            if name in os.environ:
                env[name] = os.environ[name]
        return env

    def sh(self, *argv: str | Path, cwd: Path | None = None, timeout: float = 120,
           env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        where = cwd or (self.project if self.project.is_dir() else self.root)
        try:
            return subprocess.run([str(a) for a in argv], cwd=where, env={**self.env(), **(env or {})},
                                  capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired as err:
            raise StepFailed(f"{' '.join(map(str, argv))}: no answer in {timeout}s") from err

    def ok(self, *argv: str | Path, cwd: Path | None = None, timeout: float = 120) -> str:
        proc = self.sh(*argv, cwd=cwd, timeout=timeout)
        if proc.returncode != 0:
            raise StepFailed(f"{' '.join(map(str, argv))}: exit {proc.returncode}: {proc.stderr.strip()[-2000:]}")
        return proc.stdout

    def timed(self, name: str, step: Callable[[], Any]) -> Any:
        start = time.perf_counter()
        try:
            return step()
        finally:
            self.times[name] = time.perf_counter() - start

    # -- 1. install ---------------------------------------------------------------------------------------
    def install(self, full: bool = False) -> None:
        self.timed("venv", lambda: self._venv(full))
        self.timed("pip install", lambda: self._pip(full))

    def _venv(self, full: bool) -> None:
        base = getattr(sys, "_base_executable", sys.executable)
        self.ok(base, "-m", "venv", self.venv, cwd=self.root)
        if not full:
            # the development venv's packages, after the new venv's own: tether's dependencies, not its
            # editable install (a plain folder line: the .pth files in there are not read)
            pure = Path(sysconfig.get_paths()["purelib"])
            (site,) = self.venv.glob("lib/python3*/site-packages")
            (site / "_newcomer_deps.pth").write_text(f"{pure}\n")

    def _pip(self, full: bool) -> None:
        offline = [] if full else ["--no-deps", "--no-build-isolation", "--no-index"]
        self.ok(self.venv / "bin" / "python", "-m", "pip", "install", "-q", *offline, ROOT, cwd=self.root, timeout=600)

    # -- 2. a runbook for one agent --------------------------------------------------------------------------
    def init(self) -> str:
        """A fresh git repository; ``tether init --user --agent KIND`` in it (the wall's user too, as root);
        for Claude Code the repository it works on cloned where the runbook says its workspace is, for the
        others the workspace made (the test writes the guide's agent.py or run.sh there). The listen address
        is edited only when 7717 is taken on this machine (another daemon), which a newcomer's is not."""
        self.project.mkdir(parents=True)
        self.ok("git", "init", "-q", "-b", "main")
        out = self.timed("tether init", lambda: self.ok("tether", "init", "--user", "--agent", self.kind))
        if not port_free(DEFAULT_PORT):
            with socket.socket() as s:
                s.bind(("127.0.0.1", 0))
                free = s.getsockname()[1]
            text = self.runbook.read_text()
            self.runbook.write_text(text.replace(f"listen: 127.0.0.1:{DEFAULT_PORT}", f"listen: 127.0.0.1:{free}", 1))
        self.workspace.parent.mkdir(parents=True, exist_ok=True)
        if self.kind != "claude-code":
            self.workspace.mkdir()
            return out
        app = self.root / "app"  # their application: a Makefile whose deploy runs kubectl apply
        app.mkdir()
        (app / "Makefile").write_text(MAKEFILE)
        self.ok("git", "init", "-q", "-b", "main", cwd=app)
        self.ok("git", "add", "-A", cwd=app)
        self.sh("git", "commit", "-q", "-m", "app", cwd=app, env=GIT_ID)
        self.ok("git", "clone", "-q", app, self.workspace)
        return out

    def edit_runbook(self, api_url: str) -> None:
        """The one hand edit: scope.hosts is where the model API is, and the agent's env names that API
        (a real user's stays api.anthropic.com and needs no ANTHROPIC_BASE_URL)."""
        host = api_url.split("://", 1)[1].split("/", 1)[0]
        text = self.runbook.read_text()
        edited = text.replace("hosts: [api.anthropic.com]", f"hosts: [{host}]", 1)
        edited = re.sub(r"(\n( +)CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC:)",
                        rf"\n\2ANTHROPIC_BASE_URL: {api_url}\1", edited, count=1)
        if edited.count(host) != 2:
            raise StepFailed(f"the runbook `tether init` wrote has no scope.hosts or env line to edit:\n{text}")
        self.runbook.write_text(edited)

    # -- 3. up, the held call, approve, status ------------------------------------------------------------
    def check(self) -> str:
        return self.timed("tether check", lambda: self.ok("tether", "check"))

    def up(self) -> str:
        return self.timed("tether up", lambda: self.ok("tether", "up"))

    def status(self) -> dict[str, Any]:
        doc: dict[str, Any] = json.loads(self.ok("tether", "status", "--json"))
        return doc

    def agent(self) -> dict[str, Any]:
        (got,) = [a for a in self.status()["agents"] if a["agent"] == self.name]
        return got

    def approvals(self, all_: bool = False) -> list[dict[str, Any]]:
        rows = json.loads(self.ok("tether", "approvals", "--json", *(["--all"] if all_ else [])))
        return list(rows["approvals"] if isinstance(rows, dict) else rows)

    def until(self, what: str, pred: Callable[[], Any], timeout: float) -> Any:
        """Poll ``pred`` (each try runs a CLI command: ~0.1 s) until truthy; StepFailed naming ``what``."""
        deadline = time.monotonic() + timeout
        while True:
            got = pred()
            if got:
                return got
            if time.monotonic() > deadline:
                raise StepFailed(f"timed out after {timeout}s waiting for {what}; {self.diagnose()}")
            time.sleep(0.1)

    def held(self, timeout: float = 120) -> dict[str, Any]:
        """The pending approval the agent's held call made (the canary and the agent's first run before it)."""
        rows: list[dict[str, Any]] = self.timed(
            "held call", lambda: self.until("the held call", lambda: self.approvals(), timeout)
        )
        return rows[0]

    def approve(self, approval_id: int | str, done: Callable[[], Any] | None = None, timeout: float = 120) -> str:
        """``tether approve ID``, then until ``done`` (Claude Code's: the deploy ran and its resumed session
        ended)."""

        def deployed() -> bool:
            return (self.workspace / "deployed.txt").exists() and self.agent()["state"] not in (
                "running", "starting", "waiting_for_approval")

        def step() -> str:
            out = self.ok("tether", "approve", str(approval_id))
            self.until("the approved call to run", done or deployed, timeout)
            return out

        out: str = self.timed("approve -> done", step)
        return out

    def status_text(self) -> str:
        return self.ok("tether", "status")

    def down(self) -> None:
        self.timed("tether down", lambda: self.ok("tether", "down", timeout=60))

    # -- when it goes wrong ----------------------------------------------------------------------------------
    def state_dir(self) -> Path:
        return self.home / ".local" / "state" / "tether"

    def diagnose(self) -> str:
        logs = []
        for path in (self.state_dir() / "daemon.log", *sorted(self.state_dir().glob(f"agents/{self.name}/logs/*"))):
            with contextlib.suppress(OSError):
                logs.append(f"--- {path.name}:\n{path.read_text(errors='replace')[-1500:]}")
        events = self.sh("tether", "events", timeout=30).stdout[-3000:]
        return "events:\n" + events + "\n" + "\n".join(logs)

    def clean_up(self) -> None:
        """``tether down``; then whatever of this newcomer's is left (the daemon and what carries its mark)."""
        with contextlib.suppress(Exception):
            self.sh("tether", "down", timeout=60)
        kill_marked(self.mark)



AGENT_USER = "tether-agent"  # the user `tether init --user` creates


def user_exists(name: str = AGENT_USER) -> bool:
    import pwd

    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True


def remove_user(name: str = AGENT_USER) -> None:
    """Undo ``tether init --user`` where this run created the user: its processes (all this run's) end
    first, or userdel refuses."""
    subprocess.run(["pkill", "-KILL", "-u", name], check=False, capture_output=True)
    subprocess.run(["userdel", name], check=False, capture_output=True)
