"""The wall owns the network (issue 16): an agent inside it has a network namespace of its own (only ``lo``),
and its only ways out are its egress proxy and the daemon's API: a root daemon listens inside the agent's
namespace itself (made once per agent, kept across its runs), elsewhere socat bridges carry them.

Real daemons, real agents as their own user, real listeners on 127.0.0.2 and 127.0.0.3: a command agent
that ignores the proxy variables reaches neither listener; through the proxy the one in ``scope.hosts``
answers, the other is refused with a 403 naming the approval and answers after ``tether approve``;
``network: none`` reaches nothing but the daemon's API (its heartbeat lands); a crashed run leaves nothing
behind, its restart enters the same namespace with no bridge process, and the kill switch ends the whole
tree; an SDK agent beats and asks the boundary from inside, also after its daemon was SIGKILLed and a new
one adopted it (and listens again in the namespace the run kept)."""

from __future__ import annotations

import contextlib
import http.server
import os
import re
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from test_daemon_kit import PY, Host, agent, cmdline, wait_until
from test_wall import host_folder, needs_wall
from tether.wall import check

pytestmark = pytest.mark.wall
USER = "tether-test-agent"


@pytest.fixture
def root(test_user: str) -> Iterator[Path]:
    needs_wall(socat=True, tools=("curl",))
    yield from host_folder("tether-wallnet-")


class _Hello(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = f"hello from {self.server.server_address[0]}\n".encode()
        self.send_response(200)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@contextlib.contextmanager
def _listener(host: str) -> Iterator[int]:
    srv = http.server.ThreadingHTTPServer((host, 0), _Hello)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        yield int(srv.server_address[1])
    finally:
        srv.shutdown()
        srv.server_close()


def _workspace(root: Path, name: str) -> tuple[Path, Path]:
    """The agent's workspace and a FIFO in it the test writes to when the agent may go on."""
    ws = root / "ws" / name
    ws.mkdir(parents=True)
    go = ws / "go"
    os.mkfifo(go)
    go.chmod(0o666)
    return ws, go


def _tell(fifo: Path, word: str) -> None:
    """Write one line to the agent waiting on ``fifo`` (once it reads: opening fails until then)."""

    def opened() -> int | None:
        try:
            return os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
        except OSError:
            return None

    fd = wait_until(opened, 20, f"the agent to read {fifo.name}")
    try:
        os.write(fd, f"{word}\n".encode())
    finally:
        os.close(fd)


DIRECT = """direct() {{ got=$(curl -sS --noproxy '*' --max-time 5 "$1" 2>&1); rc=$?; echo "$got rc=$rc"; }}
echo "netns $(readlink /proc/self/ns/net)"
"""

SCOPED = (
    DIRECT
    + """echo "direct outside: $(direct http://127.0.0.3:{outside}/)"
echo "direct inside: $(direct http://127.0.0.2:{inside}/)"
echo "proxy inside: $(curl -sS --max-time 20 http://127.0.0.2:{inside}/ 2>&1)"
echo "proxy outside: $(curl -sS --max-time 20 -o /dev/null -D - http://127.0.0.3:{outside}/ 2>&1 \\
  | tr -d '\\r' | tr '\\n' ' ')"
read go < {go}
echo "after approve: $(curl -sS --max-time 20 http://127.0.0.3:{outside}/ 2>&1)"
echo done
exec sleep 3600
"""
)


def _line(out: str, prefix: str) -> str:
    return next((ln[len(prefix) :].strip() for ln in out.splitlines() if ln.startswith(prefix)), "")


def test_only_the_proxy_leads_out_and_it_judges(root: Path) -> None:
    with _listener("127.0.0.2") as inside, _listener("127.0.0.3") as outside:
        ws, go = _workspace(root, "net")
        (ws / "probe.sh").write_text(SCOPED.format(inside=inside, outside=outside, go=go))
        h = Host(
            root, {"net": agent(["sh", str(ws / "probe.sh")], run_as=USER, scope={"hosts": [f"127.0.0.2:{inside}"]})}
        )
        try:
            daemon = h.up()
            out = wait_until(
                lambda: "proxy outside:" in (o := h.log("net")) and o, 30, f"the probe: {h.log('net', 'stderr')}"
            )
            assert _line(out, "netns ") != os.readlink("/proc/self/ns/net"), "a network namespace of its own"
            for direct in ("direct outside:", "direct inside:"):  # the proxy variables ignored: no way out
                got = _line(out, direct)
                assert "hello" not in got and "rc=0" not in got and "rc=" in got, out
            assert _line(out, "proxy inside:") == "hello from 127.0.0.2", out
            refused = _line(out, "proxy outside:")
            assert refused.startswith("HTTP/1.1 403 ") and "held for approval" in refused, out
            approval = re.search(r"x-tether-approval: (\d+)", refused, re.IGNORECASE)
            assert approval is not None, refused
            ok = h.cli("approve", approval.group(1))
            assert ok.returncode == 0, ok.stdout + ok.stderr
            _tell(go, "go")
            wait_until(lambda: "done" in h.log("net"), 30, "the retry")
            assert _line(h.log("net"), "after approve:") == "hello from 127.0.0.3"
            both = {("127.0.0.2", inside), ("127.0.0.3", outside)}
            wait_until(
                lambda: (
                    {
                        (e["data"]["host"], e["data"]["port"])
                        for e in h.events("network.connection", "net")
                        if e["data"]["verdict"] == "allow"
                    }
                    == both
                ),
                10,
                "both connections recorded",
            )
            assert h.down(daemon) == 0
        finally:
            h.cleanup()


NONE = (
    DIRECT
    + """echo "proxy variables [$HTTP_PROXY$HTTPS_PROXY$ALL_PROXY$http_proxy$https_proxy$all_proxy]"
echo "direct: $(direct http://127.0.0.2:{inside}/)"
got=$(curl -sS --max-time 5 -x http://127.0.0.1:3128 http://127.0.0.2:{inside}/ 2>&1); rc=$?
echo "bridge: $got rc=$rc"
echo "beat: $(curl -sS --max-time 20 -o /dev/null -w '%{{http_code}}' -X POST -H "Authorization: Bearer $TETHER_TOKEN" \
  -H 'Content-Type: application/json' -d '{{"progress": "none, but the API"}}' \
  "$TETHER_URL/v1/agents/$TETHER_AGENT/heartbeat" 2>&1)"
echo done
exec sleep 3600
"""
)


def test_network_none_reaches_only_the_daemon(root: Path) -> None:
    with _listener("127.0.0.2") as inside:
        ws, _ = _workspace(root, "shut")
        (ws / "probe.sh").write_text(NONE.format(inside=inside))
        h = Host(
            root,
            {
                "shut": agent(
                    ["sh", str(ws / "probe.sh")], run_as=USER, network="none", scope={"hosts": [f"127.0.0.2:{inside}"]}
                )
            },
        )
        try:
            daemon = h.up()
            out = wait_until(lambda: "done" in (o := h.log("shut")) and o, 30, f"the probe: {h.log('shut', 'stderr')}")
            assert _line(out, "proxy variables") == "[]", out
            for what in ("direct:", "bridge:"):
                got = _line(out, what)
                assert "hello" not in got and "rc=0" not in got and "rc=" in got, out
            assert _line(out, "beat:").startswith("2"), out
            assert h.row("shut")["progress"] == "none, but the API"
            assert not h.events("network.connection", "shut"), "nothing reached the proxy"
            h.down(daemon)
        finally:
            h.cleanup()


TREE = """echo "netns $(readlink /proc/self/ns/net)"
if [ ! -e crashed ]; then : > crashed; exit 3; fi
echo "api $(curl -sS --noproxy '*' --max-time 20 -o /dev/null -w '%{http_code}' "$TETHER_URL/v1/health" 2>&1)"
sleep 3600 &
setsid sh -c 'sleep 3600' &
nohup sh -c 'trap "" TERM HUP; while :; do sleep 1; done' >/dev/null 2>&1 &
echo started
wait
"""


def _bridges(h: Host, name: str) -> list[int]:
    return [p for p in h.agent_pids(name) if os.path.basename((cmdline(p) or [""])[0]) == "socat"]


def test_no_bridge_one_namespace_across_restarts_and_the_kill_switch(root: Path) -> None:
    ws, _ = _workspace(root, "tree")
    (ws / "tree.sh").write_text(TREE)
    h = Host(root, {"tree": agent(["sh", str(ws / "tree.sh")], run_as=USER)})
    try:
        daemon = h.up()
        out = wait_until(lambda: "started" in (o := h.log("tree")) and o, 30, f"the runs: {h.log('tree', 'stderr')}")
        assert len(h.events("agent.started", "tree")) == 2, "the first run crashed and was restarted"
        spaces = [ln.split()[1] for ln in out.splitlines() if ln.startswith("netns ")]
        assert len(spaces) == 2 and spaces[0] == spaces[1] != os.readlink("/proc/self/ns/net"), out
        assert _line(out, "api") == "200", out  # the daemon's API, listening inside before the run started
        wait_until(lambda: len(h.instances("tree")) == 1, 10, "nothing of the crashed run left")
        wait_until(lambda: len(h.agent_pids("tree")) >= 5, 10, "the whole tree (agent and its children)")
        assert not _bridges(h, "tree"), "no bridge process: the daemon listens in the agent's namespace"
        got = h.cli("kill", "tree")
        assert got.returncode == 0, got.stdout + got.stderr
        wait_until(lambda: not h.agent_pids("tree"), 15, "nothing of the agent left")
        assert not [p for p in h.marked() if os.path.basename((cmdline(p) or [""])[0]) == "socat"]
        assert h.state_of("tree") == "killed"
        h.down(daemon)
    finally:
        h.cleanup()


SDK = """import sys
from tether import Agent

a = Agent.from_env()
while True:
    with open(sys.argv[1]) as f:
        word = f.readline().strip()
    a.heartbeat(progress=word)
    print("beat", word, a.check(command="ls")["decision"], flush=True)
"""


def _python_for(user: str) -> str | None:
    """A Python the agent's user may run (this suite's may live under /root)."""
    import subprocess

    for python in ("/usr/bin/python3", PY):
        got = subprocess.run(
            ["setpriv", "--reuid", user, "--regid", user, "--init-groups", python, "-c", "1"],
            capture_output=True,
            timeout=30,
            cwd="/",
        )
        if got.returncode == 0:
            return python
    return None


def test_sdk_from_inside_also_after_a_new_daemon_adopts_it(root: Path) -> None:
    python = _python_for(USER)
    if python is None:
        pytest.skip(f"no Python that {USER} may run")
    ws, go = _workspace(root, "sdk")
    (ws / "sdk_agent.py").write_text(SDK)
    lib = ws / "lib"  # tether's SDK is stdlib only; a copy in the workspace (a checkout in /tmp is hidden)
    shutil.copytree(
        Path(__file__).resolve().parent.parent / "src" / "tether",
        lib / "tether",
        ignore=shutil.ignore_patterns("__pycache__"),
    )
    h = Host(
        root, {"sdk": agent([python, str(ws / "sdk_agent.py"), str(go)], run_as=USER, env={"PYTHONPATH": str(lib)})}
    )
    try:
        first = h.up()
        _tell(go, "one")
        wait_until(lambda: "beat one allow" in h.log("sdk"), 30, f"the beat: {h.log('sdk', 'stderr')}")
        assert h.row("sdk")["progress"] == "one"
        h.kill9(first)  # the agent outlives its daemon; the next one binds new sockets in the same folder
        second = h.up()
        wait_until(lambda: h.events("agent.adopted", "sdk"), 15, "the run adopted")
        _tell(go, "two")
        wait_until(lambda: "beat two allow" in h.log("sdk"), 30, f"the beat: {h.log('sdk', 'stderr')}")
        assert h.row("sdk")["progress"] == "two"
        assert len(h.events("agent.started", "sdk")) == 1, "the same run, not a new one"
        h.down(second)
    finally:
        h.cleanup()


def test_without_socat_no_bridge_no_start_and_open_is_warned(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from tether.host.doctor import check_wall
    from tether.runbook import load
    from tether.wall import WallError, netns, plan, prepare

    h = Host(root, {"scoped": agent(["true"], run_as=USER), "free": agent(["true"], run_as=USER, network="open")})
    loaded = load(h.runbook)
    for name in ("scoped", "free"):
        loaded.agent_cwd(name).mkdir(parents=True, exist_ok=True)
    monkeypatch.setattr(check, "socat", lambda: None)
    lines = [c.line() for c in check_wall(loaded)]  # a root daemon makes the agents' namespaces: no socat needed
    assert not [x for x in lines if "socat" in x and x.startswith("fail")], lines
    assert not plan.problems(loaded.runbook.agents["scoped"], 0), "nothing keeps it from starting"
    monkeypatch.setattr(netns, "supported", lambda: False)  # a daemon that is not root: socat bridges
    with pytest.raises(WallError) as refused:
        prepare(loaded, "scoped", proxy_socket=str(root / "no" / "proxy.sock"), daemon_url="http://127.0.0.1:1")
    assert str(refused.value).startswith(
        "sandbox: network: scoped: socat is not installed"
    ) and "apt-get install socat" in str(refused.value), refused.value
    free = prepare(loaded, "free")  # the host's network: no bridge, no socat needed
    assert free is not None and "--unshare-net" not in free.prefix and free.prefix[-1] == "--"
    lines = [c.line() for c in check_wall(loaded)]
    assert any(
        x.startswith("fail    wall: socat is not installed") and "; agents scoped will not start" in x for x in lines
    ), lines
    assert any(x.startswith("warn    agent free: network: open") for x in lines), lines
    monkeypatch.undo()
    checked = h.cli("check")
    assert (
        checked.returncode == 0 and "agents.free.network: open: the wall leaves it the host's network" in checked.stderr
    ), checked.stderr


def test_the_bridges_and_the_environment_inside() -> None:
    """Pure: where the bridges listen inside and what the agent is told, for the daemon's usual and unusual
    addresses (a port below 1024 cannot be listened on by the agent's user; a LAN or IPv6 address does not
    exist inside; the proxy's port moves when the daemon has it)."""
    from tether.wall import bridge

    def plan(url: str, mode: str = "scoped") -> tuple[list[tuple[str, int, str]], dict[str, str]]:
        net, env = bridge.network(mode, "/s/net", url, "/usr/bin/socat")
        return [(b.host, b.port, b.socket) for b in net.bridges], env

    got, env = plan("http://127.0.0.1:8765")
    assert got == [("127.0.0.1", 3128, bridge.PROXY_INSIDE), ("127.0.0.1", 8765, bridge.API_INSIDE)]
    assert "TETHER_URL" not in env and env["HTTPS_PROXY"] == env["http_proxy"] == "http://127.0.0.1:3128"
    assert "127.0.0.1:8765" in env["NO_PROXY"].split(",")
    got, env = plan("http://0.0.0.0:8765")
    assert got[1] == ("127.0.0.1", 8765, bridge.API_INSIDE) and "TETHER_URL" not in env
    got, env = plan("https://10.1.2.3:443")
    assert got[1] == ("127.0.0.1", bridge.API_FALLBACK_PORT, bridge.API_INSIDE)
    assert env["TETHER_URL"] == f"https://127.0.0.1:{bridge.API_FALLBACK_PORT}"
    got, env = plan("http://[::1]:8765")
    assert got[1] == ("127.0.0.1", 8765, bridge.API_INSIDE) and env["TETHER_URL"] == "http://127.0.0.1:8765"
    got, _ = plan("http://127.0.0.1:3128")
    assert got == [("127.0.0.1", 3129, bridge.PROXY_INSIDE), ("127.0.0.1", 3128, bridge.API_INSIDE)]
    got, env = plan("http://127.0.0.1:8765", "none")
    assert got == [("127.0.0.1", 8765, bridge.API_INSIDE)]
    assert all(env[k] == "" for k in bridge.PROXY_VARS) and "TETHER_URL" not in env
    net, _ = bridge.network("scoped", "/s/net", "http://127.0.0.1:8765", "/usr/bin/socat")
    sh, flag, script, name = bridge.launcher(net)
    assert (sh, flag, name) == ("/bin/sh", "-c", "tether-net") and script.rstrip().endswith('exec "$@"')
    assert script.count("/usr/bin/socat -d -d TCP-LISTEN:") == 2 and '[ "$n" -lt 2 ]' in script


def test_the_daemons_namespace_is_made_once_and_its_failure_said(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """In the daemon's process (its proxy serving the agent's socket folder) the wall enters the namespace
    the proxy made, the same at every start; when it cannot be made and socat is missing, one line says
    both."""
    import pwd

    from tether.runbook import load
    from tether.wall import WallError, netns, prepare
    from tether.wall.proxy import NET_DIR, PROXY_SOCK, EgressProxy

    if not netns.supported():
        pytest.skip("the daemon's namespaces need root and nsenter")
    h = Host(root, {"scoped": agent(["true"], run_as=USER)})
    loaded = load(h.runbook)
    loaded.agent_cwd("scoped").mkdir(parents=True, exist_ok=True)
    pw = pwd.getpwnam(USER)
    proxy = EgressProxy(lambda: None, lambda batch: None, api=("127.0.0.1", 8765))
    proxy.start()
    try:
        run = loaded.state.agent_dir("scoped") / "run"
        proxy.open("scoped", run, pw.pw_uid, pw.pw_gid)
        where = {"proxy_socket": str(run / NET_DIR / PROXY_SOCK), "daemon_url": "http://127.0.0.1:8765"}
        first, again = prepare(loaded, "scoped", **where), prepare(loaded, "scoped", **where)
        assert first is not None and again is not None and first.net is not None and first.net.netns is not None
        assert first.prefix[:2] == [first.net.nsenter, f"--net={first.net.netns}"] and first.prefix == again.prefix
        assert "--unshare-net" not in first.prefix and first.prefix[-1] == "--", "nothing started inside"
        assert os.readlink(first.net.netns) != os.readlink("/proc/self/ns/net"), "a namespace of its own"

        def cannot(*_: Any) -> str:
            raise netns.NetnsError(1, "cannot make a network namespace: Operation not permitted")

        monkeypatch.setattr(proxy, "inside", cannot)
        monkeypatch.setattr(check, "socat", lambda: None)
        with pytest.raises(WallError) as refused:
            prepare(loaded, "scoped", **where)
        assert str(refused.value).startswith(
            "sandbox: network: scoped: cannot make a network namespace: Operation not permitted, and for bridges "
            "instead socat is not installed"
        ), refused.value
    finally:
        proxy.stop()
