"""An agent's secrets through a real daemon: resolved from env:, file:, keyring: (a real file-backed keyring
backend, set with the `keyring` CLI) and credential: ($CREDENTIALS_DIRECTORY) into its environment,
redacted from its own log files as they are written (also while the daemon is SIGKILLed), and a secret
that cannot be resolved is a one-line "cannot start" reason, never a traceback."""

from __future__ import annotations

import hashlib
import json
import subprocess
import time
from collections.abc import Callable
from typing import Any

from test_daemon_kit import PY, Host, agent, make_host, wait_until  # noqa: F401
from tether.process.keeper import REDACTED

# every character sed's regular expressions or its s command treat specially
ENV_SECRET = r"env/se&cr\et.*[x]^$+?(1){2}|z"
FILE_SECRET = "file-secret-Mx0kPl77Vd"
KEYRING_SECRET = "keyring-secret-Q7v/&.x"
CRED_SECRET = "cred-secret-Hj2+9w"
PLAINTEXT = "keyrings.alt.file.PlaintextKeyring"

PRINTER = r"""
import hashlib, json, os, sys
names = sys.argv[1:]
for n in names:
    v = os.environ[n]
    print(f"{n} out: {v} twice {v}", flush=True)
    print(f"{n} err: {v}", file=sys.stderr, flush=True)
    print(f"{n} sha: {hashlib.sha256(v.encode()).hexdigest()}", flush=True)
    print(json.dumps({"n": n, "v": v}), flush=True)
sys.stdout.write("no newline " + os.environ[names[0]])
"""

TICKER = r"""
import os, sys, time
stop = sys.argv[1]
i = 0
while not os.path.exists(stop):
    print(i, os.environ["TOKEN"], flush=True)
    print(i, os.environ["TOKEN"], file=sys.stderr, flush=True)
    i += 1
    time.sleep(0.005)
print("last", i, flush=True)
"""


def quiet(command: list[str], **over: Any) -> dict[str, Any]:
    """An agent that runs once: no restart, and a failed start is retried only after a long pause."""
    return agent(command, restart={"policy": "never", "backoff": {"base": "1h", "jitter": 0}}, **over)


def raw(h: Host, name: str, stream: str) -> str:
    """The log files as they are on disk (not through `tether logs`, which redacts on read)."""
    return h.log(name, stream)


def exited(h: Host, name: str) -> bool:
    return bool(h.events("agent.exited", name))


def reason(h: Host, name: str) -> str:
    """The one-line reason the agent could not start."""
    got = wait_until(lambda: [e for e in h.events("agent.state", name) if e["data"].get("state") == "blocked"],
                     15, f"{name} to be blocked")
    text = str(got[0]["data"]["reason"])
    assert "\n" not in text and "Traceback" not in text
    ends = h.events("agent.exited", name)
    assert ends and ends[0]["data"]["code"] is None and ends[0]["data"]["error"] in text
    return text


def sha(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def check_printed(h: Host, name: str, secrets: dict[str, str]) -> None:
    out, err = raw(h, name, "stdout"), raw(h, name, "stderr")
    for value in secrets.values():
        assert value not in out and value not in err
        assert json.dumps(value)[1:-1] not in out
    lines = out.split("\n")
    for n, value in secrets.items():
        assert f"{n} out: {REDACTED} twice {REDACTED}" in lines
        assert f"{n} err: {REDACTED}" in err.split("\n")
        assert f"{n} sha: {sha(value)}" in lines, "the agent got the resolved value"
        assert json.dumps({"n": n, "v": REDACTED}) in lines
    assert out.endswith(f"no newline {REDACTED}"), "a last line without newline is written too"


def test_env_and_file_secrets_are_redacted_as_written(make_host: Callable[..., Host]) -> None:  # noqa: F811
    h: Host = make_host({})
    secret_file = h.root / "file.secret"
    secret_file.write_text(FILE_SECRET + "\n")
    secret_file.chmod(0o600)
    printer = h.script("printer.py", PRINTER)
    h.write({"p": quiet([PY, printer, "ENV_KEY", "FILE_KEY"],
                        secrets={"ENV_KEY": "env:TEST_ENV_SECRET", "FILE_KEY": f"file:{secret_file}"})})
    daemon = h.up(env={"TEST_ENV_SECRET": ENV_SECRET})
    wait_until(lambda: exited(h, "p"), 15, "the printer to exit")
    assert h.events("agent.exited", "p")[0]["data"]["code"] == 0
    check_printed(h, "p", {"ENV_KEY": ENV_SECRET, "FILE_KEY": FILE_SECRET})
    run_dir = h.state / "agents" / "p" / "run"
    assert not (run_dir / "redact.sed").exists(), "the filters' script is gone with the run"
    # `tether logs` shows the same
    got = h.cli("logs", "p")
    assert got.returncode == 0 and f"ENV_KEY out: {REDACTED} twice {REDACTED}" in got.stdout
    assert h.down(daemon) == 0


def test_sigkill_of_the_daemon_loses_no_line_and_leaks_none(make_host: Callable[..., Host]) -> None:  # noqa: F811
    h: Host = make_host({})
    stop = h.root / "stop"
    ticker = h.script("ticker.py", TICKER)
    h.write({"t": quiet([PY, ticker, str(stop)], secrets={"TOKEN": "env:TEST_TOKEN"})})
    token = "tok/en&.*" + "9" * 12
    daemon = h.up(env={"TEST_TOKEN": token})
    wait_until(lambda: raw(h, "t", "stdout").count("\n") > 30, 15, "the ticker to print")
    h.kill9(daemon)
    n_then = raw(h, "t", "stdout").count("\n")
    wait_until(lambda: raw(h, "t", "stdout").count("\n") > n_then + 100, 15, "the ticker to go on without a daemon")
    stop.touch()
    wait_until(lambda: "last" in raw(h, "t", "stdout"), 15, "the ticker to end")
    out, err = raw(h, "t", "stdout"), raw(h, "t", "stderr")
    assert token not in out + err
    lines = out.splitlines()
    last = int(lines[-1].split()[1])
    assert lines == [f"{i} {REDACTED}" for i in range(last)] + [f"last {last}"]
    assert err.splitlines() == [f"{i} {REDACTED}" for i in range(last)]
    # a new daemon records the end of the run it did not start
    daemon = h.up(env={"TEST_TOKEN": token})
    wait_until(lambda: exited(h, "t"), 15, "the exit to be recorded")
    assert h.down(daemon) == 0


def keyring_set(env: dict[str, str], service: str, name: str, value: str) -> None:
    got = subprocess.run([PY, "-m", "keyring", "set", service, name], input=value + "\n", env=env,
                         capture_output=True, text=True, timeout=30)
    assert got.returncode == 0, got.stderr


def test_keyring_and_credential_secrets(make_host: Callable[..., Host]) -> None:  # noqa: F811
    h: Host = make_host({})
    printer = h.script("printer.py", PRINTER)
    creds = h.root / "credentials"
    creds.mkdir(mode=0o700)
    (creds / "api-key").write_text(CRED_SECRET + "\n")
    ring = {"PYTHON_KEYRING_BACKEND": PLAINTEXT, "XDG_DATA_HOME": str(h.root / "xdg")}
    keyring_set({"PATH": "/usr/bin:/bin", **ring}, "tether-test", "token", KEYRING_SECRET)
    h.write({
        "kr": quiet([PY, printer, "KR"], secrets={"KR": "keyring:tether-test/token"}),
        "cred": quiet([PY, printer, "CRED"], secrets={"CRED": "credential:api-key"}),
        "kr_missing": quiet(["true"], secrets={"KR": "keyring:tether-test/absent"}),
        "cred_missing": quiet(["true"], secrets={"CRED": "credential:absent"}),
    })
    daemon = h.up(env={**ring, "CREDENTIALS_DIRECTORY": str(creds)})
    wait_until(lambda: exited(h, "kr") and exited(h, "cred"), 15, "the printers to exit")
    check_printed(h, "kr", {"KR": KEYRING_SECRET})
    check_printed(h, "cred", {"CRED": CRED_SECRET})
    assert reason(h, "kr_missing") == (
        "cannot start: keyring:tether-test/absent: not in the keyring; add it with `keyring set tether-test absent`")
    assert reason(h, "cred_missing") == (
        f"cannot start: credential:absent: cannot read {creds / 'absent'} (No such file or directory)")
    assert not h.agent_pids("kr_missing") and not raw(h, "kr_missing", "stdout")
    assert "Traceback" not in h.daemon_log()
    assert h.down(daemon) == 0


def test_no_keyring_backend_and_no_credentials_directory(make_host: Callable[..., Host]) -> None:  # noqa: F811
    h: Host = make_host({
        "kr": quiet(["true"], secrets={"KR": "keyring:tether-test/token"}),
        "cred": quiet(["true"], secrets={"CRED": "credential:api-key"}),
        # a claude-code agent resolves its environment before building its `claude -p` command line
        "cc": quiet([], kind="claude-code", prompt="hi", secrets={"CRED": "credential:api-key"}),
    })
    env = {"PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring", "CREDENTIALS_DIRECTORY": ""}
    daemon = h.up(env=env)
    text = reason(h, "kr")
    assert text.startswith("cannot start: keyring:tether-test/token: the keyring is not available (")
    assert text.endswith("; use file: or env: on a headless host")
    assert reason(h, "cred") == (
        "cannot start: credential:api-key: $CREDENTIALS_DIRECTORY is not set (use LoadCredential= in the unit)")
    assert reason(h, "cc") == reason(h, "cred")
    time.sleep(0.3)
    assert len(h.events("agent.exited", "kr")) == 1, "a failed start waits for its backoff"
    assert len(h.events("agent.exited", "cc")) == 1, "a failed start waits for its backoff"
    assert "Traceback" not in h.daemon_log()
    # the CLI reads the same reasons without a traceback
    got = h.cli("status")
    assert got.returncode == 0 and "Traceback" not in got.stdout + got.stderr
    assert h.down(daemon) == 0



ENV_PRINTER = r"""
import os, sys
for k, v in sorted(os.environ.items()):
    print(f"{k}={v}", flush=True)
print("Authorization: token " + sys.argv[1], flush=True)
print("to stderr too:", os.environ["TETHER_TOKEN"], file=sys.stderr, flush=True)
sys.stdout.write("no newline " + os.environ["TETHER_TOKEN"])
"""
GHP = "ghp_" + "aBcDeF0123456789aBcDeF0123456789ZZzz"  # by concatenation: no scanner flags this file


def test_an_agent_printing_its_environment_leaks_no_credential(make_host: Callable[..., Host]) -> None:  # noqa: F811
    """No secret of its own: every agent's output goes through the filter, its own token and every
    credential-shaped string redacted on disk, in the logs API, `tether logs`, events and `tether explain`."""
    h: Host = make_host({})
    printer = h.script("env_printer.py", ENV_PRINTER)
    h.write({"e": quiet([PY, printer, GHP], env={"MY_OPENAI_KEY": "sk-" + "abcdef0123456789ABCDEF0123456789"})})
    daemon = h.up()
    wait_until(lambda: exited(h, "e"), 15, "the printer to exit")
    token = h.agent_token("e")
    assert token.startswith("tt_ag_")
    out, err = raw(h, "e", "stdout"), raw(h, "e", "stderr")
    for leaked in (token, GHP, "sk-abcdef0123"):
        assert leaked not in out + err
    lines = out.split("\n")
    assert "TETHER_TOKEN=[REDACTED:secret]" in lines, "its own token, registered like a secret"
    assert "MY_OPENAI_KEY=[REDACTED:openai]" in lines
    assert "Authorization: token [REDACTED:github]" in lines
    assert "TETHER_AGENT=e" in lines, "the rest is as printed"
    assert lines[-1] == "no newline [REDACTED:secret]"
    assert err == "to stderr too: [REDACTED:secret]\n"
    # what approvers read: the logs API, with an approver's token (and the admin's)
    approver = h.cli("token", "create", "--role", "approver")
    assert approver.returncode == 0, approver.stderr
    for who in (approver.stdout.strip(), "admin"):
        code, body = h.api("GET", "/v1/agents/e/logs?tail=200", token=who)
        assert code == 200
        text = "\n".join(body["lines"])
        assert token not in text and GHP not in text and "Authorization: token [REDACTED:github]" in text
    got = h.cli("logs", "e")
    assert got.returncode == 0 and token not in got.stdout and "[REDACTED:github]" in got.stdout
    # the agent reports a command holding a credential: the event and the events API hold none
    code, _ = h.api("POST", "/v1/agents/e/report", {"kind": "command.run", "data": {
        "command": f"curl -H 'Authorization: token {GHP}' -H 'X-Tether: {token}'"}}, token=token)
    assert code == 200
    stored = json.dumps([e["data"] for e in h.events("command.run", "e")])
    assert GHP not in stored and token not in stored and "[REDACTED:github]" in stored
    code, body = h.api("GET", "/v1/events?agent=e")
    assert code == 200 and GHP not in json.dumps(body) and token not in json.dumps(body)
    # `tether explain` echoes the command: redacted
    got = h.cli("explain", "--", "curl", "-H", f"Authorization: token {GHP}", "https://api.github.com/user")
    assert got.returncode == 0, got.stderr
    assert GHP not in got.stdout and "[REDACTED:github]" in got.stdout
    got = h.cli("explain", "--json", "--", "curl", "-H", f"Authorization: token {GHP}", "https://example.com")
    assert got.returncode == 0 and GHP not in got.stdout
    assert h.down(daemon) == 0
