"""The wall (issue 16): an agent runs as its own user inside bubblewrap, built from its runbook entry.

Real daemons and real agents: a plain command agent tries to write outside its scope, into a protected
path, into tether's state dir and into its hook settings, and to read admin.token, a secret and another
agent's workspace; each fails and the files are unchanged, while its workspace and TMPDIR stay writable.
The kill switch still ends everything inside; an SDK agent beats from inside; an agent whose wall cannot
be built does not start and says why."""

from __future__ import annotations

import dataclasses
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from test_daemon_kit import PY, Host, agent, wait_until
from tether.wall import bridge, bwrap, check, profile

pytestmark = pytest.mark.wall
USER = "tether-test-agent"


def needs_wall(socat: bool = False, tools: tuple[str, ...] = (), why: str = "") -> None:
    """Skip unless agents can run walled here: root, bubblewrap usable, and (``socat``) the bridges' socat and
    the ``tools`` the test's agents use. The wall test modules share it (with ``host_folder``)."""
    if os.geteuid() != 0:
        pytest.skip(f"these tests run agents as a user of their own{why}: they need root")
    problem = check.problem()
    if problem is not None:
        pytest.skip(f"the wall cannot be built on this host: {problem}")
    if socat and check.socat() is None:
        pytest.skip(f"the wall's network needs socat: {check.SOCAT_MISSING}")
    for tool in tools:
        if shutil.which(tool) is None:
            pytest.skip(f"the agents here use {tool}: apt-get install {tool}")


def host_folder(prefix: str) -> Iterator[Path]:
    """A host folder under /tmp (hidden inside the wall but for the agent's own trees), removed afterwards."""
    path = Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def root(test_user: str) -> Iterator[Path]:
    needs_wall()
    yield from host_folder("tether-wall-")


PROBE = r"""
S={state}
W={ws}
t() {{ if sh -c "$2" >/dev/null 2>&1; then echo "$1: ALLOWED"; else echo "$1: denied"; fi; }}
t "write workspace" "echo ok > $W/made"
t "write tmpdir" "echo ok > \$TMPDIR/made"
t "write home" "echo ok > \$HOME/.made"
t "write npm cache" "echo ok > \$HOME/.npm/made"
t "write pip cache" "mkdir -p \$HOME/.cache/pip/x"
t "write outside" "echo x > {outside}/planted"
t "write /tmp" "echo x > /tmp/tether-wall-planted"
t "write /etc" "echo x > /etc/tether-wall-planted"
t "write /run" "echo x > /run/tether-wall-planted"
t "write store" ": >> $S/tether.db"
t "read admin.token" "cat $S/admin.token"
t "delete kill file" "rm $S/agents/other/KILL"
t "write runbook" "echo x >> {runbook}"
t "read runbook" "cat {runbook}"
t "read .env" "cat $W/.env"
t "write .env" "echo x > $W/.env"
t "read secret" "cat $W/secrets/key"
t "write hook settings" "echo x > $W/.claude/settings.json"
t "add hook settings" "echo x > $W/.claude/settings.local.json"
t "write git config" "echo x >> $W/.git/config"
t "write git hook" "echo x > $W/.git/hooks/pre-commit"
t "read other workspace" "cat {other}/notes.txt"
echo "uid $(id -u) tmp $TMPDIR"
echo done
exec sleep 3600
"""


def _host(root: Path, probe: str, **over: object) -> tuple[Host, Path]:
    h = Host(root, {})
    ws = root / "ws" / "confined"
    (ws / ".git" / "hooks").mkdir(parents=True)
    (ws / ".claude").mkdir()
    (ws / "secrets").mkdir()
    files = {
        ws / ".env": "API_KEY=1\n",
        ws / "secrets" / "key": "k\n",
        ws / ".claude" / "settings.json": "{}\n",
        ws / ".git" / "config": "[core]\n",
        ws / ".git" / "hooks" / "pre-commit": "#!/bin/sh\n",
    }
    for path, text in files.items():
        path.write_text(text)
    other = root / "ws" / "other"
    other.mkdir(parents=True)
    (other / "notes.txt").write_text("private\n")
    (ws / "probe.sh").write_text(probe)
    h.write(
        {
            "confined": agent(["sh", str(ws / "probe.sh")], run_as=USER, **over),
            "other": agent(["sleep", "3600"], autostart=False),
        }
    )
    return h, ws


def test_every_write_and_read_outside_the_scope_fails(root: Path) -> None:
    outside = root / "outside"
    outside.mkdir()
    outside.chmod(0o777)  # the user's own permissions would allow it: only the wall stands in the way
    h, ws = _host(root, "")
    probe = PROBE.format(state=h.state, ws=ws, outside=outside, runbook=h.runbook, other=root / "ws" / "other")
    (ws / "probe.sh").write_text(probe)
    (h.state / "agents" / "other").mkdir(parents=True)
    (h.state / "agents" / "other" / "KILL").write_text("{}\n")
    before = {p: p.read_bytes() for p in [*ws.rglob("*"), h.runbook] if p.is_file() and p.name != "probe.sh"}
    try:
        daemon = h.up()
        wait_until(lambda: "done" in h.log("confined"), 15, "the probe to finish")
        out = h.log("confined")
        for allowed in ("write workspace", "write tmpdir", "write npm cache", "write pip cache"):
            assert f"{allowed}: ALLOWED" in out, out
        denied = [line.split(":")[0] for line in out.splitlines() if line.endswith(": denied")]
        assert len(denied) == 18, out
        assert "ALLOWED" not in out.replace("workspace: ALLOWED", "").replace("tmpdir: ALLOWED", "").replace(
            "cache: ALLOWED", ""
        ), out
        assert not (outside / "planted").exists() and not Path("/etc/tether-wall-planted").exists()
        assert not Path("/tmp/tether-wall-planted").exists()
        assert (h.state / "agents" / "other" / "KILL").exists()
        for path, data in before.items():
            assert path.read_bytes() == data, f"{path} changed"
        assert not (ws / ".claude" / "settings.local.json").exists()
        tmpdir = h.state / "agents" / "confined" / "tmp"
        assert f"tmp {tmpdir}" in out and (tmpdir / "made").read_text() == "ok\n"
        uid = int(out.split("uid ")[1].split()[0])
        assert uid == tmpdir.stat().st_uid != 0 and (tmpdir.stat().st_mode & 0o777) == 0o700
        assert (ws / "made").read_text() == "ok\n"
        home = h.state / "agents" / "confined" / "home"
        assert not (home / ".made").exists() and (home / ".npm" / "made").read_text() == "ok\n"
        assert h.down(daemon) == 0
    finally:
        h.cleanup()


TREE = r"""
sleep 3600 &
setsid sh -c 'sleep 3600' &
nohup sh -c 'trap "" TERM HUP; while :; do sleep 1; done' >/dev/null 2>&1 &
echo started
wait
"""


def test_the_kill_switch_ends_everything_inside(root: Path) -> None:
    h, _ = _host(root, TREE)
    try:
        daemon = h.up()
        wait_until(lambda: "started" in h.log("confined"), 15, "the tree to start")
        wait_until(lambda: len(h.agent_pids("confined")) >= 5, 10, "the whole tree to be seen")
        got = h.cli("kill", "confined")
        assert got.returncode == 0, got.stdout + got.stderr
        wait_until(lambda: not h.agent_pids("confined"), 15, "nothing of the agent left")
        assert h.state_of("confined") == "killed"
        h.down(daemon)
    finally:
        h.cleanup()


SDK = """
from tether import Agent
a = Agent.from_env()
a.heartbeat(progress="inside the wall")
print("beat sent", flush=True)
import time
time.sleep(3600)
"""


def test_an_sdk_agent_beats_from_inside(root: Path) -> None:
    h, ws = _host(root, "")
    (ws / "sdk_agent.py").write_text(SDK)
    # tether's SDK is stdlib only: any Python the agent's user can run (this suite's may live under /root)
    python = next((p for p in ("/usr/bin/python3", PY) if _runs_as(USER, p)), None)
    if python is None:
        pytest.skip(f"no Python that {USER} may run")
    # the package, copied into the workspace: the checkout may live where the wall hides it (a clone in /tmp)
    import shutil

    lib = ws / "lib"
    shutil.copytree(
        Path(__file__).resolve().parent.parent / "src" / "tether",
        lib / "tether",
        ignore=shutil.ignore_patterns("__pycache__"),
    )
    h.write({"confined": agent([python, str(ws / "sdk_agent.py")], run_as=USER, env={"PYTHONPATH": str(lib)})})
    try:
        daemon = h.up()
        wait_until(lambda: "beat sent" in h.log("confined"), 20, f"the beat: {h.log('confined', 'stderr')}")
        wait_until(lambda: h.row("confined").get("progress") == "inside the wall", 10, "the beat recorded")
        pid = h.agent_pids("confined")[0]
        assert os.stat(f"/proc/{pid}").st_uid != 0
        h.down(daemon)
    finally:
        h.cleanup()


def test_no_wall_no_start_and_off_runs_plain(root: Path) -> None:
    h, ws = _host(root, "echo started; exec sleep 3600\n")
    h.write({"confined": agent(["sh", str(ws / "probe.sh")], run_as="tether-no-such-user")})
    try:
        daemon = h.up()
        failed = wait_until(lambda: h.events("agent.exited", "confined"), 15, "a refused start")
        reason = failed[0]["data"]["error"]
        assert reason.startswith("sandbox: the agent user 'tether-no-such-user' does not exist"), reason
        assert "sandbox: off" in reason, "the line names the way out"
        assert h.state_of("confined") in ("blocked", "crashloop") and "started" not in h.log("confined")
        h.down(daemon)
        h.write({"plain": agent(["sh", str(ws / "probe.sh")], sandbox="off")})
        check_out = h.cli("check")
        assert check_out.returncode == 0 and "agents.plain.sandbox: off: no wall" in check_out.stderr, check_out.stderr
        daemon = h.up()
        wait_until(lambda: "started" in h.log("plain"), 15, "the unwalled agent to start")
        h.down(daemon)
    finally:
        h.cleanup()


def _runs_as(user: str, python: str) -> bool:
    import subprocess

    got = subprocess.run(
        ["setpriv", "--reuid", user, "--regid", user, "--init-groups", python, "-c", "import json"],
        capture_output=True,
        timeout=30,
        cwd="/",
    )
    return got.returncode == 0


# -- the profile, without processes ---------------------------------------------------------------------


def test_mounts_are_placed_parents_first() -> None:
    prof = profile.build(
        agent="a",
        uid=5,
        gid=5,
        user="u",
        home="/s/agents/a/home",
        tmpdir="/s/agents/a/run/tmp",
        writable=["/w/a"],
        state_dir="/s",
        runbook="/r/tether.yaml",
        others=["/w/b", "/w"],
        protected_dirs=["/w/a/secrets"],
        protected_files=["/w/a/.env"],
        read_only=["/w/a/.git/config"],
    )
    assert prof.hidden_dirs == ("/s", "/w/b", "/w/a/secrets"), "a tree holding its own is not hidden"
    args = bwrap.argv(prof, setpriv="setpriv")
    assert args[:2] == ["setpriv", "--reuid"] and args[-1] == "--"
    order = [args[i + 1] for i, a in enumerate(args) if a in ("--tmpfs", "--bind", "--ro-bind", "--ro-bind-try")]
    assert order.index("/s") < order.index("/s/agents/a/run/tmp")
    assert order.index("/s") < order.index("/s/agents/a/home")
    assert order.index("/w/a") < order.index("/w/a/secrets") < len(order)
    assert order.index("/w/a") < order.index("/dev/null")
    remounts = [args[i + 1] for i, a in enumerate(args) if a == "--remount-ro"]
    assert "/s" in remounts and "/w/a" not in remounts and remounts[-1] == "/run", "/run inside: read-only"
    assert "--unshare-net" not in args and "--unshare-pid" in args and "--new-session" not in args
    net = bridge.Net("/x/net", (bridge.Bridge("127.0.0.1", 3128, bridge.PROXY_INSIDE),), "socat")
    walled = bwrap.argv(prof, setpriv=None, net=net)
    assert walled[0] != "setpriv" and "--unshare-net" in walled
    at = walled.index("/x/net")
    assert walled[at - 1 : at + 2] == ["--ro-bind", "/x/net", bridge.SOCKETS_INSIDE]
    assert walled[walled.index("--") + 1 :][:2] == ["/bin/sh", "-c"] and 'exec "$@"' in walled[-2]
    entered = bwrap.argv(prof, setpriv="setpriv", net=dataclasses.replace(net, netns="/proc/1/fd/7", nsenter="ns"))
    assert entered[:3] == ["ns", "--net=/proc/1/fd/7", "setpriv"], "the daemon's namespace, entered as root first"
    assert "--unshare-net" not in entered and "/x/net" not in entered and entered[-1] == "--", "nothing to start"


def test_protected_paths_are_found_at_any_depth(tmp_path: Path) -> None:
    for rel in (".env", "a/.env.local", "a/b/secrets/x", "node_modules/secrets/y", "keep.txt", "conf/db.pem"):
        p = tmp_path / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text("x")
    dirs, files = profile.find_protected([str(tmp_path)], [*profile.HIDDEN, "conf/*.pem"])
    assert dirs == [str(tmp_path / "a/b/secrets")], "skipped trees are not entered; a folder once"
    assert sorted(files) == sorted(str(tmp_path / r) for r in (".env", "a/.env.local", "conf/db.pem"))
    dirs, files = profile.find_protected([str(tmp_path)], profile.HIDDEN, limit=1)
    assert len(dirs) + len(files) <= 1


def test_apparmor_restriction_is_named_with_its_fix(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    flag = tmp_path / "restrict"
    flag.write_text("1\n")
    monkeypatch.setattr(check, "APPARMOR_SYSCTL", flag)
    why = check.userns_problem()
    assert why is not None and "AppArmor" in why and "apparmor_restrict_unprivileged_userns=0" in why
    flag.write_text("0\n")
    monkeypatch.setattr(check, "USERNS_SYSCTL", tmp_path / "absent")
    monkeypatch.setattr(check, "MAX_USERNS", tmp_path / "absent")
    assert check.userns_problem() is None


def test_doctor_says_what_the_wall_is_and_for_whom_it_fails(root: Path) -> None:
    from tether.host.doctor import check_wall
    from tether.runbook import load

    h, _ = _host(root, "true\n")
    h.write(
        {
            "confined": agent(["true"], run_as=USER),
            "ghost": agent(["true"], run_as="tether-no-such-user"),
            "plain": agent(["true"], sandbox="off"),
        }
    )
    lines = [c.line() for c in check_wall(load(h.runbook))]
    assert lines[0].startswith("ok      wall: bubblewrap: each agent runs as its own user"), lines
    assert any(x.startswith("fail    agent ghost: the agent user 'tether-no-such-user' does not exist") for x in lines)
    assert any(x.startswith("warn    agent plain: sandbox: off") for x in lines)
    assert not any("agent confined" in x for x in lines)
