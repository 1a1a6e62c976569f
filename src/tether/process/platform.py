"""Every Linux- or macOS-specific call of the process layer, in one place.

Linux is the supported, tested platform: identities come from ``/proc``, waits use pidfds, signals are sent
through pidfds (no PID-reuse race) and ``/proc/*/environ`` finds escaped descendants. The macOS branches
(psutil, ``sysctl kern.boottime``, ``caffeinate``) are written to the documented interfaces; each is marked
``# macOS``. ``TETHER_PROCESS_FALLBACK=1`` (read once, at import) takes them on Linux too: psutil identities
and scans, no pidfds (polling waits, check-then-kill), no cgroups; the kill and restart tests run a second
time that way, so those branches run somewhere.
"""

from __future__ import annotations

import contextlib
import functools
import os
import select
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass
from pathlib import Path

IS_LINUX = sys.platform.startswith("linux")
IS_MACOS = sys.platform == "darwin"
FALLBACK = os.environ.get("TETHER_PROCESS_FALLBACK") == "1"  # the macOS branches on Linux (tests)
PROC = IS_LINUX and not FALLBACK  # identities and scans from /proc

_BOOT_ID_FILE = Path("/proc/sys/kernel/random/boot_id")


# --- boot and process identity -------------------------------------------------------------------------------


@functools.lru_cache(maxsize=1)
def boot_id() -> str:
    """An id that changes on every boot: the kernel's random boot id on Linux, the boot time on macOS."""
    if PROC:
        return _BOOT_ID_FILE.read_text().strip()
    if FALLBACK:
        import psutil

        return f"boottime-{psutil.boot_time():.0f}"
    # macOS (untested): ``sysctl -n kern.boottime`` prints "{ sec = 1700000000, usec = 123456 } Mon Nov ...".
    try:
        out = subprocess.run(
            ["sysctl", "-n", "kern.boottime"], capture_output=True, text=True, timeout=5, check=True
        ).stdout
        return "boottime-" + out.split("}")[0].strip("{ ").replace(" ", "")
    except (OSError, subprocess.SubprocessError):
        import psutil

        return f"boottime-{psutil.boot_time():.0f}"


@functools.lru_cache(maxsize=1)
def kernel_boot_id() -> str | None:
    """The kernel's boot id, as the keeper writes it (None where there is no /proc)."""
    try:
        return _BOOT_ID_FILE.read_text().strip()
    except OSError:
        return None


@dataclass(frozen=True)
class ProcStat:
    """The fields of ``/proc/PID/stat`` the process layer uses."""

    state: str
    ppid: int
    pgid: int
    sid: int
    start_ticks: int  # field 22: start time after boot, in clock ticks (exact integer)


def proc_stat(pid: int) -> ProcStat | None:
    """Parse ``/proc/PID/stat`` (Linux); None when the process does not exist."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            raw = f.read()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    except OSError:
        return None
    # comm (field 2) may contain spaces and parentheses: split after the *last* ") ".
    rest = raw[raw.rfind(b")") + 2 :].split()
    try:
        return ProcStat(
            state=rest[0].decode(),
            ppid=int(rest[1]),
            pgid=int(rest[2]),
            sid=int(rest[3]),
            start_ticks=int(rest[19]),
        )
    except (IndexError, ValueError):
        return None


def start_time(pid: int) -> int | float | None:
    """The process start time: clock ticks since boot on Linux (exact), epoch seconds on macOS (psutil)."""
    if PROC:
        st = proc_stat(pid)
        return None if st is None else st.start_ticks
    # macOS
    import psutil

    try:
        return psutil.Process(pid).create_time()
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return None


def live_start_time(pid: int) -> int | float | None:
    """The start time of ``pid`` (as ``start_time``) while it runs; None when it is gone or a zombie.

    One read answers both, so a zombie reaped in between cannot pass for a live process: ``start_time``
    then ``is_zombie`` read twice, and a process reaped after the first read was found "not a zombie"
    (the kill then counted an ended process as a survivor)."""
    if PROC:
        st = proc_stat(pid)
        return None if st is None or st.state in ("Z", "X", "x") else st.start_ticks
    import psutil  # macOS

    try:
        proc = psutil.Process(pid)  # reads the create time
        if proc.status() == psutil.STATUS_ZOMBIE:  # gone since: NoSuchProcess
            return None
        return proc.create_time()
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return None


def is_zombie(pid: int) -> bool:
    """True when the process has exited but is not yet reaped (it can do nothing more: it counts as gone)."""
    if PROC:
        st = proc_stat(pid)
        return st is not None and st.state in ("Z", "X", "x")
    import psutil  # macOS

    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return False


def process_group(pid: int) -> int | None:
    try:
        return os.getpgid(pid)
    except (ProcessLookupError, PermissionError):
        return None


def all_pids() -> list[int]:
    if PROC:
        return [int(name) for name in os.listdir("/proc") if name.isdigit()]
    import psutil  # macOS

    return psutil.pids()


def children_map() -> dict[int, list[int]]:
    """Parent PID → child PIDs for every process now (one scan of ``/proc``; psutil on macOS)."""
    result: dict[int, list[int]] = {}
    if PROC:
        for pid in all_pids():
            st = proc_stat(pid)
            if st is not None:
                result.setdefault(st.ppid, []).append(pid)
        return result
    import psutil  # macOS

    for proc in psutil.process_iter(["ppid"]):
        result.setdefault(proc.info["ppid"], []).append(proc.pid)
    return result


def pids_with_env(key: str, value: str) -> list[int]:
    """PIDs whose *initial* environment (as exec'd) holds ``key=value`` exactly (see ``env_matches``)."""
    return sorted(env_matches(key, {value}))


PF_KTHREAD = 0x00200000
EXEC_RETRIES = 50  # a process in the middle of an exec reads as empty for microseconds: read again


def _initial_environ(pid: int) -> bytes:
    """``/proc/PID/environ``, read again while it is empty for a live user process (an exec under way:
    the launcher execs the agent, a setsid descendant execs its next program); b"" when unreadable."""
    for _ in range(EXEC_RETRIES):
        try:
            with open(f"/proc/{pid}/environ", "rb") as f:
                data = f.read()
            if data:
                return data
            with open(f"/proc/{pid}/stat", "rb") as f:
                fields = f.read().rsplit(b")", 1)[1].split()
            if fields[0] in (b"Z", b"X") or int(fields[6]) & PF_KTHREAD:  # ended, or a kernel thread
                return b""
        except (OSError, IndexError, ValueError):
            return b""
        time.sleep(0.0005)
    return b""


def env_matches(key: str, values: Collection[str]) -> dict[int, str]:
    """PID -> the value of ``key`` for every process whose *initial* environment (as exec'd) holds
    ``key=V`` exactly, for V in ``values`` (one scan for them all).

    Linux reads ``/proc/PID/environ`` (root reads every process; others only their own). A process that
    execs with a cleared environment is not found: the cgroup is the complete answer where one exists.
    """
    if not values:
        return {}
    prefix = f"{key}=".encode()
    wanted = {prefix + v.encode() for v in values}
    found: dict[int, str] = {}
    if PROC:
        for pid in all_pids():
            data = _initial_environ(pid)
            if prefix not in data:
                continue
            for item in data.split(b"\0"):
                if item in wanted:
                    found[pid] = item[len(prefix) :].decode()
                    break
        return found
    import psutil  # macOS: psutil reads other users' environments only as root.

    for proc in psutil.process_iter():
        try:
            got = proc.environ().get(key)
        except (psutil.NoSuchProcess, psutil.AccessDenied, OSError):
            continue
        if got is not None and got in values:
            found[proc.pid] = got
    return found


# --- waiting and signalling without PID-reuse races --------------------------------------------------------------


@functools.lru_cache(maxsize=1)
def pidfd_supported() -> bool:
    """True when the kernel and Python offer pidfds (Linux >= 5.3, and 5.1 for sending signals)."""
    if FALLBACK:
        return False
    opener = getattr(os, "pidfd_open", None)
    if opener is None or getattr(signal, "pidfd_send_signal", None) is None:
        return False
    try:
        os.close(opener(os.getpid()))
    except OSError:
        return False
    return True


def pidfd_open(pid: int) -> int | None:
    """A pidfd for ``pid``, or None when pidfds are unsupported or the process is gone.

    A pidfd refers to one process for ever: it becomes readable when that process exits and signals sent
    through it can never reach a process that later reuses the PID. Verify the identity *after* opening.
    """
    if not pidfd_supported() or pid <= 0:
        return None
    try:
        fd: int = os.pidfd_open(pid)
    except OSError:
        return None
    return fd


def wait_fd_readable(fd: int, timeout: float | None) -> bool:
    """Block until ``fd`` is readable (for a pidfd: the process exited) or ``timeout`` seconds pass."""
    poller = select.poll()
    poller.register(fd, select.POLLIN)
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        remaining_ms = None if deadline is None else max(0, int((deadline - time.monotonic()) * 1000))
        if poller.poll(remaining_ms):
            return True
        if deadline is not None and time.monotonic() >= deadline:
            return False


def pidfd_wait(pid: int, timeout: float | None, still_ours: Callable[[], bool] | None = None) -> bool | None:
    """Wait for ``pid`` to exit through a pidfd: True when it exited, False on timeout, None if unsupported.

    ``still_ours`` is checked right after the pidfd is opened; when it returns False the process we meant
    is already gone (its PID is free or reused) and the answer is True at once.
    """
    if not pidfd_supported():
        return None
    fd = pidfd_open(pid)
    if fd is None:
        return True
    try:
        if still_ours is not None and not still_ours():
            return True
        return wait_fd_readable(fd, timeout)
    finally:
        os.close(fd)


def send_signal(pid: int, sig: int, still_ours: Callable[[], bool] | None = None) -> bool:
    """Send ``sig`` to ``pid`` only if ``still_ours()`` holds; True when sent. Never pid <= 1.

    On Linux the check and the send go through one pidfd, so a PID reused in between is never hit.
    """
    if pid <= 1:
        return False
    if pidfd_supported():
        fd = pidfd_open(pid)
        if fd is None:
            return False
        try:
            if still_ours is not None and not still_ours():
                return False
            signal.pidfd_send_signal(fd, sig)
            return True
        except OSError:
            return False
        finally:
            os.close(fd)
    if still_ours is not None and not still_ours():  # macOS: check, then kill
        return False
    try:
        os.kill(pid, sig)
        return True
    except OSError:
        return False


def parse_signal(name: str | int) -> signal.Signals:
    """``"TERM"``, ``"SIGTERM"``, ``"term"``, ``15`` → ``signal.SIGTERM``."""
    if isinstance(name, int):
        return signal.Signals(name)
    text = name.strip().upper()
    if text.isdigit():
        return signal.Signals(int(text))
    if not text.startswith("SIG"):
        text = "SIG" + text
    try:
        return signal.Signals[text]
    except KeyError:
        raise ValueError(f"unknown signal {name!r}") from None


# --- mounts ------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Mount:
    mount_point: str
    fstype: str
    source: str
    super_options: tuple[str, ...]


def _unescape_mount(text: str) -> str:
    # mountinfo escapes space, tab, newline and backslash as \040 \011 \012 \134
    out = []
    i = 0
    while i < len(text):
        if text[i] == "\\" and i + 3 < len(text) and text[i + 1 : i + 4].isdigit():
            out.append(chr(int(text[i + 1 : i + 4], 8)))
            i += 4
        else:
            out.append(text[i])
            i += 1
    return "".join(out)


def mounts() -> list[Mount]:
    """The mount table: ``/proc/self/mountinfo`` on Linux, psutil elsewhere."""
    if IS_LINUX:
        result = []
        with open("/proc/self/mountinfo") as f:
            for line in f:
                left, _, right = line.partition(" - ")
                lf, rf = left.split(), right.split()
                if len(lf) < 5 or len(rf) < 2:
                    continue
                opts = tuple(rf[2].split(",")) if len(rf) > 2 else ()
                result.append(Mount(_unescape_mount(lf[4]), rf[0], _unescape_mount(rf[1]), opts))
        return result
    import psutil  # macOS (untested)

    return [Mount(p.mountpoint, p.fstype, p.device, tuple(p.opts.split(","))) for p in psutil.disk_partitions(all=True)]


def mount_of(path: str | os.PathLike[str]) -> Mount | None:
    """The mount holding ``path`` (longest mount-point prefix of its real path; the last such mount wins)."""
    real = os.path.realpath(path)
    best: Mount | None = None
    for m in mounts():
        mp = m.mount_point.rstrip("/") or "/"
        if (real == mp or real.startswith(mp + "/") or mp == "/") and (
            best is None or len(mp) >= len(best.mount_point.rstrip("/") or "/")
        ):
            best = m
    return best


def is_tmpfs(path: str | os.PathLike[str]) -> bool:
    """True when ``path`` lives on a RAM-backed filesystem (lost on reboot): for ``tether doctor``."""
    m = mount_of(path)
    return m is not None and m.fstype in ("tmpfs", "ramfs")


# --- keeping the host awake --------------------------------------------------------------------------------------


@dataclass
class SleepInhibitor:
    """What ``sleep_inhibitor`` managed to do. ``active`` False means a no-op; ``message`` says why."""

    active: bool
    message: str
    process: subprocess.Popen[bytes] | None = None


def _inhibit_command(reason: str) -> list[str] | None:
    if IS_LINUX:
        exe = shutil.which("systemd-inhibit")
        if exe is None:
            return None
        return [exe, "--what=sleep:idle", "--who=tether", f"--why={reason}", "--mode=block", "sleep", "infinity"]
    if IS_MACOS:  # macOS (untested): caffeinate ends by itself when we (the -w pid) exit
        exe = shutil.which("caffeinate")
        return None if exe is None else [exe, "-i", "-w", str(os.getpid())]
    return None


@contextlib.contextmanager
def sleep_inhibitor(reason: str, settle: float = 0.3) -> Iterator[SleepInhibitor]:
    """Keep the host from suspending while the block runs (Linux: systemd-inhibit; macOS: caffeinate).

    When the tool is missing or exits at once (e.g. no logind on the system bus) the inhibitor is a no-op
    whose ``message`` says so; the block runs either way.
    """
    cmd = _inhibit_command(reason)
    if cmd is None:
        yield SleepInhibitor(False, "no sleep inhibitor on this host (systemd-inhibit/caffeinate not found)")
        return
    try:
        # own process group: systemd-inhibit's ``sleep`` child goes with it when we end the group
        proc = subprocess.Popen(
            cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True
        )
    except OSError as exc:
        yield SleepInhibitor(False, f"sleep inhibitor could not start: {exc}")
        return
    try:
        try:
            proc.wait(timeout=settle)
        except subprocess.TimeoutExpired:
            yield SleepInhibitor(True, f"holding a sleep inhibitor ({Path(cmd[0]).name})", proc)
            return
        err = proc.stderr.read().decode(errors="replace").strip() if proc.stderr else ""
        first = err.splitlines()[0] if err else f"exit status {proc.returncode}"
        yield SleepInhibitor(False, f"sleep inhibitor unavailable: {Path(cmd[0]).name}: {first}")
    finally:
        if proc.poll() is None:  # not reaped yet, so its group id cannot have been reused
            with contextlib.suppress(OSError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=2)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(OSError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=2)
        if proc.stderr:
            proc.stderr.close()
