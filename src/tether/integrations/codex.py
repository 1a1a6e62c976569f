"""Codex CLI: tether's command hook in ``hooks.json`` (user or project) or in the managed
``requirements.toml``, the trust step, and how the supervisor runs ``codex exec``.

What Codex does (checked on Codex CLI 0.171.0, see docs/INTEGRATIONS.md): there is no http hook type, so
PreToolUse runs ``hook_command.py`` (a process per tool call). It honours only ``deny`` there; a hook that
exits 2 blocks only when it wrote a reason on stderr, and a hook that exits 1, crashes, is killed or times
out lets the command run. A hook that is not managed runs only once trusted (``/hooks``, or the
``trusted_hash`` Codex itself computed, written to ``config.toml``), or with ``--dangerously-bypass-hook-trust``.
Managed hooks (``/etc/codex/requirements.toml``) run without a trust step, and ``allow_managed_hooks_only``
ignores every other hook.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

from tether.integrations.settings import Change, install_json, install_toml, remove_json, remove_toml

HOOK_SCRIPT = Path(__file__).with_name("hook_command.py")
MANAGED_REQUIREMENTS = Path("/etc/codex/requirements.toml")
EVENTS = ("PreToolUse", "PostToolUse", "SessionStart", "UserPromptSubmit", "Stop")
DEADLINE = 25.0  # the hook's own limit; Codex's (timeout below) is later, since Codex fails open on it


def codex_home() -> Path:
    return Path(os.environ.get("CODEX_HOME") or "~/.codex").expanduser()


def hooks_path(scope: str, project: Path | None = None) -> Path:
    if scope == "managed":
        return MANAGED_REQUIREMENTS
    if scope == "user":
        return codex_home() / "hooks.json"
    return (project or Path.cwd()) / ".codex" / "hooks.json"


def command(event: str, base: str, agent: str | None, wait: float = 0.0, python: str | None = None) -> str:
    argv = [python or sys.executable, "-I", str(HOOK_SCRIPT), "--client", "codex", "--event", event,
            "--url", base.rstrip("/"), "--deadline", f"{DEADLINE + wait:g}" if event == "PreToolUse" else "8"]
    if agent:
        argv += ["--agent", agent]
    if wait and event == "PreToolUse":
        argv += ["--wait", f"{wait:g}"]
    return shlex.join(argv)


def hooks(base: str, agent: str | None, wait: float = 0.0) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for event in EVENTS:
        timeout = int(DEADLINE + wait + 10) if event == "PreToolUse" else 10
        h = {"type": "command", "command": command(event, base, agent, wait), "timeout": timeout}
        out[event] = [{"matcher": "*", "hooks": [h]}] if event in ("PreToolUse", "PostToolUse") else [{"hooks": [h]}]
    return out


def _toml_str(s: str) -> str:
    return json.dumps(s)  # a JSON string is a valid TOML basic string


def requirements_block(base: str, agent: str | None, wait: float = 0.0) -> str:
    lines = []
    for event, groups in hooks(base, agent, wait).items():
        for group in groups:
            lines.append(f"[[hooks.{event}]]")
            if "matcher" in group:
                lines.append(f"matcher = {_toml_str(group['matcher'])}")
            for h in group["hooks"]:
                lines += [f"[[hooks.{event}.hooks]]", 'type = "command"', f"command = {_toml_str(h['command'])}",
                          f"timeout = {h['timeout']}"]
            lines.append("")
    return "\n".join(lines)


def install(path: Path, base: str, agent: str | None, *, managed: bool = False, wait: float = 0.0) -> Change:
    if managed:
        return install_toml(path, "allow_managed_hooks_only = true\n", requirements_block(base, agent, wait))
    return install_json(path, hooks(base, agent, wait))


def remove(path: Path, managed: bool = False) -> Change:
    return remove_toml(path) if managed else remove_json(path)


# -- trust --------------------------------------------------------------------------------------------------


def binary() -> str | None:
    return os.environ.get("TETHER_CODEX") or shutil.which("codex")


def list_hooks(codex: str, cwd: Path, env: dict[str, str] | None = None, timeout: float = 30) -> list[dict[str, Any]]:
    """Codex's own view of its hooks for ``cwd`` (``codex app-server``: ``hooks/list``): key, command,
    ``trustStatus`` (managed, trusted, untrusted, modified), ``currentHash``, ``isManaged``."""
    requests = [
        {"jsonrpc": "2.0", "id": 1, "method": "initialize",
         "params": {"clientInfo": {"name": "tether", "version": "1"}}},
        {"jsonrpc": "2.0", "method": "initialized"},
        {"jsonrpc": "2.0", "id": 2, "method": "hooks/list", "params": {"cwds": [str(cwd)]}},
    ]
    proc = subprocess.Popen([codex, "app-server"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, cwd=cwd, env=env, text=True)
    timer = threading.Timer(timeout, proc.kill)  # a hung app-server ends the read loop below
    timer.start()
    try:
        assert proc.stdin is not None and proc.stdout is not None
        for req in requests:
            proc.stdin.write(json.dumps(req) + "\n")
        proc.stdin.flush()
        for line in proc.stdout:
            try:
                msg = json.loads(line)
            except ValueError:
                continue
            if msg.get("id") == 2:
                if "error" in msg:
                    raise RuntimeError(f"codex app-server hooks/list: {msg['error']}")
                out: list[dict[str, Any]] = []
                for entry in msg.get("result", {}).get("data", []):
                    out += [h for h in entry.get("hooks", []) if isinstance(h, dict)]
                return out
        raise RuntimeError(f"codex app-server did not answer hooks/list within {timeout:g}s")
    finally:
        timer.cancel()
        proc.kill()
        proc.wait()


def ours(hooks_listed: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [h for h in hooks_listed
            if "hook_command" in str(h.get("command", "")) and "tether" in str(h.get("command"))]


def pending_trust(hooks_listed: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """tether's hooks that Codex will skip: neither managed nor trusted."""
    return [h for h in ours(hooks_listed)
            if h.get("trustStatus") not in ("trusted", "managed") and not h.get("isManaged")]


def trust(codex: str, cwd: Path, env: dict[str, str] | None = None
          ) -> tuple[Change | None, list[dict[str, Any]], int]:
    """Trust tether's own hooks, and only those: for each, the ``currentHash`` Codex computed goes into
    ``$CODEX_HOME/config.toml`` as ``[hooks.state."KEY"] trusted_hash`` (what ``/hooks`` writes), then
    Codex is asked again. Returns the change, the hooks still pending (empty when it worked) and how many of
    tether's hooks Codex lists at all (0: it does not load them, e.g. a project it does not trust yet)."""
    listed = list_hooks(codex, cwd, env)
    todo = pending_trust(listed)
    if not todo:
        return None, [], len(ours(listed))
    home = Path((env or os.environ).get("CODEX_HOME") or codex_home()).expanduser()
    config = home / "config.toml"
    entries = [h for h in ours(listed) if not h.get("isManaged") and h.get("currentHash")]
    block = "\n".join(f"[hooks.state.{_toml_str(str(h['key']))}]\ntrusted_hash = {_toml_str(str(h['currentHash']))}\n"
                      for h in entries)
    change = install_toml(config, "", block, 0o600)
    after = list_hooks(codex, cwd, env)
    return change, pending_trust(after), len(ours(after))


def untrust(cwd: Path, env: dict[str, str] | None = None) -> Change:
    home = Path((env or os.environ).get("CODEX_HOME") or codex_home()).expanduser()
    return remove_toml(home / "config.toml")


# -- the supervisor's side: running ``codex exec`` ----------------------------------------------------------

#: Codex runs each command through a login shell (``bash -lc``) unless told not to, and a login shell reads
#: ``/etc/profile``, which sets PATH afresh: the PATH the runbook and tether gave the agent (its venv, its
#: tools, ``tether`` itself) was gone and ``pytest`` was "command not found". ``allow_login_shell = false``
#: (Codex's config; checked with codex-cli 0.171) runs them with ``bash -c`` in the environment Codex was
#: started with. Codex ignores a ``-c`` key it does not know (0.171, without ``--strict-config``).
NO_LOGIN_SHELL = ("-c", "allow_login_shell=false")


#: Codex's own sandbox cannot be built inside tether's wall (codex-cli 0.171: "error building bubblewrap command:
#: Read-only file system"; bwrap cannot nest its mounts there), and without it every command Codex runs fails.
#: Inside the wall tether turns it off deliberately: the wall is the agent's sandbox (``tether doctor`` says so).
WALLED = ("-s", "danger-full-access")


def inside_wall(argv: list[str]) -> list[str]:
    """``argv`` (a ``codex exec`` command line from ``argv``) with Codex's own sandbox off: the wall is its sandbox."""
    if len(argv) < 2 or argv[1] != "exec" or "-s" in argv or "--sandbox" in argv:
        return argv
    return [argv[0], "exec", *WALLED, *argv[2:]]


def argv(prompt: str, *, codex: str | None = None, resume: str | None = None, bypass_trust: bool = True,
         extra: tuple[str, ...] = ()) -> list[str]:
    """``codex exec --json`` for a headless run (or ``codex exec resume THREAD``), run in the agent's folder.
    ``bypass_trust`` passes ``--dangerously-bypass-hook-trust`` so the hooks tether wrote run without the
    interactive review; it also lets any other untrusted hook run, which is why ``--managed`` is the better
    install. ``NO_LOGIN_SHELL``: the agent's commands keep the PATH (and environment) tether gave it."""
    exe = codex or binary() or "codex"
    out = [exe, "exec", *NO_LOGIN_SHELL, *extra]  # options of ``exec`` itself (-s, -m, -c) go before ``resume``
    if resume:
        out += ["resume", resume]
    out += ["--json", "--skip-git-repo-check"]
    if bypass_trust:
        out.append("--dangerously-bypass-hook-trust")
    return [*out, prompt]
