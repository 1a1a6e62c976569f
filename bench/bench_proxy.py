"""The egress proxy (issue 16): a 10 MiB download from a local ``python3 -m http.server`` through tether's
proxy (``wall/proxy.py``, in a process of its own as in the daemon: a thread with its own event loop),
through tinyproxy (Debian's) and direct, side by side in one run, curl as the client over CONNECT (what
HTTPS traffic does). Goals: ≥ 0.5× direct and no slower than tinyproxy; ≤ 5 ms added per connection at
the median (a 10-byte file fetched with a fresh connection each time, through the proxy vs direct, timed
in-process so no process start is counted).

Without tinyproxy (``apt-get install tinyproxy``) its row says so and is not counted.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from common import PYTHON, median, row, stop

SIZE = 10 * 1024 * 1024
TARGET = "127.0.0.1"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_port(port: int, proc: subprocess.Popen[bytes], what: str) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited at start ({proc.returncode})")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
            return
        time.sleep(0.02)
    raise RuntimeError(f"{what} did not listen on {port}")


@contextlib.contextmanager
def _process(argv: list[str], port: int, what: str, cwd: Path) -> Iterator[None]:
    proc = subprocess.Popen(argv, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            stdin=subprocess.DEVNULL)
    try:
        _wait_port(port, proc, what)
        yield
    finally:
        stop(proc, 10)


def serve_tether(port_file: str, server_port: int) -> None:
    """Run tether's proxy for agent ``bench`` (scope: the server's port) until killed; write its port."""
    import signal

    from tether.wall.egress import Egress
    from tether.wall.proxy import EgressProxy

    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM, signal.SIGINT})
    egress = Egress({"bench": ("scoped", (f"{TARGET}:{server_port}",))}, _never, lambda agent: None)
    proxy = EgressProxy(lambda: egress, lambda batch: None)
    proxy.start()
    run = Path(port_file).parent / "run"
    port = proxy.open("bench", run)
    Path(port_file).write_text(str(port))
    signal.sigwait({signal.SIGTERM, signal.SIGINT})
    proxy.stop()


def _never(agent: str, host: str, port: int) -> object:
    raise AssertionError("the bench reaches only its scope")


def _curl(url: str, proxy: str | None) -> float:
    argv = ["curl", "-sS", "-o", "/dev/null", "-w", "%{time_total}", url]
    if proxy:
        argv[1:1] = ["-p", "-x", proxy]
    out = subprocess.run(argv, capture_output=True, text=True, check=True, timeout=60)
    return float(out.stdout)


def _small(server_port: int, proxy_port: int | None) -> float:
    """One fresh connection fetching the 10-byte file, request to last byte (seconds)."""
    start = time.perf_counter()
    with socket.create_connection(("127.0.0.1", proxy_port or server_port), timeout=10) as s:
        if proxy_port:
            s.sendall(f"CONNECT {TARGET}:{server_port} HTTP/1.1\r\nHost: {TARGET}:{server_port}\r\n\r\n".encode())
            got = b""
            while b"\r\n\r\n" not in got:
                chunk = s.recv(4096)
                if not chunk:
                    raise RuntimeError("the proxy closed the tunnel")
                got += chunk
        s.sendall(f"GET /small HTTP/1.0\r\nHost: {TARGET}\r\n\r\n".encode())
        while s.recv(65536):
            pass
    return time.perf_counter() - start


def _tinyproxy_conf(root: Path, port: int) -> Path:
    conf = root / "tinyproxy.conf"
    conf.write_text(f"Port {port}\nListen 127.0.0.1\nTimeout 60\nMaxClients 100\nAllow 127.0.0.1\n"
                    f"LogLevel Critical\nPidFile \"{root}/tinyproxy.pid\"\nLogFile \"{root}/tinyproxy.log\"\n")
    return conf


def run(quick: bool) -> list[dict[str, object]]:
    rounds = 4 if quick else 10
    small_rounds = 40 if quick else 300
    root = Path(tempfile.mkdtemp(prefix="tether-bench-proxy-"))
    (root / "www").mkdir()
    (root / "www" / "big").write_bytes(os.urandom(SIZE))
    (root / "www" / "small").write_bytes(b"0123456789")
    server_port, tiny_port = _free_port(), _free_port()
    url = f"http://{TARGET}:{server_port}/big"
    tiny = shutil.which("tinyproxy")
    rows: list[dict[str, object]] = []
    with contextlib.ExitStack() as stack:
        stack.enter_context(_process([sys.executable, "-m", "http.server", str(server_port), "--bind", TARGET],
                                     server_port, "http.server", root / "www"))
        port_file = root / "tether-port"
        proc = subprocess.Popen([PYTHON, __file__, "--serve", str(port_file), str(server_port)],
                                stdin=subprocess.DEVNULL, env={**os.environ, "PYTHONPATH": _src()})
        stack.callback(stop, proc, 10)
        deadline = time.monotonic() + 20
        while not port_file.exists() or not port_file.read_text():
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("tether's proxy did not start")
            time.sleep(0.02)
        tether_port = int(port_file.read_text())
        if tiny:
            stack.enter_context(_process([tiny, "-d", "-c", str(_tinyproxy_conf(root, tiny_port))], tiny_port,
                                         "tinyproxy", root))
        paths: dict[str, str | None] = {"direct": None, "tether": f"http://127.0.0.1:{tether_port}"}
        if tiny:
            paths["tinyproxy"] = f"http://127.0.0.1:{tiny_port}"
        times: dict[str, list[float]] = {k: [] for k in paths}
        for _ in range(rounds):  # interleaved: a noisy machine slows every path alike
            for name, proxy in paths.items():
                times[name].append(_curl(url, proxy))
        mib = {k: SIZE / 1024 / 1024 / median(v) for k, v in times.items()}
        rows.append(row("10 MiB over CONNECT: tether's proxy vs direct (MiB/s)", mib["tether"], mib["direct"],
                        "MiB/s", "≥ 0.5×", mib["tether"] >= 0.5 * mib["direct"]))
        if tiny:
            rows.append(row("10 MiB over CONNECT: tether's proxy vs tinyproxy (MiB/s)", mib["tether"],
                            mib["tinyproxy"], "MiB/s", "≥ 1× (no slower)", mib["tether"] >= 0.95 * mib["tinyproxy"]))
        else:
            rows.append(row("tinyproxy not installed (apt-get install tinyproxy): not compared", float("nan"),
                            float("nan"), "", "skipped", True))
        direct, through = [], []
        for _ in range(small_rounds):
            direct.append(_small(server_port, None))
            through.append(_small(server_port, tether_port))
        added = (median(through) - median(direct)) * 1000
        rows.append(row("added per new connection through tether's proxy (median, ms)", median(through) * 1000,
                        median(direct) * 1000, "ms", "≤ +5 ms", added <= 5.0))
        if tiny:
            tiny_small = [_small(server_port, tiny_port) for _ in range(small_rounds)]
            rows.append(row("new connection: tether's proxy vs tinyproxy (median, ms)", median(through) * 1000,
                            median(tiny_small) * 1000, "ms", "info", True))
    shutil.rmtree(root, ignore_errors=True)
    return rows


def _src() -> str:
    src = str(Path(__file__).resolve().parent.parent / "src")
    return os.pathsep.join(p for p in (src, os.environ.get("PYTHONPATH", "")) if p)


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--serve":
        serve_tether(sys.argv[2], int(sys.argv[3]))
    else:
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        for r in run("--quick" in sys.argv):
            print(r)
