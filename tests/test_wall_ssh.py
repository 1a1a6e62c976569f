"""git over ssh from inside the wall (issue 16): ``GIT_SSH_COMMAND`` names an ssh config whose ``ProxyCommand``
(socat) goes through the egress proxy, with the key and known_hosts the runbook's ``ssh:`` names.

Real parts: a private sshd of the test's own on 127.0.0.1 (its host key, config and authorized_keys in a
temporary folder; never the system's sshd), a bare git repository it serves, and a command agent as its own
user inside the wall that clones and pushes over ssh: with the sshd's host:port in ``scope.hosts`` both work
and the commit lands; a host not in scope is refused by the proxy's 403 naming the approval, which git shows.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from test_daemon_kit import Host, agent, wait_until
from test_wall import host_folder, needs_wall
from tether.runbook.model import Agent
from tether.wall import bridge, ssh, users

pytestmark = pytest.mark.wall
USER = "tether-test-agent"
SSHD = "/usr/sbin/sshd"


def _sshd() -> str:
    """The sshd binary, installed as root when missing; skips with the reason when it cannot be had."""
    if not os.path.exists(SSHD) and shutil.which("apt-get"):
        subprocess.run(
            ["apt-get", "install", "-y", "-qq", "openssh-server"],
            env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
            capture_output=True,
            timeout=600,
            check=False,
        )
    if not os.path.exists(SSHD) or shutil.which("ssh") is None or shutil.which("ssh-keygen") is None:
        pytest.skip(
            "needs openssh-server and openssh-client, which could not be installed (apt-get install openssh-server)"
        )
    return SSHD


@pytest.fixture
def root(test_user: str) -> Iterator[Path]:
    needs_wall(socat=True, why=" and a private sshd")
    _sshd()
    yield from host_folder("tether-wallssh-")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _run(*argv: str, cwd: Path | None = None) -> str:
    got = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=60, check=False)
    assert got.returncode == 0, f"{argv}: {got.stdout}{got.stderr}"
    return got.stdout


class Sshd:
    """A private sshd on 127.0.0.1:``port`` serving ``repo`` (a bare repository) to ``key``'s holder."""

    def __init__(self, folder: Path) -> None:
        folder.mkdir(mode=0o700)
        self.folder = folder
        self.port = _free_port()
        self.host_key = folder / "host_ed25519"
        self.key = folder / "user_ed25519"
        for k in (self.host_key, self.key):
            _run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", k.name, "-f", str(k))
        (folder / "authorized_keys").write_text("restrict " + Path(f"{self.key}.pub").read_text())
        self.known_hosts = folder / "known_hosts"
        self.known_hosts.write_text(f"[127.0.0.1]:{self.port} {Path(f'{self.host_key}.pub').read_text()}")
        self.repo = folder / "repo.git"
        seed = folder / "seed"
        _run("git", "init", "-q", "--bare", "-b", "main", str(self.repo))
        _run("git", "init", "-q", "-b", "main", str(seed))
        (seed / "README").write_text("seed\n")
        _run("git", "-C", str(seed), "add", "README")
        _run("git", "-C", str(seed), "-c", "user.name=t", "-c", "user.email=t@x", "commit", "-qm", "seed")
        _run("git", "-C", str(seed), "push", "-q", str(self.repo), "main")
        config = folder / "sshd_config"
        config.write_text(
            f"Port {self.port}\nListenAddress 127.0.0.1\nHostKey {self.host_key}\nPidFile {folder}/sshd.pid\n"
            f"AuthorizedKeysFile {folder}/authorized_keys\nAuthenticationMethods publickey\n"
            "PasswordAuthentication no\nKbdInteractiveAuthentication no\nUsePAM no\n"
            "PermitRootLogin prohibit-password\nAllowUsers root\nStrictModes no\nLogLevel VERBOSE\n"
        )
        os.makedirs("/run/sshd", mode=0o755, exist_ok=True)  # sshd's privilege separation folder
        _run(SSHD, "-t", "-f", str(config))
        self.log = folder / "sshd.log"
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen([SSHD, "-D", "-e", "-f", str(config)], stdout=log, stderr=log)
        wait_until(
            lambda: "Server listening" in self.log.read_text() or self.proc.poll() is not None, 10, "sshd to listen"
        )
        assert self.proc.poll() is None, self.log.read_text()

    def url(self, host: str = "127.0.0.1") -> str:
        return f"ssh://root@{host}:{self.port}{self.repo}"

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=10)


PROBE = """set -u
cd {ws}
echo "git ssh: $GIT_SSH_COMMAND"
key="$(dirname "$TETHER_SSH_CONFIG")/id_tether"
if echo x > "$key" 2>/dev/null; then echo "key: WRITABLE"; else echo "key: read-only"; fi
git clone -q {url} clone > clone.log 2>&1; echo "clone rc=$?"
cd clone && echo "from the wall" > wall.txt && git add wall.txt \\
  && git -c user.name=agent -c user.email=agent@x commit -qm "from the wall" \\
  && git push -q origin main > ../push.log 2>&1; echo "push rc=$?"
cd {ws}
git clone -q {outside} refused > refused.log 2>&1; echo "refused rc=$?"
echo "refused: $(tr '\\n' ' ' < refused.log)"
echo done
exec sleep 3600
"""


def test_git_clones_and_pushes_over_ssh_through_the_proxy(root: Path) -> None:
    sshd = Sshd(root / "sshd")
    try:
        ws = root / "ws" / "git"
        ws.mkdir(parents=True)
        probe = PROBE.format(ws=ws, url=sshd.url(), outside=sshd.url("127.0.0.2"))
        (ws / "probe.sh").write_text(probe)
        spec = agent(
            ["sh", str(ws / "probe.sh")],
            run_as=USER,
            scope={"hosts": [f"127.0.0.1:{sshd.port}"]},
            ssh={"key": str(sshd.key), "known_hosts": str(sshd.known_hosts)},
        )
        h = Host(root, {"git": spec})
        try:
            daemon = h.up()
            out = wait_until(lambda: "done" in (o := h.log("git")) and o, 60, f"the probe: {h.log('git', 'stderr')}")
            logs = {n: (ws / n).read_text() if (ws / n).exists() else "" for n in ("clone.log", "push.log")}
            assert "git ssh: " in out and "-F" in out, out
            assert "key: read-only" in out, out
            assert "clone rc=0" in out, (out, logs, sshd.log.read_text())
            assert "push rc=0" in out, (out, logs, sshd.log.read_text())
            assert _run("git", "-C", str(sshd.repo), "log", "-1", "--format=%s", "main").strip() == "from the wall"
            assert "refused rc=0" not in out, out
            refused = next(ln for ln in out.splitlines() if ln.startswith("refused: "))
            # socat prints the proxy's 403 by its reason phrase: the pair refused and the approval that holds it
            assert f"refused: connect 127.0.0.2:{sshd.port}; held for approval" in refused, refused
            approval = re.search(r"tether approve (\d+)", refused)
            assert approval is not None, refused
            held = h.sql("SELECT state, detail FROM approvals WHERE id = ?", (int(approval.group(1)),))
            assert held == [{"state": "pending", "detail": f"network.egress: connect 127.0.0.2:{sshd.port}"}], held
            wait_until(
                lambda: (
                    {
                        (e["data"]["host"], e["data"]["port"], e["data"]["verdict"] == "allow")
                        for e in h.events("network.connection", "git")
                    }
                    == {("127.0.0.1", sshd.port, True), ("127.0.0.2", sshd.port, False)}
                ),
                10,
                "the ssh connections recorded (clone and push allowed, the other refused)",
            )
            assert h.down(daemon) == 0
        finally:
            h.cleanup()
    finally:
        sshd.stop()


def _spec(**over: object) -> Agent:
    base = {
        "name": "a",
        "owner": {"name": "A", "contact": "mailto:a@x"},
        "backup": {"name": "B", "contact": "mailto:b@x"},
    }
    return Agent.model_validate({**base, "command": ["true"], **over})


def test_the_config_names_key_known_hosts_and_proxy_and_keeps_a_runbook_command(tmp_path: Path) -> None:
    me = users.lookup_uid(os.geteuid())
    key, known = tmp_path / "k", tmp_path / "kh"
    key.write_text("KEY")
    known.write_text("host ssh-ed25519 AAAA\n")
    net = bridge.Net("/x", (bridge.Bridge("127.0.0.1", 3129, bridge.PROXY_INSIDE),), "/usr/bin/socat")
    spec = _spec(ssh={"key": "k", "known_hosts": "kh"})
    if ssh.client() is None:
        with pytest.raises(ssh.SshError, match="openssh-client"):
            ssh.prepare(spec, lambda p: tmp_path / p, tmp_path / "home", me, net)
        return
    files, env = ssh.prepare(spec, lambda p: tmp_path / p, tmp_path / "home", me, net)
    folder = tmp_path / "home" / ".ssh"
    assert {f for f, _ in files} == {str(folder / n) for n in ("id_tether", "known_hosts", "config")}
    assert (folder / "id_tether").read_text() == "KEY"
    assert oct((folder / "id_tether").stat().st_mode & 0o777) == "0o600"
    config = (folder / "config").read_text()
    assert "ProxyCommand /usr/bin/socat - PROXY:127.0.0.1:%h:%p,proxyport=3129" in config
    assert f'IdentityFile "{folder / "id_tether"}"' in config and "StrictHostKeyChecking yes" in config
    assert env["GIT_SSH_COMMAND"].endswith(f"-F {folder / 'config'}") and env["TETHER_SSH_CONFIG"] == str(
        folder / "config"
    )
    kept = _spec(env={"GIT_SSH_COMMAND": 'ssh -F "$TETHER_SSH_CONFIG" -v'})
    _, env = ssh.prepare(kept, lambda p: tmp_path / p, tmp_path / "home", me, net)
    assert "GIT_SSH_COMMAND" not in env and env["TETHER_SSH_CONFIG"]
    assert ssh.prepare(_spec(network="open"), lambda p: tmp_path / p, tmp_path / "home", me, None) == ([], {})


def test_check_names_a_missing_key_and_the_model_refuses_a_stray_field(tmp_path: Path) -> None:
    got = ssh.problems(_spec(ssh={"key": "nope", "known_hosts": "kh"}), lambda p: tmp_path / p)
    missing = [
        f"ssh.{f}: {tmp_path / n} is not a file; the agent will not start"
        for f, n in (("key", "nope"), ("known_hosts", "kh"))
    ]
    assert got == missing or (ssh.client() is None and got[1:] == missing), got
    assert ssh.problems(_spec(ssh={"key": "env:KEY"}), lambda p: tmp_path / p) in ([], [got[0]])
    with pytest.raises(ValueError, match="expected a path to a known_hosts file"):
        _spec(ssh={"known_hosts": "env:KH"})
    with pytest.raises(ValueError, match="extra"):
        _spec(ssh={"key": "k", "identity": "x"})
