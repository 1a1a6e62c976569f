"""Find and stop an agent's whole process tree — every run of it, with or without a daemon.

``kill_run(run_dir)`` needs nothing but the run folder (``run.json``, ``runs``, ``keeper.pid``, ``agent.pid``),
so ``tether kill`` works while the daemon is dead or SIGSTOPped. What belongs to the agent is what any run
recorded in the folder left alive: the current run's agent, every recorded run's cgroup, every process
whose environment holds one of those runs' ``TETHER_INSTANCE`` (descendants that called ``setsid`` or
double-forked, also where there is no cgroup), and the descendants of all of these. The kill:

1. freezes those cgroups (each one the caller is not inside) so nothing forks or exits meanwhile; with a
   ``mark`` callback (the kill switch) the processes outside a frozen group are SIGSTOPped too, then
   ``mark()`` runs: nothing of the agent can end, so nothing can restart it, before its kill file exists;
2. signals the agent's process group, then every process found; thaws (and SIGCONTs what it stopped);
3. waits up to ``grace`` seconds, signalling newcomers, then SIGKILLs whatever remains (``cgroup.kill``
   on cgroup v2) and waits briefly for it to go;
4. removes every empty cgroup of the agent's runs and reports what it found, what it signalled and what
   survived, and whether the run folder said the agent was running (``expected``) when nothing was found.

Only processes verified by identity (boot id + start time), cgroup membership, environment or descent from
a verified process are signalled, each through a pidfd so a PID reused meanwhile is never hit; never PID
0 or 1, the caller itself, or the current keeper (it must live on to record the exit status).
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, overload

from tether.process import cgroup as cgroups
from tether.process import platform
from tether.process.cgroup import AgentCgroup
from tether.process.identity import ProcessId, read_pid_file
from tether.process.rundir import (
    AGENT_PID,
    KEEPER_PID,
    mark_killed,
    prune_runs,
    read_exit,
    read_run_info,
    read_runs,
)

INSTANCE_VAR = "TETHER_INSTANCE"
KILL_WAIT = 2.0  # how long to wait for SIGKILLed processes to disappear
STOP_ROUNDS = 20  # SIGSTOP passes (each catches what the last one's stragglers forked)
SETTLE = 1.0  # how long an agent that just ended may take its keeper to record it
POLL_FIRST = 0.005  # the grace's first wait for the tree to end; doubled each look, up to ``poll``

Mark = Callable[[], None]


@dataclass(frozen=True)
class RunIdentities:
    keeper: ProcessId | None
    agent: ProcessId | None


@dataclass(frozen=True)
class Found:
    ident: ProcessId
    source: str  # "agent" | "cgroup" | "env" | "descendant"
    run: str | None = None  # the instance it belongs to, when known


@dataclass(frozen=True)
class Scope:
    """What belongs to one agent: the current run's identities, and every recorded run's instance and cgroup."""

    ids: RunIdentities
    instances: frozenset[str] = frozenset()
    groups: dict[str, AgentCgroup] = field(default_factory=dict)  # instance -> its cgroup
    current: str | None = None  # the current run's instance (the agent's own)


@dataclass
class KillReport:
    signal: str
    signalled: dict[int, str] = field(default_factory=dict)  # pid -> how it was found
    group: int | None = None  # the process group signalled with killpg, if any
    escalated: list[int] = field(default_factory=list)  # still alive after grace: got SIGKILL
    survivors: list[int] = field(default_factory=list)  # still alive at the end (should be empty)
    runs: list[str] = field(default_factory=list)  # the runs (instances) that had a process found
    cgroup: str | None = None  # the current run's cgroup
    cgroups: int = 0  # cgroups of the agent's runs that existed
    cgroups_left: list[str] = field(default_factory=list)  # of those, the ones still there at the end
    froze: bool = False
    stopped: int = 0  # processes SIGSTOPped before the mark (outside a frozen cgroup)
    cgroup_removed: bool = False
    expected: bool = False  # the run folder says the agent runs (no exit recorded for its current run)
    elapsed: float = 0.0
    note: str | None = None

    @property
    def ok(self) -> bool:
        """Nothing survived, and the agent was not recorded as running with nothing of it found."""
        return not self.survivors and not (self.expected and not self.signalled)

    def to_dict(self) -> dict[str, Any]:
        return {
            "signal": self.signal,
            "signalled": {str(k): v for k, v in sorted(self.signalled.items())},
            "group": self.group,
            "escalated": self.escalated,
            "survivors": self.survivors,
            "runs": self.runs,
            "cgroup": self.cgroup,
            "cgroups": self.cgroups,
            "cgroups_left": self.cgroups_left,
            "froze": self.froze,
            "stopped": self.stopped,
            "cgroup_removed": self.cgroup_removed,
            "expected": self.expected,
            "elapsed": round(self.elapsed, 3),
            "note": self.note,
        }


def _protected(ids: RunIdentities) -> set[int]:
    protected = {0, 1, os.getpid()}
    if ids.keeper is not None and ids.keeper.same_process(ProcessId.of(ids.keeper.pid)):
        protected.add(ids.keeper.pid)
    return protected


def find_tree(
    ids: RunIdentities, instance: str | None, cgroup: AgentCgroup | None = None, *, scan_env: bool = True
) -> dict[int, Found]:
    """Every live (non-zombie) process of one run, each with its identity and how it was found."""
    groups = {} if cgroup is None else {instance or "": cgroup}
    return _find(Scope(ids, frozenset([instance] if instance else []), groups, instance), scan_env)


def _find(scope: Scope, scan_env: bool = True) -> dict[int, Found]:
    """Every live (non-zombie) process of every run in ``scope``."""
    ids = scope.ids
    protected = _protected(ids)
    found: dict[int, Found] = {}

    def add(pid: int, source: str, run: str | None, known: ProcessId | None = None) -> None:
        if pid in protected or pid in found:
            return
        ident = ProcessId.live(pid)  # one look: a zombie reaped meanwhile is never taken for a live process
        if ident is None or (known is not None and not known.same_process(ident)):
            return
        found[pid] = Found(ident, source, run)

    if ids.agent is not None:
        add(ids.agent.pid, "agent", scope.current, ids.agent)
    for run, group in scope.groups.items():
        for pid in sorted(group.pids()):
            add(pid, "cgroup", run or None)
    if scan_env and scope.instances:
        for pid, run in sorted(platform.env_matches(INSTANCE_VAR, scope.instances).items()):
            add(pid, "env", run)
    if found:
        children = platform.children_map()
        queue = list(found)
        while queue:
            parent = queue.pop()
            for child in children.get(parent, []):
                if child not in found and child not in protected:
                    add(child, "descendant", found[parent].run)
                    if child in found:
                        queue.append(child)
    return found


def _needs_cont(sig: int) -> bool:
    """A stopped process keeps a SIGTERM pending until continued; so, like systemd, follow with SIGCONT."""
    return sig not in (signal.SIGKILL, signal.SIGCONT, signal.SIGSTOP)


def _send(report: KillReport, tracked: dict[int, ProcessId], targets: dict[int, Found], sig: int) -> None:
    for pid, f in targets.items():
        if platform.send_signal(pid, sig, f.ident.alive):
            tracked[pid] = f.ident
            report.signalled.setdefault(pid, f.source)
            if f.run is not None and f.run not in report.runs:
                report.runs.append(f.run)
            if _needs_cont(sig):
                platform.send_signal(pid, signal.SIGCONT, f.ident.alive)


def _alive(tracked: dict[int, ProcessId]) -> list[int]:
    return sorted(pid for pid, ident in tracked.items() if ident.alive())


@overload
def kill_tree(
    target: RunIdentities,
    instance: str | None,
    signal_name: str | int = "TERM",
    grace: float = 10.0,
    *,
    cgroup: AgentCgroup | None = None,
    scan_env: bool = True,
    poll: float = 0.05,
) -> KillReport: ...


@overload
def kill_tree(
    target: Path | str,
    signal_name: str | int = "TERM",
    grace: float = 10.0,
    *,
    use_cgroup: bool = True,
    scan_env: bool = True,
    mark: Mark | None = None,
) -> KillReport: ...


def kill_tree(target: RunIdentities | Path | str, *args: Any, **kwargs: Any) -> KillReport:
    """Stop a whole tree. Two forms:

    - ``kill_tree(identities, instance, signal_name, grace, cgroup=..., scan_env=...)``: one run, from
      its identities;
    - ``kill_tree(run_dir, signal_name, grace)``: every run recorded in a run folder, the same as ``kill_run``.
    """
    if isinstance(target, RunIdentities):
        instance, *rest = args
        cgroup = kwargs.pop("cgroup", None)
        groups = {} if cgroup is None else {instance or "": cgroup}
        return _kill(Scope(target, frozenset([instance] if instance else []), groups, instance), *rest, **kwargs)
    return kill_run(Path(target), *args, **kwargs)


def _kill(
    scope: Scope,
    signal_name: str | int = "TERM",
    grace: float = 10.0,
    *,
    scan_env: bool = True,
    poll: float = 0.05,
    mark: Mark | None = None,
) -> KillReport:
    """Send ``signal_name`` to every run's whole tree, SIGKILL what is left after ``grace`` s; see module doc."""
    sig = platform.parse_signal(signal_name)
    started = time.monotonic()
    me = os.getpid()
    groups = {run: g for run, g in scope.groups.items() if g.exists()}
    # Never freeze or cgroup.kill a group the caller is in (it would freeze or kill itself).
    usable = [g for g in groups.values() if me not in g.pids()]
    own = groups.get(scope.current or "")
    report = KillReport(signal=sig.name, cgroup=None if own is None else str(own.path), cgroups=len(groups))
    scope = Scope(scope.ids, scope.instances, groups, scope.current)
    tracked: dict[int, ProcessId] = {}
    stopped: dict[int, ProcessId] = {}

    def find() -> dict[int, Found]:
        return _find(scope, scan_env)

    # 1. freeze (and mark), signal everything found, thaw
    frozen = cgroups.freeze_all(usable)
    report.froze = bool(frozen)
    try:
        targets = find()
        if mark is not None:
            in_frozen = set[int]().union(*(g.pids() for g in frozen))
            for _ in range(STOP_ROUNDS):  # stop what a frozen group does not hold: it can fork no more
                loose = {p: f for p, f in targets.items() if p not in in_frozen and p not in stopped}
                if not loose:
                    break
                for pid, f in loose.items():
                    if platform.send_signal(pid, signal.SIGSTOP, f.ident.alive):
                        stopped[pid] = f.ident
                targets = find()
            report.stopped = len(stopped)
            try:
                mark()
            except Exception as err:  # the mark is the caller's; the kill goes on whatever became of it
                report.note = f"marking failed: {err}"
        agent = scope.ids.agent
        if (
            agent is not None
            and agent.alive()
            and platform.process_group(agent.pid) == agent.pid
            and os.getpgrp() != agent.pid  # the caller is in that group: signal the others one by one
        ):
            # One killpg for the agent's group; its members found above are not signalled twice (a second
            # SIGINT can mean "force quit" to an agent).
            members = {p for p in targets if platform.process_group(p) == agent.pid}
            try:
                os.killpg(agent.pid, sig)
                report.group = agent.pid
            except OSError:
                members = set()
            if report.group is not None and _needs_cont(sig):
                with contextlib.suppress(OSError):  # the group may already be gone
                    os.killpg(agent.pid, signal.SIGCONT)
            for pid in members:
                f = targets.pop(pid)
                tracked[pid] = f.ident
                report.signalled[pid] = f.source
                if f.run is not None and f.run not in report.runs:
                    report.runs.append(f.run)
        if sig == signal.SIGKILL:
            for g in usable:
                g.kill()
        _send(report, tracked, targets, sig)
    finally:
        for g in frozen:
            g.thaw()
        for pid, ident in stopped.items():  # sent after the signal: a pending SIGTERM is delivered now
            platform.send_signal(pid, signal.SIGCONT, ident.alive)

    # 2. grace: wait, signalling newcomers (forked while the signal was handled). The first looks come
    # soon (most trees end within milliseconds of the signal), then every ``poll`` s.
    deadline = started + grace
    pause = POLL_FIRST
    while True:
        current_found = find()
        newcomers = {p: f for p, f in current_found.items() if not f.ident.same_process(tracked.get(p))}
        _send(report, tracked, newcomers, sig)
        if not current_found and not _alive(tracked):
            break
        if time.monotonic() >= deadline:
            break
        time.sleep(min(pause, poll, max(0.0, deadline - time.monotonic())))
        pause *= 2

    # 3. SIGKILL whatever is left (what the last look found, just now)
    remaining = current_found
    if remaining or _alive(tracked):
        report.escalated = sorted(set(remaining) | set(_alive(tracked)))
        killable = [g for g in usable if g.kill()]
        frozen = cgroups.freeze_all([g for g in usable if g not in killable])
        try:
            for pid in _alive(tracked):
                platform.send_signal(pid, signal.SIGKILL, tracked[pid].alive)
            _send(report, tracked, remaining, signal.SIGKILL)
        finally:
            for g in frozen:
                g.thaw()
        kill_deadline = time.monotonic() + KILL_WAIT
        while True:
            current_found = find()
            _send(report, tracked, current_found, signal.SIGKILL)
            if (not current_found and not _alive(tracked)) or time.monotonic() >= kill_deadline:
                break
            time.sleep(0.02)

    report.survivors = sorted(set(_alive(tracked)) | set(current_found))  # the last look was the check
    if not report.survivors:
        for g in groups.values():
            g.remove(timeout=0.5 if g is own else 0.1)
    report.cgroups_left = sorted(str(g.path) for g in groups.values() if g.exists())
    report.cgroup_removed = own is not None and not own.exists()
    report.elapsed = time.monotonic() - started
    return report


def kill_run(
    run_dir: Path,
    signal_name: str | int = "TERM",
    grace: float = 10.0,
    *,
    use_cgroup: bool = True,
    scan_env: bool = True,
    mark: Mark | None = None,
) -> KillReport:
    """Stop every run recorded in ``run_dir`` using only its files (no daemon, no store).

    Writes ``killed`` in the run folder first (when the agent is alive), so the exit status ``128+N`` the
    keeper records next can be told from a crash. ``mark`` is called exactly once, while the agent's
    processes are frozen (see the module doc), also when nothing of the agent runs. A folder with no run
    in it gives an empty report with a ``note``; without ``run.json`` (only pid files) the agent's identity
    and descendants are still used.
    """
    run_dir = Path(run_dir)
    info = read_run_info(run_dir)
    runs = read_runs(run_dir)
    ids = RunIdentities(keeper=read_pid_file(run_dir / KEEPER_PID), agent=read_pid_file(run_dir / AGENT_PID))
    sig = platform.parse_signal(signal_name)
    if not runs and ids.agent is None:
        if mark is not None:
            mark()
        return KillReport(signal=sig.name, note=f"no agent run recorded in {run_dir}")
    expected = info is not None and read_exit(run_dir) is None
    if expected and ids.agent is not None and ids.agent.alive():
        mark_killed(run_dir, sig)
    scope = Scope(
        ids,
        frozenset(r.instance for r in runs),
        {r.instance: r.cgroup for r in runs if r.cgroup is not None and use_cgroup},
        None if info is None else info.instance,
    )
    report = _kill(scope, sig, grace, scan_env=scan_env, mark=mark)
    if expected and not report.signalled:  # it may have just ended: give its keeper a moment to say so
        keeper = ids.keeper
        deadline = time.monotonic() + SETTLE
        while read_exit(run_dir) is None and keeper is not None and keeper.alive() and time.monotonic() < deadline:
            time.sleep(0.01)
        expected = read_exit(run_dir) is None
    report.expected = expected
    if expected and not report.signalled:
        report.note = (
            f"run {info.instance if info else '?'} is recorded as running in {run_dir} (no exit "
            "status), but no process of it was found"
        )
    with contextlib.suppress(OSError):
        prune_runs(run_dir, settled=scan_env and not report.survivors)
    return report
