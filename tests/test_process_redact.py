"""An agent's secrets, and anything shaped like a credential, are redacted from its log files as it writes
them: the keeper pipes its stdout and stderr through a line-flushing sed each (``SpawnSpec.redact``). Real
processes, real sed."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from test_process_keeper import run, wait_for  # noqa: F401 - run is a fixture
from tether import redact
from tether.process import SpawnSpec, rotate, spawn
from tether.process.keeper import REDACT_SED, REDACTED, filter_command, log_filter, redact_script

pytestmark = pytest.mark.skipif(log_filter() is None, reason="no sed")

# every character sed's regular expressions (basic or extended) or its s command treat specially
SPECIAL = r"p/a&s\s.w*o[r]d^$x+y?(z){2}|q}]!#'" + '"'
PLAIN = "plain-Secret-9f3Kq2"
TOKEN = "tt_" + "ag_0123abcd_" + "Zx9-_" * 8 + "abc"  # built by concatenation: no scanner flags this file
GHP = "ghp_" + "aBcDeF0123456789aBcDeF0123456789ZZzz"
SECRETS = [PLAIN, SPECIAL, "ünïcode-sëcret-€"]


def raw(log_dir: Path, stream: str) -> bytes:
    return b"".join(p.read_bytes() for p in sorted(log_dir.glob(f"{stream}.log*"), reverse=True))


def keeper_children(keeper_pid: int) -> list[int]:
    out = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                text = Path(f"/proc/{d}/stat").read_text()
            except OSError:
                continue
            fields = text.rsplit(")", 1)[1].split()
            if int(fields[1]) == keeper_pid and fields[0] != "Z":
                out.append(int(d))
    return out


@pytest.fixture
def make(run: Callable[..., SpawnSpec]) -> Callable[..., SpawnSpec]:  # noqa: F811
    """``test_process_keeper``'s specs, with the secrets in the agent's environment."""
    env = {**os.environ, **{f"S{i}": v for i, v in enumerate(SECRETS)}}
    return lambda argv, **kw: run(argv, env=env, **kw)


PRINTER = r"""
import os, sys
secrets = [os.environ[f"S{i}"] for i in range(3)]
for i, s in enumerate(secrets):
    print(f"out {i} [{s}] {s}{s} end", flush=True)
    print(f"err {i} <{s}>", file=sys.stderr, flush=True)
print("two-line value:", os.environ["S0"] + "\n" + os.environ["S1"], flush=True)
sys.stdout.write("no newline " + secrets[1])
sys.stdout.flush()
sys.exit(7)
"""


def test_secrets_never_reach_the_log_files(make: Callable[..., SpawnSpec]) -> None:
    spec = make([sys.executable, "-c", PRINTER], redact=list(SECRETS))
    h = spawn(spec)
    assert h.wait_exit(10) == 7, "the exit file holds the agent's status, not the filter's"
    out, err = raw(spec.log_dir, "stdout"), raw(spec.log_dir, "stderr")
    for s in SECRETS:
        assert s.encode() not in out + err
    m = REDACTED
    assert out.decode().splitlines() == [
        *(f"out {i} [{m}] {m}{m} end" for i in range(3)),
        f"two-line value: {m}", m,
        f"no newline {m}",
    ]
    assert not out.endswith(b"\n"), "a last line without newline is kept as it was"
    assert err.decode() == "".join(f"err {i} <{m}>\n" for i in range(3))
    redact.register(PLAIN)
    assert redact.redact(PLAIN) == REDACTED, "the marker `tether logs` writes"
    left = sorted(p.name for p in spec.run_dir.iterdir())
    assert REDACT_SED not in left and "stdout.pipe" not in left, left


def test_the_agent_is_the_agent_and_no_secret_is_on_a_command_line(make: Callable[..., SpawnSpec]) -> None:
    spec = make([sys.executable, "-c", "import time; print('up', flush=True); time.sleep(60)"], redact=list(SECRETS))
    h = spawn(spec)
    agent = h.agent_pid()
    assert agent is not None
    assert "time.sleep(60)" in Path(f"/proc/{agent}/cmdline").read_text(), "agent.pid is the agent, not sed"
    wait_for(lambda: b"up\n" in raw(spec.log_dir, "stdout"))
    keeper = h.keeper_id
    assert keeper is not None
    filters = [p for p in keeper_children(keeper.pid) if p != agent]
    assert len(filters) == 2 and all(b"sed" in Path(f"/proc/{p}/cmdline").read_bytes() for p in filters)
    for pid in [keeper.pid, agent, *filters]:
        cmd = Path(f"/proc/{pid}/cmdline").read_bytes()
        assert not any(s.encode() in cmd for s in SECRETS)
    for pid in filters:  # not the agent's: no TETHER_INSTANCE, another process group
        assert b"TETHER_INSTANCE=" not in Path(f"/proc/{pid}/environ").read_bytes()
        assert os.getpgid(pid) != agent
    left = sorted(p.name for p in spec.run_dir.iterdir())
    assert REDACT_SED not in left and "stdout.pipe" not in left, "no value on disk once spawn returned"
    for pid in filters:  # each filter holds the script through an fd of its own
        held = [Path(f"/proc/{pid}/fd/{fd}") for fd in os.listdir(f"/proc/{pid}/fd")]
        scripts = [p for p in held if os.readlink(p).endswith(f"{REDACT_SED} (deleted)")]
        assert scripts and all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in scripts)
        assert PLAIN.encode() in scripts[0].read_bytes()
    # kill the tree: the agent goes, the filters see end of file and go, the keeper records the signal
    report = h.kill("TERM", grace=2)
    assert report.ok and not set(report.signalled) & set(filters), "the kill never hits a filter"
    assert h.wait_exit(5) == 128 + signal.SIGTERM
    wait_for(lambda: not any(_alive(p) for p in filters))


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_a_line_is_in_the_log_as_soon_as_it_is_printed(make: Callable[..., SpawnSpec]) -> None:
    code = "import os, time\nprint('first', os.environ['S0'], flush=True)\ntime.sleep(30)"
    spec = make([sys.executable, "-c", code], redact=[PLAIN])
    h = spawn(spec)
    wait_for(lambda: raw(spec.log_dir, "stdout") == f"first {REDACTED}\n".encode(), 3)
    assert h.running()
    h.kill("KILL", grace=1)
    assert h.wait_exit(5) == 128 + signal.SIGKILL


def test_killed_by_a_signal_keeps_every_line(make: Callable[..., SpawnSpec]) -> None:
    code = (
        "import os, signal\nfor i in range(2000): print(i, os.environ['S1'])\n"
        "import sys; sys.stdout.flush(); os.kill(os.getpid(), signal.SIGKILL)"
    )
    spec = make([sys.executable, "-c", code], redact=list(SECRETS))
    h = spawn(spec)
    assert h.wait_exit(10) == 128 + signal.SIGKILL
    assert raw(spec.log_dir, "stdout").decode().splitlines() == [f"{i} {REDACTED}" for i in range(2000)]


def test_rotation_with_the_filter_keeps_every_line(make: Callable[..., SpawnSpec], tmp_path: Path) -> None:
    stop = tmp_path / "stop"
    code = (
        "import os, sys, time\ni = 0\n"
        f"while not os.path.exists({str(stop)!r}):\n"
        "    print(i, os.environ['S0'], flush=True); i += 1; time.sleep(0.002)\n"
        "print('last', i, flush=True)"
    )
    spec = make([sys.executable, "-c", code], redact=[PLAIN])
    h = spawn(spec)
    wait_for(lambda: raw(spec.log_dir, "stdout").count(b"\n") > 50)
    assert rotate(spec.log_dir, max_bytes=1, keep=5)
    time.sleep(0.1)
    stop.touch()
    assert h.wait_exit(10) == 0
    lines = raw(spec.log_dir, "stdout").decode().splitlines()
    n = int(lines[-1].split()[1])
    assert lines == [f"{i} {REDACTED}" for i in range(n)] + [f"last {n}"]
    assert (spec.log_dir / "stdout.log.1").exists()


def test_no_secrets_no_filter(make: Callable[..., SpawnSpec]) -> None:
    spec = make(["sh", "-c", "echo hi; sleep 30"])
    h = spawn(spec)
    keeper, agent = h.keeper_id, h.agent_pid()
    assert keeper is not None and agent is not None
    assert keeper_children(keeper.pid) == [agent], "the agent writes its log files itself"
    assert os.readlink(f"/proc/{agent}/fd/1") == str(spec.log_dir / "stdout.log")
    assert not (spec.run_dir / REDACT_SED).exists()
    h.kill("KILL", grace=1)


def test_no_values_still_redacts_credentials(make: Callable[..., SpawnSpec]) -> None:
    spec = make(["sh", "-c", f"echo hi; echo 'TETHER_TOKEN={TOKEN}'; echo {GHP} >&2"], redact=["", "\n"])
    h = spawn(spec)
    assert h.wait_exit(5) == 0
    assert raw(spec.log_dir, "stdout") == b"hi\nTETHER_TOKEN=[REDACTED:tether]\n"
    assert raw(spec.log_dir, "stderr") == b"[REDACTED:github]\n"


SPLIT = r"""
import sys, time
token, key = sys.argv[1], sys.argv[2]
for i in range(0, len(token), 7):  # one line in many writes, a pause between them
    sys.stdout.write(token[i:i + 7]); sys.stdout.flush(); time.sleep(0.01)
print(" end", flush=True)
print("-----BEGIN EC PRIVATE KEY-----", flush=True)
print(key, flush=True)
print("-----END EC PRIVATE KEY----- after", flush=True)
print("clear", flush=True)
sys.stdout.write("last " + token)  # a last line without newline
"""


def test_lines_split_across_writes_and_key_blocks(make: Callable[..., SpawnSpec]) -> None:
    key = "MHcCAQEEIBkg" + "Zm9vYmFy" * 6
    spec = make([sys.executable, "-c", SPLIT, TOKEN, key], redact=[])
    h = spawn(spec)
    assert h.wait_exit(10) == 0
    pem = "[REDACTED:private-key]"
    assert raw(spec.log_dir, "stdout").decode() == (
        f"[REDACTED:tether] end\n{pem}\n{pem}\n{pem} after\nclear\nlast [REDACTED:tether]")


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.text(st.characters(blacklist_categories=["Cs"], blacklist_characters="\n\0"),
                        min_size=1, max_size=20), min_size=1, max_size=4))
def test_any_value_is_matched_literally(values: list[str]) -> None:
    argv = log_filter()
    assert argv is not None
    line = "<" + "|".join(values) + ">"
    script = Path(f"/tmp/tether-redact-{os.getpid()}.sed")
    script.write_bytes(redact_script(values))
    try:
        command, env = filter_command(argv, str(script))
        got = subprocess.run(command, input=(line + "\n").encode(), capture_output=True, env=env, timeout=10,
                             check=True).stdout.decode()
    finally:
        script.unlink()
    rest = got.replace(REDACTED, "\0")
    assert rest.endswith("\n") and rest.count("\n") == 1
    for v in values:
        assert v not in rest


def test_an_escaped_descendant_holding_the_output_delays_the_exit_by_2_s_at_most(
        make: Callable[..., SpawnSpec]) -> None:
    code = "sleep 30 & echo $! > \"$1\"; echo bye"  # the sleep keeps the agent's stdout open
    pid_file = Path(f"/tmp/tether-escaped-{os.getpid()}")
    spec = make(["/bin/sh", "-c", code, "sh", str(pid_file)], redact=[])
    h = spawn(spec)
    started = time.monotonic()
    try:
        assert h.wait_exit(10) == 0
        took = time.monotonic() - started
        assert 1.5 < took < 5, f"the keeper waited {took:.2f} s for filters that cannot end yet"
        assert raw(spec.log_dir, "stdout") == b"bye\n", "the agent's lines are written before the end"
    finally:
        if pid_file.exists():
            os.kill(int(pid_file.read_text()), signal.SIGKILL)
            pid_file.unlink()


def test_a_quick_exit_is_recorded_at_once(make: Callable[..., SpawnSpec]) -> None:
    spec = make(["/bin/sh", "-c", "echo bye"], redact=[])
    h = spawn(spec)
    started = time.monotonic()
    assert h.wait_exit(10) == 0
    assert time.monotonic() - started < 1.0, "the keeper waits for the filters' end, not for a timer"
    assert raw(spec.log_dir, "stdout") == b"bye\n"
