"""Run the daemon: one per state directory (an flock), the API on uvicorn, signals, clean shutdown.

Files it keeps in the state directory: ``daemon.lock`` (held while it runs), ``daemon.json`` (pid
and URL, for the CLI), ``admin.token`` (0600: the CLI's admin credential on this host).
"""

from __future__ import annotations

import fcntl
import json
import os
import signal
import socket
import threading
import time
from pathlib import Path
from typing import Any

from tether import auth
from tether.daemon.core import Daemon, write_private
from tether.errors import TetherError
from tether.runbook import LoadedRunbook
from tether.status_file import write_atomic


class AlreadyRunning(TetherError):
    pass


def info(state_root: Path) -> dict[str, Any] | None:
    try:
        data: dict[str, Any] = json.loads((state_root / "daemon.json").read_text())
        return data
    except (OSError, ValueError):
        return None


def _lock(path: Path) -> int:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        running = info(path.parent) or {}
        raise AlreadyRunning(
            f"a daemon already runs for {path.parent} (pid {running.get('pid', '?')}, {running.get('url', '?')}); "
            "`tether down` stops it"
        ) from None
    return fd


def _bind(listen: str) -> socket.socket:
    host, _, port = listen.rpartition(":")
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host.strip("[]"), int(port)))
    except OSError as err:
        sock.close()
        raise TetherError(f"cannot listen on {listen} ({err.strerror}); change host.listen in the runbook") from None
    sock.listen(128)
    sock.set_inheritable(False)
    return sock


def serve(loaded: LoadedRunbook) -> None:
    """Run in the foreground until SIGTERM/SIGINT or ``tether down``."""
    import uvicorn

    from tether.api.app import create_app

    state = loaded.state
    lock_fd = _lock(state.lock)
    sock = _bind(loaded.runbook.host.listen)
    host, port = sock.getsockname()[:2]
    url = f"http://{'[' + host + ']' if ':' in host else host}:{port}"
    daemon = Daemon(loaded)
    admin_file = state.root / "admin.token"
    token = admin_file.read_text().strip() if admin_file.exists() else ""
    if not token or auth.identify(daemon.store, token) is None:
        write_private(admin_file, auth.create(daemon.store, "admin") + "\n")
    daemon.boot(url)
    write_atomic(state.root / "daemon.json", json.dumps({"pid": os.getpid(), "url": url, "started": time.time()}))

    config = uvicorn.Config(create_app(daemon), log_level="warning", access_log=False, lifespan="off")
    server = uvicorn.Server(config)

    def stop(*_: Any) -> None:
        daemon.shutdown_requested.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGHUP, lambda *_: threading.Thread(target=_reload, args=(daemon,), daemon=True).start())

    def watch() -> None:
        daemon.shutdown_requested.wait()
        server.should_exit = True

    threading.Thread(target=watch, daemon=True).start()
    try:
        server.run(sockets=[sock])
    finally:
        daemon.halt(stop_agents=True)
        (state.root / "daemon.json").unlink(missing_ok=True)
        os.close(lock_fd)


def _reload(daemon: Daemon) -> None:
    try:
        daemon.reload()
    except TetherError as err:
        daemon.store.emit("runbook.rejected", None, errors=str(err).splitlines())
