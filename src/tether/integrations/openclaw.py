"""OpenClaw: tether's plugin in a gateway's config, what the hook endpoint reads from the plugin, and how the
supervisor runs a gateway (the ``openclaw`` agent kind).

OpenClaw (npm ``openclaw``) is a long-running Node gateway that connects chat apps to agents. It offers no
hook a separate process answers, but in-process plugins: tether ships one (``openclaw_plugin/``) whose
``before_tool_call`` asks the daemon (``POST /v1/hooks/openclaw[/AGENT]``, an agent token) about every tool
call and blocks anything but an explicit allow; OpenClaw itself blocks a call whose handler throws or times
out (checked on openclaw 2026.9.6, docs/INTEGRATIONS.md).

- ``install`` / ``remove``: the plugin's folder in ``plugins.load.paths`` and its entry
  ``plugins.entries.tether`` (and ``tether`` in ``plugins.allow`` when the config keeps an allow list); what
  tether created is remembered beside the config (``.tether-integration.json``), so ``remove`` takes out
  exactly that. OpenClaw reads JSON5; tether edits a config that is plain JSON (OpenClaw writes it so).
- ``request``: an OpenClaw tool call as the classifier knows tool calls (``exec`` is a shell command,
  ``write``/``edit`` write a file, ...), the OpenClaw name kept in the input as ``openclaw_tool``.
- ``launch``: the gateway in the foreground (``openclaw gateway run``) with its own HOME, state folder and a
  config written at each start (the runbook's ``OPENCLAW_CONFIG_PATH`` merged with tether's plugin), never
  a second gateway on a port that is taken. ``HealthWatch``: the gateway's ``/health`` is its heartbeat.
"""

from __future__ import annotations

import contextlib
import copy
import json
import os
import shlex
import shutil
import socket
import threading
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tether.errors import UsageError
from tether.integrations.settings import Change, dump_json, read_json, read_sidecar, write_atomic, write_sidecar
from tether.integrations.transcript import Usage

PLUGIN_DIR = Path(__file__).with_name("openclaw_plugin")
PLUGIN_ID = "tether"
DEFAULT_PORT = 18789
DEFAULT_WAIT = 120.0  # seconds a held call waits for a human before it is blocked (with its approval id)
MAX_WAIT = 280.0  # Node's fetch gives up waiting for response headers after 300 s
HOOK_MARGIN = 15.0  # OpenClaw's own timeout for the hook: the wait plus this
#: What every gateway tether runs gets: no self-update, no respawn outside the keeper, no telemetry.
RUN_ENV = {"OPENCLAW_NO_RESPAWN": "1", "OPENCLAW_NO_AUTO_UPDATE": "1", "DO_NOT_TRACK": "1"}


# -- the config file ----------------------------------------------------------------------------------------


def config_path(env: dict[str, str] | None = None) -> Path:
    """The config OpenClaw reads: ``$OPENCLAW_CONFIG_PATH``, else ``$OPENCLAW_STATE_DIR/openclaw.json``, else
    ``~/.openclaw/openclaw.json``."""
    e = os.environ if env is None else env
    if e.get("OPENCLAW_CONFIG_PATH"):
        return Path(e["OPENCLAW_CONFIG_PATH"]).expanduser()
    state = e.get("OPENCLAW_STATE_DIR")
    return (
        Path(state).expanduser() if state else Path(e.get("HOME") or "~").expanduser() / ".openclaw"
    ) / "openclaw.json"


def read_config(path: Path) -> dict[str, Any]:
    """The config at ``path`` (``{}`` when missing); a one-line error when it is not a plain JSON object."""
    return read_json(
        path,
        not_json=f"{path} is JSON5 or not valid JSON; tether edits plain JSON only: rewrite it as "
        "JSON (e.g. `openclaw config get --json`), then run this again",
    )


def plugin_entry(
    url: str,
    agent: str | None,
    wait: float = DEFAULT_WAIT,
    token_file: str | None = None,
    token_env: str = "TETHER_TOKEN",
) -> dict[str, Any]:
    """``plugins.entries.tether``: the daemon, the agent, where the token is, how long a held call waits."""
    wait = min(max(wait, 0.0), MAX_WAIT)
    config: dict[str, Any] = {"url": url.rstrip("/"), "tokenEnv": token_env, "wait": wait}
    if agent:
        config["agent"] = agent
    if token_file:
        config["tokenFile"] = token_file
    return {
        "enabled": True,
        "config": config,
        "hooks": {
            "allowConversationAccess": True,  # llm_output (token usage) is a conversation hook
            "timeouts": {"before_tool_call": int((wait + HOOK_MARGIN) * 1000)},
        },
    }


def _is_plugin_path(value: Any) -> bool:
    """tether's plugin folder, this installation's or another's (a venv elsewhere)."""
    return isinstance(value, str) and value.rstrip("/").endswith("tether/integrations/openclaw_plugin")


def _obj(parent: dict[str, Any], key: str, created: list[str], where: str) -> dict[str, Any]:
    got = parent.get(key)
    if got is None:
        got = parent[key] = {}
        created.append(where)
    if not isinstance(got, dict):
        raise UsageError(f'the config\'s "{where}" is not an object; fix it first, tether will not overwrite it')
    return got


def merged(config: dict[str, Any], entry: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """``config`` with tether's plugin loaded and configured; the keys tether had to create."""
    out = copy.deepcopy(stripped(config, []))
    created: list[str] = []
    plugins = _obj(out, "plugins", created, "plugins")
    load = _obj(plugins, "load", created, "plugins.load")
    paths = load.get("paths")
    if paths is None:
        paths = load["paths"] = []
        created.append("plugins.load.paths")
    if not isinstance(paths, list):
        raise UsageError('the config\'s "plugins.load.paths" is not a list; fix it first')
    paths.append(str(PLUGIN_DIR))
    entries = _obj(plugins, "entries", created, "plugins.entries")
    entries[PLUGIN_ID] = copy.deepcopy(entry)
    allow = plugins.get("allow")
    if isinstance(allow, list) and PLUGIN_ID not in allow:  # an allow list loads only what it names
        allow.append(PLUGIN_ID)
        created.append("plugins.allow[tether]")
    deny = plugins.get("deny")
    if isinstance(deny, list) and PLUGIN_ID in deny:
        raise UsageError('the config\'s "plugins.deny" names tether; take it out first')
    if plugins.get("enabled") is False:
        raise UsageError(
            'the config has "plugins.enabled": false, so no plugin (tether\'s neither) would load; set it to true first'
        )
    return out, created


def stripped(config: dict[str, Any], created: list[str]) -> dict[str, Any]:
    """``config`` without tether's plugin: its path, its entry, and the keys listed in ``created`` once empty."""
    out = copy.deepcopy(config)
    plugins = out.get("plugins")
    if not isinstance(plugins, dict):
        return out
    load = plugins.get("load")
    if isinstance(load, dict) and isinstance(load.get("paths"), list):
        load["paths"] = [p for p in load["paths"] if not _is_plugin_path(p)]
    entries = plugins.get("entries")
    if isinstance(entries, dict):
        entries.pop(PLUGIN_ID, None)
    if "plugins.allow[tether]" in created and isinstance(plugins.get("allow"), list):
        plugins["allow"] = [p for p in plugins["allow"] if p != PLUGIN_ID]
    keys = [c for c in created if c.startswith("plugins") and "[" not in c]
    for where in sorted(keys, key=len, reverse=True):  # innermost first
        *parents, last = where.split(".")
        node: Any = out
        for part in parents:
            node = node.get(part) if isinstance(node, dict) else None
        if isinstance(node, dict) and node.get(last) in ({}, []):
            del node[last]
    return out


def install(
    path: Path, url: str, agent: str | None, *, wait: float = DEFAULT_WAIT, token_file: str | None = None
) -> Change:
    """Load and configure tether's plugin in the OpenClaw config at ``path``; write only on change."""
    before = read_config(path)
    side = read_sidecar(path)
    mine = side.get(path.name, {}).get("created", [])
    after, created = merged(before, plugin_entry(url, agent, wait, token_file))
    if after == before:
        return Change(path, False, "has tether's plugin")
    if not path.exists():
        created.append("(file)")
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, dump_json(after), 0o600)
    keep = [c for c in dict.fromkeys([*mine, *created])]
    if keep:
        side[path.name] = {"created": keep}
        write_sidecar(path, side, 0o600)
    return Change(path, True, "tether's plugin installed")


def remove(path: Path) -> Change:
    """Take out tether's plugin and what tether created for it (per the sidecar); nothing else."""
    if not path.exists():
        return Change(path, False, "without tether's plugin")
    before = read_config(path)
    side = read_sidecar(path)
    created = side.pop(path.name, {}).get("created", [])
    after = stripped(before, created if isinstance(created, list) else [])
    write_sidecar(path, side, 0o600)
    if after == before:
        return Change(path, False, "without tether's plugin")
    if not after and "(file)" in created:  # tether wrote the file: nothing of anyone else's is in it
        path.unlink()
    else:
        write_atomic(path, dump_json(after))
    return Change(path, True, "tether's plugin removed")


def installed(config: dict[str, Any]) -> bool:
    """Whether ``config`` loads and enables tether's plugin."""
    plugins = config.get("plugins")
    if not isinstance(plugins, dict) or plugins.get("enabled") is False:
        return False
    load = plugins.get("load")
    paths = load.get("paths") if isinstance(load, dict) else None
    entries = plugins.get("entries")
    entry = entries.get(PLUGIN_ID) if isinstance(entries, dict) else None
    return (
        isinstance(paths, list)
        and any(_is_plugin_path(p) for p in paths)
        and isinstance(entry, dict)
        and entry.get("enabled") is not False
    )


# -- the hook endpoint's side: an OpenClaw tool call as the classifier knows tool calls -----------------------

#: OpenClaw's internal tools that change nothing outside the gateway: (the classifier's read-only name).
_INTERNAL = {"tool_search": "Skill", "tool_describe": "Skill", "sessions_yield": "Task"}
_PROCESS_READ = frozenset({"list", "poll", "log"})
_PROCESS_STOP = frozenset({"kill", "clear", "remove"})


def _s(inp: dict[str, Any], key: str) -> str | None:
    v = inp.get(key)
    return v if isinstance(v, str) else None


def tool_call(name: str, inp: dict[str, Any], depth: int = 0) -> tuple[str, dict[str, Any]]:
    """(tool, input) for tether's classifier. Unknown tools keep their name: the classifier calls them
    ``unknown``, which is never allowed without a human."""
    tag = {"openclaw_tool": name}
    if name == "exec":
        command = _s(inp, "command")
        if command is None:
            return "Bash", {**tag}  # the classifier: "Bash without a command"
        env = inp.get("env")
        if isinstance(env, dict) and env:  # literal overrides: judged as the exports they are
            exports = "; ".join(f"export {k}={shlex.quote(str(v))}" for k, v in env.items() if isinstance(k, str))
            command = f"{exports}; {command}"
        if inp.get("host") == "node" or inp.get("node"):  # runs on another machine: nothing here to judge by
            return f"openclaw.exec@node:{str(inp.get('node') or '?')[:60]}", {**tag, "command": command}
        out = {**tag, "command": command}
        if _s(inp, "workdir"):
            out["workdir"] = inp["workdir"]
        return "Bash", out
    if name in ("read", "ls"):
        path = _s(inp, "path")
        return ("Read" if name == "read" else "LS"), ({**tag, "path": path} if path else {**tag})
    if name == "write":
        return "Write", {**tag, "file_path": _s(inp, "path") or "", "content": _s(inp, "content") or ""}
    if name == "edit":
        raw = inp.get("edits")
        edits: list[Any] = raw if isinstance(raw, list) else []
        return "MultiEdit", {
            **tag,
            "file_path": _s(inp, "path") or "",
            "edits": [
                {"old_string": str(e.get("oldText", "")), "new_string": str(e.get("newText", ""))}
                for e in edits
                if isinstance(e, dict)
            ],
        }
    if name == "apply_patch":
        return "apply_patch", {**tag, "input": _s(inp, "input") or ""}
    if name in ("web_fetch", "web_search"):
        return ("WebFetch" if name == "web_fetch" else "WebSearch"), {**tag, **inp}
    if name == "process":
        action = _s(inp, "action") or ""
        if action in _PROCESS_READ:
            return "BashOutput", {**tag, "action": action}
        if action in _PROCESS_STOP:
            return "KillShell", {**tag, "action": action}
        return "write_stdin", {**tag, **inp}  # typing into a running command: unknown
    if name == "openclaw":  # delegates gateway setup (config, plugins, channels): tether's plugin included
        return "SlashCommand", {**tag, "command": "/config " + (_s(inp, "message") or "")[:500]}
    if name == "tool_call" and depth < 3:  # a tool called by name through OpenClaw's tool search
        inner, args = _s(inp, "id") or "", inp.get("args")
        got_name, got = tool_call(inner, args if isinstance(args, dict) else {}, depth + 1)
        return got_name, {**got, "openclaw_tool": f"tool_call:{inner[:60]}"}
    if name in _INTERNAL:
        return _INTERNAL[name], {**tag}
    return f"openclaw.{name[:80]}", dict(inp)


def request(p: dict[str, Any]) -> dict[str, Any]:
    """The plugin's ``before_tool_call``/``after_tool_call`` report as the hook event ``decide`` and the
    monitor read (``tool_name``, ``tool_input``, ``session_id``, ``cwd``, ``tool_use_id``)."""
    name, inp = p.get("tool_name"), p.get("tool_input")
    if not isinstance(name, str) or not isinstance(inp, dict):
        raise ValueError("the event has no tool_name and tool_input")
    tool, got = tool_call(name, inp)
    return {**p, "tool_name": tool, "tool_input": got}


#: The plugin's events as the monitor knows them. A turn (``before_agent_run`` .. ``agent_end``, session id
#: ``SESSIONKEY/RUNID``) is a session and a task; OpenClaw's own sessions (a chat's, many turns) are recorded
#: as sessions only (``source``: not a start that makes a task).
EVENTS = {
    "after_tool_call": "PostToolUse",
    "turn_start": "SessionStart",
    "turn_end": "SessionEnd",
    "session_start": "SessionStart",
    "session_end": "SessionEnd",
}


def monitor_event(mon: Any, agent: str, p: dict[str, Any]) -> None:
    """Record one of the plugin's monitoring events: tool results (commands run, files changed, errors),
    turns (each a task), sessions and token usage and spend (``llm_output``)."""
    name = p.get("hook_event_name")
    if name == "llm_output":
        mon.heartbeat(agent)
        raw = p.get("usage")
        u: dict[str, Any] = raw if isinstance(raw, dict) else {}

        def n(key: str) -> int:
            v = u.get(key)
            return int(v) if isinstance(v, (int, float)) and 0 <= v < 1e12 else 0

        model = str(p["model"]) if isinstance(p.get("model"), str) else "unknown"
        usage = Usage(
            model=model[:200],
            input_tokens=n("input"),
            output_tokens=n("output"),
            cache_creation_input_tokens=n("cacheWrite"),
            cache_read_input_tokens=n("cacheRead"),
            calls=1,
        )
        sid = p.get("session_id") if isinstance(p.get("session_id"), str) else None
        if usage.tokens:
            got = usage.as_event()
            cost = u.get("cost")  # OpenClaw's own figure, from the model's prices in its config
            if got["cost_usd"] is None and isinstance(cost, (int, float)) and 0 < cost < 1e6:
                got["cost_usd"] = round(float(cost), 8)
            mon.store.emit("usage", agent, client="openclaw", session_id=sid and sid[:200], source="hook", **got)
        return
    kind = EVENTS.get(str(name))
    if kind is None:
        mon.heartbeat(agent)
        return
    q = {**p, "hook_event_name": kind}
    if name == "turn_start":
        q["source"] = "startup"
    elif name == "session_start":
        q["source"] = "openclaw-session"
    if kind == "PostToolUse":
        q = request(q)
        q["tool_response"] = {"exit_code": p.get("exit_code")}
        if isinstance(p.get("error"), str) and p["error"]:
            q = {**q, "hook_event_name": "PostToolUseFailure"}
    mon.event("openclaw", agent, q)


# -- the supervisor's side: running a gateway ----------------------------------------------------------------


def binary(env: dict[str, str] | None = None) -> list[str] | None:
    """How to run ``openclaw``: ``$TETHER_OPENCLAW`` (its ``openclaw.mjs`` or launcher), run by
    ``$TETHER_OPENCLAW_NODE`` when set (OpenClaw needs Node >= 24.16; the system's may be older), else
    ``openclaw`` on PATH."""
    e = os.environ if env is None else env
    exe = e.get("TETHER_OPENCLAW") or shutil.which("openclaw", path=e.get("PATH"))
    if not exe:
        return None
    node = e.get("TETHER_OPENCLAW_NODE")
    return [node, exe] if node else [exe]


def gateway_port(config: dict[str, Any], env: dict[str, str]) -> int:
    gw = config.get("gateway") if isinstance(config.get("gateway"), dict) else {}
    port = gw.get("port") if isinstance(gw, dict) else None
    if port is None and env.get("OPENCLAW_GATEWAY_PORT", "").isdigit():
        port = int(env["OPENCLAW_GATEWAY_PORT"])
    return int(port) if isinstance(port, int) and 0 < port < 65536 else DEFAULT_PORT


def port_taken(port: int, host: str = "127.0.0.1") -> bool:
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.5):
        return True
    return False


@dataclass(frozen=True)
class Gateway:
    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)
    port: int = DEFAULT_PORT
    config: Path | None = None


def launch(
    name: str, command: tuple[str, ...], env: dict[str, str], home: Path, cwd: Path, url: str, wait: float | None = None
) -> Gateway:
    """The gateway's command line and environment for one start of agent ``name``: its own HOME (``home``,
    the wall's private HOME when it has one), state folder (``HOME/.openclaw``, or the runbook's
    ``OPENCLAW_STATE_DIR``) and a config written now: the runbook's ``OPENCLAW_CONFIG_PATH`` (read, never
    changed) with tether's plugin, the agent's folder as the workspace when the config names none. Refuses
    (``UsageError``) when no ``openclaw`` is found or the gateway's port is taken already (a gateway the
    user runs as a service: two would fight for it)."""
    exe = binary(env) if not command else None
    argv = list(command) if command else [*exe, "gateway", "run"] if exe else []
    if not argv:
        raise UsageError(
            "no openclaw to run: install it (npm install -g openclaw), or set TETHER_OPENCLAW "
            "(and TETHER_OPENCLAW_NODE, a Node >= 24.16) in the daemon's environment, or give "
            "the agent a command"
        )
    source = env.get("OPENCLAW_CONFIG_PATH")
    config = read_config(Path(source).expanduser()) if source else {}
    state = Path(env["OPENCLAW_STATE_DIR"]).expanduser() if env.get("OPENCLAW_STATE_DIR") else home / ".openclaw"
    state.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        waited = float(env.get("TETHER_OPENCLAW_WAIT", "")) if wait is None else wait
    except ValueError:
        waited = DEFAULT_WAIT
    run, _ = merged(config, plugin_entry(url, name, waited))
    gw = run.setdefault("gateway", {})
    if isinstance(gw, dict):
        gw.setdefault("mode", "local")
    agents = run.setdefault("agents", {})
    if isinstance(agents, dict) and isinstance(agents.setdefault("defaults", {}), dict):
        agents["defaults"].setdefault("workspace", str(cwd))
    port = gateway_port(run, env)
    if port_taken(port):
        if env.get("TETHER_OPENCLAW_ADOPT") != "1" or not gateway_answers(port):
            raise UsageError(
                f"port {port} is taken: an OpenClaw gateway already runs (as the user's service?); "
                "hand it over with `openclaw gateway stop && openclaw gateway uninstall`, "
                f"then `tether start {name}`; or set TETHER_OPENCLAW_ADOPT: \"1\" in {name}'s env (tether "
                "stops that gateway and runs it itself); or give this agent another gateway.port"
            )
        take_over(port, argv, env)
    path = state / "tether-gateway.json"
    write_atomic(path, dump_json(run), 0o600)  # holds the gateway's token when its config has one
    return Gateway(
        argv,
        {
            **RUN_ENV,
            "HOME": env.get("HOME") or str(home),
            "OPENCLAW_STATE_DIR": str(state),
            "OPENCLAW_CONFIG_PATH": str(path),
        },
        port,
        path,
    )


def gateway_answers(port: int, timeout: float = 5.0) -> bool:
    """Whether an OpenClaw gateway answers ``GET /health`` on ``port`` with ``"ok": true``."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=timeout) as resp:
            return resp.status == 200 and json.loads(resp.read(4096) or b"{}").get("ok") is True
    except (OSError, ValueError):
        return False


def listeners(port: int) -> list[int]:
    """The pids of this user's processes listening on TCP ``port`` (``/proc``: Linux only; else none)."""
    inodes: set[str] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError), open(table) as f:
            for line in f.readlines()[1:]:
                cols = line.split()
                if len(cols) > 9 and cols[3] == "0A" and int(cols[1].rsplit(":", 1)[1], 16) == port:
                    inodes.add(f"socket:[{cols[9]}]")
    out: list[int] = []
    for entry in os.scandir("/proc") if inodes and os.path.isdir("/proc") else ():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            if entry.stat().st_uid != os.geteuid():
                continue
            fds = f"/proc/{entry.name}/fd"
            if any(os.readlink(f"{fds}/{fd}") in inodes for fd in os.listdir(fds)):
                out.append(int(entry.name))
    return out


def _cmdline(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read(8192).replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def take_over(port: int, argv: list[str], env: dict[str, str], patience: float = 30.0) -> list[int]:
    """Adopt the gateway answering on ``port`` (``TETHER_OPENCLAW_ADOPT=1``): stop it so that tether runs it
    under its keeper, with its plugin. First ``openclaw gateway stop --force`` (the same openclaw, the daemon's
    HOME: a gateway the user runs as a systemd/launchd service is stopped by its manager, which then does not
    restart it); then a gateway still listening (run by hand, in the foreground) gets SIGTERM, and SIGKILL
    after ``patience`` seconds. Only this user's processes whose command line names openclaw are touched.
    Returns the pids signalled; raises ``UsageError`` when the port stays taken."""
    import signal
    import subprocess
    import sys

    cut = next((i for i in range(len(argv) - 1) if argv[i] == "gateway" and argv[i + 1] == "run"), None)
    if cut is not None:
        keep = {k: env[k] for k in ("OPENCLAW_CONFIG_PATH", "OPENCLAW_STATE_DIR", "PATH") if env.get(k)}
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            subprocess.run(
                [*argv[:cut], "gateway", "stop", "--force", "--json"], env={**os.environ, **keep, **RUN_ENV},
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=60,
            )
    pids = [pid for pid in listeners(port) if "openclaw" in _cmdline(pid)]
    signalled: list[int] = []
    for sig, wait in ((signal.SIGTERM, patience), (signal.SIGKILL, 5.0)):
        if not port_taken(port):
            break
        for pid in pids:
            with contextlib.suppress(OSError):
                os.kill(pid, sig)
                signalled.append(pid)
        deadline = time.monotonic() + wait
        while port_taken(port) and time.monotonic() < deadline:
            time.sleep(0.1)
    if port_taken(port):
        raise UsageError(
            f"port {port} is still taken after tether stopped the OpenClaw gateway there"
            + (f" (pids {', '.join(map(str, pids))})" if pids else " (no process of this user listens on it)")
            + "; stop it yourself (`openclaw gateway stop`), then start this agent again"
        )
    signalled = list(dict.fromkeys(signalled))
    what = f"signalled pid {', '.join(map(str, signalled))}" if signalled else "`openclaw gateway stop` freed it"
    sys.stderr.write(f"tether: openclaw: adopting the gateway on port {port}: {what}\n")
    return signalled


class HealthWatch:
    """The gateway's heartbeat: ``GET /health`` on its port every ``every`` seconds; each answer with
    ``"ok": true`` calls ``beat``. Ends when ``stop`` is called (its run ended)."""

    def __init__(self, port: int, every: float, beat: Callable[[], None]) -> None:
        self.port = port
        self.every = max(0.2, every)
        self._beat = beat
        self._stop = threading.Event()
        self.ok = 0  # answers seen
        self._thread = threading.Thread(target=self._run, name=f"openclaw-health-{port}", daemon=True)

    def start(self) -> HealthWatch:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()

    def healthy(self) -> bool:
        return gateway_answers(self.port, min(5.0, self.every))

    def _run(self) -> None:
        while not self._stop.is_set():
            started = time.monotonic()
            if self.healthy():
                self.ok += 1
                with contextlib.suppress(Exception):  # a store hiccup: the next answer beats again
                    self._beat()
            self._stop.wait(max(0.0, self.every - (time.monotonic() - started)))
