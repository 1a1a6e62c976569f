"""The reboot drill: the power goes. Evidence is made first (a queued task, a pending approval with a
waiter held on it, every log's size and digest, every repo's HEAD, the newest event), then the daemon,
every keeper and every agent (with its descendants) are SIGKILLed at once, and the daemon is started the
way its service would start it (``python -m tether -f RUNBOOK up``). Pass when the store, the task, every
pending approval, every log line and every repo's commits survived, no git lock was left behind, and each
agent that should run runs again (within its backoff). The drill then denies its approval and cancels its
task.

One ``Result`` per agent: what the whole host kept decides each, plus the agent's own logs and restart.
A host reboot brings even ``restart: never`` agents back (their run is from a previous boot); this one
cannot change the boot id, so such an agent may stay stopped, which the drill accepts.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tether import process
from tether.drills.base import Host, Result, Trace, expected_restart_delay, first_line, wait_until
from tether.drills.break_test import _git, repos_of
from tether.errors import TetherError
from tether.host.service import UNIT_NAME
from tether.killswitch import engaged
from tether.process import ProcessId, platform
from tether.process.rundir import AGENT_PID, KEEPER_PID, read_run_info
from tether.process.tree import RunIdentities, find_tree

#: How long agents may take to run again beyond their backoff, and the most the drill waits for them.
SETTLE = 15.0
MAX_WAIT = 60.0
#: How long the daemon may take to come back.
DAEMON_WAIT = 30.0
#: Approvals due to expire sooner than this are not expected to survive (they may expire meanwhile).
APPROVAL_HORIZON = 300.0
DETAIL = "tether drill: reboot evidence (denied by the drill)"


@dataclass(frozen=True)
class LogMark:
    stream: str
    inode: int
    size: int
    digest: str
    lines: int


@dataclass(frozen=True)
class RepoMark:
    git_dir: Path
    head: str
    ref: str | None


@dataclass
class Before:
    task: int | None
    approval: int | None
    last_event: int
    queued: dict[int, str]
    pending: set[int]
    logs: dict[str, list[LogMark]]
    repos: dict[Path, RepoMark]
    instances: dict[str, str | None]
    expect: dict[str, bool]
    delays: dict[str, float]


def run(host: Host, agents: list[str]) -> list[Result]:
    traces = {a: Trace(a, "reboot") for a in agents}
    info = host.daemon()
    if info is None:
        return [t.failed(f"no daemon runs for {host.state.root}: nothing to reboot (`tether up`)")
                for t in traces.values()]
    notes: list[str] = []
    before = _evidence(host, agents, notes)
    waiter = _hold(host, before.approval)

    manager = service_manager(int(info["pid"]))
    survivors = crash(host, int(info["pid"]))
    crashed_at = time.time()
    for t in traces.values():
        t.mark("crash_s")
    host_problems = []
    if survivors:
        host_problems.append(f"pid(s) {', '.join(map(str, survivors))} survived SIGKILL")
    for repo, mark in before.repos.items():
        if (mark.git_dir / "index.lock").exists():
            lock = mark.git_dir / "index.lock"
            host_problems.append(f"the crash left {lock}: git in {repo} fails until it is removed")
    cursor = host.cursor()
    back = start_daemon(host, int(info["pid"]), manager)
    if isinstance(back, str):
        return [t.failed(f"everything SIGKILLed; the daemon did not come back: {back}") for t in traces.values()]
    back_s = time.time() - crashed_at
    for t in traces.values():
        t.mark("daemon_back_s", back_s)
    started = host.wait_event(cursor, None, ["daemon.started"], 5.0)
    if started is not None:
        for t in traces.values():
            t.cite(started.id)
    host_problems += _host_kept(host, before)
    agent_problems, agent_notes = _agents_back(host, traces, before, cursor, crashed_at)
    if waiter.ident is not None:  # started only when an approval could be made pending
        waiter.join(timeout=1.0)
    _clean_up(host, agents[0], before)

    how = f"by {manager}" if manager else "as `tether up`"
    kept = (f"daemon and every keeper and agent SIGKILLed; back in {back_s:.1f}s {how} "
            f"(pid {back['pid']}); kept: the store (event {before.last_event})")
    if before.task is not None:
        kept += f", task {before.task}"
    if before.pending:
        kept += f", {len(before.pending)} pending approval(s)"
    if before.repos:
        kept += f", {len(before.repos)} repo HEAD(s)"
    results = []
    for agent, t in traces.items():
        if before.task is not None and agent == agents[0]:
            t.cite(before.task)
        if before.approval is not None and agent == agents[0]:
            t.cite(before.approval)
        problems = host_problems + agent_problems.get(agent, [])
        extra = "; ".join(notes + agent_notes.get(agent, []))
        if problems:
            results.append(t.failed("; ".join(problems) + (f" ({extra})" if extra else "")))
        else:
            results.append(t.passed(kept + (f"; {extra}" if extra else "")))
    return results


# -- before ---------------------------------------------------------------------------------------------------


def _evidence(host: Host, agents: list[str], notes: list[str]) -> Before:
    target = agents[0]
    task: int | None = None
    try:
        task = int(host.api("POST", f"/v1/agents/{target}/tasks",
                            {"text": f"tether drill {host.run_id}: reboot evidence (cancelled by the drill)"})["id"])
    except TetherError as err:
        notes.append(f"no task could be queued ({err})")
    approval: int | None = None
    try:
        got = host.api("POST", f"/v1/agents/{target}/check",
                       # a path of this run's own: the protected-file drill's denial of .env answers its
                       # identical retry at once (approvals mean once), with no approval to hold
                       {"path": str(host.cwd(target) / f".env.drill-{host.run_id}"), "op": "write",
                        "detail": DETAIL})
        if got.get("decision") == "pending":
            approval = int(got["approval_id"])
        else:
            notes.append(f"no approval could be made pending (the check said {got.get('decision')})")
    except TetherError as err:
        notes.append(f"no approval could be made pending ({err})")
    store = host.store
    horizon = time.time() + APPROVAL_HORIZON
    pending = {int(a["id"]) for a in store.approvals("pending") if a["expires"] is None or a["expires"] > horizon}
    queued = {t.id: t.state for t in store.tasks(states=["queued"])}
    logs = {a: log_marks(host.state.log_dir(a)) for a in host.agents}
    repos: dict[Path, RepoMark] = {}
    for a in host.agents:
        for repo in repos_of(host, a):
            mark = repo_mark(repo)
            if mark is not None:
                repos.setdefault(repo, mark)
    instances: dict[str, str | None] = {}
    expect: dict[str, bool] = {}
    delays: dict[str, float] = {}
    for a in host.agents:
        handle = process.adopt(host.run_dir(a))
        alive = handle is not None and handle.agent_alive()
        instances[a] = handle.instance if handle is not None and alive else None
        row = store.agent(a) or {}
        wanted = row.get("desired") in (None, "running") and engaged(host.state, a) is None
        expect[a] = alive or (wanted and row.get("state") not in ("stopped", "crashloop", "killed"))
        delays[a] = expected_restart_delay(host.state.agent_dir(a), host.spec(a), None)
    return Before(task, approval, host.cursor(), queued, pending, logs, repos, instances, expect, delays)


def _hold(host: Host, approval: int | None) -> threading.Thread:
    """A waiter held on the approval (as an agent waiting for a human would be) when the power goes."""

    def wait() -> None:
        with contextlib.suppress(Exception):
            host.api("GET", f"/v1/approvals/{approval}/wait?timeout=600", timeout=620)

    thread = threading.Thread(target=wait, name="tether-drill-waiter", daemon=True)
    if approval is not None:
        thread.start()
        time.sleep(0.1)
    return thread


def log_marks(log_dir: Path) -> list[LogMark]:
    marks = []
    for stream in ("stdout", "stderr"):
        path = log_dir / f"{stream}.log"
        try:
            with open(path, "rb") as f:
                inode = os.fstat(f.fileno()).st_ino
                data = f.read()
        except OSError:
            continue
        marks.append(LogMark(stream, inode, len(data), hashlib.sha256(data).hexdigest(), data.count(b"\n")))
    return marks


def repo_mark(repo: Path) -> RepoMark | None:
    head = _git(repo, "rev-parse", "-q", "--verify", "HEAD")
    git_dir = _git(repo, "rev-parse", "--absolute-git-dir")
    if head.returncode != 0 or git_dir.returncode != 0:
        return None
    ref = _git(repo, "symbolic-ref", "-q", "HEAD")
    return RepoMark(Path(git_dir.stdout.strip()), head.stdout.strip(),
                    ref.stdout.strip() if ref.returncode == 0 and ref.stdout.strip() else None)


# -- the power goes -------------------------------------------------------------------------------------------


def _daemon_holds_lock(host: Host) -> bool:
    """Whether some process holds the daemon's lock (so ``daemon.json``'s pid is a live daemon's)."""
    try:
        fd = os.open(host.state.lock, os.O_RDWR | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)  # closing releases a lock we may have taken
    return False


def crash(host: Host, daemon_pid: int) -> list[int]:
    """SIGKILL the daemon, then every keeper, then every agent's tree (found from the run folders, by
    identity); return the pids still alive after."""
    victims: list[ProcessId] = []
    ident = ProcessId.of(daemon_pid)
    if ident is not None and _daemon_holds_lock(host):
        victims.append(ident)
    trees: list[ProcessId] = []
    for agent in host.agents:
        run_dir = host.run_dir(agent)
        keeper = process.read_pid_file(run_dir / KEEPER_PID)
        agent_id = process.read_pid_file(run_dir / AGENT_PID)
        info = read_run_info(run_dir)
        if keeper is not None and keeper.alive():
            victims.append(keeper)
        found = find_tree(RunIdentities(keeper, agent_id), None if info is None else info.instance,
                          None if info is None else info.cgroup)
        trees += [f.ident for f in found.values()]
    victims += trees
    for v in victims:
        platform.send_signal(v.pid, signal.SIGKILL, v.alive)
    wait_until(lambda: not any(v.alive() for v in victims), 5.0, 0.02)
    return sorted(v.pid for v in victims if v.alive())


def service_manager(pid: int) -> str | None:
    """The service manager that runs the daemon and restarts it by itself: systemd when the daemon is in the
    ``tether.service`` unit's cgroup (its environment is no sign: a shell under any unit inherits
    ``INVOCATION_ID``)."""
    try:
        with open(f"/proc/{pid}/cgroup") as f:
            paths = [line.rstrip("\n").split(":", 2)[-1] for line in f]
    except OSError:
        return None
    if any(p.rstrip("/").endswith("/" + UNIT_NAME) for p in paths):
        return "systemd"
    return None


def start_daemon(host: Host, old_pid: int, manager: str | None = None) -> dict[str, Any] | str:
    """The daemon back as its service brings it back: by its service manager when one runs it (``Restart=
    always``), else ``python -m tether -f RUNBOOK up`` (what the service runs); its ``daemon.json`` once it
    answers, or why it did not come back."""

    def fresh() -> dict[str, Any] | None:
        info = host.daemon()
        return info if info is not None and info.get("pid") != old_pid else None

    if manager is not None:
        info = wait_until(fresh, DAEMON_WAIT, 0.05)
        return info if info is not None else f"{manager} did not start it again within {DAEMON_WAIT:g}s"
    try:
        proc = subprocess.run([sys.executable, "-m", "tether", "-f", str(host.loaded.path), "up"],
                              capture_output=True, text=True, timeout=DAEMON_WAIT + 30, stdin=subprocess.DEVNULL,
                              env=host.daemon_env)
    except subprocess.TimeoutExpired:
        return f"`tether up` did not return within {DAEMON_WAIT + 30:g}s"
    if proc.returncode != 0:
        return first_line(proc.stderr or proc.stdout or f"`tether up` exited {proc.returncode}")
    info = wait_until(fresh, DAEMON_WAIT, 0.05)
    return info if info is not None else f"no daemon answered within {DAEMON_WAIT:g}s of `tether up`"


# -- after ----------------------------------------------------------------------------------------------------


def _host_kept(host: Host, before: Before) -> list[str]:
    store = host.store
    problems = []
    last = store.events(None, after=before.last_event - 1, limit=1)
    if not last or last[0].id != before.last_event:
        problems.append(f"the store lost events (event {before.last_event} is gone)")
    for task_id, state in before.queued.items():
        task = store.task(task_id)
        if task is None:
            problems.append(f"task {task_id} ({state} before) is gone")
        elif task.state not in ("queued", "started", "done", "failed"):
            problems.append(f"task {task_id} was {state} and is now {task.state}")
    for approval_id in sorted(before.pending):
        row = store.approval(approval_id)
        if row is None or row["state"] != "pending":
            problems.append(f"approval {approval_id} was pending and is now {None if row is None else row['state']}")
    for repo, mark in before.repos.items():
        if _git(repo, "cat-file", "-e", f"{mark.head}^{{commit}}").returncode != 0:
            problems.append(f"{repo}: commit {mark.head[:12]} (HEAD before) is gone")
        elif mark.ref is not None and _git(repo, "merge-base", "--is-ancestor", mark.head, mark.ref).returncode != 0:
            problems.append(f"{repo}: {mark.ref} no longer holds {mark.head[:12]}")
    return problems


def _agents_back(
    host: Host, traces: dict[str, Trace], before: Before, cursor: int, crashed_at: float
) -> tuple[dict[str, list[str]], dict[str, list[str]]]:
    problems: dict[str, list[str]] = {a: [] for a in traces}
    notes: dict[str, list[str]] = {a: [] for a in traces}
    begun = time.monotonic()
    waiting = {a for a in traces if before.expect.get(a)}
    deadline = {a: begun + min(before.delays[a] + SETTLE, MAX_WAIT) for a in waiting}
    never = {a for a in waiting if host.spec(a).restart.policy == "never"}
    while waiting:
        for a in sorted(waiting):
            handle = process.adopt(host.run_dir(a))
            if handle is not None and handle.agent_alive() and handle.instance != before.instances.get(a):
                waiting.discard(a)
                traces[a].mark("running_again_s", time.time() - crashed_at)
                notes[a].append(f"running again {time.time() - crashed_at:.1f}s after the crash")
                for e in host.events(cursor, a, ["agent.started", "agent.exited"]):
                    traces[a].cite(e.id)
                continue
            states = host.events(cursor, a, ["agent.state"])
            halted = [e for e in states if e.data.get("state") in ("crashloop", "killed")]
            if a in never and any(e.data.get("state") == "stopped" for e in states):
                waiting.discard(a)
                notes[a].append("restart policy never: stays stopped after a crash of this boot "
                                "(a real reboot starts it again)")
            elif halted:
                waiting.discard(a)
                traces[a].cite(halted[0].id)
                problems[a].append(f"{a} did not run again: {halted[0].data.get('state')} "
                                   f"({halted[0].data.get('reason') or '-'})")
            elif time.monotonic() >= deadline[a]:
                waiting.discard(a)
                row = host.store.agent(a) or {}
                problems[a].append(f"{a} did not run again within {deadline[a] - begun:.0f}s "
                                   f"(state {row.get('state')}: {row.get('reason') or '-'})")
        if waiting:
            time.sleep(0.1)
    for a in traces:
        if not before.expect.get(a):
            notes[a].append("was not running before and is not expected to run")
        lost = log_lost(host.state.log_dir(a), before.logs.get(a, []))
        if lost:
            problems[a].append(lost)
        else:
            lines = sum(m.lines for m in before.logs.get(a, []))
            notes[a].append(f"its logs kept ({lines} line(s) from before)")
    return problems, notes


def log_lost(log_dir: Path, marks: list[LogMark]) -> str | None:
    """What of the logs written before the crash is missing now, or None (a rotated file is found by inode)."""
    for m in marks:
        found = None
        with contextlib.suppress(OSError):
            for entry in log_dir.iterdir():
                if entry.name.startswith(m.stream + ".log") and entry.stat().st_ino == m.inode:
                    found = entry
                    break
        if found is None:
            return f"{m.stream}.log as it was before the reboot is gone from {log_dir}"
        with open(found, "rb") as f:
            data = f.read(m.size)
        if len(data) < m.size or hashlib.sha256(data).hexdigest() != m.digest:
            return f"{found.name} lost or changed lines written before the reboot"
    return None


def _clean_up(host: Host, agent: str, before: Before) -> None:
    if before.approval is not None:
        with contextlib.suppress(TetherError):
            host.api("POST", f"/v1/approvals/{before.approval}/deny", {"reason": "drill"})
    if before.task is not None:
        task = host.store.task(before.task)
        if task is not None and task.state == "queued":
            host.emit("task.cancelled", agent, task_id=before.task, text=task.text,
                      note="tether drill: reboot evidence, cancelled by the drill")
