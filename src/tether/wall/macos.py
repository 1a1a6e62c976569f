"""The wall on macOS: a ``sandbox-exec`` (Seatbelt, SBPL) profile generated from the same ``Profile``.

On Linux the wall is mounts (``bwrap.py``); macOS has no mount namespaces, so the same decisions become
path rules the kernel checks at each access. ``(deny default)``, then what the Linux wall allows:

- processes: fork and exec anything, see and signal only processes in the same sandbox (the Linux wall's
  pid namespace); a short list of system services (``MACH_SERVICES``: logging, user lookups, TLS trust);
- reads: the whole host (the Linux wall's read-only ``/``) but ``/private/tmp`` and ``/private/var/tmp``
  (emptied on Linux), tether's state dir, the runbook, the protected paths and the other agents'
  workspaces (hidden on Linux);
- writes: only the agent's workspace, scope folders and repos, its private ``TMPDIR`` and the folders its
  kind declares in its private ``HOME`` (``kinds.NEEDS``), minus the hook settings and git's
  program-running files in them (read-only on Linux);
- network: ``open`` keeps the host's; ``scoped`` reaches only the agent's egress proxy and the daemon's API
  on localhost, ``none`` only the API (``(remote ip "localhost:PORT")``), and may listen on localhost.

SBPL's rule is that the last matching rule wins, so the rules are placed like the bwrap mounts: by the
depth of their path, parents first (the state dir denied, then the agent's TMPDIR and HOME inside it
allowed again; a workspace allowed, then its ``.env`` denied). Paths are written as the kernel sees them:
resolved, with macOS's symlinked system folders (``/tmp``, ``/var``, ``/etc`` -> ``/private/...``) mapped
even when the profile is generated elsewhere; deny rules name the unresolved form too. Each path is an
SBPL string literal with ``\\`` and ``"`` escaped and control characters as ``\\xHH``: a file name cannot
end the string and add rules of its own.

What it does not do (macOS has no equivalent here): change the agent's user (a root daemon is refused;
the agent runs as the daemon's user, like a Linux daemon that is not root), let an agent reach its own
listeners on localhost when ``scoped``/``none`` (outbound is by port, not by owner). ``sandbox-exec`` is
deprecated by Apple but is what Claude Code, Codex and sandbox-runtime use on macOS.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from urllib.parse import urlsplit

from tether.atomic import write_atomic
from tether.wall.errors import WallUnavailable
from tether.wall.listeners import PORT_FILE
from tether.wall.profile import Profile

ON = sys.platform == "darwin"  # only there does plan.prepare build this wall instead of bwrap's
SANDBOX_EXEC = "/usr/bin/sandbox-exec"
PROFILE_FILE = "wall.sb"  # in the agent's run folder
#: macOS's symlinked system folders: the kernel (and so every rule) sees the ``/private`` path.
SYSTEM_LINKS = ("/tmp", "/var", "/etc")
SCRATCH = ("/private/tmp", "/private/var/tmp")  # unreadable but for the agent's own trees (emptied on Linux)
PROXY_VARS = ("http_proxy", "https_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY")
#: System services a command-line program needs: logging, user and group lookups, TLS certificate trust,
#: temporary-folder lookups, preferences. Not launchd's other services (some run programs on request).
MACH_SERVICES = (
    "com.apple.logd",
    "com.apple.system.logger",
    "com.apple.system.notification_center",
    "com.apple.system.opendirectoryd.libinfo",
    "com.apple.system.opendirectoryd.membership",
    "com.apple.bsd.dirhelper",
    "com.apple.trustd",
    "com.apple.trustd.agent",
    "com.apple.SecurityServer",
    "com.apple.securityd.xpc",
    "com.apple.ocspd",
    "com.apple.cfprefsd.daemon",
    "com.apple.cfprefsd.agent",
    "com.apple.diagnosticd",
)
#: Devices every program writes (the terminal, /dev/null, its own descriptors).
DEVICES = ("/dev/null", "/dev/zero", "/dev/tty", "/dev/dtracehelper", "/dev/urandom", "/dev/random")


def tools() -> None:
    """Raises ``WallUnavailable`` (one line, the fix) when the macOS wall cannot be built here."""
    if os.geteuid() == 0:
        raise WallUnavailable(
            "on macOS the wall (sandbox-exec) cannot change the agent's user: run the daemon as the "
            "user the agents should run as, not root, or set `sandbox: off`"
        )
    if not os.access(SANDBOX_EXEC, os.X_OK):
        raise WallUnavailable(f"{SANDBOX_EXEC} is missing (it is part of macOS); or set `sandbox: off`")


def problem() -> str | None:
    try:
        tools()
    except WallUnavailable as exc:
        return str(exc)
    return None


def quote(path: str) -> str:
    """``path`` as an SBPL string literal: backslash and double quote escaped, control characters (and
    DEL) as ``\\xHH``; anything else (UTF-8, bytes kept by surrogateescape) as it is."""
    out = ['"']
    for ch in path:
        if ch in '\\"':
            out.append("\\" + ch)
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\x{ord(ch):02x}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def canonical(path: str) -> str:
    """``path`` as macOS's kernel names it: resolved, and ``/tmp``, ``/var``, ``/etc`` under ``/private``
    (mapped by name too, so a profile generated on another system matches what macOS will check)."""
    real = os.path.realpath(path)
    for link in SYSTEM_LINKS:
        if real == link or real.startswith(link + "/"):
            return "/private" + real
    return real


def _forms(path: str) -> list[str]:
    """The canonical path, and the given one when it differs (deny rules name both)."""
    c = canonical(path)
    return [c] if c == path else [c, path]


def _depth(path: str) -> int:
    return len([p for p in path.split("/") if p])


def _filters(kind: str, paths: Iterable[str]) -> str:
    return " ".join(f"({kind} {quote(p)})" for p in paths)


def rules(prof: Profile, network: str, ports: Sequence[int] = ()) -> str:
    """The SBPL profile for ``prof``. ``network``: ``open``, ``scoped`` or ``none``; ``ports``: the
    localhost ports a ``scoped``/``none`` agent may connect to (its proxy's, the daemon's API)."""
    head = [
        "(version 1)",
        f";; tether's wall for agent {quote(prof.agent)} (generated from its runbook entry; wall/macos.py)",
        "(deny default)",
        "(allow process-fork)",
        "(allow process-exec)",
        "(allow file-map-executable)",
        "(allow process-info* (target same-sandbox))",
        "(allow signal (target same-sandbox))",
        "(allow mach-priv-task-port (target same-sandbox))",
        "(allow sysctl-read)",
        "(allow user-preference-read)",
        "(allow ipc-posix-shm)",
        "(allow ipc-posix-sem)",
        "(allow pseudo-tty)",
        "(allow iokit-get-properties)",
        f"(allow mach-lookup {_filters('global-name', MACH_SERVICES)})",
        "(allow file-read*)",
        f"(allow file-write* file-ioctl {_filters('literal', DEVICES)} "
        '(subpath "/dev/fd") (regex #"^/dev/ttys[0-9]+$"))',
    ]
    ops: list[tuple[int, str]] = []  # (depth, rule): placed parents first, the last match wins

    def deny(what: str, path: str, kind: str = "subpath") -> None:
        ops.append((_depth(canonical(path)), f"(deny {what} {_filters(kind, _forms(path))})"))

    def allow(what: str, path: str, kind: str = "subpath") -> None:
        ops.append((_depth(canonical(path)), f"(allow {what} ({kind} {quote(canonical(path))}))"))

    for scratch in SCRATCH:
        deny("file-read* file-write*", scratch)
    for d in prof.hidden_dirs:
        deny("file-read* file-write*", d)
    for e in prof.exposed:
        allow("file-read*", e)
    allow("file-read*", prof.home)  # the private HOME: readable, written only where its kind says
    if prof.home_writable:
        allow("file-read* file-write*", prof.home)
    for w in prof.writable:
        allow("file-read* file-write*", w)
    for r in prof.read_only:
        deny("file-write*", r)
    for f in prof.hidden_files:
        deny("file-read* file-write*", f, "literal")
    for _src, inside in prof.files:
        allow("file-read*", inside, "literal")
        deny("file-write*", inside, "literal")
    ops.sort(key=lambda op: op[0])  # stable: same depth keeps its order

    net: list[str] = []
    if network == "open":
        net = ["(allow network*)", "(allow system-socket)"]
    else:
        net = [
            '(allow network-bind (local ip "localhost:*"))',
            '(allow network-inbound (local ip "localhost:*"))',
        ]
        if ports:
            net.append("(allow network-outbound " + " ".join(f'(remote ip "localhost:{int(p)}")' for p in ports) + ")")
    return "\n".join([*head, *(rule for _, rule in ops), *net]) + "\n"


def _api_port(daemon_url: str) -> int:
    parts = urlsplit(daemon_url)
    host = parts.hostname or ""
    if host not in ("127.0.0.1", "localhost", "::1", "0.0.0.0", "::"):
        raise WallUnavailable(
            f"on macOS an agent inside the wall reaches the daemon's API only on localhost, and it listens "
            f"on {host!r}: listen on 127.0.0.1 (host.listen), or set `network: open`"
        )
    return parts.port or (443 if parts.scheme == "https" else 80)


def ports(network: str, run_dir: Path, daemon_url: str) -> list[int]:
    """The localhost ports the agent may connect to: the daemon's API, and for ``scoped`` its proxy's port
    (``run_dir/proxy-port``, written when the proxy listened for it)."""
    if network == "open":
        return []
    if not daemon_url:
        raise WallUnavailable(f"network: {network}: the daemon's API address is unknown; or set `network: open`")
    out = [_api_port(daemon_url)]
    if network == "scoped":
        try:
            out.insert(0, int((run_dir / PORT_FILE).read_text().strip()))
        except (OSError, ValueError):
            raise WallUnavailable(
                "network: scoped: the daemon's egress proxy does not listen for this agent; or set `network: open`"
            ) from None
    return out


def wall(prof: Profile, network: str, run_dir: Path, daemon_url: str) -> tuple[list[str], dict[str, str]]:
    """Write the agent's profile to ``run_dir/wall.sb`` and return the prefix that runs a command under it
    and what it sets in the environment (``none``: the proxy variables emptied, no proxy is reachable).
    Raises ``WallUnavailable`` or ``OSError``."""
    text = rules(prof, network, ports(network, run_dir, daemon_url))
    path = run_dir / PROFILE_FILE
    write_atomic(path, text.encode("utf-8", "surrogateescape"), 0o600)
    env = dict.fromkeys(PROXY_VARS, "") if network == "none" else {}
    return [SANDBOX_EXEC, "-f", str(path)], env
