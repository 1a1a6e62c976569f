"""The kill switch on a full state filesystem (a real 4 MiB tmpfs, filled to the last block): `tether kill`
and the API kill stop the whole tree and it stays stopped; the owner hears of the full disk at once through
their channel; the kill and the disk.low incident are recorded once space returns."""

from __future__ import annotations

import contextlib
import errno
import json
import subprocess
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from test_daemon_kit import Host, agent, make_host, wait_until  # noqa: F401

# a loop, and a grandchild in a session of its own that ignores SIGTERM
LEAVER = """
setsid sh -c "trap '' TERM; while :; do sleep 0.05; done" &
while :; do sleep 0.05; done
"""


@pytest.fixture
def inbox() -> Iterator[tuple[str, list[dict[str, object]]]]:
    """An owner's channel: apprise's json:// posts land in the list."""
    got: list[dict[str, object]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            with contextlib.suppress(ValueError):
                got.append(json.loads(body))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"json://127.0.0.1:{server.server_address[1]}/owner", got
    finally:
        server.shutdown()
        server.server_close()


def fill(disk: Path) -> Path:
    """Fill the filesystem to its last block; return the filler file."""
    filler = disk / "filler"
    with open(filler, "wb", buffering=0) as f:
        for _ in range(4096):  # 4 MiB in 4 KiB writes, with room to spare
            try:
                f.write(b"x" * 4096)
            except OSError as err:
                assert err.errno == errno.ENOSPC
                break
        else:
            raise AssertionError("the tiny disk never filled")
    return filler


def test_kill_on_a_full_disk(make_host, tiny_disk: Path, inbox) -> None:  # noqa: F811
    contact, told = inbox
    # 512 KiB is less than a running daemon's store needs (the WAL alone grows past it): room for this one
    subprocess.run(["mount", "-o", "remount,size=4m", str(tiny_disk)], check=True)
    state = tiny_disk / "state"
    owner = {"name": "Ana", "contact": contact}
    h: Host = make_host({}, host={"state_dir": str(state), "probe_interval": "1s", "disk_low_bytes": 0})
    h.state = state
    leaver = h.script("leaver.sh", LEAVER)
    loop = ["sh", "-c", "while :; do sleep 0.05; done"]
    restart = {"policy": "always"}
    h.write({"victim": agent(["sh", leaver], owner=owner, restart=restart),
             "other": agent(loop, owner=owner, restart=restart)},
            host={"state_dir": str(state), "probe_interval": "1s", "disk_low_bytes": 0})
    daemon = h.up()
    wait_until(lambda: len(h.agent_pids("victim")) >= 3 and h.agent_pids("other"), 10, "both agents")
    victim = h.agent_pids("victim")
    assert (state / "agents" / "victim" / ".KILL.spare").stat().st_size == 4096

    filler = fill(tiny_disk)
    with pytest.raises(OSError) as full:
        (state / "probe").write_bytes(b"x" * 8192)
    assert full.value.errno == errno.ENOSPC

    # the owner hears of it at once, through a channel that needs no disk
    wait_until(lambda: any("disk full" in str(m.get("title")) for m in told), 15, "the owner to hear of it")

    started = time.monotonic()
    got = h.cli("kill", "victim", "--reason", "full disk drill")
    assert got.returncode == 0, got.stderr
    assert "victim: killed" in got.stdout, got.stdout
    wait_until(lambda: not any(_alive(p) for p in victim), 5, "the whole tree to go")
    took = time.monotonic() - started
    note = json.loads((state / "agents" / "victim" / "KILL").read_text())
    assert note["reason"] == "full disk drill"

    status, body = h.api("POST", "/v1/agents/other/kill", {"reason": "api on a full disk"})
    assert status == 200, body
    assert h.agent_pids("other") == []
    assert (state / "agents" / "other" / "KILL").exists()

    # neither comes back while the disk stays full (a restart would take milliseconds: policy always, no backoff)
    deadline = time.monotonic() + 1.5
    while time.monotonic() < deadline:
        assert h.instances("victim") == set() and h.instances("other") == set(), "a killed agent restarted"
        time.sleep(0.05)

    # space returns: the kill and the full disk are recorded
    filler.unlink()
    wait_until(lambda: h.events("agent.killed", "victim"), 30, "the kill to be recorded")
    killed = h.events("agent.killed", "victim")
    assert len(killed) == 1 and killed[0]["data"]["reason"] == "full disk drill"
    incident = wait_until(lambda: [i for i in h.incidents("disk.low") if str(state) in i["summary"]], 10,
                          "the disk.low incident")
    opened = [e for e in h.events("incident.opened") if e["data"].get("kind") == "disk.low"]
    assert opened and opened[0]["data"]["told_directly"], opened
    wait_until(lambda: all(i["state"] != "open" for i in h.incidents("disk.low")), 10, "the incident resolved")
    assert incident
    wait_until(lambda: h.events("agent.killed", "other"), 30, "the API kill to be recorded")
    assert h.state_of("victim") == "killed" and h.state_of("other") == "killed"
    assert h.instances("victim") == set() and h.instances("other") == set()

    got = h.cli("resume", "victim")
    assert got.returncode == 0, got.stderr
    wait_until(lambda: h.agent_pids("victim"), 10, "the resumed agent")
    assert (state / "agents" / "victim" / ".KILL.spare").exists(), "a new spare for the next kill"
    assert h.down(daemon) == 0
    assert h.marked() == []
    print(f"full disk: `tether kill` to the whole tree gone: {took:.2f}s")


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False
