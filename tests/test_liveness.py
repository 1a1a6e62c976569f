"""Liveness without the SDK (issue 19): ``heartbeat.source`` per agent, with real daemons. A ``while sleep``
command agent (the default: ``process``) is never stale nor restarted; an ``output`` agent beats by
printing and goes stale when it stops, its last line its progress; a ``file`` agent follows its status
file's modification time, its first line the progress; ``tether`` is on every agent's PATH."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from helpers import run_cli
from test_daemon_kit import Host, agent, make_host, wait_until  # noqa: F401
from test_wall import USER, root  # noqa: F401 - the fixture: a host folder for agents inside the wall
from tether.daemon.liveness import TAIL, last_line

#: The daemon's PATH in these tests: no folder of tether's, so only the daemon can put it there.
BARE_PATH = "/usr/local/bin:/usr/bin:/bin"
FAST = {"interval": "100ms", "stale_after": "600ms"}


def test_a_while_sleep_agent_is_never_stale_nor_restarted(make_host) -> None:  # noqa: F811
    """The default for a command agent (no source named): its process is its liveness. Over five
    stale_after periods it stays running, beaten for by the daemon, in one run; without the daemon's
    beats it was stale at 600 ms and restarted (on_stale: restart)."""
    h: Host = make_host({"loop": agent(["sh", "-c", "while sleep 0.05; do :; done"],
                                       heartbeat={**FAST, "on_stale": "restart", "on_stuck": "restart"})})
    daemon = h.up(env={"PATH": BARE_PATH})
    wait_until(lambda: h.state_of("loop") == "running", 10, "the loop to run")
    started = h.row("loop")["started_at"]
    wait_until(lambda: (h.row("loop")["last_heartbeat"] or 0) > started + 3.0, 10, "five stale_after periods")
    assert h.state_of("loop") == "running", h.row("loop")
    assert not [e for e in h.events("agent.state", "loop") if e["data"]["state"] in ("stale", "stuck")]
    assert len(h.events("agent.started", "loop")) == 1 and not h.incidents(agent="loop")
    assert h.row("loop")["progress"] is None, "the daemon claims no progress for it"
    assert h.down(daemon) == 0


def test_an_output_agent_beats_by_printing_and_goes_stale_when_it_stops(make_host) -> None:  # noqa: F811
    h: Host = make_host({})
    go = h.root / "go"
    script = (f"for i in 1 2 3; do echo \"step $i\"; sleep 0.1; done; echo 'on stderr' >&2; "
              f"while [ ! -e {go} ]; do sleep 0.05; done; printf 'again\\rphase 2 \\033[1mbold\\033[0m\\n'; "
              "exec sleep 3600")
    h.write({"out": agent(["sh", "-c", script], heartbeat={**FAST, "source": "output"})})
    daemon = h.up(env={"PATH": BARE_PATH})
    wait_until(lambda: h.state_of("out") == "stale", 10, "silence to make it stale")
    row = h.row("out")
    assert row["progress"] == "on stderr", row  # the last line of the log written last
    assert len(h.incidents("stale", "out")) == 1
    go.touch()
    wait_until(lambda: h.state_of("out") == "running", 10, "new output to revive it")
    assert h.row("out")["progress"] == "phase 2 bold", "the last line as shown: after the \\r, no escapes"
    assert [i["state"] for i in h.incidents("stale", "out")] == ["resolved"]
    assert len(h.events("agent.started", "out")) == 1
    assert h.down(daemon) == 0


def test_a_status_file_agent_follows_the_files_mtime(make_host) -> None:  # noqa: F811
    h: Host = make_host({})
    ws = h.root / "ws" / "st"
    ws.mkdir(parents=True)
    # writes its status once, then stays silent until the test writes it for it
    h.write({"st": agent(["sh", "-c", "echo 'phase 1' > status; echo second >> status; exec sleep 3600"],
                         heartbeat={**FAST, "source": {"file": "status"}})})
    daemon = h.up(env={"PATH": BARE_PATH})
    wait_until(lambda: h.row("st")["progress"] == "phase 1", 10, "the first line as progress")
    wait_until(lambda: h.state_of("st") == "stale", 10, "an untouched status file to make it stale")
    last = h.row("st")["last_heartbeat"]
    assert abs(last - (ws / "status").stat().st_mtime) < 0.01, "the beat is the file's modification time"
    (ws / "status").write_text("phase 2\n")
    wait_until(lambda: h.state_of("st") == "running", 10, "a fresh status file to revive it")
    assert h.row("st")["progress"] == "phase 2"
    assert h.down(daemon) == 0


def test_tether_is_on_the_agents_path(make_host) -> None:  # noqa: F811
    """``tether beat`` by name from inside a command agent, the daemon's PATH holding no tether."""
    script = "tether beat --progress 'by name'; echo rc=$?; command -v python3; exec sleep 3600"
    h: Host = make_host({"named": agent(["sh", "-c", script])})
    daemon = h.up(env={"PATH": BARE_PATH})
    wait_until(lambda: "rc=" in h.log("named"), 15, "the beat to return")
    assert "rc=0" in h.log("named"), (h.log("named"), h.log("named", "stderr"))
    assert h.row("named")["progress"] == "by name"
    python3 = h.log("named").split("rc=0\n", 1)[1].splitlines()[0]
    assert not python3.startswith(str(Path(sys.executable).parent)), "the agent's python3 is not tether's"
    assert h.down(daemon) == 0


def test_check_says_how_liveness_is_known(tmp_path: Path) -> None:
    h = Host(tmp_path, {
        "loop": agent(["sleep", "1"], heartbeat={"interval": "30s", "stale_after": "2m"}),
        "printer": agent(["sleep", "1"], heartbeat={"source": "output"}),
        "filed": agent(["sleep", "1"], heartbeat={"source": {"file": "status.txt"}}),
        "sdk": agent(["sleep", "1"], kind="python", heartbeat={"stuck_after": "30m"}),
    })
    out = h.cli("check").stdout
    assert "liveness: process (alive while it runs" in out
    assert "liveness: output (each line it prints is a beat" in out
    assert "liveness: file: status.txt (its modification time is the beat" in out
    assert "liveness: sdk (the beats it sends: the SDK" in out
    bad = h.runbook.read_text().replace("source: output", "source: outptu")
    h.runbook.write_text(bad)
    got = h.cli("check")
    assert got.returncode != 0 and "heartbeat.source: expected sdk, process, output or file: PATH, got 'outptu' " \
        "(did you mean 'output'?)" in got.stderr + got.stdout


def test_init_command_names_its_source(tmp_path: Path) -> None:
    got = run_cli("init", "--agent", "command", cwd=tmp_path)
    assert got.returncode == 0, got.stderr
    text = (tmp_path / "tether.yaml").read_text()
    assert "source: process" in text
    from tether.runbook import load

    assert load(tmp_path / "tether.yaml").runbook.agents["worker"].heartbeat.source == "process"


@pytest.mark.parametrize(("data", "want"), [
    (b"one\ntwo\n", "two"),
    (b"one\ntwo", "two"),
    (b"one\n\n\n", "one"),
    (b"10%\r50%\r100%\n", "100%"),
    (b"crlf line\r\n", "crlf line"),
    (b"\x1b[31mred\x1b[0m\x07\n", "red"),
    (b"", None),
    (b"x" * (TAIL * 3) + b"\nlast\n", "last"),
])
def test_last_line(tmp_path: Path, data: bytes, want: str | None) -> None:
    path = tmp_path / "log"
    path.write_bytes(data)
    assert last_line(path) == want


@pytest.mark.wall
def test_inside_the_wall_tether_is_on_path_and_a_status_file_must_be_the_agents(root: Path) -> None:  # noqa: F811
    """Inside the wall, as its own user: ``tether beat`` by name, a status file it writes is its beat; a
    status file that is a link to the daemon's admin token (the agent cannot read it) is never read."""
    h = Host(root, {})
    token = h.state / "admin.token"
    walled = "tether beat --progress inside; echo rc=$?; echo 'walled 1' > status; exec sleep 3600"
    sly = f"ln -s {token} status; echo linked; exec sleep 3600"
    file = {**FAST, "stale_after": "1h", "source": {"file": "status"}}
    h.write({"walled": agent(["sh", "-c", walled], run_as=USER, heartbeat=file),
             "sly": agent(["sh", "-c", sly], run_as=USER, heartbeat=file)})
    try:
        daemon = h.up(env={"PATH": BARE_PATH})
        wait_until(lambda: "rc=" in h.log("walled"), 60, "the beat to return")
        assert "rc=0" in h.log("walled"), (h.log("walled"), h.log("walled", "stderr"))
        wait_until(lambda: h.row("walled")["progress"] == "walled 1", 10, "its status file's first line")
        wait_until(lambda: "linked" in h.log("sly"), 30, "the link")
        wait_until(lambda: "heartbeat.source file" in h.daemon_log(), 10, "the refusal said")
        assert "belongs to uid 0, not to the agent's user" in h.daemon_log()
        assert h.row("sly")["progress"] is None and h.admin_token() not in str(h.row("sly"))
        assert h.down(daemon) == 0
    finally:
        h.cleanup()
