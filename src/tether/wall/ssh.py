"""git over ssh from inside the wall: an ssh config in the agent's private HOME, named by ``GIT_SSH_COMMAND``.

Inside the wall (``network: scoped``) there is no route out, only the egress proxy's bridge on the agent's own
127.0.0.1 (``bridge.py``). ssh reaches a host through it with ``ProxyCommand socat - PROXY:...``: an HTTP
``CONNECT HOST:22`` that the proxy judges like any other pair (in ``scope.hosts``, such as ``github.com:22``:
through; else ``network.egress``, an ask refused at once with the 403 that names the approval, which socat
prints and git shows).

The key and known_hosts come from the runbook (``agents.NAME.ssh``: ``key`` a path or a secret reference to
the key's text, ``known_hosts`` a path), copied at each start into ``HOME/.ssh/`` (0600, the agent's own: ssh
refuses a key others can read), which is read-only inside and bound read-only over itself. ssh finds its
files by the passwd entry, not ``$HOME``, so everything is named by absolute path in the config, which
``GIT_SSH_COMMAND=ssh -F CONFIG`` names. No trust on first use: ``StrictHostKeyChecking yes`` with the given
known_hosts (else only the host's ``/etc/ssh/ssh_known_hosts``), ``BatchMode yes`` (no prompt to hang on).

A ``GIT_SSH_COMMAND`` the runbook's ``env:`` sets is kept as it is; ``TETHER_SSH_CONFIG`` names the config so
that command can add ``-F "$TETHER_SSH_CONFIG"`` itself (git runs it through the shell).
"""

from __future__ import annotations

import os
import shlex
import shutil
import stat
from collections.abc import Callable
from pathlib import Path

from tether.runbook.model import SECRET_SCHEMES, Agent
from tether.secrets import SecretError, resolve
from tether.wall import bridge, users

FOLDER = ".ssh"  # in the agent's private HOME
KEY, KNOWN_HOSTS, CONFIG = "id_tether", "known_hosts", "config"
CONFIG_VAR = "TETHER_SSH_CONFIG"


class SshError(Exception):
    """The runbook's ``ssh:`` cannot be honoured; one line with the fix."""


def client() -> str | None:
    return shutil.which("ssh")


def wanted(spec: Agent) -> bool:
    """Whether this agent gets an ssh config: its runbook names a key or known_hosts, or its ssh needs the
    proxy (``network: scoped``)."""
    return spec.network == "scoped" or spec.ssh.key is not None or spec.ssh.known_hosts is not None


def problems(spec: Agent, resolve_path: Callable[[str], Path]) -> list[str]:
    """What ``tether check`` says about the agent's ``ssh:`` (each keeps the agent from starting)."""
    out = []
    given = spec.ssh.key is not None or spec.ssh.known_hosts is not None
    if given and client() is None:
        out.append("ssh: the ssh client is not installed (apt-get install openssh-client); the agent will not start")
    for field, value in (("key", spec.ssh.key), ("known_hosts", spec.ssh.known_hosts)):
        if value is None or value.startswith(SECRET_SCHEMES):
            continue
        if not resolve_path(value).is_file():
            out.append(f"ssh.{field}: {resolve_path(value)} is not a file; the agent will not start")
    return out


def _text(field: str, value: str, resolve_path: Callable[[str], Path]) -> str:
    if value.startswith(SECRET_SCHEMES):  # ssh.key only: the model refuses one for known_hosts
        try:
            got = resolve(value)
        except SecretError as exc:
            raise SshError(f"ssh.key: {exc}") from None
        return got if got.endswith("\n") else got + "\n"
    path = resolve_path(value)
    try:
        return path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise SshError(f"ssh.{field}: cannot read {path} ({getattr(exc, 'strerror', None) or exc})") from None


def _write(path: Path, text: str, user: users.AgentUser) -> str:
    """``text`` at ``path``, 0600 and the agent's own (replaced whole at a start that changes it; as it is,
    it is left: a rename at every restart costs more than the rest of the wall's preparation)."""
    if _same(path, text, user):
        return str(path)
    tmp = path.with_name(path.name + ".new")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.chmod(tmp, 0o600)
    if os.geteuid() == 0:
        os.chown(tmp, user.uid, user.gid)
    os.replace(tmp, path)
    return str(path)


def _same(path: Path, text: str, user: users.AgentUser) -> bool:
    """Whether ``path`` is a regular file, 0600, the agent's own (as root) and holds ``text`` already."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return False
    with os.fdopen(fd, "rb") as f:
        st = os.fstat(f.fileno())
        owner = os.geteuid() != 0 or (st.st_uid, st.st_gid) == (user.uid, user.gid)
        if not stat.S_ISREG(st.st_mode) or stat.S_IMODE(st.st_mode) != 0o600 or not owner:
            return False
        return f.read(len(text.encode()) + 1) == text.encode()


def _quoted(path: str) -> str:
    return '"' + path + '"'


def prepare(
    spec: Agent, resolve_path: Callable[[str], Path], home: Path, user: users.AgentUser, net: bridge.Net | None
) -> tuple[list[tuple[str, str]], dict[str, str]]:
    """Writes ``HOME/.ssh/`` for the agent; returns its files (to bind read-only) and the environment inside
    (``TETHER_SSH_CONFIG``, and ``GIT_SSH_COMMAND`` unless the runbook sets it). Raises ``SshError``."""
    if not wanted(spec):
        return [], {}
    ssh = client()
    if ssh is None:
        if spec.ssh.key is None and spec.ssh.known_hosts is None:
            return [], {}  # nothing asked for: an agent without ssh just has none
        raise SshError("ssh: the ssh client is not installed: apt-get install openssh-client")
    folder = users.private_dir(home / FOLDER, user)
    files = []
    lines = ["# written by tether at each start (wall/ssh.py); read-only inside the wall", "Host *"]
    proxy = next((b.port for b in net.bridges if b.socket == bridge.PROXY_INSIDE), None) if net else None
    if proxy is not None and net is not None:
        lines.append(f"  ProxyCommand {shlex.quote(net.socat)} - PROXY:127.0.0.1:%h:%p,proxyport={proxy}")
    if spec.ssh.key is not None:
        key = _write(folder / KEY, _text("key", spec.ssh.key, resolve_path), user)
        files.append(key)
        lines += [f"  IdentityFile {_quoted(key)}", "  IdentitiesOnly yes"]
    known = "/dev/null"
    if spec.ssh.known_hosts is not None:
        known = _write(folder / KNOWN_HOSTS, _text("known_hosts", spec.ssh.known_hosts, resolve_path), user)
        files.append(known)
    lines += [
        f"  UserKnownHostsFile {_quoted(known)}",
        "  StrictHostKeyChecking yes",
        "  UpdateHostKeys no",
        "  BatchMode yes",
    ]
    config = _write(folder / CONFIG, "\n".join(lines) + "\n", user)
    files.append(config)
    env = {CONFIG_VAR: config}
    if "GIT_SSH_COMMAND" not in spec.env:
        env["GIT_SSH_COMMAND"] = shlex.join([ssh, "-F", config])
    return [(f, f) for f in files], env
