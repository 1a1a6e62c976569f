"""The HTTP API's roles, tokens stored as hashes only, the agent's environment, and secrets redacted from
what tether writes. One daemon, real HTTP."""

from __future__ import annotations

import hashlib
import json
import os
import socket
import subprocess
import sys

import pytest

from test_daemon_kit import IS_ROOT, PY, Host, agent, environ, make_host, wait_until  # noqa: F401

ENV_SECRET = "env-secret-Zq8RrT52xW"
FILE_SECRET = "file-secret-Mx0kPl77Vd"

LEAKER = """
import json, os, time
from tether.sdk import Agent
a = Agent.from_env()
print("my secrets:", os.environ["API_KEY"], os.environ["FILE_KEY"], flush=True)
json.dump(dict(os.environ), open(os.environ["DUMP"], "w"))
a.report("log", line="api key is " + os.environ["API_KEY"] + " and " + os.environ["FILE_KEY"])
a.heartbeat(task="using " + os.environ["FILE_KEY"], progress=os.environ["API_KEY"])
print("reported", flush=True)
time.sleep(3600)
"""


@pytest.fixture
def api_host(make_host) -> Host:  # noqa: F811
    h: Host = make_host({})
    secret_file = h.root / "file.secret"
    secret_file.write_text(FILE_SECRET + "\n")
    secret_file.chmod(0o600)
    leaker = h.script("leaker.py", LEAKER)
    h.write({
        "a": agent([PY, leaker], env={"DUMP": str(h.root / "env.json")},
                   secrets={"API_KEY": "env:TEST_API_KEY", "FILE_KEY": f"file:{secret_file}"}),
        "b": agent(["sleep", "3600"]),
    })
    return h


def test_roles_tokens_environment_and_secrets(api_host: Host) -> None:
    h = api_host
    # the daemon's own environment holds credentials no agent may see
    daemon = h.up(env={"TEST_API_KEY": ENV_SECRET, "TETHER_ADMIN_TOKEN": "tt_ad_daemon-only",
                       "TETHER_NOTIFY_URL": "json://secret-host/x", "AWS_SECRET_ACCESS_KEY": "daemon-aws"})
    wait_until(lambda: "reported" in h.log("a"), 10, "agent a to report")
    wait_until(lambda: h.row("b")["state"] == "running", 10, "agent b to run")
    admin = h.admin_token()
    tok_a, tok_b = h.agent_token("a"), h.agent_token("b")

    # 401 without a (valid) token
    assert h.api("GET", "/v1/agents", token=None)[0] == 401
    assert h.api("POST", "/v1/agents/a/heartbeat", {}, token=None)[0] == 401
    assert h.api("POST", "/v1/agents/a/heartbeat", {}, token="tt_ag_nope_nope")[0] == 401

    # an agent token acts for its own agent only
    assert h.api("POST", "/v1/agents/a/heartbeat", {"progress": "1"}, token=tok_a)[0] == 200
    assert h.api("POST", "/v1/agents/b/heartbeat", {"progress": "1"}, token=tok_a)[0] == 403
    assert h.api("POST", "/v1/agents/b/tasks", {"text": "x"}, token=tok_a)[0] == 403
    assert h.api("POST", "/v1/agents/b/tasks/next", {}, token=tok_a)[0] == 403
    assert h.api("POST", "/v1/agents/b/report", {"kind": "log", "data": {}}, token=tok_a)[0] == 403
    assert h.api("GET", "/v1/agents/b", token=tok_a)[0] == 403
    assert h.api("GET", "/v1/agents/a", token=tok_a)[0] == 200
    assert h.api("POST", "/v1/agents/b/report", {"kind": "log", "data": {}}, token=tok_b)[0] == 200
    for verb in ("stop", "start", "restart", "kill", "resume"):
        assert h.api("POST", f"/v1/agents/a/{verb}", {}, token=tok_a)[0] == 403, verb
    assert h.api("POST", "/v1/reload", token=tok_a)[0] == 403
    assert h.api("POST", "/v1/shutdown", token=tok_a)[0] == 403

    # an approver reads but cannot control; `tether token create` prints the token once, stores its hash
    got = h.cli("token", "create", "--role", "approver")
    assert got.returncode == 0, got.stderr
    approver = got.stdout.strip()
    assert approver.startswith("tt_ap_") and len(got.stdout.splitlines()) == 1
    assert h.api("GET", "/v1/agents", token=approver)[0] == 200
    for verb in ("stop", "start", "restart", "kill", "resume"):
        assert h.api("POST", f"/v1/agents/b/{verb}", {}, token=approver)[0] == 403, verb
    assert h.api("POST", "/v1/reload", token=approver)[0] == 403
    assert h.api("POST", "/v1/shutdown", token=approver)[0] == 403
    assert h.api("POST", "/v1/agents/b/heartbeat", {}, token=approver)[0] == 403

    # the admin controls
    assert h.api("POST", "/v1/agents/b/restart", {}, token=admin)[0] == 200
    assert h.api("POST", "/v1/agents/b/stop", {}, token=admin)[0] == 200
    assert h.row("b")["state"] == "stopped"
    assert h.api("POST", "/v1/agents/nope/stop", {}, token=admin)[0] == 404

    db_bytes = b"".join((h.state / f).read_bytes() for f in os.listdir(h.state) if f.startswith("tether.db"))
    for token in (approver, admin, tok_a, tok_b):
        assert token.encode() not in db_bytes, "a token in clear in the store"
        assert hashlib.sha256(token.encode()).hexdigest().encode() in db_bytes
    assert (h.state / "admin.token").stat().st_mode & 0o777 == 0o600
    assert (h.state / "agents" / "a" / "agent.token").stat().st_mode & 0o777 == 0o600

    # the agent's environment: its name, the daemon's address and its own token; nothing of the daemon's
    env = json.loads((h.root / "env.json").read_text())
    assert env["TETHER_AGENT"] == "a" and env["TETHER_URL"] == h.url and env["TETHER_TOKEN"] == tok_a
    assert env["TETHER_TOKEN"] != admin
    assert not {k for k in env if k.startswith("TETHER_")} - {
        "TETHER_AGENT", "TETHER_URL", "TETHER_TOKEN", "TETHER_KILL_FILES", "TETHER_INSTANCE", "TETHER_TEST_MARK",
        "TETHER_PYTHON"}  # the interpreter its `tether` runs (daemon/agentpath.py)
    assert "AWS_SECRET_ACCESS_KEY" not in env and "TEST_API_KEY" not in env
    assert admin not in json.dumps(env)
    assert env["API_KEY"] == ENV_SECRET and env["FILE_KEY"] == FILE_SECRET, "resolved secrets are in its env"
    pid = h.agent_pids("a")[0]
    assert ENV_SECRET not in " ".join(_cmdline(pid)), "never on a command line"

    # ...and redacted from every event and status file tether writes
    for secret in (ENV_SECRET, FILE_SECRET):
        assert secret.encode() not in db_bytes, "a resolved secret in the store"
        status = (h.state / "agents" / "a" / "agent-status.json").read_text()
        assert secret not in status
    reports = [e for e in h.events("log", "a")]
    assert reports and "[REDACTED:secret]" in reports[0]["data"]["line"]
    # the agent's own stdout is redacted as it is written; `tether logs` redacts on read too
    assert FILE_SECRET not in h.log("a") and ENV_SECRET not in h.log("a")
    assert "my secrets: [REDACTED:secret] [REDACTED:secret]" in h.log("a")
    got = h.cli("logs", "a", env={"TEST_API_KEY": ENV_SECRET})
    assert got.returncode == 0 and "my secrets:" in got.stdout
    assert FILE_SECRET not in got.stdout and ENV_SECRET not in got.stdout
    assert h.down(daemon) == 0


def _cmdline(pid: int) -> list[str]:
    with open(f"/proc/{pid}/cmdline", "rb") as f:
        return [a.decode() for a in f.read().split(b"\0") if a]


def test_the_unix_socket_refuses_agent_uids(make_host) -> None:  # noqa: F811
    """The control socket answers the daemon's user and refuses an agent's UID (SO_PEERCRED), even one
    that could reach the socket."""
    if not IS_ROOT:
        pytest.skip("needs root to run as the agent's user")
    import pwd

    try:
        nobody = pwd.getpwnam("nobody")
    except KeyError:
        pytest.skip("no user nobody")
    h: Host = make_host({"w": agent(["sleep", "3600"], run_as="nobody")})
    daemon = h.up()
    sock_path = h.state / "tether.sock"
    assert sock_path.exists() and sock_path.stat().st_mode & 0o777 == 0o600
    request = (b"GET /v1/agents HTTP/1.1\r\nhost: tether\r\nauthorization: Bearer "
               + h.admin_token().encode() + b"\r\nconnection: close\r\n\r\n")
    with socket.socket(socket.AF_UNIX) as s:
        s.connect(str(sock_path))
        s.sendall(request)
        answer = _read_all(s)
    assert answer.startswith(b"HTTP/1.1 200"), answer[:200]

    # a process running as nobody that may still reach the socket (it keeps CAP_DAC_OVERRIDE)
    probe = (  # the daemon answers a refused peer at once, before any request
        "import socket, sys\n"
        "s = socket.socket(socket.AF_UNIX); s.settimeout(5); s.connect(sys.argv[1])\n"
        "data = b''\n"
        "while chunk := s.recv(65536):\n    data += chunk\n"
        "print(data.decode(errors='replace').splitlines()[0])\n"
    )
    cmd = ["setpriv", f"--reuid={nobody.pw_uid}", f"--regid={nobody.pw_gid}", "--clear-groups",
           "--inh-caps=+dac_override,+dac_read_search", "--ambient-caps=+dac_override,+dac_read_search",
           "/usr/bin/python3", "-I", "-c", probe, str(sock_path)]
    if not os.path.exists("/usr/bin/python3"):
        pytest.skip("needs a system python3 the agent's user can run")
    got = subprocess.run(cmd, capture_output=True, text=True, timeout=20)
    if got.returncode != 0 and "Operation not permitted" in got.stderr:
        pytest.skip(f"setpriv cannot keep capabilities here: {got.stderr.strip()}")
    assert got.returncode == 0, got.stderr
    assert got.stdout.startswith("HTTP/1.1 403"), got.stdout
    assert h.down(daemon) == 0
    assert not sock_path.exists()


def _read_all(s: socket.socket) -> bytes:
    data = b""
    while chunk := s.recv(65536):
        data += chunk
    return data


def test_cli_talks_to_the_daemon(api_host: Host) -> None:
    h = api_host
    daemon = h.up(env={"TEST_API_KEY": ENV_SECRET})
    got = h.cli("stop", "b")
    assert got.returncode == 0, got.stderr
    assert h.state_of("b") == "stopped"
    again = h.cli("up")
    assert again.returncode != 0 and "already runs" in again.stderr
    assert h.cli("down").returncode == 0
    daemon.wait(timeout=20)
    assert h.info() is None
    assert sys.executable
