"""The sandbox drill: on the real host, prove that an agent's wall stops an outside write and an outside
connection, and that tether records both.

For the agent, the drill builds its wall as the daemon does (``wall.prepare``: the same user, mounts and
network, bridged to the daemon's proxy for it) and runs a short probe inside it (stdlib Python, ``-I -S``), which:

- writes a file into a folder outside the agent's scope that its user could write without the wall (a
  world-writable folder the drill makes next to the state dir, removed after) and into ``/etc``;
- connects to a 127.0.0.1 listener the drill opens (a port outside ``scope.hosts``), through the agent's
  egress proxy (``CONNECT``, as its tools would) and directly (ignoring the proxy variables).

It passes when every write failed and nothing reached the listener, and both were recorded: the refused
connection as the proxy's ``network.connection`` and ``wall.violation`` events (an approval it asked for
is denied by the drill), each denied write as a ``wall.violation`` the daemon records from the kernel's
audit (``source: audit``, ``wall/writewatch.py``; the drill waits for it and fails without it), or that the
drill records itself (``source: drill``) where the daemon cannot see it: a daemon without the kernel's
audit (``daemon.json`` says why), or a denial the daemon does not watch for. It fails, with one line, when
the wall is off for the agent (``sandbox: off``, ``TETHER_SANDBOX=off``, ``network: open`` for the
connection), cannot be built, or when anything got through or went unrecorded. A ``network: none`` agent
whose probe found no proxy at all is ``degraded``: nothing got out, and there was nothing to record.

``--only sandbox`` selects it; ``tether drill --sandbox`` (drilling copies under a daemon of its own,
``drills/sandbox.py``) is another thing, and the two combine.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from tether.drills.base import Host, Result, Trace, first_line
from tether.errors import TetherError
from tether.wall import auditrules, plan, prepare, violations
from tether.wall.egress import HostPorts, allowed_entries
from tether.wall.profile import under
from tether.wall.proxy import NET_DIR, PORT_FILE, PROXY_SOCK, proxy_env

NAME = "sandbox"
MARK = "TETHER-DRILL-SANDBOX "
PROBE_TIMEOUT = 30.0
RECORD_TIMEOUT = 10.0  # the proxy writes its events every 0.5 s
AUDITED = frozenset(auditrules.ERRNAMES)  # the denials the daemon's write watch is told of

#: Runs inside the wall: argv[1] is {"writes": [path...], "port": P}; prints MARK + JSON.
PROBE = r"""
import errno, json, os, socket, sys

cfg = json.loads(sys.argv[1])
out = {"writes": [], "proxy": None, "direct": None, "uid": os.getuid()}

def err(e):
    return errno.errorcode.get(e.errno or 0, type(e).__name__)

for path in cfg["writes"]:
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except OSError as e:
        out["writes"].append({"path": path, "ok": False, "error": err(e)})
    else:
        os.write(fd, b"tether drill: this write should have been denied\n")
        os.close(fd)
        out["writes"].append({"path": path, "ok": True, "error": ""})
        try:
            os.unlink(path)
        except OSError:
            pass

target = "127.0.0.1:%d" % cfg["port"]
proxy = os.environ.get("https_proxy") or os.environ.get("HTTPS_PROXY") or ""
if proxy.startswith("http://"):
    hostport = proxy[7:].split("/")[0]
    host, _, port = hostport.rpartition(":")
    got = {"proxy": hostport, "ok": False, "status": 0, "line": "", "error": ""}
    try:
        s = socket.create_connection((host.strip("[]"), int(port)), timeout=10)
        s.settimeout(10)
        s.sendall(("CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n" % (target, target)).encode())
        head = b""
        while b"\r\n\r\n" not in head and len(head) < 8192:
            chunk = s.recv(4096)
            if not chunk:
                break
            head += chunk
        line = head.split(b"\r\n", 1)[0].decode("latin-1")
        got["line"] = line[:300]
        parts = line.split(" ")
        got["status"] = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0
        got["ok"] = got["status"] == 200
        if got["ok"]:
            s.sendall(b"via proxy\n")
        s.close()
    except (OSError, ValueError) as e:
        got["error"] = err(e) if isinstance(e, OSError) else str(e)
    out["proxy"] = got
try:
    s = socket.create_connection(("127.0.0.1", cfg["port"]), timeout=5)
    s.sendall(b"direct\n")
    s.close()
    out["direct"] = {"ok": True, "error": ""}
except OSError as e:
    out["direct"] = {"ok": False, "error": err(e)}
sys.stdout.write("TETHER-DRILL-SANDBOX " + json.dumps(out) + "\n")
"""


class Listener:
    """A 127.0.0.1 listener outside the agent's scope: what reaches it, by the first line each sends."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port: int = self.sock.getsockname()[1]
        self.reached: list[str] = []
        self._thread = threading.Thread(target=self._accept, name="tether-drill-listener", daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                conn.settimeout(2)
                try:
                    first = conn.recv(100).decode("latin-1").strip()
                except OSError:
                    first = ""
                self.reached.append(first or "a connection")

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()
        self._thread.join(timeout=5)


@contextlib.contextmanager
def listening() -> Iterator[Listener]:
    lis = Listener()
    try:
        yield lis
    finally:
        lis.close()


def off_reason(host: Host, agent: str) -> str | None:
    """Why the agent runs without the wall, or None."""
    if host.spec(agent).sandbox != "on":
        return f"sandbox: off: {agent} runs without the wall (its runbook says `sandbox: off`)"
    if plan.host_off():
        return f"sandbox: off: {plan.OFF_VAR}=off turns the wall off on this host"
    return None


def run(host: Host, agent: str) -> Result:
    t = Trace(agent, NAME)
    off = off_reason(host, agent)
    if off is not None:
        return t.failed(off)
    spec = host.spec(agent)
    if spec.network == "open":
        return t.failed(
            f"network: open: {agent} has the host's network and no proxy: an outside connection is "
            "not stopped (set `network: scoped`)"
        )
    info = host.daemon()
    if info is None:
        return t.failed(f"no daemon runs for {host.state.root}: a refused connection could not be recorded")
    run_dir = host.run_dir(agent)
    sock = run_dir / NET_DIR / PROXY_SOCK  # the daemon's proxy listens there once the agent has started
    try:
        wall = prepare(
            host.loaded, agent, proxy_socket=str(sock) if sock.exists() else None, daemon_url=str(info["url"])
        )
    except TetherError as err:  # WallError: one line with the fix
        return t.failed(f"the wall cannot be built: {err}")
    if wall is None:  # pragma: no cover - off_reason said it is on
        return t.failed("sandbox: off")
    t.mark("wall_s")
    with listening() as lis, _scratch(host, wall.profile.writable, under) as writes:
        if HostPorts(allowed_entries(spec)).allows("127.0.0.1", lis.port):
            return t.failed(
                f"127.0.0.1:{lis.port} is in {agent}'s scope.hosts: no outside listener could be made "
                "(narrow `127.0.0.1:*`)"
            )
        cursor = host.cursor()
        env = _env(host, agent, str(info["url"]), wall.env)
        got, why = _probe(wall.prefix, env, _cwd(host, agent), {"writes": writes, "port": lis.port})
        t.mark("probe_s")
        if got is None:
            return t.failed(f"the probe did not run inside the wall: {why}")
        leaked = [w["path"] for w in got["writes"] if w.get("ok")] + [p for p in writes if os.path.lexists(p)]
        for path in leaked:
            with contextlib.suppress(OSError):
                os.unlink(path)
        denied = [w for w in got["writes"] if not w.get("ok")]
        watch = dict(info.get("denied_writes") or {})
        if watch.get("on") and wall.profile.uid not in auditrules.watched_by(int(info.get("pid") or 0)):
            why = f"it watches no write of uid {wall.profile.uid} (reload it: `tether reload`)"
            watch = {"on": False, "reason": why}
        seen_by_kernel = [w for w in denied if watch.get("on") and w.get("error") in AUDITED]
        unrecorded = _writes_recorded(host, agent, cursor, seen_by_kernel, t) if seen_by_kernel else []
        wrote = []
        for w in denied:
            if w not in seen_by_kernel:  # the daemon cannot see it: the drill's own record
                t.cite(
                    host.emit(
                        violations.EVENT, agent, **violations.write(w["path"], w["error"], "drill", drill=host.run_id)
                    )
                )
            wrote.append(f"{w['path']}: {w['error']}")
        proxy, direct = got.get("proxy"), got.get("direct") or {}
        seen, note = None, ""
        if proxy is not None and proxy.get("status") not in (0, 200):  # refused: its record (and approval)
            seen, note = _recorded(host, agent, cursor, lis.port, t)
        reached = list(lis.reached)
    if leaked:
        return t.failed(f"an outside write went through inside the wall: {leaked[0]}")
    if reached or (proxy or {}).get("ok") or direct.get("ok"):
        how = "through the proxy" if (proxy or {}).get("ok") or "via proxy" in reached else "directly"
        return t.failed(
            f"a connection to 127.0.0.1:{lis.port} (outside scope.hosts) went through {how}: "
            "the wall does not hold the network"
        )
    if unrecorded:
        return t.failed(
            f"the denied write of {unrecorded[0]} was not recorded by the daemon within {RECORD_TIMEOUT:g}s "
            "(it watches the kernel's audit for them)"
        )
    t.mark("recorded_s")
    if not watch.get("on"):
        by = f"by the drill (the daemon does not see them: {watch.get('reason') or 'an older daemon'})"
    elif len(seen_by_kernel) == len(denied):
        by = "by the daemon, from the kernel's audit"
    else:
        by = f"{len(seen_by_kernel)} by the daemon, from the kernel's audit, the others by the drill"
    writes_line = f"outside writes denied ({'; '.join(wrote)}), recorded {by} as {len(wrote)} wall.violation"
    direct_line = f"a direct connection failed ({direct.get('error') or 'refused'})"
    if seen is None:
        if proxy is None or proxy.get("status") == 0:
            reach = (
                "no proxy variables"
                if proxy is None
                else f"the proxy at {proxy['proxy']} did not answer ({proxy.get('error') or 'no status'})"
            )
            if spec.network == "none":
                return t.degraded(
                    f"{writes_line}; network: none: {direct_line} and {reach}: nothing got out, "
                    "and there was nothing to record"
                )
            return t.failed(
                f"{writes_line}; the outside connection was not recorded: {reach} (the proxy listens "
                f"once {agent} has started under this daemon)"
            )
        return t.failed(
            f"{writes_line}; the proxy refused 127.0.0.1:{lis.port} ({proxy.get('line')}) but no "
            f"wall.violation was recorded within {RECORD_TIMEOUT:g}s"
        )
    return t.passed(
        f"{writes_line}; 127.0.0.1:{lis.port} refused by the proxy ({seen}{note}) and recorded; {direct_line}"
    )


def _env(host: Host, agent: str, daemon_url: str, wall_env: dict[str, str]) -> dict[str, str]:
    """The probe's environment: the agent's proxy variables, as the daemon gives them, then the wall's."""
    env = {k: v for k, v in os.environ.items() if k in ("PATH", "LANG") or k.startswith("LC_")}
    env.setdefault("PATH", "/usr/local/bin:/usr/bin:/bin")
    try:
        port = int((host.run_dir(agent) / PORT_FILE).read_text().strip())
    except (OSError, ValueError):
        port = 0
    if port:
        env.update(proxy_env(f"http://127.0.0.1:{port}", daemon_url))
    return {**env, **wall_env}


def _cwd(host: Host, agent: str) -> str:
    cwd = host.cwd(agent)
    return str(cwd) if cwd.is_dir() else "/"


def _pythons() -> list[str]:
    """Interpreters to run the probe with: the agent's user may not reach ours (a venv under /root)."""
    found = [sys.executable, "/usr/bin/python3", shutil.which("python3") or ""]
    return [p for p in dict.fromkeys(found) if p and os.path.exists(p)]


def _probe(prefix: list[str], env: dict[str, str], cwd: str, cfg: dict[str, Any]) -> tuple[dict[str, Any] | None, str]:
    why = "no python3 found"
    for python in _pythons():
        try:
            proc = subprocess.run(
                [*prefix, python, "-I", "-S", "-c", PROBE, json.dumps(cfg)],
                env=env,
                cwd=cwd,
                capture_output=True,
                text=True,
                timeout=PROBE_TIMEOUT,
                stdin=subprocess.DEVNULL,
            )
        except (OSError, subprocess.TimeoutExpired) as err:
            why = f"{python}: {err}"
            continue
        for line in proc.stdout.splitlines():
            if line.startswith(MARK):
                with contextlib.suppress(ValueError):
                    got: dict[str, Any] = json.loads(line[len(MARK) :])
                    return got, ""
        why = f"{python}: exit {proc.returncode}: {first_line(proc.stderr or proc.stdout, 200) or 'no output'}"
    return None, why


@contextlib.contextmanager
def _scratch(host: Host, writable: tuple[str, ...], under: Any) -> Iterator[list[str]]:
    """The paths the probe writes: one in a world-writable folder next to the state dir (only the wall can
    stop that write; skipped when that folder is inside the agent's own trees) and one in /etc."""
    parent = host.state.root.resolve().parent
    folder = parent / f".tether-drill-{host.run_id}"
    made = False
    paths = []
    if not any(under(str(parent), w) for w in writable):
        with contextlib.suppress(OSError):
            folder.mkdir()
            made = True
            folder.chmod(0o1777)  # its user could write here: only the wall stands in the way
            paths.append(str(folder / "planted"))
    paths.append(f"/etc/tether-drill-{host.run_id}")
    try:
        yield paths
    finally:
        for p in paths:
            with contextlib.suppress(OSError):
                Path(p).unlink()
        if made:
            shutil.rmtree(folder, ignore_errors=True)


def _writes_recorded(host: Host, agent: str, cursor: int, denied: list[dict[str, Any]], t: Trace) -> list[str]:
    """Wait for the daemon's record of each denied write (its path, or the folder it was to be made in: the
    kernel names only that when the create was refused), citing them; the paths not recorded."""
    left = {w["path"] for w in denied}

    def ours(e: Any) -> bool:
        if e.data.get("kind") != "write" or e.data.get("source") != "audit":
            return False
        named = {str(p).rstrip("/") for p in [e.data.get("path"), *(e.data.get("paths") or [])] if p}
        hit = {p for p in left if p in named or os.path.dirname(p) in named}
        left.difference_update(hit)
        if hit:
            t.cite(e.id)
        return not left

    host.wait_event(cursor, agent, [violations.EVENT], RECORD_TIMEOUT, match=ours)
    return sorted(left)


def _recorded(host: Host, agent: str, cursor: int, port: int, t: Trace) -> tuple[str | None, str]:
    """The proxy's record of the refused connection: (its verdict, a note), citing its events; an approval it
    asked for is denied (the drill's own ask)."""
    def ours(e: Any) -> bool:
        return bool(
            e.data.get("kind") == "connect" and e.data.get("port") == port and e.data.get("host") == "127.0.0.1"
        )

    got = host.wait_event(cursor, agent, [violations.EVENT], RECORD_TIMEOUT, match=ours)
    if got is None:
        return None, ""
    t.cite(got.id)
    for e in host.events(cursor, agent, ["network.connection"]):
        if e.data.get("port") == port and e.data.get("host") == "127.0.0.1":
            t.cite(e.id)
    approval = got.data.get("approval")
    note = ""
    if isinstance(approval, int):
        try:
            host.api("POST", f"/v1/approvals/{approval}/deny", {"reason": "drill"})
            note = f"; approval {approval} denied by the drill"
        except TetherError as err:
            note = f"; approval {approval} left pending ({err})"
    return str(got.data.get("verdict")), note
