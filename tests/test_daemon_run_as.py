"""run_as: an agent running as its own user cannot touch the daemon's state; `tether check` refuses an
agent that would run as the daemon's own user unless it says same_user: true (and then warns)."""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from test_daemon_kit import IS_ROOT, Host, agent, make_host, wait_until  # noqa: F401

USER = "tether-test-agent"

PROBE = """
S={state}
echo "uid $(id -u)"
if (: >> "$S/tether.db") 2>/dev/null; then echo "store: WRITTEN"; else echo "store: denied"; fi
if cat "$S/admin.token" >/dev/null 2>&1; then echo "admin.token: READ"; else echo "admin.token: denied"; fi
if rm -f "$S/agents/other/KILL" 2>/dev/null; then echo "kill file: DELETED"; else echo "kill file: denied"; fi
if (: > "$S/KILL.fake") 2>/dev/null; then echo "state dir: WRITTEN"; else echo "state dir: denied"; fi
echo done
exec sleep 3600
"""


@pytest.fixture
def agent_user(test_user: str) -> pwd.struct_passwd:
    return pwd.getpwnam(test_user)


@pytest.fixture
def open_root() -> Iterator[Path]:
    """A folder every user may traverse, so only the state directory's own mode stands in the way."""
    root = Path(tempfile.mkdtemp(prefix="tether-run-as-", dir="/tmp"))
    root.chmod(0o755)
    try:
        yield root
    finally:
        shutil.rmtree(root, ignore_errors=True)


def test_an_agent_as_its_own_user_cannot_touch_the_state(agent_user: pwd.struct_passwd, open_root: Path) -> None:
    h = Host(open_root, {})
    try:
        probe = h.script("probe.sh", PROBE.format(state=h.state))
        h.write({"confined": agent(["sh", probe], run_as=USER), "other": agent(["sleep", "3600"], autostart=False)})
        (h.state / "agents" / "other").mkdir(parents=True)
        (h.state / "agents" / "other" / "KILL").write_text("{}\n")
        daemon = h.up()
        wait_until(lambda: "done" in h.log("confined"), 10, "the probe to finish")
        out = h.log("confined")
        assert f"uid {agent_user.pw_uid}" in out
        for what in ("store", "admin.token", "kill file", "state dir"):
            assert f"{what}: denied" in out, out
        st = os.stat(h.state)
        assert (st.st_uid, st.st_mode & 0o777) == (os.geteuid(), 0o700)
        assert (h.state / "agents" / "other" / "KILL").exists()
        pid = h.agent_pids("confined")[0]
        assert os.stat(f"/proc/{pid}").st_uid == agent_user.pw_uid
        workspace = h.root / "ws" / "confined"
        assert workspace.stat().st_uid == agent_user.pw_uid, "its default workspace is its own"
        assert h.down(daemon) == 0
    finally:
        h.cleanup()


def _check(h: Host, **over: object) -> subprocess.CompletedProcess[str]:
    h.write({"x": agent(["sleep", "1"], **over)})
    return h.cli("check")


def test_check_refuses_the_daemons_own_user(make_host) -> None:  # noqa: F811
    me = pwd.getpwuid(os.geteuid()).pw_name
    h: Host = make_host({})

    got = _check(h, run_as=me)
    assert got.returncode == 2
    lines = got.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"{h.runbook}:")
    assert f"agents.x.run_as: {me!r} is the daemon's own user" in lines[0]
    assert "same_user: true" in lines[0]
    line_no = int(lines[0].split(":")[1])
    assert "run_as" in h.runbook.read_text().splitlines()[line_no - 1]
    up = h.cli("up", "--foreground")
    assert up.returncode == 2 and "daemon's own user" in up.stderr, "the daemon refuses it too"

    got = _check(h, run_as=me, same_user=True)
    assert got.returncode == 0, got.stderr
    assert "warning:" in got.stderr and "advisory" in got.stderr

    got = _check(h)  # no run_as: it runs as the daemon's user; allowed, with a warning (`tether init`'s example)
    assert got.returncode == 0, got.stderr
    assert "no run_as" in got.stderr and "advisory" in got.stderr


def test_check_accepts_a_user_of_its_own(agent_user: pwd.struct_passwd, make_host) -> None:  # noqa: F811
    h: Host = make_host({})
    got = _check(h, run_as=USER)
    assert got.returncode == 0, got.stderr
    assert "warning" not in got.stderr
