"""``tether doctor``: is this host fit to run agents unattended? One ``Check`` per question, each ok, warn,
fail or unknown, with what to do about it.

Each check is a small function of real inputs (paths, the runbook, the service status) so tests drive it with
real conditions: a directory's mode, a tmpfs they mount, a settings file they write. ``run`` puts them together.

Tested on Linux. The macOS branches (``pmset -g`` for sleep, the Claude Code managed-settings path, launchd
for the service) are written to the documented interfaces but untested; each is marked ``# macOS (untested)``.
The sleep-inhibitor lookup (``systemd-inhibit --list``) needs logind on the system bus and is untested too.
"""

from __future__ import annotations

import ctypes
import json
import os
import pwd
import re
import shutil
import stat
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from tether import daemon_state
from tether.checks import Check
from tether.host.service import ServiceStatus, enable_commands, systemctl_is_enabled
from tether.integrations import health
from tether.integrations.claude_code import MANAGED_SETTINGS
from tether.notify import health as channel_health
from tether.process.platform import is_tmpfs

if TYPE_CHECKING:
    from tether.runbook import LoadedRunbook

GiB = 1024**3
MiB = 1024**2
DISK_WARN_BELOW = 1 * GiB
DISK_FAIL_BELOW = 200 * MiB

POWER_STATE = Path("/sys/power/state")
SLEEP_TARGET = "sleep.target"
SUSPEND_TARGETS = ("suspend.target", "hibernate.target", "hybrid-sleep.target", "suspend-then-hibernate.target")
MASK_SLEEP = "sudo systemctl mask sleep.target suspend.target hibernate.target hybrid-sleep.target"
INHIBIT_WHAT = frozenset({"shutdown", "sleep", "idle", "handle-power-key", "handle-suspend-key",
                          "handle-hibernate-key", "handle-lid-switch"})
LINGER_DIR = Path("/var/lib/systemd/linger")
TIMESYNC_FLAG = Path("/run/systemd/timesync/synchronized")

def _run(cmd: Sequence[str], timeout: float = 10) -> subprocess.CompletedProcess[str] | None:
    """Run a read-only query; None when the program is missing or hangs."""
    exe = shutil.which(cmd[0])
    if exe is None:
        return None
    try:
        return subprocess.run([exe, *cmd[1:]], capture_output=True, text=True, timeout=timeout,
                              stdin=subprocess.DEVNULL)
    except (OSError, subprocess.SubprocessError):
        return None


def _first_line(text: str, default: str = "") -> str:
    lines = text.strip().splitlines()
    return lines[0] if lines else default


def _user_name(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return f"uid {uid}"


# --- the service ---------------------------------------------------------------------------------------------------


def check_service(statuses: Sequence[ServiceStatus], linger_dir: Path = LINGER_DIR) -> Check:
    """Installed and started at boot: ok. Installed, not enabled: warn. Not installed: warn."""
    if not statuses:
        return Check("service", "unknown", f"no supported service manager on {sys.platform} (systemd, launchd)")
    installed = [s for s in statuses if s.installed]
    if not installed:
        where = ", ".join(str(s.path) for s in statuses)
        return Check("service", "warn", f"no tether service installed ({where}): the daemon will not start at boot",
                     "tether service install (a system unit, as root) or tether service install --user")
    st = next((s for s in installed if s.starts_at_boot), installed[0])
    what = f"{st.path} ({st.manager}{', user' if st.user else ''})"
    boot = st.starts_at_boot
    if boot is None:
        ask = "launchctl list dev.tether.daemon" if st.manager == "launchd" else (
            f"systemctl{' --user' if st.user else ''} is-enabled tether")
        return Check("service", "unknown", f"{what} is installed; cannot tell whether it is enabled ({st.detail})",
                     f"check with: {ask}")
    if not boot:
        return Check("service", "warn", f"{what} is installed but {st.enabled}: it will not start at boot",
                     "; ".join(c for c in enable_commands(st.manager, st.path, st.user) if "enable" in c))
    if st.manager == "systemd" and st.user:
        user = _user_name(os.getuid())
        if not (linger_dir / user).exists():
            return Check("service", "warn", f"{what} is enabled, but a user unit starts at {user}'s login, "
                         "not at boot, and stops at logout (lingering is off)", f"sudo loginctl enable-linger {user}")
    return Check("service", "ok", f"{what} is installed and {st.enabled}")


# --- sleep ---------------------------------------------------------------------------------------------------------


def _masked(units: Sequence[str], systemctl_root: Path | None) -> bool:
    return all(systemctl_is_enabled(False, systemctl_root, unit)[0] in ("masked", "masked-runtime") for unit in units)


def _sleep_inhibitors() -> list[str]:
    """Who holds a ``block`` sleep inhibitor, per ``systemd-inhibit --list`` (needs logind; untested)."""
    proc = _run(["systemd-inhibit", "--list", "--no-legend", "--no-pager"])
    if proc is None or proc.returncode != 0:
        return []
    found = []
    for line in proc.stdout.splitlines():  # WHO UID USER PID COMM WHAT WHY MODE; WHO and WHY may hold spaces
        cols = line.split()
        if not cols or cols[-1] != "block":
            continue
        for word in cols:
            what = set(word.split(":"))
            if "sleep" in what and what <= INHIBIT_WHAT:
                found.append(cols[0])
                break
    return found


def check_sleep(power_state: Path = POWER_STATE, systemctl_root: Path | None = None) -> Check:
    """Will the host suspend? Linux: ``/sys/power/state`` and masked sleep targets; macOS: ``pmset -g``."""
    if sys.platform == "darwin":  # macOS (untested)
        return _check_pmset()
    try:
        states = power_state.read_text().split()
    except OSError:
        states = []
    if not states:
        return Check("sleep", "ok", f"the kernel offers no sleep states ({power_state} is empty or missing)")
    offered = " ".join(states)
    if _masked([SLEEP_TARGET], systemctl_root) or _masked(SUSPEND_TARGETS[:3], systemctl_root):
        return Check("sleep", "ok", f"sleep is masked in systemd (the kernel offers: {offered})")
    holders = _sleep_inhibitors()
    if holders:
        return Check("sleep", "ok", f"a sleep inhibitor is held by {', '.join(sorted(set(holders)))}")
    return Check("sleep", "warn",
                 f"the host may suspend (the kernel offers: {offered}) unless sleep is masked or an inhibitor runs; "
                 "a suspended host runs no agent and answers no approval", MASK_SLEEP)


def _check_pmset() -> Check:  # macOS (untested)
    proc = _run(["pmset", "-g"])
    if proc is None or proc.returncode != 0:
        return Check("sleep", "unknown", "pmset -g did not answer", "sudo pmset -a sleep 0")
    for line in proc.stdout.splitlines():
        m = re.match(r"\s*sleep\s+(\d+)", line)
        if m:
            minutes = int(m.group(1))
            if minutes == 0:
                return Check("sleep", "ok", "pmset: system sleep is off (sleep 0)")
            return Check("sleep", "warn", f"pmset: the system sleeps after {minutes} min idle", "sudo pmset -a sleep 0")
    return Check("sleep", "unknown", "pmset -g shows no sleep setting", "sudo pmset -a sleep 0")


# --- the state directory -------------------------------------------------------------------------------------------


def check_state_dir(root: Path, uid: int | None = None) -> Check:
    """Exists, is a directory owned by ``uid`` (default: us) and has mode 0700."""
    uid = os.geteuid() if uid is None else uid
    try:
        st = os.stat(root)
    except FileNotFoundError:
        return Check("state dir", "warn", f"{root} does not exist yet; the daemon creates it (mode 0700) at start",
                     "tether up")
    except OSError as err:
        return Check("state dir", "fail", f"cannot inspect {root}: {err.strerror}", "check the path and its parents")
    if not stat.S_ISDIR(st.st_mode):
        return Check("state dir", "fail", f"{root} is not a directory", "remove it or set host.state_dir elsewhere")
    if st.st_uid != uid:
        return Check("state dir", "fail",
                     f"{root} is owned by {_user_name(st.st_uid)}, not {_user_name(uid)} (who runs tether)",
                     f"sudo chown -R {_user_name(uid)} {root}")
    mode = stat.S_IMODE(st.st_mode)
    if mode != 0o700:
        why = "other users can read or change the store, logs and kill files" if mode & 0o077 else "not 0700"
        return Check("state dir", "fail", f"{root} has mode {mode:04o} ({why}), expected 0700", f"chmod 700 {root}")
    return Check("state dir", "ok", f"{root} is owned by {_user_name(uid)} with mode 0700")


def _existing(path: Path) -> Path:
    p = path
    while not p.exists() and p != p.parent:
        p = p.parent
    return p


def _size(n: int) -> str:
    return f"{n / GiB:.1f} GiB" if n >= GiB else f"{n / MiB:.0f} MiB"


def check_disk(root: Path, warn_below: int = DISK_WARN_BELOW, fail_below: int = DISK_FAIL_BELOW) -> Check:
    """Free space for the store and logs: below 1 GiB warn, below 200 MiB fail."""
    where = _existing(root)
    try:
        free = shutil.disk_usage(where).free
    except OSError as err:
        return Check("disk", "unknown", f"cannot measure free space at {where}: {err.strerror}")
    detail = f"{_size(free)} free at {where}"
    fix = "free space on that filesystem, or move host.state_dir to a larger one"
    if free < fail_below:
        return Check("disk", "fail", f"{detail} (below {_size(fail_below)}): the store will soon fail to write", fix)
    if free < warn_below:
        return Check("disk", "warn", f"{detail} (below {_size(warn_below)})", fix)
    return Check("disk", "ok", detail)


# --- the clock -----------------------------------------------------------------------------------------------------


def _kernel_clock_synced() -> bool | None:
    """The kernel's own answer (``adjtimex``, read only), which ``timedatectl`` reports too. Linux only."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        buf = ctypes.create_string_buffer(512)  # struct timex (208 bytes on 64-bit); modes = 0: read only
        state = libc.adjtimex(buf)
    except (OSError, AttributeError):
        return None
    if state < 0:
        return None
    return bool(state != 5)  # TIME_ERROR: the clock is not synchronized (STA_UNSYNC)


def check_clock() -> Check:
    """NTP sync per ``timedatectl show -p NTPSynchronized``; else the kernel's flag; else unknown."""
    fix = "enable time sync: sudo timedatectl set-ntp true (or run chrony / ntpd)"
    proc = _run(["timedatectl", "show", "-p", "NTPSynchronized", "--value"])
    if proc is not None and proc.returncode == 0 and proc.stdout.strip() in ("yes", "no"):
        if proc.stdout.strip() == "yes":
            return Check("clock", "ok", "synchronized by NTP (timedatectl)")
        return Check("clock", "warn", "not synchronized (timedatectl): heartbeats, timeouts and the event log "
                     "depend on the clock", fix)
    if TIMESYNC_FLAG.exists():
        return Check("clock", "ok", f"synchronized by systemd-timesyncd ({TIMESYNC_FLAG})")
    synced = _kernel_clock_synced()
    why = "timedatectl did not answer" if proc is None else _first_line(proc.stderr, "timedatectl did not answer")
    if synced is True:
        return Check("clock", "ok", "the kernel reports the clock synchronized (adjtimex)")
    if synced is False:
        return Check("clock", "warn", "the kernel reports the clock unsynchronized (adjtimex): no NTP client is "
                     "disciplining it; heartbeats, timeouts and the event log depend on the clock", fix)
    return Check("clock", "unknown", f"cannot tell whether the clock is synchronized ({why})", fix)


# --- the runbook's paths -------------------------------------------------------------------------------------------


def _local(value: str) -> bool:
    return "://" not in value and not re.match(r"^[\w.-]+@[\w.-]+:", value)  # not a URL, not git@host:path


def persistent_paths(loaded: LoadedRunbook) -> list[tuple[str, Path]]:
    """Every path the runbook names that must survive a reboot, labelled by its field."""
    rb = loaded.runbook
    paths: list[tuple[str, Path]] = [("host.state_dir", loaded.state.root), ("host.workspace_root",
                                                                             loaded.workspace_root)]
    if loaded.store_url.startswith("sqlite:///"):
        paths.append(("host.store", Path(loaded.store_url[len("sqlite:///"):])))
    for name, agent in rb.agents.items():
        paths.append((f"agents.{name}.cwd", loaded.agent_cwd(name)))
        paths += [(f"agents.{name}.rollback.snapshot", loaded.resolve(p)) for p in agent.rollback.snapshot]
        paths += [(f"agents.{name}.scope.folders", loaded.resolve(p)) for p in agent.scope.folders]
        paths += [(f"agents.{name}.scope.repos", loaded.resolve(p)) for p in agent.scope.repos if _local(p)]
    seen: set[Path] = set()
    unique = []
    for label, path in paths:
        if path not in seen:
            seen.add(path)
            unique.append((label, path))
    return unique


def check_storage(loaded: LoadedRunbook) -> Check:
    """Every persistent path on persistent storage: one on tmpfs/ramfs (gone at reboot) fails."""
    paths = persistent_paths(loaded)
    try:
        volatile = [(label, p) for label, p in paths if is_tmpfs(p)]
    except OSError as err:
        return Check("storage", "unknown", f"cannot read the mount table: {err.strerror or err}")
    if volatile:
        listed = "; ".join(f"{label} {p}" for label, p in volatile)
        return Check("storage", "fail", f"on tmpfs, lost at reboot: {listed}",
                     "move these to a disk-backed folder in the runbook (findmnt -T PATH shows the filesystem)")
    return Check("storage", "ok", f"{len(paths)} runbook path(s) on persistent storage")


# --- agents --------------------------------------------------------------------------------------------------------


def check_agent_users(loaded: LoadedRunbook, daemon_uid: int | None = None) -> list[Check]:
    """One check per agent: does it run as another user than the daemon (the boundary that holds)?

    ``daemon_uid`` defaults to ours: the doctor assumes the daemon runs as whoever runs the doctor.
    """
    uid = os.geteuid() if daemon_uid is None else daemon_uid
    me = _user_name(uid)
    checks = []
    from tether.wall import plan  # local: tether.wall +170 ms, and claude_code imports this module for a constant

    for name, agent in loaded.runbook.agents.items():
        label = f"agent {name}"
        if plan.enabled(loaded, name):  # its own user inside the wall: check_wall says
            continue
        if agent.run_as is None:
            target_uid, who = uid, me
        else:
            try:
                target_uid, who = pwd.getpwnam(agent.run_as).pw_uid, agent.run_as
            except KeyError:
                checks.append(Check(label, "fail", f"run_as user {agent.run_as!r} does not exist",
                                    f"sudo useradd --create-home {agent.run_as}"))
                continue
        if target_uid != uid:
            if uid != 0:
                checks.append(Check(label, "fail", f"runs as {who}, which needs the daemon to run as root "
                                    f"(it would run as {me})", "install the service as root (a system unit)"))
            else:
                checks.append(Check(label, "ok", f"runs as {who} (uid {target_uid}), not as the daemon's user"))
            continue
        if agent.same_user:
            checks.append(Check(label, "warn", f"runs as {me}, the daemon's own user (same_user: true): the approval "
                                "boundary is advisory; the agent could edit the runbook, the store and the kill file",
                                f"give it a user of its own: run_as: <user> (e.g. sudo useradd --create-home "
                                f"tether-{name})"))
        else:
            checks.append(Check(label, "fail", f"would run as {me}, the daemon's own user, without same_user: true",
                                f"set run_as: <a user of its own> (sudo useradd --create-home tether-{name}), or "
                                "same_user: true to accept an advisory boundary"))
    return checks


def check_wall(loaded: LoadedRunbook) -> list[Check]:
    """The wall (issue 16): each agent as its own user inside bubblewrap, writes only in its scope, tether's
    state, tokens, secrets and other agents' workspaces out of sight. Can it be built here, for whom not."""
    from tether.wall import check as wall_check  # local: tether.wall +170 ms (see check_agent_users)
    from tether.wall import plan  # local: tether.wall +170 ms (see check_agent_users)

    if plan.host_off():
        return [Check("wall", "warn", f"{plan.OFF_VAR}=off in the daemon's environment: no agent runs inside the "
                      "wall (their scope is enforced only by classifying what they ask)",
                      f"unset {plan.OFF_VAR}")]
    walled = [n for n in loaded.runbook.agents if plan.enabled(loaded, n)]
    checks = []
    if walled:
        why = wall_check.problem()
        if why is not None:
            checks.append(Check("wall", "fail", f"cannot be built here: {why}", "see the line; agents "
                                f"{', '.join(walled)} will not start"))
        else:
            checks.append(Check("wall", "ok", "bubblewrap: each agent runs as its own user (setpriv, then bwrap), "
                                "writes only in its scope and private TMPDIR/HOME; state dir, runbook, secrets "
                                "and other agents' workspaces hidden; hook settings and git hooks read-only; "
                                "a network of its own (only the egress proxy and the daemon's API, listening "
                                "inside; socat bridges them for a daemon that is not root) unless network: open; "
                                "nested sandboxes (Claude Code's bwrap) allowed"))
            checks.append(check_denied_writes(loaded))
    bridged = [n for n in walled if loaded.runbook.agents[n].network != "open"]
    if bridged and wall_check.socat() is None and wall_check.needs_socat():
        checks.append(Check("wall", "fail", f"{wall_check.SOCAT_MISSING}; agents {', '.join(bridged)} will not "
                            "start", "apt-get install socat"))
    for name in walled:
        for problem in plan.problems(loaded.runbook.agents[name], os.geteuid(), socat=False):  # said once above
            checks.append(Check(f"agent {name}", "fail", problem, "sudo tether init --user, or run_as: <user>"))
        if loaded.runbook.agents[name].network == "open":
            checks.append(Check(f"agent {name}", "warn", "network: open: the host's network, no egress proxy",
                                "network: scoped (the default)"))
    for name in walled:
        if loaded.runbook.agents[name].kind == "codex":
            checks.append(Check(f"agent {name}", "ok", "Codex's own sandbox is off inside the wall (it cannot be "
                                "built there): tether starts it with -s danger-full-access, the wall is its "
                                "sandbox; a Codex run by hand inside the wall needs the same"))
    for name, agent in loaded.runbook.agents.items():
        if agent.sandbox == "off":
            checks.append(Check(f"agent {name}", "warn", "sandbox: off: no wall", "remove sandbox: off"))
    return checks


def check_denied_writes(loaded: LoadedRunbook) -> Check:
    """Whether the daemon records a walled agent's denied write as it happens (the kernel's audit,
    ``wall/writewatch.py``): what the running daemon says, else whether it could here."""
    from tether.wall import auditlink, writewatch  # local: as in check_wall

    name, fix = "wall: denied writes", "run the daemon as root on a kernel with audit (CONFIG_AUDITSYSCALL)"
    drill_only = "recorded only by `tether drill --only sandbox`, not as the agents make them"
    # only a daemon alive says what it does: a crashed one's daemon.json is left behind
    running = daemon_state.probe(loaded.state.root)["state"] != daemon_state.DOWN
    said = (daemon_state.info(loaded.state.root) or {}).get("denied_writes") if running else None
    if isinstance(said, dict):
        if said.get("on"):
            return Check(name, "ok", "the daemon records each as a wall.violation from the kernel's audit")
        return Check(name, "warn", f"{drill_only}: {said.get('reason')}", fix)
    if os.environ.get(writewatch.OFF_VAR, "").lower() == "off":
        return Check(name, "warn", f"{drill_only}: {writewatch.OFF_VAR}=off", f"unset {writewatch.OFF_VAR}")
    if os.geteuid() != 0:
        return Check(name, "warn", f"{drill_only} unless the daemon runs as root (the kernel's audit needs it)", fix)
    try:
        with auditlink.Link() as link:
            locked = link.status().enabled == 2
    except OSError as err:
        return Check(name, "warn", f"{drill_only}: no kernel audit here ({err.strerror or err})", fix)
    if locked:
        return Check(name, "warn", f"{drill_only}: the kernel's audit is locked (enabled 2) until reboot",
                     "drop `-e 2` from the audit rules and reboot")
    return Check(name, "ok", "the daemon will record each as a wall.violation from the kernel's audit")


def check_claude_hooks(loaded: LoadedRunbook, managed_settings: Path = MANAGED_SETTINGS) -> Check | None:
    """For claude-code agents: only managed hooks (``allowManagedHooksOnly: true``) keep the gate on."""
    names = [n for n, a in loaded.runbook.agents.items() if a.kind == "claude-code"]
    if not names:
        return None
    who = ", ".join(names)
    fix = "tether integrate claude-code --managed"
    risk = f"claude-code agent(s) {who} can switch their tether hooks off in .claude/settings.local.json"
    try:
        data = json.loads(managed_settings.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return Check("claude-code hooks", "warn", f"{managed_settings} does not exist: {risk}", fix)
    except (OSError, UnicodeDecodeError, ValueError) as err:
        return Check("claude-code hooks", "warn", f"cannot read {managed_settings} ({err}): {risk}", fix)
    if isinstance(data, dict) and data.get("allowManagedHooksOnly") is True:
        return Check("claude-code hooks", "ok", f"{managed_settings} sets allowManagedHooksOnly: true")
    return Check("claude-code hooks", "warn", f"{managed_settings} lacks allowManagedHooksOnly: true: {risk}", fix)


# --- all of them ---------------------------------------------------------------------------------------------------


def run(loaded: LoadedRunbook | None, state_root: Path, services: Sequence[ServiceStatus],
        runbook_check: Check | None = None) -> list[Check]:
    """Every check, in the order printed. ``loaded`` None (no valid runbook) runs the host checks only;
    ``runbook_check`` then says why."""
    checks: list[Check] = []
    if runbook_check is not None:
        checks.append(runbook_check)
    checks += [check_service(services), check_sleep(), check_state_dir(state_root), check_disk(state_root),
               check_clock()]
    if loaded is not None:
        checks.append(check_storage(loaded))
        checks += check_wall(loaded)
        checks += check_agent_users(loaded)
        hooks = check_claude_hooks(loaded)
        if hooks is not None:
            checks.append(hooks)
        checks += health.checks(loaded)  # Codex hooks: missing, pending trust, trusted, managed
        checks += channel_health.checks(loaded, state_root)  # Telegram, ntfy, Slack: secrets, the daemon's last word
    return checks


def failed(checks: Sequence[Check]) -> bool:
    return any(c.status == "fail" for c in checks)


def as_json(checks: Sequence[Check]) -> str:
    return json.dumps({"ok": not failed(checks), "checks": [c.as_dict() for c in checks]}, indent=2) + "\n"
