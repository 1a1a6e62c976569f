"""Find and stop an agent's whole process tree — with or without a daemon.

``kill_run(run_dir)`` needs nothing but the run folder (``run.json``, ``keeper.pid``, ``agent.pid``), so
``tether kill`` works while the daemon is dead or SIGSTOPped. It calls ``kill_tree``, which:

1. freezes the run's cgroup (when one exists and the caller is not inside it) so nothing forks meanwhile;
2. signals the agent's process group, then every process found by (a) the cgroup, (b) a scan for
   ``TETHER_INSTANCE=<instance>`` in each process's environment (finds descendants that called ``setsid``
   or double-forked when there is no cgroup), (c) the descendants of everything found so far; thaws;
3. waits up to ``grace`` seconds, signalling newcomers, then SIGKILLs whatever remains (``cgroup.kill``
   on cgroup v2) and waits briefly for it to go;
4. removes the cgroup when empty and reports what was signalled and what survived (normally nothing).

Only processes verified by identity (boot id + start time), cgroup membership, environment or descent from
a verified process are signalled, each through a pidfd so a PID reused meanwhile is never hit; never PID
0 or 1, the caller itself, or the keeper (it must live on to record the exit status).
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, overload

from tether.process import platform
from tether.process.cgroup import AgentCgroup
from tether.process.identity import ProcessId, read_pid_file
from tether.process.rundir import AGENT_PID, KEEPER_PID, mark_killed, read_exit, read_run_info

INSTANCE_VAR = "TETHER_INSTANCE"
KILL_WAIT = 2.0  # how long to wait for SIGKILLed processes to disappear


@dataclass(frozen=True)
class RunIdentities:
    keeper: ProcessId | None
    agent: ProcessId | None


@dataclass(frozen=True)
class Found:
    ident: ProcessId
    source: str  # "agent" | "cgroup" | "env" | "descendant"


@dataclass
class KillReport:
    signal: str
    signalled: dict[int, str] = field(default_factory=dict)  # pid -> how it was found
    group: int | None = None  # the process group signalled with killpg, if any
    escalated: list[int] = field(default_factory=list)  # still alive after grace: got SIGKILL
    survivors: list[int] = field(default_factory=list)  # still alive at the end (should be empty)
    cgroup: str | None = None
    froze: bool = False
    cgroup_removed: bool = False
    elapsed: float = 0.0
    note: str | None = None

    @property
    def ok(self) -> bool:
        return not self.survivors

    def to_dict(self) -> dict[str, Any]:
        return {
            "signal": self.signal,
            "signalled": {str(k): v for k, v in sorted(self.signalled.items())},
            "group": self.group,
            "escalated": self.escalated,
            "survivors": self.survivors,
            "cgroup": self.cgroup,
            "froze": self.froze,
            "cgroup_removed": self.cgroup_removed,
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
    """Every live (non-zombie) process of the run, each with its identity and how it was found."""
    protected = _protected(ids)
    found: dict[int, Found] = {}

    def add(pid: int, source: str, ident: ProcessId | None = None) -> None:
        if pid in protected or pid in found:
            return
        ident = ident if ident is not None else ProcessId.of(pid)
        if ident is None or platform.is_zombie(pid):
            return
        found[pid] = Found(ident, source)

    if ids.agent is not None and ids.agent.alive():
        add(ids.agent.pid, "agent", ids.agent)
    if cgroup is not None:
        for pid in sorted(cgroup.pids()):
            add(pid, "cgroup")
    if scan_env and instance:
        for pid in platform.pids_with_env(INSTANCE_VAR, instance):
            add(pid, "env")
    if found:
        children = platform.children_map()
        queue = list(found)
        while queue:
            parent = queue.pop()
            for child in children.get(parent, []):
                if child not in found and child not in protected:
                    add(child, "descendant")
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
) -> KillReport: ...


def kill_tree(target: RunIdentities | Path | str, *args: Any, **kwargs: Any) -> KillReport:
    """Stop a run's whole tree. Two forms:

    - ``kill_tree(identities, instance, signal_name, grace, cgroup=..., scan_env=...)``: from identities
      (see ``_kill_identities``);
    - ``kill_tree(run_dir, signal_name, grace)``: from a run folder's files, the same as ``kill_run``.
    """
    if isinstance(target, RunIdentities):
        return _kill_identities(target, *args, **kwargs)
    return kill_run(Path(target), *args, **kwargs)


def _kill_identities(
    identities: RunIdentities,
    instance: str | None,
    signal_name: str | int = "TERM",
    grace: float = 10.0,
    *,
    cgroup: AgentCgroup | None = None,
    scan_env: bool = True,
    poll: float = 0.05,
) -> KillReport:
    """Send ``signal_name`` to the run's whole tree, SIGKILL what is left after ``grace`` s; see module doc.

    ``cgroup=None`` disables the cgroup path, ``scan_env=False`` the environment scan.
    """
    sig = platform.parse_signal(signal_name)
    started = time.monotonic()
    me = os.getpid()
    cg = cgroup if cgroup is not None and cgroup.exists() else None
    # Never freeze or cgroup.kill a group the caller is in (it would freeze or kill itself).
    cg_usable = cg is not None and me not in cg.pids()
    report = KillReport(signal=sig.name, cgroup=None if cg is None else str(cg.path))
    tracked: dict[int, ProcessId] = {}

    def find() -> dict[int, Found]:
        return find_tree(identities, instance, cg, scan_env=scan_env)

    # 1. freeze, signal everything found, thaw
    froze = cg is not None and cg_usable and cg.freeze()
    report.froze = froze
    try:
        targets = find()
        agent = identities.agent
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
        if sig == signal.SIGKILL and cg is not None and cg_usable:
            cg.kill()
        _send(report, tracked, targets, sig)
    finally:
        if froze and cg is not None:
            cg.thaw()

    # 2. grace: wait, signalling newcomers (forked while the signal was handled)
    deadline = started + grace
    while True:
        current = find()
        newcomers = {p: f for p, f in current.items() if not f.ident.same_process(tracked.get(p))}
        _send(report, tracked, newcomers, sig)
        if not current and not _alive(tracked):
            break
        if time.monotonic() >= deadline:
            break
        time.sleep(min(poll, max(0.0, deadline - time.monotonic())))

    # 3. SIGKILL whatever is left
    remaining = find()
    if remaining or _alive(tracked):
        report.escalated = sorted(set(remaining) | set(_alive(tracked)))
        killed_group = cg is not None and cg_usable and cg.kill()
        froze = not killed_group and cg is not None and cg_usable and cg.freeze()
        try:
            for pid in _alive(tracked):
                platform.send_signal(pid, signal.SIGKILL, tracked[pid].alive)
            _send(report, tracked, remaining, signal.SIGKILL)
        finally:
            if froze and cg is not None:
                cg.thaw()
        kill_deadline = time.monotonic() + KILL_WAIT
        while True:
            current = find()
            _send(report, tracked, current, signal.SIGKILL)
            if (not current and not _alive(tracked)) or time.monotonic() >= kill_deadline:
                break
            time.sleep(0.02)

    report.survivors = sorted(set(_alive(tracked)) | set(find()))
    if cg is not None and not report.survivors:
        report.cgroup_removed = cg.remove(timeout=0.5)
    report.elapsed = time.monotonic() - started
    return report


def kill_run(
    run_dir: Path,
    signal_name: str | int = "TERM",
    grace: float = 10.0,
    *,
    use_cgroup: bool = True,
    scan_env: bool = True,
) -> KillReport:
    """Stop the run recorded in ``run_dir`` using only its files (no daemon, no store).

    Writes ``killed`` in the run folder first (when the agent is alive), so the exit status ``128+N`` the
    keeper records next can be told from a crash. A folder with no run in it gives an empty report with a
    ``note``; without ``run.json`` (only pid files) the agent's identity and descendants are still used.
    """
    run_dir = Path(run_dir)
    info = read_run_info(run_dir)
    ids = RunIdentities(keeper=read_pid_file(run_dir / KEEPER_PID), agent=read_pid_file(run_dir / AGENT_PID))
    if info is None and ids.agent is None:
        return KillReport(signal=platform.parse_signal(signal_name).name, note=f"no agent run recorded in {run_dir}")
    if read_exit(run_dir) is None and (ids.agent is not None and ids.agent.alive()):
        mark_killed(run_dir, platform.parse_signal(signal_name))
    return _kill_identities(
        ids,
        None if info is None else info.instance,
        signal_name,
        grace,
        cgroup=info.cgroup if info is not None and use_cgroup else None,
        scan_env=scan_env,
    )
