"""Spawn an agent under its keeper, and re-attach to it after a daemon restart.

Process tree of one run::

    daemon (Python)                       may die, restart, be SIGSTOPped
      └─ keeper.sh (dash, own session)     ~1 MB; ignores HUP/INT/QUIT/TERM/PIPE; writes the run folder
           ├─ agent (own process group)    stdout/stderr straight to the O_APPEND log files
           │    └─ …descendants            all inherit TETHER_INSTANCE and stay in the run's cgroup
           └─ 2 × sed (when redacting)      redact the agent's stdout/stderr (FIFOs) into the log files

The daemon holds no pipe to the keeper (stdin is /dev/null, its output goes to ``keeper.log``), so a
SIGKILLed daemon loses no line and no exit code.

An agent whose output is redacted (``SpawnSpec.redact`` not None: every agent the daemon runs) writes to
two FIFOs instead, each read by a line-flushing ``sed`` (about 1 MB each; no Python) that replaces every
secret value by ``[REDACTED:secret]`` and everything shaped like a credential by ``[REDACTED:<kind>]``
(both from ``tether.redact``, which ``tether logs`` and the API apply too) and appends to the log file: no
value reaches the disk, a line is in the log as soon as the agent ends it, a last line without newline is
kept, and the filters, the keeper's children in its session, outlive the daemon too. Their script
(``redact.sed``, mode 0600) holds the values: the keeper opens it for the filters, and ``spawn`` removes it
(and the FIFOs, once both ends are open) before it returns; no value is ever on a command line. The cost
at each start and end is about a millisecond (the filters start beside the agent; the keeper waits for
their end with ``wait``, not a poll). After a restart, ``adopt(run_dir)`` re-attaches by the
identities in ``keeper.pid``/``agent.pid`` (boot id + start time, never a bare PID), and ``wait_exit``
learns of the end through a pidfd (event-driven; a short poll only where pidfds are missing).

run_as: the keeper stays root (it writes the root-owned run folder and the cgroup); the launcher drops to
the user right before exec, so the agent and everything it starts run as that user. The log files are
opened by the keeper, so they stay owned by the daemon's user while the agent can still append to them.
"""

from __future__ import annotations

import contextlib
import functools
import os
import pwd
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from tether import redact
from tether.filelock import flock_within
from tether.process import cgroup as cgroups
from tether.process import platform
from tether.process.errors import AlreadyRunning, SpawnError
from tether.process.identity import ProcessId, read_pid_file
from tether.process.logindex import mark_run
from tether.process.rundir import (
    AGENT_PID,
    KEEPER_LOG,
    KEEPER_PID,
    RUN_JSON,
    SPAWN_LOCK,
    STALE,
    RunInfo,
    read_exit,
    read_killed,
    read_run_info,
    signal_of,
    sync_run_info,
    write_run_info,
)
from tether.process.tree import KillReport, RunIdentities, kill_run
from tether.redact import MARKER

KEEPER_SH = Path(__file__).with_name("keeper.sh")
LAUNCH_PY = Path(__file__).with_name("launch.py")
SHELL = "/bin/sh"
INSTANCE_VAR = "TETHER_INSTANCE"
CANCEL_SLICE = 0.05  # how often wait_ended looks at its cancel event
REDACT_SED = "redact.sed"  # the log filters' script (the secret values), in the run folder
REDACTED = MARKER  # what tether.redact writes for a registered secret value
PIPES = ("stdout.pipe", "stderr.pipe")  # the agent's output on its way to the filters


LOGINUID_VAR = "TETHER_LOGINUID"


@dataclass
class SpawnSpec:
    """What to run and where. ``env`` None means the daemon's own environment; ``TETHER_INSTANCE`` is always
    set to ``instance`` for the agent. ``cgroup`` picks the hierarchy (``"none"`` disables it). ``redact``:
    literal values (secrets) replaced by ``REDACTED`` in the log files as the agent writes them, with every
    credential pattern of ``tether.redact``; a value with newlines is matched line by line. None: the agent
    writes its log files itself (no filter)."""

    agent: str
    argv: list[str]
    run_dir: Path
    log_dir: Path
    cwd: str | os.PathLike[str] | None = None
    env: dict[str, str] | None = None
    user: str | None = None
    instance: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    cgroup: cgroups.Preference = "auto"
    redact: list[str] | None = None
    loginuid: int | None = None  # the run's own audit session (a root keeper sets its login uid to it)


class KeeperHandle:
    """One run: its keeper, its agent and its run folder. Cheap; every question reads the run folder."""

    def __init__(self, run_dir: Path, info: RunInfo | None, popen: subprocess.Popen[bytes] | None = None) -> None:
        self.run_dir = Path(run_dir)
        self.info = info
        self._popen = popen  # set when this process spawned the keeper (so it reaps it)
        self._keeper: ProcessId | None = None
        self._agent: ProcessId | None = None

    def __repr__(self) -> str:
        return f"KeeperHandle({str(self.run_dir)!r}, keeper={self.keeper_id}, agent={self._read_agent()})"

    # --- identities ----------------------------------------------------------------------------------------

    @property
    def instance(self) -> str | None:
        return None if self.info is None else self.info.instance

    @property
    def cgroup(self) -> cgroups.AgentCgroup | None:
        return None if self.info is None else self.info.cgroup

    @property
    def log_dir(self) -> Path | None:
        return None if self.info is None else self.info.log_dir

    @property
    def keeper_id(self) -> ProcessId | None:
        if self._keeper is None:
            self._keeper = read_pid_file(self.run_dir / KEEPER_PID)
        return self._keeper

    def _read_agent(self) -> ProcessId | None:
        if self._agent is None:
            self._agent = read_pid_file(self.run_dir / AGENT_PID)
        return self._agent

    def agent_id(self, timeout: float = 2.0) -> ProcessId | None:
        """The agent's identity, waiting up to ``timeout`` s for the keeper to write ``agent.pid``."""
        deadline = time.monotonic() + timeout
        while True:
            ident = self._read_agent()
            if ident is not None or time.monotonic() >= deadline or not self.keeper_alive():
                return ident if ident is not None else self._read_agent()
            time.sleep(0.005)

    def agent_pid(self, timeout: float = 2.0) -> int | None:
        ident = self.agent_id(timeout)
        return None if ident is None else ident.pid

    # --- state ---------------------------------------------------------------------------------------------

    def _reap(self) -> None:
        if self._popen is not None:
            self._popen.poll()

    def keeper_alive(self) -> bool:
        self._reap()
        ident = self.keeper_id
        return ident is not None and ident.alive()

    def agent_alive(self) -> bool:
        ident = self._read_agent()
        return ident is not None and ident.alive()

    def running(self) -> bool:
        """True while the keeper or the agent is alive (the agent counts even if its keeper was killed)."""
        return self.keeper_alive() or self.agent_alive()

    def exit_status(self) -> int | None:
        """The agent's exit status (``128+N`` for signal N) once the keeper recorded it; None before, and
        None for ever when the keeper was SIGKILLed before the agent ended (``lost()``)."""
        return read_exit(self.run_dir)

    def exit_signal(self) -> int | None:
        """The signal number behind an exit status of ``128+N`` (see ``rundir.signal_of`` for the caveat)."""
        return signal_of(self.exit_status())

    def killed_by(self) -> str | None:
        """The signal ``tether kill`` sent to this run (``"SIGTERM"``...), if it did."""
        return read_killed(self.run_dir)

    def lost(self) -> bool:
        """True when nothing runs any more and no exit status was recorded (the keeper was killed)."""
        return not self.running() and self.exit_status() is None

    # --- waiting -------------------------------------------------------------------------------------------

    def watch_fd(self) -> int | None:
        """A pidfd that becomes readable when the run ends (the keeper's; the agent's if the keeper is gone),
        for the daemon's event loop (``loop.add_reader``). The caller closes it. None when nothing runs or
        pidfds are unsupported (then poll ``running()``)."""
        for ident in (self.keeper_id, self._read_agent()):
            if ident is None:
                continue
            fd = platform.pidfd_open(ident.pid)
            if fd is None:
                continue
            if ident.alive():
                return fd
            os.close(fd)
        return None

    def wait_ended(self, timeout: float | None = None, cancel: threading.Event | None = None) -> bool:
        """Block until the run has ended (keeper and agent gone); True when it has, False when ``timeout``
        seconds passed or ``cancel`` was set first.

        Event-driven through pidfds, also when the keeper is not our child (after a daemon restart); with
        ``cancel`` the pidfd is polled in slices of ``CANCEL_SLICE`` s so a set event is seen promptly.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            if cancel is not None and cancel.is_set():
                return not self.running()
            self._reap()
            target = self.keeper_id if self.keeper_alive() else self._read_agent()
            if target is None or not target.alive():
                if not self.running():
                    self._reap()
                    return True
                if deadline is not None and time.monotonic() >= deadline:
                    return False
                time.sleep(0.001)
                continue
            remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
            step = remaining if cancel is None else min(CANCEL_SLICE, CANCEL_SLICE if remaining is None else remaining)
            done = platform.pidfd_wait(target.pid, step, target.alive)
            if done is None:  # no pidfds (macOS, old kernels): poll briefly
                time.sleep(0.02 if step is None else min(0.02, step))
            if deadline is not None and time.monotonic() >= deadline:
                self._reap()
                return not self.running()

    def wait_exit(self, timeout: float | None = None, cancel: threading.Event | None = None) -> int | None:
        """``wait_ended``, then the exit status: an int once the run ended and its status was recorded;
        None on timeout or cancel (``running()`` is then True) or when the status was lost (``lost()``)."""
        if not self.wait_ended(timeout, cancel):
            return None
        return self.exit_status()

    # --- stopping ------------------------------------------------------------------------------------------

    def identities(self) -> RunIdentities:
        return RunIdentities(keeper=self.keeper_id, agent=self._read_agent())

    def kill(self, signal_name: str = "TERM", grace: float = 10.0, *, use_cgroup: bool = True) -> KillReport:
        """Stop the agent's whole tree (see ``tree.kill_run``); the keeper then records the exit status."""
        report = kill_run(self.run_dir, signal_name, grace, use_cgroup=use_cgroup)
        self._reap()
        return report

    def cleanup(self) -> bool:
        """Remove the run's cgroup once the run ended and it is empty; True when nothing is left."""
        self._reap()
        if self.cgroup is None or not self.cgroup.exists():
            return True
        if self.running():
            return False
        return self.cgroup.remove(timeout=0.2)


# --- adopt and spawn ---------------------------------------------------------------------------------------------


def adopt(run_dir: Path) -> KeeperHandle | None:
    """Re-attach to the run recorded in ``run_dir``; None when the folder holds no run.

    The handle may describe a live run (``running()``), a finished one (``exit_status()`` read from ``exit``
    even when the keeper has long gone) or a lost one. Liveness is always by identity: a PID now used by
    another process, or recorded before a reboot, is never taken for the keeper or the agent.
    """
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        return None
    info = read_run_info(run_dir)
    handle = KeeperHandle(run_dir, info)
    if info is None and handle.keeper_id is None and handle._read_agent() is None and handle.exit_status() is None:
        return None
    return handle


def _spawn_lock(run_dir: Path, agent: str, timeout: float) -> contextlib.AbstractContextManager[None]:
    """Serialise spawns of one run folder."""
    return flock_within(run_dir / SPAWN_LOCK, timeout, 0.01,
                        lambda: AlreadyRunning(f"agent {agent!r} is being started by another process"))


def _check_user(user: str | None) -> None:
    if user is None:
        return
    try:
        pw = pwd.getpwnam(user)
    except KeyError:
        raise SpawnError(f"run_as user {user!r} does not exist; create it or change run_as") from None
    if os.geteuid() != 0 and pw.pw_uid != os.geteuid():
        raise SpawnError(f"run_as user {user!r} needs the daemon to run as root (it runs as uid {os.geteuid()})")


def _keeper_log_tail(run_dir: Path, limit: int = 400) -> str:
    try:
        text = (run_dir / KEEPER_LOG).read_text(errors="replace").strip()
    except OSError:
        return ""
    return text[-limit:].replace("\n", " | ")


_SED_SPECIAL = frozenset(b"\\/.[]*^$+?(){}|")


def redact_script(values: list[str]) -> bytes:
    """A sed -E script replacing each value (literally, bytewise under LC_ALL=C) by ``REDACTED`` (one
    alternation, longest first, so a value inside another is never half-replaced), then every credential
    pattern (``tether.redact.sed_script``): what ``tether.redact.redact`` does, in the same order."""
    parts = {p.encode("utf-8", "surrogateescape") for v in values for p in v.split("\n") if p}
    alts = [
        b"".join(b"\\%c" % c if c in _SED_SPECIAL else bytes((c,)) for c in p)
        for p in sorted(parts, key=lambda p: (-len(p), p))
    ]
    first = b"s/" + b"|".join(alts) + b"/" + REDACTED.encode() + b"/g\n" if alts else b""
    return redact.sed_script(first)


def _stdbuf_env(stdbuf: str, path: str) -> list[str]:
    """What ``stdbuf -oL`` sets for the program it runs (``LD_PRELOAD=.../libstdbuf.so``, ``_STDBUF_O=L``),
    so the keeper can set it itself and save an exec per filter (about 1 ms of CPU); [] if unknown."""
    try:
        got = subprocess.run([stdbuf, "-oL", "env"], capture_output=True, text=True, timeout=5, env={"PATH": path})
    except (OSError, subprocess.SubprocessError):
        return []
    found = [v for v in got.stdout.splitlines() if v.startswith(("LD_PRELOAD=", "_STDBUF_O="))]
    return found if len(found) == 2 and got.returncode == 0 else []


def filter_command(argv: Sequence[str], script: str) -> tuple[list[str], dict[str, str]]:
    """``log_filter()``'s command as the keeper runs it on ``script``: the argv and its environment."""
    n = next(i for i, a in enumerate(argv) if "=" not in a)
    return [*argv[n:], script], {**dict(a.split("=", 1) for a in argv[:n]), "LC_ALL": "C"}


@functools.cache
def log_filter() -> tuple[str, ...] | None:
    """The command the keeper runs per stream to redact (leading ``NAME=VALUE`` words are its environment;
    the keeper appends ``/dev/fd/N``, the script): ``sed -E`` with output flushed at each line and input
    read in blocks. None when there is no sed that runs the script as the keeper does (a value, a
    credential, a private key's block, a last line without newline)."""
    path = os.pathsep.join([os.environ.get("PATH", ""), "/usr/bin", "/bin"])
    sed, stdbuf = shutil.which("sed", path=path), shutil.which("stdbuf", path=path)
    candidates: list[list[str]] = []
    if sed is not None:
        if stdbuf is not None:  # GNU: -u would read a byte per syscall
            preload = _stdbuf_env(stdbuf, path)
            if preload:
                candidates.append([*preload, sed, "-E", "-f"])
            candidates.append([stdbuf, "-oL", sed, "-E", "-f"])
        candidates += [[sed, "-u", "-E", "-f"], [sed, "-l", "-E", "-f"]]  # GNU; BSD (macOS)
    value, token = "a.b/[x]|(y)\\", "tt_ag_0123abcd_" + "x" * 43
    given = f"1{value}2 {token}\n-----BEGIN RSA PRIVATE KEY-----\nAAAA\n-----END RSA PRIVATE KEY----- z\naXb{value[3:]}"
    pem = "[REDACTED:private-key]"
    wanted = f"1{REDACTED}2 [REDACTED:tether]\n{pem}\n{pem}\n{pem} z\naXb{value[3:]}"
    with tempfile.TemporaryFile() as script:
        script.write(redact_script([value]))
        script.flush()
        for argv in candidates:
            if any(":" in a for a in argv):
                continue
            command, env = filter_command(argv, f"/dev/fd/{script.fileno()}")
            script.seek(0)
            try:
                probe = subprocess.run(
                    command,
                    input=given.encode(),
                    pass_fds=(script.fileno(),),
                    capture_output=True,
                    env={**env, "PATH": path},
                    timeout=5,
                )
            except (OSError, subprocess.SubprocessError):
                continue
            if probe.returncode == 0 and probe.stdout == wanted.encode():
                return tuple(argv)
    return None


@functools.cache
def fast_launcher() -> tuple[str, ...] | None:
    """``env --default-signal setsid`` (coreutils ≥ 8.31, util-linux): the agent in its own session and
    process group with default signal dispositions, as ``launch.py`` does, without starting Python (about
    10 ms less per start). None where either is missing or behaves otherwise (macOS): then ``launch.py``."""
    path = os.pathsep.join([os.environ.get("PATH", ""), "/usr/bin", "/bin"])
    setsid, env = shutil.which("setsid", path=path), shutil.which("env", path=path)
    if setsid is None or env is None:
        return None
    # env first: the signals are default before setsid makes the process group that spawn() waits for,
    # so a kill right after spawn() returns is never ignored (the keeper ignores TERM, and so would a
    # process between its fork and the reset)
    argv = (env, "--default-signal", setsid)
    try:  # from a shell's background job that ignores INT, QUIT and TERM, as in the keeper: the same PID
        # all along, default dispositions, its own process group
        probe = subprocess.run(
            [
                SHELL,
                "-c",
                'trap "" INT QUIT TERM; (exec "$@") & echo $! >&2; wait',
                "sh",
                *argv,
                "--",
                SHELL,
                "-c",
                "echo $$; grep SigIgn /proc/$$/status; ps -o pgid= -p $$",
            ],
            capture_output=True,
            text=True,
            timeout=5,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    out = probe.stdout.split()
    ok = (
        probe.returncode == 0
        and len(out) == 4
        and out[1:3] == ["SigIgn:", "0000000000000000"]
        and out[0] == out[3] == probe.stderr.strip()
    )
    return argv if ok else None


def _remove(run_dir: Path, *names: str) -> None:
    for name in names:
        (run_dir / name).unlink(missing_ok=True)


def _prepare_filter(run_dir: Path, values: list[str] | None) -> str:
    """Write the filters' script (0600) and make their FIFOs; return the keeper's FILTER argument ("" for
    no filter)."""
    _remove(run_dir, REDACT_SED, *PIPES)
    if values is None:
        return ""
    argv = log_filter()
    if argv is None:
        raise SpawnError(
            "without a working sed the agent's output cannot be redacted as it is written; install sed (GNU or BSD)"
        )
    fd = os.open(run_dir / REDACT_SED, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(redact_script(values))
    for name in PIPES:
        os.mkfifo(run_dir / name, 0o600)
    return ":".join(argv)


def spawn(spec: SpawnSpec, *, timeout: float = 5.0) -> KeeperHandle:
    """Start ``spec.argv`` under a new keeper and return once the keeper wrote ``keeper.pid``/``agent.pid``.

    Raises ``AlreadyRunning`` when the run folder's previous keeper or agent is still alive, and
    ``SpawnError`` when the keeper cannot start or does not report in within ``timeout`` seconds.
    """
    if not spec.argv:
        raise SpawnError(f"agent {spec.agent!r} has an empty command")
    if not spec.instance or any(c in spec.instance for c in "\0=\n"):
        raise SpawnError(f"bad instance id {spec.instance!r}")
    _check_user(spec.user)
    run_dir, log_dir = Path(spec.run_dir), Path(spec.log_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    log_dir.mkdir(parents=True, exist_ok=True)

    with _spawn_lock(run_dir, spec.agent, timeout):
        previous = adopt(run_dir)
        if previous is not None and previous.running():
            k, a = previous.keeper_id, previous._read_agent()
            raise AlreadyRunning(
                f"agent {spec.agent!r} is already running (keeper pid {k.pid if k else '?'}, agent pid "
                f"{a.pid if a else '?'}); stop it with `tether kill {spec.agent}` first",
                keeper_pid=k.pid if k else None,
                agent_pid=a.pid if a else None,
            )
        if previous is not None and previous.cgroup is not None:
            previous.cgroup.remove(timeout=0.1)  # leaves a group an escaped process still holds
        for name in STALE:
            (run_dir / name).unlink(missing_ok=True)

        try:  # before anything of the run is recorded: a run that cannot start leaves no trace to adopt
            filter_arg = _prepare_filter(run_dir, spec.redact)
        except (OSError, SpawnError) as exc:
            raise SpawnError(f"could not start agent {spec.agent!r}: {exc}") from None
        group = cgroups.create(spec.agent, spec.instance, spec.cgroup)
        info = RunInfo(
            agent=spec.agent,
            instance=spec.instance,
            argv=list(spec.argv),
            log_dir=log_dir,
            cwd=None if spec.cwd is None else str(spec.cwd),
            user=spec.user,
            cgroup=group,
        )
        write_run_info(run_dir, info)  # on disk once the keeper is started (sync_run_info, below)
        with contextlib.suppress(OSError):  # `tether logs` shows where this run begins; never a reason not to start
            mark_run(log_dir, spec.instance)

        env = dict(os.environ if spec.env is None else spec.env)
        env.pop(INSTANCE_VAR, None)  # the keeper adds it for the agent only
        env.pop(LOGINUID_VAR, None)
        if spec.loginuid is not None:  # read by the keeper, which unsets it before the agent starts
            env[LOGINUID_VAR] = str(spec.loginuid)
        env.setdefault("PATH", os.defpath)
        fast = fast_launcher() if spec.user is None else None
        if fast is not None:  # a few ms: no Python between the keeper and the agent
            launcher, join = list(fast), "1"
        else:
            launcher, join = [sys.executable, "-I", "-S", str(LAUNCH_PY)], "0"
            for d in group.dirs if group is not None else []:
                launcher += ["--cgroup", str(d)]
            if spec.user is not None:
                launcher += ["--user", spec.user]
        cg_dirs = ":".join(str(d) for d in group.dirs) if group is not None else ""
        cmd = [
            SHELL,
            str(KEEPER_SH),
            str(run_dir),
            str(log_dir),
            spec.instance,
            cg_dirs,
            filter_arg,
            join,
            *launcher,
            "--",
            *spec.argv,
        ]

        log_fd = os.open(run_dir / KEEPER_LOG, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o644)
        try:
            popen = subprocess.Popen(
                cmd,
                cwd=spec.cwd,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log_fd,
                stderr=log_fd,
                start_new_session=True,
                close_fds=True,
            )
        except OSError as exc:  # nothing started: forget the run, so nothing adopts it later
            if group is not None:
                group.remove(timeout=0.1)
            _remove(run_dir, RUN_JSON, REDACT_SED, *PIPES)
            raise SpawnError(f"could not start agent {spec.agent!r}: {exc}") from exc
        finally:
            os.close(log_fd)

        handle = KeeperHandle(run_dir, info, popen)
        sync_run_info(run_dir)  # while the keeper starts the agent: two fsyncs off the way to its start
        deadline = time.monotonic() + timeout
        try:
            # agent.pid may hold no usable identity: an agent that ended at once can be gone before the
            # keeper reads it (then the exit is recorded as for any other run)
            while handle.keeper_id is None or not (run_dir / AGENT_PID).exists():
                if popen.poll() is not None or time.monotonic() >= deadline:
                    if handle.keeper_id is not None and (run_dir / AGENT_PID).exists():
                        break  # written just before the keeper ended (a very short agent)
                    if popen.poll() is None:
                        popen.kill()
                        popen.wait()
                    _remove(run_dir, *PIPES)
                    raise SpawnError(
                        f"keeper for agent {spec.agent!r} did not start (status {popen.returncode}): "
                        f"{_keeper_log_tail(run_dir) or 'no output'}"
                    )
                time.sleep(0.002)
        finally:  # the keeper has opened it for the filters (before it wrote agent.pid), or it never will
            _remove(run_dir, REDACT_SED)
        # The launcher joins the cgroup, then makes its own process group: wait for that (tens of ms), so
        # the agent is fully placed when spawn returns.
        agent = handle._read_agent()
        placed = False
        while agent is not None and time.monotonic() < deadline:
            if not agent.alive() or platform.process_group(agent.pid) == agent.pid:
                placed = True
                break
            time.sleep(0.002)
        if filter_arg and placed:  # the agent got past its redirections: both ends of each FIFO are open
            _remove(run_dir, *PIPES)
        return handle
