"""The runbook as typed, immutable pydantic models. Validation only: reading files is in ``load``."""

from __future__ import annotations

import re
import shlex
import signal as _signal
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from tether.durations import parse_duration
from tether.vocabulary import ACTION_CLASSES, DEFAULT_VERDICTS, NEVER_ALLOW

SECRET_SCHEMES = ("keyring:", "file:", "env:", "credential:")
AGENT_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
MAX_DURATION = 3650 * 86400.0  # ten years: longer is a typo, and would overflow timers and dates
MAX_COUNT = 10**15  # tokens, restarts: any real amount, and exact in a float
MAX_INT64 = 2**63 - 1  # bytes: what SQLite and the OS take


def _shown(value: Any) -> str:
    """``value`` as an error message quotes it: its repr, cut short."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _duration(value: Any) -> float:
    try:
        seconds = parse_duration(value)
    except ValueError:
        raise PydanticCustomError(
            "duration", 'expected a duration like "30s", "250ms" or "5m", got {got}', {"got": _shown(value)}
        ) from None
    if not seconds <= MAX_DURATION:  # also NaN
        raise PydanticCustomError("duration", "expected a duration of at most 3650d (ten years), got {got}",
                                  {"got": _shown(value)})
    return seconds


Duration = Annotated[float, BeforeValidator(_duration)]


def _secret_ref(value: Any) -> str:
    if not isinstance(value, str) or not value.startswith(SECRET_SCHEMES):
        raise PydanticCustomError(
            "secret_ref",
            "expected a secret reference (keyring:SERVICE/NAME, file:/path, env:VAR or credential:NAME), "
            "never a literal value",
        )
    return value


SecretRef = Annotated[str, BeforeValidator(_secret_ref)]


def _command(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return shlex.split(value)
        except ValueError as err:
            raise PydanticCustomError("command", "cannot split the command: {err}", {"err": str(err)}) from None
    return value


def _on_off(value: Any) -> Any:
    """``on``/``off`` (YAML reads a bare on/off as true/false)."""
    if value is True:
        return "on"
    if value is False:
        return "off"
    return value


OnOff = Annotated[Literal["on", "off"], BeforeValidator(_on_off)]


def _signal_name(value: Any) -> str:
    name = str(value).upper()
    if not name.startswith("SIG"):
        name = "SIG" + name
    if not isinstance(getattr(_signal, name, None), _signal.Signals):
        raise PydanticCustomError(
            "signal", "expected a signal name like SIGTERM or SIGINT, got {got}", {"got": _shown(value)}
        )
    return name


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


def _http_url(value: Any) -> Any:
    if isinstance(value, str) and not re.fullmatch(r"https?://[^\s/?#]+(/[^\s?#]*)?", value):
        raise PydanticCustomError("http_url", "expected an http(s):// URL like https://ntfy.sh, got {got}",
                                  {"got": _shown(value)})
    return value.rstrip("/") if isinstance(value, str) else value


HttpUrl = Annotated[str, BeforeValidator(_http_url)]


def _topic(value: Any) -> Any:
    if not isinstance(value, str) or not re.fullmatch(r"[-_A-Za-z0-9]{1,64}", value):
        raise PydanticCustomError("ntfy_topic", "expected an ntfy topic: letters, digits, - and _ (at most 64), got "
                                  "{got}", {"got": _shown(value)})
    return value


Topic = Annotated[str, BeforeValidator(_topic)]


class Telegram(Strict):
    """A Telegram bot that brings this person each approval with Approve / Deny buttons (long polling: the
    host only connects out). ``chat_id``: the chat with the bot (a private chat's id is the person's user id);
    ``user_id``: who may tap in a group chat (default: ``chat_id``). ``api``: the Bot API's address."""

    token: SecretRef
    chat_id: int
    user_id: int | None = None
    api: HttpUrl = "https://api.telegram.org"


class Ntfy(Strict):
    """An ntfy topic this person's phone subscribes to: each approval arrives with Approve / Deny buttons that
    publish a signed decision to ``reply_topic`` (default ``TOPIC-reply``), which the daemon subscribes to."""

    url: HttpUrl
    topic: Topic
    reply_topic: Topic | None = None
    token: SecretRef | None = None  # an access token (tk_...) when the topics are protected

    @model_validator(mode="after")
    def _two_topics(self) -> Ntfy:
        if self.reply_topic == self.topic:
            raise PydanticCustomError("ntfy_topic", "reply_topic must differ from topic (the daemon reads every "
                                      "message on it as a decision)")
        return self

    @property
    def replies(self) -> str:
        return self.reply_topic or f"{self.topic}-reply"


def _slack_id(kinds: str, what: str) -> Any:
    def check(value: Any) -> Any:
        if not isinstance(value, str) or not re.fullmatch(rf"[{kinds}][A-Z0-9]{{2,30}}", value):
            raise PydanticCustomError("slack_id", f"expected {what}, got {{got}}", {"got": _shown(value)})
        return value

    return check


SlackUser = Annotated[
    str, BeforeValidator(_slack_id("UW", "a Slack member ID like U0123ABCD (profile, More, Copy member ID)"))
]
SlackChannel = Annotated[str, BeforeValidator(_slack_id("CDG", "a Slack channel ID like C0123ABCD"))]


class Slack(Strict):
    """A Slack app in Socket Mode that brings this person each approval with Approve / Deny buttons (the host
    only connects out: ``apps.connections.open``, then a WebSocket). ``app_token``: the app-level token (xapp-,
    ``connections:write``); ``bot_token``: the bot's (xoxb-, ``chat:write``); ``user_id``: the person's member
    ID, whose taps count; ``channel``: where the approvals go (default: a direct message to ``user_id``)."""

    app_token: SecretRef
    bot_token: SecretRef
    user_id: SlackUser
    channel: SlackChannel | None = None
    api: HttpUrl = "https://slack.com/api"


class Person(Strict):
    """Someone who answers for an agent: reached by ``contact`` (apprise), and, to decide from a phone, by
    ``telegram``, ``ntfy`` and/or ``slack`` (``tether.notify.telegram``, ``.ntfy``, ``.slack``)."""

    name: str = Field(min_length=1)
    contact: str = Field(min_length=1, description="how to reach them: an apprise URL, mailto: or a secret reference")
    telegram: Telegram | None = None
    ntfy: Ntfy | None = None
    slack: Slack | None = None


class Scope(Strict):
    """What an agent may touch. Empty lists mean nothing of that kind beyond its workspace."""

    repos: tuple[str, ...] = ()
    folders: tuple[str, ...] = ()
    apps: tuple[str, ...] = ()
    accounts: tuple[str, ...] = ()
    hosts: tuple[str, ...] = ()


class Ssh(Strict):
    """git over ssh inside the wall (``wall/ssh.py``): the agent's private key (a path, or a secret reference to
    the key's text) and the known_hosts file its ssh trusts (a path). Copied into its private HOME at each
    start, read-only inside; its ssh goes through the egress proxy (a ``scope.hosts`` pair like ``HOST:22``)."""

    key: str | None = Field(default=None, min_length=1)
    known_hosts: str | None = Field(default=None, min_length=1)

    @field_validator("known_hosts")
    @classmethod
    def _a_path(cls, value: str | None) -> str | None:
        if value is not None and value.startswith(SECRET_SCHEMES):
            raise PydanticCustomError("known_hosts_path", "expected a path to a known_hosts file (it is no secret)")
        return value


def _maybe_duration(value: Any) -> float | None:
    """A duration, or ``off``/null: not judged at all."""
    if value is None or value is False or value == "off":
        return None
    return _duration(value)


OptionalDuration = Annotated[float | None, BeforeValidator(_maybe_duration)]

#: How the daemon knows an agent is alive (``heartbeat.source``), besides ``file: PATH``.
LIVENESS_SOURCES = ("sdk", "process", "output")
#: The source each kind gets unless its runbook names one: a command agent need not know of tether (its
#: process is its liveness); the others beat themselves (SDK, ``tether beat``, their CLI's hooks, openclaw's
#: gateway health).
DEFAULT_SOURCE = {"command": "process"}


class StatusFile(Strict):
    """``heartbeat.source: {file: PATH}``: the file's modification time is the beat, its first line the
    progress. PATH is taken from the agent's working directory unless absolute."""

    file: str = Field(min_length=1)


def _liveness_source(value: Any) -> Any:
    if isinstance(value, str):
        if value in LIVENESS_SOURCES:
            return value
        if value.startswith("file:") and value[5:].strip():
            return StatusFile(file=value[5:].strip())
    elif isinstance(value, dict) and list(value) == ["file"]:
        path = value["file"]
        if isinstance(path, str) and path.strip():
            return StatusFile(file=path.strip())
        raise PydanticCustomError("heartbeat_source", "file: expected the path of the agent's status file, got "
                                  "{got}", {"got": _shown(path)})
    elif isinstance(value, StatusFile):
        return value
    raise PydanticCustomError(
        "heartbeat_source", "expected sdk, process, output or file: PATH, got {got}{hint}",
        {"got": _shown(value), "hint": did_you_mean(value, LIVENESS_SOURCES) if isinstance(value, str) else ""},
    )


LivenessSource = Annotated[Literal["sdk", "process", "output"] | StatusFile, BeforeValidator(_liveness_source)]


class Heartbeat(Strict):
    """How an agent's liveness is known (``source``; the default depends on its kind, see ``for_kind``) and
    judged: ``stale`` after ``stale_after`` without a beat, ``stuck`` after ``stuck_after`` without progress
    (``off``: never). ``sdk``: the beats it sends (SDK, ``tether beat``, HTTP, its CLI's hooks); ``process``:
    alive while its process runs (the daemon beats for it every ``interval``; no progress signal, so
    ``stuck_after`` is off unless set, then judged on the progress it reports itself); ``output``: each line
    it writes to stdout or stderr is a beat, its last line the progress; ``file: PATH``: a status file's
    modification time is the beat, its first line the progress (``tether.daemon.liveness``)."""

    source: LivenessSource = "sdk"
    interval: Duration = 30.0
    stale_after: Duration = 120.0
    stuck_after: OptionalDuration = 1800.0
    on_stale: Literal["notify", "restart"] = "notify"
    on_stuck: Literal["notify", "restart"] = "notify"

    @staticmethod
    def for_kind(data: Any, kind: Any) -> Any:
        """The runbook's ``heartbeat:`` mapping with the kind's default source filled in (and, for
        ``process``, no stuck_after unless one is set: a process alone says nothing of progress)."""
        if data is None:
            data = {}
        if not isinstance(data, dict):
            return data  # not a mapping: its own error
        if data.get("source") is None:
            data = {**data, "source": DEFAULT_SOURCE.get(kind, "sdk") if isinstance(kind, str) else "sdk"}
        if data["source"] == "process" and "stuck_after" not in data:
            data = {**data, "stuck_after": None}
        return data

    @property
    def file(self) -> str | None:
        return self.source.file if isinstance(self.source, StatusFile) else None

    @model_validator(mode="after")
    def _order(self) -> Heartbeat:
        if self.stale_after < self.interval:
            raise PydanticCustomError(
                "heartbeat_order", "stale_after ({stale}) must not be shorter than interval ({interval})",
                {"stale": self.stale_after, "interval": self.interval},
            )
        return self


class Backoff(Strict):
    base: Duration = 1.0
    factor: float = Field(default=2.0, ge=1.0, le=100.0)
    cap: Duration = 300.0
    jitter: float = Field(default=0.1, ge=0.0, le=1.0)


class Crashloop(Strict):
    limit: int = Field(default=5, ge=1, le=MAX_COUNT)
    window: Duration = 600.0


class Violations(Strict):
    """``limit`` wall violations (refused connections, denied writes) in ``window`` open one incident."""

    limit: int = Field(default=5, ge=1, le=MAX_COUNT)
    window: Duration = 600.0


class Restart(Strict):
    policy: Literal["always", "on-failure", "never"] = "on-failure"
    backoff: Backoff = Backoff()
    crashloop: Crashloop = Crashloop()
    stable_after: Duration = 60.0


class Approvals(Strict):
    """How the agent's asks are decided. ``timeout``: how long a human has to decide (then the ask is denied);
    a human's denial also answers the identical action at once for that long. ``retry_window``: how long an
    approved grant stays usable when nobody uses it (the default expiry of an unused grant; for a grant
    approved "for this task", how long it lives after its last use). An approval covers one use of the exact
    action by the session or task that asked, unless its approver picks ``task`` or ``1h``
    (``tether.approvals``). Until issue 17 ``retry_window`` let any session repeat an approved action."""

    verdicts: dict[str, Literal["allow", "log", "ask", "block"]] = {}
    protected_paths: tuple[str, ...] = ()
    timeout: Duration = 3600.0
    escalate_after: Duration = 900.0
    retry_window: Duration = 600.0

    @field_validator("verdicts", mode="before")
    @classmethod
    def _known_classes(cls, value: Any) -> Any:
        if isinstance(value, dict):
            for key, verdict in value.items():
                if key not in ACTION_CLASSES:
                    raise PydanticCustomError(
                        "action_class", "unknown action class '{key}'{hint}",
                        {"key": key, "hint": did_you_mean(str(key), ACTION_CLASSES)},
                    )
                if key in NEVER_ALLOW and verdict in ("allow", "log"):
                    raise PydanticCustomError(
                        "never_allow", "{key} can only be ask or block, never {verdict}",
                        {"key": key, "verdict": verdict},
                    )
        return value

    def verdict(self, action_class: str) -> str:
        return self.verdicts.get(action_class, DEFAULT_VERDICTS[action_class])


class Rollback(Strict):
    branch_per_task: bool = True
    snapshot: tuple[str, ...] = ()
    release_command: Annotated[tuple[str, ...], BeforeValidator(_command)] = ()
    requires_approval: bool = False  # `tether rollback` waits for `tether approve` before it changes anything


class KillSwitch(Strict):
    signal: Annotated[str, BeforeValidator(_signal_name)] = "SIGTERM"
    grace: Duration = 10.0


class Budgets(Strict):
    tokens_per_day: int | None = Field(default=None, ge=0, le=MAX_COUNT)
    usd_per_day: float | None = Field(default=None, ge=0, le=MAX_COUNT)


class Gate(Strict):
    command: Annotated[tuple[str, ...], BeforeValidator(_command)] = Field(min_length=1)
    timeout: Duration = 600.0


class Agent(Strict):
    """One supervised agent."""

    name: str
    owner: Person
    backup: Person
    approvers: tuple[Person, ...] = ()  # others who may decide its approvals (told when it asks, like the owner)
    kind: Literal["command", "python", "claude-code", "codex", "openclaw"] = "command"
    command: Annotated[tuple[str, ...], BeforeValidator(_command)] = ()
    prompt: str | None = None
    cwd: str | None = None
    env: dict[str, str] = {}
    secrets: dict[str, SecretRef] = {}
    run_as: str | None = None  # None: the host's agent user (tether-agent) when the daemon is root
    same_user: bool = False
    sandbox: OnOff = "on"  # the wall (its own user, bubblewrap): off only with a reason; tether check warns
    # egress: through tether's proxy, scope.hosts (host:port pairs) let through, any other host judged as
    # network.egress (scoped); no connection at all (none); the host's network, unproxied (open)
    network: Literal["scoped", "none", "open"] = "scoped"
    violations: Violations = Violations()  # how many wall violations in how long open an incident
    ssh: Ssh = Ssh()  # the key and known_hosts its ssh uses inside the wall (git over ssh)
    scope: Scope = Scope()
    heartbeat: Heartbeat = Heartbeat()
    restart: Restart = Restart()
    approvals: Approvals = Approvals()
    rollback: Rollback = Rollback()
    kill: KillSwitch = KillSwitch()
    budgets: Budgets = Budgets()
    gates: dict[str, Gate] = {}
    autostart: bool = True

    @field_validator("gates", mode="before")
    @classmethod
    def _gate_classes(cls, value: Any) -> Any:
        if isinstance(value, dict):
            for key in value:
                if key not in ACTION_CLASSES:
                    raise PydanticCustomError(
                        "action_class", "unknown action class '{key}'{hint}",
                        {"key": key, "hint": did_you_mean(str(key), ACTION_CLASSES)},
                    )
        return value

    @model_validator(mode="before")
    @classmethod
    def _liveness(cls, data: Any) -> Any:
        """The heartbeat's source by kind when the runbook names none (``Heartbeat.for_kind``)."""
        if isinstance(data, dict):
            hb = Heartbeat.for_kind(data.get("heartbeat"), data.get("kind", "command"))
            if hb != data.get("heartbeat"):
                data = {**data, "heartbeat": hb}
        return data

    @model_validator(mode="after")
    def _how_it_starts(self) -> Agent:
        if self.kind in ("command", "python") and not self.command:
            raise PydanticCustomError("command_missing", "a {kind} agent needs a command", {"kind": self.kind})
        return self  # claude-code/codex agents run from a prompt or their queue; openclaw runs its gateway

    def verdict(self, action_class: str) -> str:
        return self.approvals.verdict(action_class)


class Notify(Strict):
    url: str = Field(min_length=1, description="an apprise URL or a secret reference to one")
    events: tuple[str, ...] = ()


class Retention(Strict):
    events: Duration = 30 * 86400.0
    logs: Duration = 14 * 86400.0
    log_file_size: int = Field(default=10 * 1024 * 1024, ge=1024, le=MAX_INT64)


def _url_or_ref(value: Any) -> Any:
    if isinstance(value, str) and not value.startswith((*SECRET_SCHEMES, "http://", "https://")):
        raise PydanticCustomError(
            "url_or_ref", "expected an http(s):// URL or a secret reference (env:, file:, keyring:, credential:)"
        )
    return value


UrlOrRef = Annotated[str, BeforeValidator(_url_or_ref)]


class Export(Strict):
    """Where the event log is forwarded from a cursor kept in the store: at least once, each record with its id."""

    webhook: UrlOrRef | None = None  # receives JSON lines (application/x-ndjson)
    otlp: UrlOrRef | None = None  # an OTLP/HTTP collector (http://host:4318): log records to /v1/logs
    otlp_protocol: Literal["http/json", "http/protobuf"] = "http/json"  # protobuf needs tether[otel]
    headers: dict[str, SecretRef] = {}  # sent to both, e.g. Authorization: env:COLLECTOR_TOKEN
    batch: int = Field(default=500, ge=1, le=10000)
    kinds: tuple[str, ...] = ()  # event kinds to forward (fnmatch patterns); empty: every event


class Deadman(Strict):
    """An external dead-man's switch (Healthchecks-compatible): /start at boot, a ping each period, /fail on
    an incident."""

    url: UrlOrRef
    period: Duration = Field(default=60.0, gt=0)


class Tls(Strict):
    """The dashboard and API over HTTPS (required to listen beyond loopback without --allow-remote)."""

    cert: str = Field(min_length=1)
    key: str = Field(min_length=1)


class Host(Strict):
    name: str | None = None
    state_dir: str | None = None
    workspace_root: str | None = None
    listen: str = "127.0.0.1:7717"
    # the dashboard's address as a phone reaches it (TLS or a tunnel): signed one-time links in notifications
    public_url: HttpUrl | None = None
    store: str | None = None
    notify: tuple[Notify, ...] = ()
    retention: Retention = Retention()
    export: Export = Export()
    deadman: Deadman | None = None
    tls: Tls | None = None
    probes: tuple[str, ...] = ()  # endpoints agents depend on: tcp://HOST:PORT or http(s)://... (never ping)
    probe_interval: Duration = 60.0
    disk_low_bytes: int = Field(default=1024**3, ge=0, le=MAX_INT64)  # free space under this: a disk.low incident

    @field_validator("listen")
    @classmethod
    def _listen(cls, value: str) -> str:
        host, sep, port = value.rpartition(":")
        if not sep or not host or not re.fullmatch(r"[0-9]{1,5}", port) or int(port) > 65535:
            raise PydanticCustomError(
                "listen", "expected HOST:PORT like 127.0.0.1:7717, got {got}", {"got": _shown(value)}
            )
        return value

    @field_validator("store")
    @classmethod
    def _store(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("sqlite://", "postgresql://", "postgres://")):
            raise PydanticCustomError(
                "store", "expected sqlite:///PATH or postgresql://..., got {got}", {"got": _shown(value)}
            )
        return value


class Runbook(Strict):
    version: Literal[1] = 1
    host: Host = Host()
    agents: dict[str, Agent] = {}

    @model_validator(mode="before")
    @classmethod
    def _names(cls, data: Any) -> Any:
        """Agents are keyed by name; copy the key into each agent so it knows its name."""
        if isinstance(data, dict) and isinstance(data.get("agents"), dict):
            agents = {}
            for name, body in data["agents"].items():
                if not isinstance(name, str) or not AGENT_NAME.match(name):
                    raise PydanticCustomError(
                        "agent_name",
                        "agent name '{name}' must be lower-case letters, digits, - and _ (at most 63)",
                        {"name": name},
                    )
                agents[name] = {**body, "name": name} if isinstance(body, dict) else body
            data = {**data, "agents": agents}
        return data

    @model_validator(mode="after")
    def _one_bot_per_slack_app(self) -> Runbook:
        """Slack hands each press to one connection of an app: the daemon keeps one per app-level token, so
        everyone on that app must name the same bot token (and API)."""
        seen: dict[str, tuple[str, str, str]] = {}
        for name, agent in self.agents.items():
            for role, person in (("owner", agent.owner), ("backup", agent.backup),
                                 *((f"approvers[{i}]", p) for i, p in enumerate(agent.approvers))):
                s = person.slack
                if s is None:
                    continue
                where = f"agents.{name}.{role}.slack"
                first = seen.setdefault(s.app_token, (s.bot_token, s.api, where))
                if first[:2] != (s.bot_token, s.api):
                    raise PydanticCustomError(
                        "slack_app",
                        "{where}: app_token {app} is used by {first} with another bot_token or api; one Slack "
                        "app has one bot token: give both the same",
                        {"where": where, "app": s.app_token, "first": first[2]},
                    )
        return self


def did_you_mean(word: str, choices: tuple[str, ...] | list[str]) -> str:
    import difflib

    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""
