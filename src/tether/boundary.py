"""The approval boundary: what an agent wants to do → classified → decided by its runbook → allowed,
logged, held for a human, or blocked. Used by the daemon's check endpoint (hooks, SDK, ``tether
exec``) and, without the holding part, by ``tether explain``.
"""

from __future__ import annotations

import json
import math
import subprocess
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from tether import audit, budgets, waiting
from tether.approvals import (
    APPROVED,
    DENIED,
    PENDING,
    Approvals,
    TooManyPending,
    approved_line,
    denied_line,
    fingerprint,
    session_key,
)
from tether.classify import (
    Action,
    Classification,
    Context,
    classify_path,
    classify_shell,
    classify_tool,
    classify_url,
)
from tether.errors import UsageError
from tether.policy import Decision, Scope, decide
from tether.runbook import LoadedRunbook
from tether.vocabulary import ACTION_CLASSES, DEFAULT_PROTECTED_PATHS


@dataclass(frozen=True)
class Request:
    """One action an agent wants to take. Exactly one of command, tool, path, url, action."""

    command: str | None = None
    tool: str | None = None
    input: dict[str, Any] | None = None
    path: str | None = None
    op: str = "write"
    url: str | None = None
    method: str = "GET"
    action: str | None = None  # an action class asked for directly (SDK ``agent.ask``)
    detail: str = ""
    cwd: str | None = None
    session: str | None = None  # the client's session (Claude Code, Codex): an approval's grant is for it
    task: str | None = None  # else the task (SDK): the grant is for that task

    def describe(self) -> str:
        if self.command is not None:
            return self.command
        if self.tool is not None:
            return f"{self.tool} {self.input or {}}"
        if self.path is not None:
            return f"{self.op} {self.path}"
        if self.url is not None:
            return f"{self.method} {self.url}"
        return f"{self.action}: {self.detail}"


@dataclass(frozen=True)
class Outcome:
    """What the agent is told: ``allow`` (run it), ``deny`` (don't), ``pending`` (a human decides)."""

    decision: str
    verdict: str
    reason: str
    rule: str
    classes: tuple[str, ...]
    resources: tuple[dict[str, Any], ...]
    approval_id: int | None = None
    hold: str = ""  # pending: how a human releases it (``reason`` ends with it; hooks word it their own way)

    @property
    def cause(self) -> str:
        """The reason without the hold's instructions."""
        return self.reason.removesuffix(f"; {self.hold}") if self.hold else self.reason

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def killed_line(kill_file: Path) -> str:
    """``killed by NAME at TIME: REASON`` from a kill file (what tether writes there; anything else, or a file
    that cannot be read, still means killed)."""
    try:
        with open(kill_file, "rb") as f:
            note = json.loads(f.read(4096) or b"{}")
    except (OSError, ValueError):
        note = None
    if not isinstance(note, dict):
        return "killed by the kill switch"
    by, at, reason = note.get("by"), note.get("at"), note.get("reason")
    who = by[:100] if isinstance(by, str) and by else "the kill switch"
    when = ""
    if isinstance(at, int | float) and math.isfinite(at) and 0 <= at < 1e11:
        when = " at " + time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(at))
    why = reason[:300] if isinstance(reason, str) and reason else "no reason given"
    return f"killed by {who}{when}: {why}"


class Boundary:
    """The pure part: per-agent scope and classifier context, resolved once per runbook."""

    def __init__(self, loaded: LoadedRunbook) -> None:
        self.loaded = loaded
        self._scopes: dict[str, Scope] = {}
        self._contexts: dict[str, Context] = {}
        control = (str(loaded.path), str(loaded.state.root))
        snaps = str(loaded.state.root / "snapshots")  # rollback's store: what it holds can be put back
        for name, agent in loaded.runbook.agents.items():
            cwd = loaded.agent_cwd(name)
            tmp = str(loaded.state.agent_tmp(name))
            self._scopes[name] = Scope.of(agent, cwd, loaded.resolve, tmp=tmp)
            protected = tuple(dict.fromkeys((*DEFAULT_PROTECTED_PATHS, *agent.approvals.protected_paths)))
            self._contexts[name] = Context(cwd=str(cwd), protected=protected, control=control, scratch=(tmp,),
                                           snapshots=snaps)

    def evaluate(self, agent: str, req: Request, *, budget_spent: str | None = None) -> tuple[Classification, Decision]:
        spec = self.loaded.runbook.agents.get(agent)
        if spec is None:
            raise UsageError(f"no agent named {agent!r} in {self.loaded.path}")
        ctx = self._contexts[agent]
        if req.cwd:
            ctx = Context(cwd=req.cwd, protected=ctx.protected, control=ctx.control, scratch=ctx.scratch,
                          snapshots=ctx.snapshots)
        c = self._classify(req, ctx)
        kill_file = self.loaded.state.kill_engaged(agent)
        killed = None if kill_file is None else killed_line(kill_file)
        return c, decide(c, spec, self._scopes[agent], killed=killed, budget_spent=budget_spent)

    @staticmethod
    def _classify(req: Request, ctx: Context) -> Classification:
        if req.command is not None:
            return classify_shell(req.command, ctx)
        if req.tool is not None:
            return classify_tool(req.tool, req.input or {}, ctx)
        if req.path is not None:
            return classify_path(req.path, req.op, ctx)
        if req.url is not None:
            return classify_url(req.url, req.method, ctx)
        if req.action is not None:
            if req.action not in ACTION_CLASSES:
                raise UsageError(f"unknown action class {req.action!r}; `tether check` lists them")
            return Classification((Action(req.action, req.detail or req.action),), (), True)
        raise UsageError("nothing to check: give a command, a tool call, a path, a URL or an action")


class Gatekeeper:
    """The daemon's side: records verdicts, runs gates, holds asks for a human, hands out grants."""

    def __init__(self, boundary: Boundary, approvals: Approvals) -> None:
        self.boundary = boundary
        self.approvals = approvals
        self.store = approvals.store

    @property
    def loaded(self) -> LoadedRunbook:
        return self.boundary.loaded

    def budget_spent(self, agent: str, now: float | None = None) -> str | None:
        """Why the agent's daily budget is spent (tokens or USD, UTC day), or None. A spent budget refuses
        every action until a human raises it in the runbook or resets it (``tether budget reset``)."""
        return budgets.spent(self.store, agent, self.loaded.runbook.agents[agent].budgets, now)

    def check(self, agent: str, req: Request, wait: float = 0.0) -> Outcome:
        spent = self.budget_spent(agent)
        _, d = self.boundary.evaluate(agent, req, budget_spent=spent)
        if spent is not None and d.verdict == "block" and d.rule == "budgets":
            self._budget_incident(agent, spent)
        spec = self.loaded.runbook.agents[agent]
        resources = tuple({"kind": r.kind, "value": r.value, "op": r.op} for r in d.resources)
        accounts = sorted({r.value for r in d.resources if r.kind in ("account", "repo")})
        if accounts:  # the "external accounts touched" signal, from what the classifier saw
            self.store.emit("accounts.touched", agent, accounts=accounts)

        def outcome(decision: str, approval_id: int | None = None, reason: str | None = None,
                    hold: str = "") -> Outcome:
            return Outcome(decision, d.verdict, reason or d.reason, d.rule, d.classes, resources, approval_id, hold)

        if d.verdict == "allow" and not d.gates:
            return outcome("allow")
        if d.verdict in ("log", "block") or d.gates:
            gate_failure = self._run_gates(agent, d) if d.verdict != "block" else None
            if gate_failure is not None:
                self._record(agent, req, d, "deny", gate_failure)
                return outcome("deny", reason=gate_failure)
            if d.verdict in ("allow", "log"):
                self._record(agent, req, d, "allow")
                return outcome("allow")
            if d.verdict == "block":
                self._record(agent, req, d, "deny")
                return outcome("deny")
        # ask: a grant of this session's, a denial still in force, or a human
        cwd = req.cwd or str(self.loaded.agent_cwd(agent))
        fp = fingerprint(agent, d.classes, d.resources, cwd, req.describe())
        session = self._session(agent, req)
        grant = self.approvals.grant_for(agent, fp, session)
        if grant is not None:
            self._record(agent, req, d, "allow", f"approved as approval {grant['id']}")
            return outcome("allow", grant["id"], approved_line(grant))
        denied = self.approvals.denial(agent, fp)
        if denied is not None:  # the identical action again: told at once, no new approval
            self._record(agent, req, d, "deny", f"{denied_line(denied)} (approval {denied['id']})")
            return outcome("deny", denied["id"], denied_line(denied))

        def ask() -> dict[str, Any]:
            return self.approvals.request(
                agent, self._deciding_class(agent, d), fp, classes=d.classes, detail=req.describe(), rule=d.rule,
                reason=d.reason, timeout=spec.approvals.timeout, escalate_after=spec.approvals.escalate_after,
                session=session, window=spec.approvals.retry_window,
                extra={"resources": list(resources), "cwd": cwd, "session": session},
            )

        try:
            row = ask()
        except TooManyPending as err:
            self._record(agent, req, d, "deny", str(err))
            return outcome("deny", reason=str(err))
        self._seal()
        if wait > 0:
            waiting.begin(self.store, agent, row)
            row = self.approvals.wait(row["id"], wait)
            if row["state"] != PENDING:
                waiting.done(self.store, agent, f"approval {row['id']} {row['state']}")
            if row["state"] == APPROVED:  # this call was waiting when the decision came: its use, as of then
                if self.approvals.use(row, row["decided"]):
                    self._seal()
                    return outcome("allow", row["id"], approved_line(row))
                row = ask()  # an identical call of the same session took the grant first
        if row["state"] == PENDING:
            how = f"held for approval {row['id']}: `tether approve {row['id']}` or the dashboard"
            return outcome("pending", row["id"], f"{d.reason}; {how}", how)
        why = denied_line(row) if row["state"] == DENIED else f"{row['state']}: {row['note'] or row['state']}"
        return outcome("deny", row["id"], why)

    def _session(self, agent: str, req: Request) -> str:
        """Whose grant: the request's session, else its task, else the agent's current run."""
        if req.session or req.task:
            return session_key(req.session, req.task)
        row = self.store.agent(agent)
        return session_key(run=row.get("started_at") if row else None)

    def _deciding_class(self, agent: str, d: Decision) -> str:
        """The class whose verdict held the action (what policy picked), not merely the first one found."""
        spec = self.loaded.runbook.agents[agent]
        for klass in d.classes:
            try:
                if spec.approvals.verdict(klass) == d.verdict:
                    return klass
            except KeyError:
                continue
        return d.classes[0] if d.classes else "unknown"

    def _budget_incident(self, agent: str, why: str) -> None:
        budgets.incident(self.store, agent, "budget", f"{agent}: budget spent: {why}")

    def _record(self, agent: str, req: Request, d: Decision, decision: str, note: str | None = None) -> None:
        self.store.emit(
            "verdict", agent, decision=decision, verdict=d.verdict, classes=list(d.classes), rule=d.rule,
            reason=note or d.reason, action=req.describe()[:2000],
        )
        if decision == "allow" and req.command is not None:
            self.store.emit("command.run", agent, command=req.command[:2000])
        self._seal()

    def _seal(self) -> None:
        audit.seal(self.store, self.loaded.state.audit_file)

    def _run_gates(self, agent: str, d: Decision) -> str | None:
        """Run each gate's check in the agent's workspace; the first failure denies, with its tail."""
        spec = self.loaded.runbook.agents[agent]
        for klass in d.gates:
            gate = spec.gates[klass]
            started = time.monotonic()
            try:
                proc = subprocess.run(
                    list(gate.command), cwd=self.loaded.agent_cwd(agent), capture_output=True, text=True,
                    timeout=gate.timeout, stdin=subprocess.DEVNULL,
                )
            except subprocess.TimeoutExpired:
                return f"gate for {klass}: `{' '.join(gate.command)}` timed out after {gate.timeout:g}s"
            except OSError as err:
                return f"gate for {klass}: `{' '.join(gate.command)}` could not run ({err.strerror})"
            self.store.emit(
                "gate.ran", agent, action=klass, command=" ".join(gate.command), exit_code=proc.returncode,
                seconds=round(time.monotonic() - started, 3),
            )
            if proc.returncode != 0:
                tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-15:])
                return f"gate for {klass} failed: `{' '.join(gate.command)}` exited {proc.returncode}:\n{tail}"
        return None
