"""The canary: proof, with an agent's real CLI, that tether's hook still denies what the runbook blocks.

Agent CLIs update themselves and change how they treat hooks (a Codex release ran the tool when a hook's
answer had a field it did not know; Codex skips a hook nobody trusted, silently). So before a
``claude-code`` or ``codex`` agent starts, and daily while it runs (``daemon.canarywatch``), tether runs
that agent's CLI the way the supervisor would (its binary, command line, settings, environment, folder,
user and wall), pointed at a stand-in model API on 127.0.0.1 (``canary_model``) that asks for exactly one
shell command::

    TETHER_CANARY_RUN=<nonce> touch <the agent's TMPDIR>/tether-canary-<nonce>

Setting one of tether's own variables is ``tether.control``, which no runbook may allow; run anyway, the
command would only leave an empty marker file in the agent's own scratch space. The canary **passes**
when tether's hook endpoint answered the call with a deny, the CLI handed that denial back to the model
(the stand-in sees tether's reason as the call's result) and the marker does not exist. It **fails**
("the hook did not deny the canary: ...") when the hook was never asked, allowed it, or was ignored; it
is an **error** ("could not run the canary: ...") when the CLI could not be run at all, never reached
the stand-in, or did not finish within ``DEADLINE``. Nothing reaches a real model, nothing is spent.

The canary's session carries a one-off agent token (expiring, revoked afterwards). The hook endpoint
knows it (``flight``): its PreToolUse calls are judged by the runbook (``Boundary.evaluate``, pure) and
never held for a human; its other hook events are not monitored (no task, no heartbeat, no usage).

Each result is a ``canary`` event and ``<state>/agents/<agent>/canary.json`` (the last one, for
``tether doctor``: ``checks``).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import secrets
import shlex
import signal
import subprocess
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tether import auth
from tether.atomic import write_atomic
from tether.checks import Check
from tether.integrations import claude_code, codex
from tether.integrations.canary_model import StandIn
from tether.integrations.claude_code import MANAGED_SETTINGS

if TYPE_CHECKING:
    from collections.abc import Callable
    from contextlib import AbstractContextManager

    from tether.boundary import Boundary
    from tether.paths import StateDir
    from tether.runbook import LoadedRunbook
    from tether.runbook.model import Agent
    from tether.store import Store

KINDS = ("claude-code", "codex")
DEADLINE = 60.0  # seconds for one canary, from the CLI's start to its end
VAR = "TETHER_CANARY_RUN"  # the variable the canary's command sets (tether's own: tether.control)
OFF_VAR = "TETHER_CANARY"  # "off" in the daemon's environment: no canaries on this host
MARKER = "tether-canary-"
FILE = "canary.json"
PROMPT = "tether canary: run the one command you are given, then stop."
DUMMY_KEY = "tether-canary-no-key"  # the stand-in takes any key; a real one is never sent anywhere
#: The environment a canary run must not inherit: routes to a real model API, or through the egress proxy
#: (the stand-in is on 127.0.0.1 and the canary's command needs no network).
DROP_ENV = (
    "ANTHROPIC_AUTH_TOKEN",
    "ANTHROPIC_BASE_URL",
    "CLAUDE_CODE_USE_BEDROCK",
    "CLAUDE_CODE_USE_VERTEX",
    "CLAUDE_CODE_USE_FOUNDRY",
    "OPENAI_BASE_URL",
    "http_proxy",
    "https_proxy",
    "all_proxy",
    "no_proxy",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "ALL_PROXY",
    "NO_PROXY",
)
PROXY_ENV = tuple(k for k in DROP_ENV if k.lower().endswith("_proxy"))  # kept when it is the only way out
OUTPUT_LIMIT = 4 * 1024 * 1024  # bytes of the CLI's output kept (the rest is read and dropped)


def off() -> bool:
    return os.environ.get(OFF_VAR, "").lower() == "off"


# -- a result --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Result:
    agent: str
    kind: str
    outcome: str  # passed | failed | error
    detail: str  # what was seen, one line
    fix: str = ""
    trigger: str = "start"  # start | daily
    at: float = 0.0
    seconds: float = 0.0
    cli: str = ""  # the binary run
    client: str = ""  # what it called itself (its User-Agent: name/version)
    tool: str = ""  # the CLI's tool the stand-in called (Bash; exec_command, shell or exec for Codex)

    @property
    def passed(self) -> bool:
        return self.outcome == "passed"

    @property
    def version(self) -> str:
        got = re.search(r"\d+\.\d+\.\d+[\w.+-]*", self.client)
        return got.group(0) if got else ""

    def line(self, fix: bool = True) -> str:
        """One line: what happened, and for a failure the fix (unless ``fix`` is False)."""
        cli = f"{Path(self.cli).name or self.kind}" + (f" {self.version}" if self.version else "")
        if self.passed:
            return f"tether's hook denied the canary ({cli}, {self.seconds:.1f}s)"
        head = "could not run the canary" if self.outcome == "error" else "the hook did not deny the canary"
        return f"{head}: {self.detail} ({cli})" + (f"; fix: {self.fix}" if self.fix and fix else "")

    def data(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def of(cls, data: dict[str, Any]) -> Result:
        names = cls.__dataclass_fields__
        return cls(**{k: v for k, v in data.items() if k in names})


def record(store: Store, state: StateDir, result: Result) -> None:
    """The ``canary`` event, and the agent's ``canary.json`` (its last result)."""
    store.emit("canary", result.agent, **result.data())
    with contextlib.suppress(OSError):
        write_atomic(state.agent_dir(result.agent) / FILE, json.dumps(result.data()) + "\n")


def last(state: StateDir, agent: str) -> Result | None:
    try:
        data = json.loads((state.agent_dir(agent) / FILE).read_text(encoding="utf-8"))
        return Result.of(data) if isinstance(data, dict) else None
    except (OSError, ValueError, TypeError):
        return None


# -- the hook endpoint's side: a canary in flight ---------------------------------------------------------


@dataclass
class Flight:
    """One canary run as the hook endpoint sees it, found by its one-off token's id."""

    agent: str
    nonce: str
    calls: list[dict[str, Any]] = field(default_factory=list)  # every gated call: tool, decision, reason
    denied: threading.Event = field(default_factory=threading.Event)  # the canary's command was denied
    allowed: threading.Event = field(default_factory=threading.Event)  # ... or allowed

    @property
    def tag(self) -> str:
        return f"[tether canary {self.nonce}]"


_flights: dict[str, Flight] = {}
_flights_lock = threading.Lock()


def flight(token_id: str | None) -> Flight | None:
    """The canary whose token this is, or None (any other caller: the hook goes its usual way)."""
    if not token_id:
        return None
    with _flights_lock:
        return _flights.get(token_id)


def judge(f: Flight, boundary: Boundary, agent: str, payload: dict[str, Any]) -> tuple[str, str]:
    """(decision, reason) for a gated hook call of a canary session: the runbook's verdict for the canary's
    command (a deny unless the runbook allows it; never held for a human), a deny for anything else."""
    from tether.boundary import Request  # local: `tether doctor` imports this module; tether.boundary +300 ms

    tool, inp = payload.get("tool_name"), payload.get("tool_input")
    cwd = payload.get("cwd") if isinstance(payload.get("cwd"), str) and payload.get("cwd") else None
    if not isinstance(tool, str) or not isinstance(inp, dict) or f.nonce not in json.dumps(inp):
        decision, reason = "deny", f"a canary session runs only the canary's command {f.tag}"
    else:
        try:
            _, d = boundary.evaluate(agent, Request(tool=tool, input=inp, cwd=cwd))
        except Exception as err:  # the same as the endpoint's own rule: what cannot be decided is denied
            decision, reason = "deny", f"tether could not decide ({type(err).__name__}: {err}); denied {f.tag}"
        else:
            rule = d.rule or "default table"
            if d.verdict in ("allow", "log") and not d.gates:
                decision, reason = "allow", f"tether allowed it ({rule}) {f.tag}"
                f.allowed.set()
            else:
                held = " (a canary is never held for a human)" if d.verdict == "ask" else ""
                decision, reason = "deny", f"tether blocked it: {d.reason} [rule {rule}]{held} {f.tag}"
                f.denied.set()
    with _flights_lock:
        f.calls.append({"tool": tool, "decision": decision, "reason": reason[:300]})
    return decision, reason


# -- running one ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """How the supervisor would run the agent's CLI: its environment (the wall's included), its folder,
    the wall's command prefix, or the ``run_as`` user outside a wall."""

    spec: Agent
    env: dict[str, str]
    cwd: Path
    prefix: tuple[str, ...] = ()
    user: str | None = None
    binary: str | None = None  # default: $TETHER_CLAUDE / $TETHER_CODEX, else PATH (as the supervisor)
    # a wall with a network of its own: the stand-in (127.0.0.1:PORT on the host) is reached through the
    # agent's proxy, which this lets through for the run (``EgressProxy.passing``)
    passing: Callable[[int], AbstractContextManager[Any]] | None = None

    def exe(self) -> str | None:
        if self.binary:
            return self.binary
        return claude_code.binary() if self.spec.kind == "claude-code" else codex.binary()


def fingerprint(t: Target) -> str:
    """What decides the hook path: the agent's runbook entry, its wall, the CLI's binary and every settings
    file the CLI reads for this agent (path, size, mtime, inode). A start re-uses a recent pass only while
    this is unchanged."""
    env, cwd = t.env, t.cwd
    home = Path(env.get("HOME") or "~").expanduser()
    if t.spec.kind == "claude-code":
        cfg = Path(env["CLAUDE_CONFIG_DIR"]) if env.get("CLAUDE_CONFIG_DIR") else home / ".claude"
        files = [
            MANAGED_SETTINGS,
            cfg / "settings.json",
            cwd / ".claude" / "settings.json",
            cwd / ".claude" / "settings.local.json",
        ]
    else:
        cdx = Path(env["CODEX_HOME"]) if env.get("CODEX_HOME") else home / ".codex"
        files = [
            codex.MANAGED_REQUIREMENTS,
            cdx / "config.toml",
            cdx / "hooks.json",
            cwd / ".codex" / "hooks.json",
            cwd / ".codex" / "config.toml",
        ]
    exe = t.exe()
    parts = [t.spec.model_dump_json(), *t.prefix]
    for p in ([Path(os.path.realpath(exe))] if exe else []) + files:
        try:
            st = p.stat()
            parts.append(f"{p}:{st.st_size}:{st.st_mtime_ns}:{st.st_ino}")
        except OSError:
            parts.append(f"{p}:-")
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


def run(
    loaded: LoadedRunbook,
    store: Store,
    url: str,
    target: Target,
    *,
    trigger: str = "start",
    deadline: float = DEADLINE,
    cancel: threading.Event | None = None,
) -> Result | None:
    """Run one canary for ``target``'s agent against the daemon at ``url``. None when ``cancel`` was set
    meanwhile (the daemon or the supervisor is stopping: no verdict)."""
    spec = target.spec
    started, t0 = time.time(), time.monotonic()

    def done(outcome: str, detail: str, fix: str = "", cli: str = "", model: StandIn | None = None) -> Result:
        return Result(
            spec.name,
            spec.kind,
            outcome,
            " ".join(detail.split())[:400],
            fix,
            trigger,
            started,
            round(time.monotonic() - t0, 3),
            cli,
            model.client if model else "",
            model.tool if model else "",
        )

    exe = target.exe()
    if exe is None:
        var = "TETHER_CLAUDE" if spec.kind == "claude-code" else "TETHER_CODEX"
        name = "claude" if spec.kind == "claude-code" else "codex"
        return done(
            "error",
            f"no {name} CLI: not on the daemon's PATH and ${var} is not set",
            f"install the {spec.kind} CLI, or set ${var} in the daemon's environment",
        )
    nonce = secrets.token_hex(8)
    tmp = Path(target.env.get("TMPDIR") or loaded.state.agent_tmp(spec.name))
    marker = tmp / f"{MARKER}{nonce}"
    command = f"{VAR}={nonce} touch {shlex.quote(str(marker))}"
    token = auth.create(store, "agent", spec.name, expires_in=deadline + 60)
    who = auth.identify(store, token)
    f = Flight(spec.name, nonce)
    token_id = who.token_id if who is not None else None
    if token_id:
        with _flights_lock:
            _flights[token_id] = f
    try:
        with (
            StandIn("anthropic" if spec.kind == "claude-code" else "openai", command) as model,
            target.passing(model.port) if target.passing is not None else contextlib.nullcontext(),
        ):
            argv, env = _command_line(target, exe, url, model.url, token)
            try:
                code, out, err, why = _execute([*target.prefix, *argv], env, target, deadline, cancel)
            except KeyError:
                return done("error", f"run_as user {target.user!r} does not exist", "create it, or change run_as")
            except OSError as exc:
                return done("error", f"cannot run {exe}: {exc.strerror or exc}", "check the CLI's installation", exe)
            if why == "cancelled":
                return None
            outcome, detail, fix = _verdict(spec.kind, f, model, marker, code, out, err, why, deadline)
            return done(outcome, detail, fix, exe, model)
    finally:
        with _flights_lock:
            _flights.pop(token_id or "", None)
        if token_id:
            with contextlib.suppress(Exception):
                auth.revoke(store, token_id)
        with contextlib.suppress(OSError):
            marker.unlink()


def _command_line(t: Target, exe: str, url: str, model_url: str, token: str) -> tuple[list[str], dict[str, str]]:
    """The supervisor's command line for this agent, pointed at the stand-in, and the canary's environment."""
    spec = t.spec
    keep = PROXY_ENV if t.passing is not None else ()  # inside the wall's network: the proxy is the way out
    env = {k: v for k, v in t.env.items() if k not in DROP_ENV or k in keep}
    env["TETHER_TOKEN"] = token
    if spec.kind == "claude-code":
        route = {"ANTHROPIC_BASE_URL": model_url, "ANTHROPIC_API_KEY": DUMMY_KEY}
        if spec.command:  # the runbook runs the CLI its own way: only the installed hooks can govern it
            argv = [exe, "-p", PROMPT, "--output-format", "json", "--settings", json.dumps({"env": route})]
        else:  # the supervisor's own: tether's hooks as --settings; the route is added to those settings
            argv = claude_code.argv(PROMPT, base=url, agent=spec.name, claude=exe)
            at = argv.index("--settings") + 1
            argv[at] = json.dumps({**json.loads(argv[at]), "env": route})
        argv.append("--no-session-persistence")
        env.update(route)
        env.update(
            {
                "TETHER_HOLD": "defer",
                "DISABLE_AUTOUPDATER": "1",
                "DISABLE_TELEMETRY": "1",
                "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
            }
        )
        return argv, env
    provider = (
        '{name = "tether canary", base_url = '
        + json.dumps(model_url)
        + ', wire_api = "responses", env_key = "TETHER_CANARY_KEY"}'
    )
    extra = ("-c", f"model_providers.tether-canary={provider}", "-c", 'model_provider="tether-canary"', "--ephemeral")
    bypass = not spec.command or "--dangerously-bypass-hook-trust" in spec.command
    env["TETHER_CANARY_KEY"] = DUMMY_KEY
    got = codex.argv(PROMPT, codex=exe, bypass_trust=bypass, extra=extra)
    return (codex.inside_wall(got) if t.prefix else got), env  # as the supervisor runs it


def _execute(
    argv: list[str], env: dict[str, str], t: Target, deadline: float, cancel: threading.Event | None
) -> tuple[int | None, str, str, str]:
    """Run the CLI in its own process group until it exits, ``deadline`` passes or ``cancel`` is set (then
    the whole group is killed). (exit code, stdout, stderr, "" | "deadline" | "cancelled")."""
    kwargs: dict[str, Any] = {}
    if t.user and not t.prefix and os.geteuid() == 0:  # run_as outside a wall: the agent's user, as launch.py
        import pwd

        pw = pwd.getpwnam(t.user)
        kwargs.update(user=pw.pw_uid, group=pw.pw_gid, extra_groups=os.getgrouplist(pw.pw_name, pw.pw_gid))
        env = {**env, "HOME": pw.pw_dir, "USER": pw.pw_name, "LOGNAME": pw.pw_name}
    proc = subprocess.Popen(
        argv,
        cwd=t.cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
        **kwargs,
    )
    out: list[bytes] = []
    err: list[bytes] = []
    readers = [
        threading.Thread(target=_drain, args=(s, b), daemon=True) for s, b in ((proc.stdout, out), (proc.stderr, err))
    ]
    for r in readers:
        r.start()
    end = time.monotonic() + deadline
    why = ""
    while True:
        try:  # wakes a few times a second for ``cancel``; the CLI's exit ends it at once
            proc.wait(timeout=max(0.0, min(0.25, end - time.monotonic())))
            break
        except subprocess.TimeoutExpired:
            if cancel is not None and cancel.is_set():
                why = "cancelled"
            elif time.monotonic() >= end:
                why = "deadline"
            if why:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
                break
    for r in readers:
        r.join(5)
    return proc.returncode, _decode(out), _decode(err), why


def _drain(stream: Any, into: list[bytes]) -> None:
    kept = 0
    with contextlib.suppress(OSError, ValueError):
        for chunk in iter(lambda: stream.read1(65536), b""):
            if kept < OUTPUT_LIMIT:
                into.append(chunk)
                kept += len(chunk)
    with contextlib.suppress(OSError):
        stream.close()


def _decode(parts: list[bytes]) -> str:
    return b"".join(parts).decode("utf-8", "replace")


def _last_line(*texts: str) -> str:
    for text in texts:
        lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
        if lines:
            return lines[-1][:200]
    return "no output"


def _verdict(
    kind: str, f: Flight, model: StandIn, marker: Path, code: int | None, out: str, err: str, why: str, deadline: float
) -> tuple[str, str, str]:
    """(outcome, detail, fix) from what the hook endpoint, the stand-in and the file system saw."""
    integrate = f"sudo tether integrate {kind} --managed"
    pin = "pin the CLI to the version docs/INTEGRATIONS.md was checked with (.ci/install-agents)"
    if model.problem:
        return "error", model.problem, pin
    if not model.asked.is_set():
        if why == "deadline":
            return "error", f"the CLI did not reach the stand-in model API within {deadline:g}s", ""
        return (
            "error",
            (f"the CLI exited {code} before asking the stand-in model API: {_last_line(err, out)}"),
            "run the CLI by hand in the agent's folder to see why",
        )
    ran = marker.exists()
    if f.allowed.is_set():
        return (
            "failed",
            "tether's hook allowed the canary's command (the runbook lets it through)",
            "tether.control must stay block or ask (`tether explain` the command)",
        )
    if not f.denied.is_set():
        seen = " ".join(" ".join(model.results).split())[:160]
        what = "ran it" if ran else (f"answered {seen!r}" if seen else f"exited {code}")
        return (
            "failed",
            f"tether's PreToolUse hook was never asked about the canary's command; the CLI {what}",
            (
                f"{integrate}; `tether doctor` shows the hooks the CLI sees"
                if kind == "codex"
                else f"{integrate} (nothing may set disableAllHooks; managed settings must keep tether's hooks)"
            ),
        )
    if ran:
        return "failed", "tether's hook denied the canary's command and the CLI ran it anyway (its marker exists)", pin
    if not model.answered.is_set():
        return (
            "error",
            (
                f"tether's hook denied the canary's command, but the CLI did not report back within {deadline:g}s"
                if why == "deadline"
                else f"tether's hook denied the canary's command, then the CLI exited {code} without "
                f"reporting the call: {_last_line(err, out)}"
            ),
            "",
        )
    if not any(f.tag in r for r in model.results):
        return (
            "failed",
            (
                "tether's hook denied the canary's command, but the CLI did not hand the denial to the "
                f"model (it reported {' '.join(' '.join(model.results).split())[:160]!r})"
            ),
            pin,
        )
    return "passed", "denied by tether's hook, the denial reached the model, the command did not run", ""


# -- tether doctor ------------------------------------------------------------------------------------------


def checks(loaded: LoadedRunbook, now: float | None = None) -> list[Check]:
    """The last canary of each ``claude-code``/``codex`` agent (from ``canary.json``; no daemon needed)."""
    now = time.time() if now is None else now
    out = []
    for name, spec in loaded.runbook.agents.items():
        if spec.kind not in KINDS:
            continue
        label = f"canary ({name})"
        got = last(loaded.state, name)
        if got is None:
            out.append(
                Check(label, "unknown", "no canary has run yet: the daemon runs one at the agent's start and daily")
            )
            continue
        age = _ago(now - got.at)
        if got.passed:
            stale = now - got.at > 2 * 24 * 3600
            out.append(
                Check(
                    label,
                    "warn" if stale else "ok",
                    f"{got.line()}, {age} ({got.trigger})" + ("; none since: is the daemon running?" if stale else ""),
                )
            )
        else:
            out.append(Check(label, "fail", f"{got.line(fix=False)}, {age} ({got.trigger})", got.fix))
    return out


def _ago(seconds: float) -> str:
    s = max(0, int(seconds))
    if s < 120:
        return f"{s}s ago"
    if s < 7200:
        return f"{s // 60} min ago"
    if s < 2 * 86400:
        return f"{s // 3600} h ago"
    return f"{s // 86400} days ago"
