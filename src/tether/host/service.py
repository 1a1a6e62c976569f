"""Start the daemon at boot: a systemd unit (Linux) or a launchd agent (macOS), written by ``tether service``.

The unit runs ``<this python> -m tether -f <runbook> up --foreground`` as a ``Type=notify`` service with the
watchdog (``tether.host.sdnotify``) and ``KillMode=process``, so a daemon restart leaves the agents running for
the next daemon to re-adopt. Nothing here runs ``systemctl`` or ``launchctl`` to change the system: install and
remove write or delete one file and print the exact commands to run; status only asks.

Tested on Linux: the systemd unit (``systemd-analyze verify``, ``systemctl --root ... is-enabled``), the file
handling and the launchd plist's content (through ``plistlib``). Not tested anywhere: loading the plist with
``launchctl`` (the ``launchctl`` calls are marked ``# macOS (untested)``).
"""

from __future__ import annotations

import os
import plistlib
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from tether.atomic import write_atomic
from tether.errors import TetherError, UsageError

Manager = Literal["systemd", "launchd"]

UNIT_NAME = "tether.service"
LAUNCHD_LABEL = "dev.tether.daemon"
PLIST_NAME = f"{LAUNCHD_LABEL}.plist"
WATCHDOG_SEC = 30

#: What ``systemctl is-enabled`` may print (systemd.unit(5)); anything else means we could not ask.
ENABLED_STATES = frozenset({
    "enabled", "enabled-runtime", "linked", "linked-runtime", "alias", "masked", "masked-runtime", "static",
    "indirect", "disabled", "generated", "transient", "bad", "not-found",
})
#: The states in which systemd starts the unit at boot.
STARTS_AT_BOOT = frozenset({"enabled", "enabled-runtime", "linked", "linked-runtime", "alias", "generated"})

#: Folders systemd reads units from (systemd.unit(5), "Unit File Load Path"); elsewhere a unit needs ``link``.
SYSTEM_UNIT_PATH = ("/etc/systemd/system", "/run/systemd/system", "/usr/local/lib/systemd/system",
                    "/usr/lib/systemd/system", "/lib/systemd/system")


def _user_unit_path() -> tuple[Path, ...]:
    config = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")
    data = Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local/share")
    return (config / "systemd/user", Path("/etc/systemd/user"), data / "systemd/user", Path("/usr/lib/systemd/user"))


def default_manager() -> Manager:
    """systemd on Linux, launchd on macOS; anything else has no service support."""
    if sys.platform.startswith("linux"):
        return "systemd"
    if sys.platform == "darwin":
        return "launchd"
    raise UsageError(f"tether service supports systemd (Linux) and launchd (macOS), not {sys.platform}")


def default_unit_dir(manager: Manager, user: bool) -> Path:
    if manager == "launchd":
        return Path.home() / "Library/LaunchAgents"
    return _user_unit_path()[0] if user else Path(SYSTEM_UNIT_PATH[0])


def unit_file_name(manager: Manager) -> str:
    return PLIST_NAME if manager == "launchd" else UNIT_NAME


@dataclass(frozen=True)
class ServiceSpec:
    """What the service runs. Paths are absolute: a service starts with ``/`` as its working directory."""

    runbook: Path
    state_dir: Path
    python: str = sys.executable
    home: Path | None = None  #: ``$TETHER_HOME`` for the daemon, when the installer had one
    path_env: str | None = None  #: ``$PATH`` for the daemon and so its agents (their tools: claude, git, ...)
    user: bool = False  #: a systemd user unit

    def argv(self) -> list[str]:
        # --home on the command line: it outranks the runbook's host.state_dir (the environment does not).
        home = ["--home", str(self.home)] if self.home is not None else []
        return [self.python, "-m", "tether", "-f", str(self.runbook), *home, "up", "--foreground"]

    def environment(self) -> dict[str, str]:
        env: dict[str, str] = {}
        if self.home is not None:
            env["TETHER_HOME"] = str(self.home)
        if self.path_env:
            env["PATH"] = self.path_env
        return env


# --- rendering (pure) ----------------------------------------------------------------------------------------------


def _systemd_word(word: str, *, dollar: bool) -> str:
    """One word quoted for a unit file: ``%`` → ``%%`` (specifiers), ``$`` → ``$$`` where variables expand,
    and double quotes with C escapes around anything holding space, quotes or backslashes."""
    if any(c in word for c in "\n\r\0"):
        raise UsageError(f"cannot write a path with a newline or NUL into a unit file: {word!r}")
    word = word.replace("%", "%%")
    if dollar:
        word = word.replace("$", "$$")
    if word and not any(c in word for c in " \t\"'\\;"):
        return word
    return '"' + word.replace("\\", "\\\\").replace('"', '\\"') + '"'


def render_systemd(spec: ServiceSpec) -> str:
    """The unit file text for ``spec`` (``tether.service``)."""
    program, *args = spec.argv()
    if any(c in program for c in "\"'\\"):  # systemd refuses them in the executable's path, quoted or not
        raise UsageError(f"systemd cannot run an interpreter whose path holds quotes or backslashes: {program}")
    # the executable's path gets specifier expansion but no $VARIABLE expansion: only % is doubled there
    exec_start = " ".join([_systemd_word(program, dollar=False), *(_systemd_word(w, dollar=True) for w in args)])
    env_lines = [f"Environment={_systemd_word(f'{k}={v}', dollar=False)}" for k, v in spec.environment().items()]
    wants = [] if spec.user else ["Wants=network-online.target"]  # a user manager has no network-online.target
    lines = [
        "# tether.service: written by `tether service install`; run it again to rewrite this file.",
        "[Unit]",
        "Description=tether: the runbook runtime for AI agents",
        "After=network-online.target",
        *wants,
        "# Never give up restarting: an always-on host must get its supervisor back however often it fails.",
        "StartLimitIntervalSec=0",
        "",
        "[Service]",
        "# The daemon sends READY=1 once it serves and its agents are started or re-adopted.",
        "Type=notify",
        "# Only the daemon itself may notify, never an agent it runs.",
        "NotifyAccess=main",
        f"ExecStart={exec_start}",
        *env_lines,
        "Restart=always",
        "RestartSec=1",
        f"# systemd restarts the daemon when no WATCHDOG=1 arrives for {WATCHDOG_SEC}s; the daemon pings only",
        "# while its own loops are alive, so a wedged daemon is restarted, not kept alive by one thread.",
        f"WatchdogSec={WATCHDOG_SEC}",
        "# KillMode=process: when the daemon crashes or the watchdog kills it, systemd signals the daemon only,",
        "# not the agents. Each agent runs under its own keeper process, which outlives the daemon; the next",
        "# daemon re-adopts every running agent by its keeper's identity (boot id + start time), so a daemon",
        "# restart does not interrupt an agent's work. `systemctl stop tether` sends SIGTERM to the daemon,",
        "# which stops its agents itself (kill signal, grace, whole process tree) before it exits.",
        "KillMode=process",
        "",
        "[Install]",
        f"WantedBy={'default.target' if spec.user else 'multi-user.target'}",
        "",
    ]
    return "\n".join(lines)


def render_launchd(spec: ServiceSpec) -> bytes:
    """The launchd agent plist for ``spec`` (``dev.tether.daemon.plist``), XML.

    ``AbandonProcessGroup`` is launchd's ``KillMode=process``: when the daemon exits launchd leaves the agents'
    keepers alone for the next daemon to re-adopt. Content tested on Linux through ``plistlib``; loading it
    with ``launchctl`` is untested.
    """
    log = str(spec.state_dir / "daemon.log")
    doc: dict[str, Any] = {
        "Label": LAUNCHD_LABEL,
        "ProgramArguments": spec.argv(),
        "RunAtLoad": True,
        "KeepAlive": True,
        "AbandonProcessGroup": True,
        "StandardOutPath": log,
        "StandardErrorPath": log,
    }
    env = spec.environment()
    if env:
        doc["EnvironmentVariables"] = env
    return plistlib.dumps(doc, fmt=plistlib.FMT_XML, sort_keys=True)


def render(manager: Manager, spec: ServiceSpec) -> bytes:
    return render_launchd(spec) if manager == "launchd" else render_systemd(spec).encode()


# --- the commands to run -------------------------------------------------------------------------------------------


def _systemctl(user: bool) -> str:
    return "systemctl --user" if user else "systemctl"


def _in_search_path(unit_dir: Path, user: bool) -> bool:
    search = _user_unit_path() if user else tuple(Path(p) for p in SYSTEM_UNIT_PATH)
    try:
        here = unit_dir.resolve()
    except OSError:
        here = unit_dir
    return any(here == p or here == p.resolve() for p in search)


def enable_commands(manager: Manager, path: Path, user: bool) -> list[str]:
    """The exact commands that start the installed service now and at every boot."""
    quoted = shlex.quote(str(path))
    if manager == "launchd":
        return [f"launchctl load -w {quoted}"]
    ctl = _systemctl(user)
    root = _systemd_root(path.parent, user)
    if isinstance(root, Path):  # a unit under another root (an image being built): enable it there
        return [f"systemctl --root={shlex.quote(str(root))} enable tether"]
    link = [] if root is None else [f"{ctl} link {quoted}"]
    cmds = [*link, f"{ctl} daemon-reload && {ctl} enable --now tether"]
    if user:  # without lingering a user manager starts at login, not at boot, and stops at logout
        cmds.append('loginctl enable-linger "$USER"')
    return cmds


def disable_commands(manager: Manager, path: Path, user: bool) -> list[str]:
    if manager == "launchd":
        return [f"launchctl unload -w {shlex.quote(str(path))}"]
    root = _systemd_root(path.parent, user)
    if isinstance(root, Path):  # a unit under another root (an image being built): no --now there
        return [f"systemctl --root={shlex.quote(str(root))} disable tether"]
    return [f"{_systemctl(user)} disable --now tether"]


# --- status --------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ServiceStatus:
    manager: Manager
    user: bool
    path: Path
    installed: bool
    enabled: str  #: a ``systemctl is-enabled`` word, ``loaded``/``not-loaded`` (launchd), or ``unknown``
    detail: str = ""  #: why ``enabled`` is unknown

    @property
    def starts_at_boot(self) -> bool | None:
        """True/False when known, None when the service manager could not say."""
        if self.enabled == "unknown":
            return None
        if self.manager == "launchd":
            return self.installed  # a LaunchAgents plist with RunAtLoad is loaded at every login
        return self.installed and self.enabled in STARTS_AT_BOOT

    def as_dict(self) -> dict[str, Any]:
        return {"manager": self.manager, "user": self.user, "path": str(self.path), "installed": self.installed,
                "enabled": self.enabled, "starts_at_boot": self.starts_at_boot, "detail": self.detail}


def _systemd_root(unit_dir: Path, user: bool) -> Path | Literal[False] | None:
    """The ``--root`` under which ``systemctl`` sees ``unit_dir``: None for the live system, False for none."""
    if _in_search_path(unit_dir, user):
        return None
    if not user and unit_dir.parts[-3:] == ("etc", "systemd", "system"):
        return unit_dir.parents[2]
    return False


def systemctl_is_enabled(user: bool = False, root: Path | None = None, unit: str = UNIT_NAME) -> tuple[str, str]:
    """``systemctl [--user] [--root=ROOT] is-enabled UNIT`` → (state word, "") or ("unknown", why).

    Works without a running systemd (it reads the unit files), so it answers in containers too.
    """
    exe = shutil.which("systemctl")
    if exe is None:
        return "unknown", "systemctl not found"
    cmd = [exe, *(["--user"] if user else []), *([f"--root={root}"] if root is not None else []), "is-enabled", unit]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=10, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.SubprocessError) as err:
        return "unknown", f"systemctl failed: {err}"
    words = proc.stdout.split()
    if words and words[0] in ENABLED_STATES:
        return words[0], ""
    why = (proc.stderr.strip().splitlines() or [f"exit status {proc.returncode}"])[0]
    return "unknown", f"systemctl: {why}"


def _launchctl_loaded() -> tuple[str, str]:  # macOS (untested)
    exe = shutil.which("launchctl")
    if exe is None:
        return "unknown", "launchctl not found"
    try:
        proc = subprocess.run([exe, "list", LAUNCHD_LABEL], capture_output=True, text=True, timeout=10,
                              stdin=subprocess.DEVNULL)
    except (OSError, subprocess.SubprocessError) as err:
        return "unknown", f"launchctl failed: {err}"
    return ("loaded", "") if proc.returncode == 0 else ("not-loaded", "")


def status(manager: Manager | None = None, user: bool = False, unit_dir: Path | None = None) -> ServiceStatus:
    """Is the unit file there, and will the service manager start it at boot?"""
    manager = manager or default_manager()
    folder = unit_dir if unit_dir is not None else default_unit_dir(manager, user)
    path = folder / unit_file_name(manager)
    installed = path.is_file()
    if not installed:
        return ServiceStatus(manager, user, path, False, "not-installed")
    if manager == "launchd":
        if unit_dir is not None and folder != default_unit_dir(manager, user):
            return ServiceStatus(manager, user, path, True, "unknown", "launchd only reads ~/Library/LaunchAgents")
        return ServiceStatus(manager, user, path, True, *_launchctl_loaded())
    root = _systemd_root(folder, user)
    if root is False:
        return ServiceStatus(manager, user, path, True, "unknown", f"systemd does not read units from {folder}")
    return ServiceStatus(manager, user, path, True, *systemctl_is_enabled(user, root))


# --- install and remove --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Installed:
    manager: Manager
    path: Path
    content: bytes
    written: bool  #: False on a dry run or when the file already held exactly this
    replaced: bool  #: an older, different file was overwritten
    commands: list[str]


def _write(path: Path, content: bytes, hint: str) -> None:
    try:
        write_atomic(path, content, 0o644)
    except OSError as err:
        raise TetherError(f"cannot write {path}: {err.strerror or err}{hint}") from None


def install(
    spec: ServiceSpec, manager: Manager | None = None, unit_dir: Path | None = None, dry_run: bool = False
) -> Installed:
    """Write the unit (or plist) for ``spec``; on a dry run only render it. Idempotent."""
    manager = manager or default_manager()
    if manager == "launchd" and spec.user:
        raise UsageError("--user is for systemd; a launchd agent in ~/Library/LaunchAgents is already per user")
    folder = unit_dir if unit_dir is not None else default_unit_dir(manager, spec.user)
    path = folder / unit_file_name(manager)
    content = render(manager, spec)
    commands = enable_commands(manager, path, spec.user)
    try:
        old: bytes | None = path.read_bytes()
    except (FileNotFoundError, NotADirectoryError):
        old = None
    except OSError as err:
        raise TetherError(f"cannot read {path}: {err.strerror or err}") from None
    if dry_run or old == content:
        return Installed(manager, path, content, False, False, commands)
    hint = ""
    if manager == "systemd" and not spec.user and os.geteuid() != 0:
        hint = "; run it as root (sudo), or install a user unit with --user"
    if manager == "launchd":  # launchd opens the log file but does not create its folder
        try:
            spec.state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        except OSError as err:
            raise TetherError(f"cannot create the state directory {spec.state_dir}: {err.strerror or err}") from None
    _write(path, content, hint)
    return Installed(manager, path, content, True, old is not None, commands)


@dataclass(frozen=True)
class Removed:
    manager: Manager
    path: Path
    existed: bool
    commands: list[str]


def remove(manager: Manager | None = None, user: bool = False, unit_dir: Path | None = None) -> Removed:
    """Delete the unit file. Refused while the service manager still starts it: disable it first."""
    manager = manager or default_manager()
    st = status(manager, user, unit_dir)
    if not st.installed:
        return Removed(manager, st.path, False, [])
    if st.enabled in STARTS_AT_BOOT or st.enabled == "loaded":
        raise TetherError(
            f"{st.path.name} is {st.enabled}; run `{disable_commands(manager, st.path, user)[0]}` first, "
            "then `tether service remove`"
        )
    try:
        st.path.unlink()
    except FileNotFoundError:
        pass
    except OSError as err:
        raise TetherError(f"cannot remove {st.path}: {err.strerror or err}") from None
    commands = [] if manager == "launchd" else [f"{_systemctl(user)} daemon-reload"]
    if st.enabled == "unknown":  # we could not ask: if it was enabled, this undoes it (harmless otherwise)
        commands = [*disable_commands(manager, st.path, user), *commands]
    return Removed(manager, st.path, True, commands)
