"""Every event kind tether records, declared once: its data (a ``TypedDict``: the fields its recorders
write and its readers read; ``total=False``, for old rows and agents' reports may lack some), whether it is
audited (``tether audit verify``), whether the notifier reads it, and its sentence on the timeline.
The store registers each kind's projection against this table (``tether.store.projections``).

A declarative table: it grows with the kinds, not with logic."""

from __future__ import annotations

import json
from typing import Any, TypedDict

from tether.events.catalogue import declare
from tether.events.words import age, count, money

# -- an agent's life (the daemon, the supervisor, the kill switch) ------------------------------------


class AgentRegistered(TypedDict, total=False):
    info: dict[str, Any]  # kind, owner, backup, heartbeat... (the runbook entry as the dashboard shows it)
    node: str | None  # fleet: the node that registered it (the first pins it)


class AgentRemoved(TypedDict, total=False):
    pass


class AgentDesired(TypedDict, total=False):
    desired: str  # running, stopped, killed
    record_id: str


class AgentState(TypedDict, total=False):
    state: str  # one of vocabulary's agent states
    reason: str | None
    note: str
    record_id: str


class AgentStarted(TypedDict, total=False):
    pid: int
    instance: str
    restart: bool


class AgentExited(TypedDict, total=False):
    code: int | None
    error: str
    uptime_s: float


class AgentAdopted(TypedDict, total=False):
    pid: int
    instance: str


class AgentKilled(TypedDict, total=False):
    reason: str | None
    by: str | None
    record_id: str
    late: str  # recorded from the kill file afterwards: why


class AgentResumed(TypedDict, total=False):
    record_id: str
    by: str


class AgentWaiting(TypedDict, total=False):
    message: str
    notification_type: str


declare("agent.registered", AgentRegistered, lambda g, d: "registered ({}, owner {})".format(
    (d.get("info") or {}).get("kind", "?"), ((d.get("info") or {}).get("owner") or {}).get("name", "?")))
declare("agent.removed", AgentRemoved)
declare("agent.desired", AgentDesired, lambda g, d: f"desired state {g('desired')}")
declare("agent.state", AgentState, lambda g, d: f"{g('state')}" + (f": {g('reason')}" if d.get("reason") else ""))
declare("agent.started", AgentStarted,
        lambda g, d: f"started (pid {g('pid')})" + (" after a restart" if d.get("restart") else ""))
declare("agent.exited", AgentExited, lambda g, d: f"exited {g('code')} after {age(d.get('uptime_s'))}")
declare("agent.adopted", AgentAdopted, lambda g, d: f"adopted after a daemon restart (pid {g('pid')})")
declare("agent.killed", AgentKilled, lambda g, d: "KILLED" + (f": {g('reason')}" if d.get("reason") else ""),
        audited=True, notifies=True)
declare("agent.resumed", AgentResumed, lambda g, d: "kill switch lifted", audited=True)
declare("agent.waiting", AgentWaiting, lambda g, d: f"waiting: {g('message')}")


class HeartbeatRebased(TypedDict, total=False):
    jump_s: float


class DaemonStarted(TypedDict, total=False):
    pid: int
    url: str
    runbook: str
    replayed: int


class DaemonStopped(TypedDict, total=False):
    pid: int
    agents_stopped: list[str]


class HostInhibitor(TypedDict, total=False):
    active: bool
    message: str


class RunbookReloaded(TypedDict, total=False):
    restarted: list[str]
    removed: list[str]
    host: list[str]


class RunbookRejected(TypedDict, total=False):
    errors: list[str]


declare("heartbeat.rebased", HeartbeatRebased,
        lambda g, d: f"heartbeat re-baselined after a clock jump of {g('jump_s')}s")
declare("daemon.started", DaemonStarted, lambda g, d: f"daemon started (pid {g('pid')})", notifies=True)
declare("daemon.stopped", DaemonStopped, lambda g, d: "daemon stopped")
declare("host.inhibitor", HostInhibitor,
        lambda g, d: ("sleep inhibitor held" if d.get("active") else "sleep inhibitor released")
        + (f" ({g('message')})" if d.get("message") else ""))
declare("runbook.reloaded", RunbookReloaded,
        lambda g, d: "runbook reloaded" + (f"; restarted {', '.join(d.get('restarted') or [])}"
                                           if d.get("restarted") else ""),
        audited=True)
declare("runbook.rejected", RunbookRejected,
        lambda g, d: "runbook rejected: " + "; ".join(str(x) for x in (d.get("errors") or []))[:300])

# -- tasks -----------------------------------------------------------------------------------------------


class TaskAdded(TypedDict, total=False):
    text: str
    meta: dict[str, Any]


class TaskRef(TypedDict, total=False):
    """A task started, done, failed, cancelled or queued again."""

    task_id: int
    text: str
    note: str | None
    attempts: int  # task.failed, task.requeued: attempts so far


declare("task.added", TaskAdded, lambda g, d: f"task queued: {g('text')}")
declare("task.started", TaskRef, lambda g, d: f"task started: {g('text')}")
declare("task.done", TaskRef, lambda g, d: f"task done: {g('text')}" + (f" ({g('note')})" if d.get("note") else ""))
declare("task.failed", TaskRef,
        lambda g, d: f"task failed: {g('text')}" + (f" ({g('note')})" if d.get("note") else ""))
declare("task.cancelled", TaskRef,
        lambda g, d: f"task #{g('task_id')} cancelled" + (f": {g('note')}" if d.get("note") else ""))
declare("task.requeued", TaskRef, lambda g, d: f"task queued again: {g('text')} ({g('note')})")

# -- what the agent did and reports (issue 6: signals) ----------------------------------------------------


class FilesChanged(TypedDict, total=False):
    paths: list[str]
    count: int
    tool: str


class CommandRun(TypedDict, total=False):
    command: str
    exit_code: int | None
    tool: str


class TestsReported(TypedDict, total=False):
    passed: int
    failed: int


class Usage(TypedDict, total=False):
    model: str
    input_tokens: int
    output_tokens: int
    cache_read_tokens: int
    cache_write_tokens: int
    cost_usd: float
    client: str
    session_id: str
    source: str


class Error(TypedDict, total=False):
    kind: str  # "blocked": it cannot go on (the agent is blocked until its next run)
    detail: str
    message: str
    error: str
    error_type: str
    tool: str
    tool_use_id: str
    interrupted: bool


class Free(TypedDict, total=False):
    """A retry or a log line: fields of the agent's choosing (``line`` or ``message`` for a log line)."""

    line: str
    message: str


class AccountsTouched(TypedDict, total=False):
    accounts: list[str]


class Canary(TypedDict, total=False):
    """``tether.integrations.canary.Result`` as a dict."""

    agent: str
    kind: str
    outcome: str  # passed, failed, error
    detail: str
    fix: str
    trigger: str  # start, daily
    at: float
    seconds: float
    cli: str
    client: str
    tool: str


declare("files.changed", FilesChanged,
        lambda g, d: "files changed: " + ", ".join(str(p) for p in (d.get("paths") or [])[:10]))
declare("command.run", CommandRun,
        lambda g, d: f"ran `{g('command')}`" + (f" → {g('exit_code')}" if "exit_code" in d else ""))
declare("tests.reported", TestsReported, lambda g, d: f"tests: {g('passed')} passed, {g('failed')} failed")
declare("usage", Usage, lambda g, d: f"usage: {g('model')} {count(d.get('input_tokens') or d.get('input'))} in, "
        f"{count(d.get('output_tokens') or d.get('output'))} out" + (f", {money(d.get('cost_usd'))}"
                                                                    if d.get("cost_usd") else ""))
declare("error", Error, lambda g, d: f"error ({g('kind')}): {g('detail') or g('message')}")
declare("retry", Free)
declare("log", Free, lambda g, d: g("line") or g("message") or json.dumps(d)[:300])
declare("accounts.touched", AccountsTouched,
        lambda g, d: "accounts touched: " + ", ".join(str(a) for a in (d.get("accounts") or [])))
declare("canary", Canary, lambda g, d: f"canary {g('outcome')} ({g('trigger')}): {g('detail')}"
        + (f"; {g('fix')}" if d.get("fix") else ""))

# -- the boundary: verdicts, gates, approvals -------------------------------------------------------------


class Verdict(TypedDict, total=False):
    action: str
    classes: list[str]
    decision: str
    verdict: str
    rule: str
    reason: str


class GateRan(TypedDict, total=False):
    action: str
    command: str
    exit_code: int | None
    seconds: float


class ApprovalRequested(TypedDict, total=False):
    action: str
    classes: list[str]
    detail: str
    fingerprint: str
    rule: str
    reason: str
    expires: float | None
    escalate_at: float | None
    extra: dict[str, Any]
    session: str | None
    window: str | None  # the grant asked for: once, task, 1h


class ApprovalDecided(TypedDict, total=False):
    """Decided or expired (``state`` then ``expired``)."""

    approval_id: int
    state: str  # approved, denied, expired
    by: str | None
    note: str | None
    scope: str | None  # once, task, 1h
    until: float | None  # the grant lapses unused then


class ApprovalEscalated(TypedDict, total=False):
    approval_id: int
    to: str  # backup


class ApprovalUsed(TypedDict, total=False):
    approval_id: int
    at: float
    until: float | None


class ApprovalRefused(TypedDict, total=False):
    approval_id: int | None
    who: str
    channel: str
    why: str


declare("verdict", Verdict, lambda g, d: f"{g('decision')} ({g('verdict')}, {g('rule')}): {g('action')}",
        audited=True)
declare("gate.ran", GateRan, lambda g, d: f"gate for {g('action')}: `{g('command')}` → {g('exit_code')}")
declare("approval.requested", ApprovalRequested, lambda g, d: f"asked to {g('action')}: {g('detail')}",
        audited=True, notifies=True)
declare("approval.decided", ApprovalDecided,
        lambda g, d: f"approval #{g('approval_id')} {g('state')} by {g('by')}"
        + (f": {g('note')}" if d.get("note") else ""),
        audited=True)
declare("approval.expired", ApprovalDecided, lambda g, d: f"approval #{g('approval_id')} expired",
        audited=True, notifies=True)
declare("approval.escalated", ApprovalEscalated,
        lambda g, d: f"approval #{g('approval_id')} escalated to the {g('to')}", audited=True, notifies=True)
declare("approval.used", ApprovalUsed, lambda g, d: f"approval #{g('approval_id')} used", audited=True)
declare("approval.refused", ApprovalRefused,  # deciding from a phone (issue 21)
        lambda g, d: f"approval #{g('approval_id') or '?'}: {g('who')} refused on {g('channel')}: {g('why')}",
        audited=True)

# -- phone channels (issue 21) ------------------------------------------------------------------------------


class ChannelMessage(TypedDict, total=False):
    approval_id: int
    channel: str
    target: str
    state: str  # channel.settled: what the messages now show
    error: str  # channel.failed


class ChannelHealth(TypedDict, total=False):
    channel: str
    error: str | None
    failures: int


declare("channel.sent", ChannelMessage, lambda g, d: f"approval #{g('approval_id')} sent by {g('channel')}")
declare("channel.settled", ChannelMessage,
        lambda g, d: f"approval #{g('approval_id')}'s messages show it {g('state')}")
declare("channel.failed", ChannelMessage,
        lambda g, d: f"approval #{g('approval_id')} not sent by {g('channel')}: {g('error')}")
declare("channel.down", ChannelHealth, lambda g, d: f"channel {g('channel')} down: {g('error')}")
declare("channel.up", ChannelHealth, lambda g, d: f"channel {g('channel')} up again")

# -- incidents and notifications ------------------------------------------------------------------------------


class IncidentOpened(TypedDict, total=False):
    kind: str  # stale, stuck, crashloop, disk, channel.down, agent.pinned_elsewhere...
    summary: str
    node: str
    seen_by: str
    drill: str
    path: str
    target: str
    targets: list[str]


class IncidentResolved(TypedDict, total=False):
    incident_id: int
    kind: str
    node: str
    why: str


class IncidentAcked(TypedDict, total=False):
    incident_id: int
    by: str
    note: str | None


class NotifyQueued(TypedDict, total=False):
    thread: str
    subject: str | None
    topic: str
    recipient: str  # the recipient's key (owner:AGENT, backup:AGENT, host:HASH), never the contact
    channel: str
    title: str
    body: str


class NotifyAttempt(TypedDict, total=False):
    notification_id: int
    attempts: int
    error: str  # notify.failed
    final: bool  # notify.failed: given up
    next_try: float | None


declare("incident.opened", IncidentOpened, lambda g, d: f"incident: {g('summary')}", notifies=True)
declare("incident.resolved", IncidentResolved, lambda g, d: f"incident #{g('incident_id')} resolved: {g('why')}",
        notifies=True)
declare("incident.acked", IncidentAcked,
        lambda g, d: f"incident #{g('incident_id')} acknowledged by {g('by')}", notifies=True)
declare("notify.queued", NotifyQueued,
        lambda g, d: f"notification to {g('recipient')} ({g('channel')}): {g('title')}")
declare("notify.sent", NotifyAttempt, lambda g, d: f"notification #{g('notification_id')} delivered")
declare("notify.failed", NotifyAttempt,
        lambda g, d: f"notification #{g('notification_id')} not delivered (attempt {g('attempts')}"
        + (", gave up" if d.get("final") else "") + f"): {g('error')}")

# -- tokens, budgets, exports, probes, integrations -----------------------------------------------------------


class TokenCreated(TypedDict, total=False):
    token_id: str
    hash: str
    role: str
    for_agent: str | None
    expires: float | None


class TokenRevoked(TypedDict, total=False):
    token_id: str
    role: str


class BudgetReset(TypedDict, total=False):
    day: str
    tokens: int
    usd: float
    by: str


class ExportHealth(TypedDict, total=False):
    sink: str
    error: str
    cursor: int
    failures: int
    down_s: float
    last_error: str


class ProbeFailed(TypedDict, total=False):
    target: str
    detail: str
    drill: str
    isolation: str
    latency_s: float | None


class DrillResult(TypedDict, total=False):
    drill: str
    status: str  # pass, fail, degraded
    seconds: float
    detail: str
    runbook_hash: str
    run: str
    evidence: Any
    timings: Any
    sandbox: str


class IntegrationError(TypedDict, total=False):
    client: str
    error: str


class IntegrationBacklog(TypedDict, total=False):
    limit: int
    dropped: int


declare("token.created", TokenCreated, lambda g, d: f"{g('role')} token {g('token_id')} created")
declare("token.revoked", TokenRevoked, lambda g, d: f"{g('role')} token {g('token_id')} revoked")
declare("budget.reset", BudgetReset,
        lambda g, d: f"budget reset by {g('by')} ({g('tokens')} tokens, ${g('usd')} spent today before it)")
declare("export.failing", ExportHealth, lambda g, d: f"export to {g('sink')} failing: {g('error')}")
declare("export.recovered", ExportHealth,
        lambda g, d: f"export to {g('sink')} delivering again after {g('failures')} failure(s)")
declare("probe.failed", ProbeFailed, lambda g, d: f"probe {g('target')} failed: {g('detail')}")
declare("drill.result", DrillResult, lambda g, d: f"drill {g('drill')}: {g('status')}"
        + (f" ({g('detail')})" if d.get("detail") else ""))
declare("integration.error", IntegrationError, lambda g, d: f"integration error: {g('error')}")
declare("integration.backlog", IntegrationBacklog,
        lambda g, d: f"hook monitor backlog full ({g('limit')} jobs): {g('dropped')} dropped")

# -- the wall (network and writes) --------------------------------------------------------------------------


class NetworkConnection(TypedDict, total=False):
    verdict: str
    host: str
    port: int
    bytes_up: int
    bytes_down: int


class WallViolation(TypedDict, total=False):
    kind: str  # one of vocabulary.VIOLATION_KINDS: connect, write...
    verdict: str
    host: str
    port: int
    path: str  # write: the path, or the folder (ending in /) a refused create or removal was to change
    error: str
    source: str  # proxy, audit (the kernel's, wall/writewatch.py), drill
    # source audit: the call and the process that made it, and whether it counted toward the incident
    call: str
    paths: list[str]
    pid: int
    comm: str
    exe: str
    command: str  # its command line (128 bytes at most), which names what a folder-only path leaves out
    instance: str  # the run that made it
    in_run: bool
    counted: bool
    own_home: bool  # directly in the agent's own private HOME: recorded, not counted
    repeated: int  # the same denial that many times more in the minute before
    suppressed: int  # that many of the agent's denials over the rate before this one, not recorded
    lost: str  # denials before this one were not seen (the kernel's records came faster than they were read)


declare("network.connection", NetworkConnection,
        lambda g, d: (f"{g('verdict')} connection to {g('host')}:{g('port')} "
                      f"({g('bytes_up')} bytes up, {g('bytes_down')} down)"))
declare("wall.violation", WallViolation, lambda g, d: "wall violation: " + (
    f"{g('verdict')} connection to {g('host')}:{g('port')}" if d.get("kind") == "connect"
    else (f"{g('call')} of" if d.get("call") else "write to")
    + f" {g('path')} denied ({g('error')}, seen by {g('source')})"
    + (f": {g('command')}" if d.get("command") else "")))

# -- the fleet (tether.fleet) --------------------------------------------------------------------------------


class ControlRequested(TypedDict, total=False):
    """A kill (``kill.requested``) or another verb (``control.requested``) for an agent on ``node``."""

    record_id: str
    node: str
    reason: str | None
    verb: str  # resume, start, stop, restart (kill when missing)


class ControlApplied(TypedDict, total=False):
    record_id: str
    node: str
    verb: str
    error: str | None  # the refusal, if any


class NodeRegistered(TypedDict, total=False):
    node: str
    pid: int
    url: str | None
    info: dict[str, Any]


class NodeState(TypedDict, total=False):
    node: str
    silent_s: float  # node.lost
    seen_by: str  # node.lost


class AgentPinRefused(TypedDict, total=False):
    node: str
    pinned_to: str


# node: where it is pinned now (None: released); from: where it was pinned
AgentPinned = TypedDict("AgentPinned", {"node": str | None, "from": str | None, "by": str, "why": str}, total=False)
AgentMoved = TypedDict("AgentMoved", {"from": str, "to": str}, total=False)


class RunbookReloadRequested(TypedDict, total=False):
    nodes: list[str]


class RunbookReloadFailed(TypedDict, total=False):
    node: str
    error: str


declare("kill.requested", ControlRequested,
        lambda g, d: f"kill requested for node {g('node')}" + (f": {g('reason')}" if d.get("reason") else ""))
declare("control.requested", ControlRequested, lambda g, d: f"{g('verb')} requested for node {g('node')}")
declare("kill.applied", ControlApplied,
        lambda g, d: f"kill applied on node {g('node')}" + (f" ({g('error')})" if d.get("error") else ""))
declare("control.applied", ControlApplied,
        lambda g, d: f"{g('verb')} applied on node {g('node')}" + (f" ({g('error')})" if d.get("error") else ""))
declare("node.registered", NodeRegistered, lambda g, d: f"node {g('node')} registered (pid {g('pid')}, {g('url')})")
declare("node.lost", NodeState,
        lambda g, d: f"node {g('node')} lost: silent for {g('silent_s')}s (seen by {g('seen_by')})")
declare("node.back", NodeState, lambda g, d: f"node {g('node')} is back")
declare("node.stopped", NodeState, lambda g, d: f"node {g('node')} stopped cleanly")
declare("agent.pin_refused", AgentPinRefused, lambda g, d: f"node {g('node')} refused it: pinned to {g('pinned_to')}")
declare("agent.pinned", AgentPinned, lambda g, d: f"pinned to node {g('node') or '(released)'} by {g('by')}")
declare("agent.moved", AgentMoved, lambda g, d: f"moved from node {g('from')} to {g('to')}")
declare("runbook.reload_requested", RunbookReloadRequested,
        lambda g, d: "runbook reload asked of node(s) " + ", ".join(str(n) for n in (d.get("nodes") or [])))
declare("runbook.reload_failed", RunbookReloadFailed,
        lambda g, d: f"node {g('node')} kept its runbook: {g('error')}")

# -- rollback (issue 8) ----------------------------------------------------------------------------------------


class RollbackMark(TypedDict, total=False):
    """A task's workspace at its start (``rollback.base``) or end (``rollback.end``)."""

    task_id: int
    repos: list[Any]
    snapshots: list[Any]
    files_changed: int


class RollbackDone(TypedDict, total=False):
    id: str
    target: str
    to: Any
    by: str
    tag: str  # rollback.good
    tasks: list[int]
    quarantine: str | None
    files_changed: int
    error: str  # rollback.failed


declare("rollback.base", RollbackMark,
        lambda g, d: f"task #{g('task_id')} began on its own branch ({len(d.get('repos') or [])} repo(s), "
        f"{len(d.get('snapshots') or [])} snapshot(s))")
declare("rollback.end", RollbackMark,
        lambda g, d: f"task #{g('task_id')} ended: {g('files_changed')} file(s) changed")
declare("rollback.good", RollbackDone, lambda g, d: f"marked last-known-good ({g('tag')}) by {g('by')}",
        audited=True)
declare("rollback.done", RollbackDone,
        lambda g, d: f"rolled back to {g('target')} by {g('by')}"
        + (f"; work kept in {g('quarantine')}" if d.get("quarantine") else ""),
        audited=True)
declare("rollback.failed", RollbackDone, lambda g, d: f"rollback to {g('target')} failed: {g('error')}",
        audited=True)

# -- agent sessions (Claude Code, Codex, OpenClaw) ---------------------------------------------------------------


class SessionStarted(TypedDict, total=False):
    client: str
    model: str | None
    cwd: str
    source: str
    transcript_path: str


class SessionPrompt(TypedDict, total=False):
    prompt: str


class SessionEnded(TypedDict, total=False):
    reason: str | None


class SessionHeld(TypedDict, total=False):
    """Held for an approval (``session.deferred``) or resumed after it (``session.resumed``)."""

    approval_id: int
    approval: str
    client: str
    session_id: str
    tool_use_id: str


class TurnEnded(TypedDict, total=False):
    last_message: str | None


class PermissionRequested(TypedDict, total=False):
    tool: str
    input: Any


declare("session.started", SessionStarted,
        lambda g, d: f"session started ({g('client')}" + (f", {g('model')}" if d.get("model") else "") + ")")
declare("session.prompt", SessionPrompt, lambda g, d: f"prompt: {g('prompt')}")
declare("session.ended", SessionEnded,
        lambda g, d: "session ended" + (f" ({g('reason')})" if d.get("reason") else ""))
declare("session.deferred", SessionHeld, lambda g, d: f"session held for approval #{g('approval_id')}")
declare("session.resumed", SessionHeld, lambda g, d: f"session resumed after approval #{g('approval_id')}")
declare("turn.ended", TurnEnded,
        lambda g, d: "turn ended" + (f": {g('last_message')}" if d.get("last_message") else ""))
declare("permission.requested", PermissionRequested, lambda g, d: f"asked permission for {g('tool')}")
