"""One rule for the state directory, for every command and the daemon: ``--home`` > the runbook's
``host.state_dir`` > ``$TETHER_HOME`` > the platform default. And the recovery commands (kill, resume,
status, down) work from any folder given only the state directory, quickly, with the daemon stopped,
SIGSTOPped or dead, saying what they did and what they found."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from helpers import cli_env, one_line_error, run_cli
from test_daemon_kit import Host, agent, make_host, wait_until  # noqa: F401
from tether.store import open_store

LOOPER = ["sh", "-c", "while :; do sleep 0.05; done"]
# Seconds a recovery command may take here, Python's start-up included: it must not wait on a daemon that
# cannot answer (resume used to wait 15 s). On a quiet machine each takes 0.3-0.6 s; test machines are shared.
QUICK = 5.0


# --- the matrix -----------------------------------------------------------------------------------


@pytest.fixture
def dirs(tmp_path: Path) -> dict[str, Path]:
    """A store in each candidate state directory: --home (A), the runbook's (R), $TETHER_HOME (E), the
    platform default (D, under $XDG_STATE_HOME); and a folder to work in."""
    out = {"A": tmp_path / "home-flag", "R": tmp_path / "runbook-state", "E": tmp_path / "env-home",
           "D": tmp_path / "xdg" / "tether", "work": tmp_path / "work"}
    for key in ("A", "R", "E", "D"):
        out[key].mkdir(parents=True)
        open_store(f"sqlite:///{out[key] / 'tether.db'}").close()
    out["work"].mkdir()
    return out


CASES = [  # (--home, runbook: its state_dir or "" for none or None for no runbook, $TETHER_HOME) -> dir
    (None, None, None, "D"),
    (None, None, "E", "E"),
    ("A", None, None, "A"),
    ("A", None, "E", "A"),
    (None, "R", None, "R"),
    (None, "R", "E", "R"),
    (None, "", "E", "E"),
    (None, "", None, "D"),
    ("A", "R", "E", "A"),
    ("A", "", None, "A"),
]


@pytest.mark.parametrize(("how", "home", "state_dir", "env_home", "expected"),
                         [("cwd", *c) for c in CASES] + [("-f", *c) for c in CASES if c[1] is not None])
def test_every_combination_resolves_one_way(dirs: dict[str, Path], how: str, home: str | None,
                                            state_dir: str | None, env_home: str | None, expected: str) -> None:
    args: list[str] = []
    if state_dir is not None:
        host = {"state_dir": str(dirs[state_dir])} if state_dir else {}
        runbook = dirs["work"] / "tether.yaml"
        runbook.write_text(yaml.safe_dump({"version": 1, "host": host, "agents": {}}))
        if how == "-f":
            runbook = runbook.rename(dirs["work"].parent / "elsewhere.yaml")
            args += ["-f", str(runbook)]
    if home is not None:
        args += ["--home", str(dirs[home])]
    env = {"XDG_STATE_HOME": str(dirs["D"].parent)}
    if env_home is not None:
        env["TETHER_HOME"] = str(dirs[env_home])
    proc = run_cli(*args, "status", "--json", env=env, cwd=dirs["work"])
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["state_dir"] == str(dirs[expected])
    if state_dir and env_home and home is None:  # the runbook and $TETHER_HOME disagree: said in one line
        assert proc.stderr == (f"tether: note: using {dirs['R']} (host.state_dir in {runbook}), not "
                               f"$TETHER_HOME={dirs['E']}; pass --home {dirs['E']} to use that one\n")
    else:
        assert proc.stderr == ""


def test_two_runbooks_do_not_share_an_unnamed_state_dir(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    a, b = tmp_path / "a" / "tether.yaml", tmp_path / "b" / "tether.yaml"
    for rb in (a, b):
        rb.parent.mkdir()
        rb.write_text(yaml.safe_dump({"version": 1, "host": {"listen": "127.0.0.1:0"}, "agents": {}}))
    env = {"TETHER_HOME": str(shared)}
    first = run_cli("-f", str(a), "up", env=env)
    assert first.returncode == 0, first.stderr
    try:
        assert (shared / "runbook.yaml").read_text().splitlines()[0].endswith(str(a))
        second = run_cli("-f", str(b), "up", env=env)
        assert one_line_error(second) == (
            f"tether: error: {shared} is already the state directory of {a}; give {b} its own "
            f"(host.state_dir), or pass --home {shared} to share it")
        assert second.returncode == 2
    finally:
        down = run_cli("--home", str(shared), "down")
        assert down.returncode == 0, down.stderr
    assert down.stdout == "tether daemon stopped\n"


# --- recovery with only the state directory ---------------------------------------------------------


def timed(*args: str, cwd: Path, env: dict[str, str] | None = None) -> tuple[subprocess.CompletedProcess[str], float]:
    started = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "tether", *args], cwd=cwd, env=cli_env(env), capture_output=True,
                          text=True, timeout=60)
    return proc, time.monotonic() - started


def killed(out: str) -> bool:
    """``tether kill looper`` said it signalled one process or more (the shell, maybe its sleep)."""
    got = re.match(r"looper: killed \((\d+) process\(es\) signalled[;)].*`tether resume looper` lifts it\n$", out)
    assert got is not None and int(got[1]) >= 1, out
    return True


def status(h: Host, cwd: Path) -> dict[str, object]:
    proc = run_cli("--home", str(h.state), "status", "--json", cwd=cwd)
    assert proc.returncode == 0, proc.stderr
    out: dict[str, object] = json.loads(proc.stdout)
    return out


def test_kill_resume_status_down_from_anywhere_with_the_daemon_stopped_or_dead(make_host, tmp_path: Path) -> None:  # noqa: F811
    h: Host = make_host({"looper": agent(LOOPER)}, {"state_dir": "./state"})
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {"TETHER_HOME": str(elsewhere), "TETHER_TEST_MARK": h.mark}
    daemon = h.up(env=env)  # the runbook's ./state outranks $TETHER_HOME, for the daemon too
    first = wait_until(lambda: h.agent_pids("looper"), 10, "looper")
    anywhere = tmp_path / "anywhere"
    anywhere.mkdir()

    # the report: `-f tether.yaml kill looper` with TETHER_HOME elsewhere killed nothing and said it had
    proc, _ = timed("-f", str(h.runbook), "kill", "looper", cwd=h.root, env=env)
    assert proc.returncode == 0, proc.stderr
    assert killed(proc.stdout)
    assert proc.stderr.startswith("tether: note: using "), proc.stderr
    wait_until(lambda: not h.agent_pids("looper"), 5, "looper to be gone")
    assert not (elsewhere / "agents").exists()

    resumed = run_cli("--home", str(h.state), "resume", "looper", cwd=anywhere)  # the runbook copy suffices
    assert resumed.stdout == "looper: resumed\n", resumed.stderr
    wait_until(lambda: h.agent_pids("looper"), 10, "looper again")
    assert h.agent_pids("looper") != first

    daemon.send_signal(signal.SIGSTOP)
    try:
        got = status(h, anywhere)
        assert got["daemon"]["state"] == "stopped" and got["daemon"]["pid"] == daemon.pid  # type: ignore[index]
        assert [(a["agent"], a["state"]) for a in got["agents"]] == [("looper", "unsupervised")]  # type: ignore[attr-defined]
        proc, took = timed("--home", str(h.state), "kill", "looper", cwd=anywhere)
        assert proc.returncode == 0 and took < QUICK, (proc.stderr, took)
        assert killed(proc.stdout)
        proc, took = timed("--home", str(h.state), "resume", "looper", cwd=anywhere)
        assert proc.returncode == 0 and took < QUICK, (proc.stderr, took)
        assert proc.stdout == (f"looper: kill switch lifted; the daemon (pid {daemon.pid}) is stopped (SIGSTOP), so "
                               "looper is not started; `tether start looper` once it answers\n")
        proc, took = timed("--home", str(h.state), "down", cwd=anywhere)
        assert took < QUICK and one_line_error(proc).startswith(f"tether: error: the daemon (pid {daemon.pid}) is "
                                                                "stopped (SIGSTOP)")
        proc, took = timed("--home", str(h.state), "status", cwd=anywhere)
        assert took < QUICK and proc.stdout.startswith(f"daemon: pid {daemon.pid} is stopped (SIGSTOP)"), proc.stdout
    finally:
        daemon.send_signal(signal.SIGCONT)

    started = run_cli("--home", str(h.state), "start", "looper", cwd=anywhere)
    assert started.returncode == 0, started.stderr
    pid = wait_until(lambda: h.agent_pids("looper"), 10, "looper started")[0]
    h.kill9(daemon)
    got = status(h, anywhere)
    assert got["daemon"]["state"] == "down" and got["daemon"]["pid"] == daemon.pid  # type: ignore[index]
    assert got["daemon"]["since_s"] is not None and not got["daemon"]["clean"]  # type: ignore[index]
    [looper] = got["agents"]  # type: ignore[misc]
    assert (looper["state"], looper["pid"]) == ("unsupervised", pid)  # the process lives: not "running"
    proc, took = timed("--home", str(h.state), "status", cwd=anywhere)
    assert proc.stdout.startswith(f"daemon: pid {daemon.pid} is gone; last heard from "), proc.stdout
    assert "unsupervised" in proc.stdout and took < QUICK

    proc, took = timed("--home", str(h.state), "kill", "looper", cwd=anywhere)
    assert killed(proc.stdout) and took < QUICK, took
    assert not h.agent_pids("looper")
    proc, took = timed("--home", str(h.state), "resume", "looper", cwd=anywhere)
    assert proc.stdout == "looper: kill switch lifted; no daemon runs: looper starts with it (`tether up`)\n"
    assert took < QUICK
    [looper] = status(h, anywhere)["agents"]  # type: ignore[misc]
    assert looper["state"] == "stopped" and looper["pid"] is None, looper
    down = run_cli("--home", str(h.state), "down", cwd=anywhere)
    assert down.stdout.startswith(f"no daemon is running for {h.state} (pid {daemon.pid} is gone"), down.stdout


def test_kill_says_when_the_agent_never_ran_with_that_state_dir(make_host, tmp_path: Path) -> None:  # noqa: F811
    h: Host = make_host({"looper": agent(LOOPER)})
    wrong = tmp_path / "wrong"
    proc = run_cli("-f", str(h.runbook), "--home", str(wrong), "kill", "looper")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith(f"looper: kill switch engaged, but looper never ran with state directory {wrong}: "
                                  "nothing was signalled"), proc.stdout


def test_no_runbook_and_no_copy_is_one_line(tmp_path: Path) -> None:
    proc = run_cli("--home", str(tmp_path / "empty"), "kill", "looper", cwd=tmp_path)
    assert one_line_error(proc).startswith(f"tether.yaml: no such file here, and {tmp_path / 'empty'} has no runbook "
                                           "copy")
