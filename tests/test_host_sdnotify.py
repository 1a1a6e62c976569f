"""The systemd notify protocol against a real datagram socket the test owns (standing in for systemd's)."""

from __future__ import annotations

import os
import socket
import struct
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tether.host import sdnotify
from tether.host.sdnotify import Watchdog


@pytest.fixture
def notify_socket(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[socket.socket]:
    """A bound unix datagram socket, named in $NOTIFY_SOCKET; WATCHDOG_* cleared."""
    path = tmp_path / "notify.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    monkeypatch.setenv("NOTIFY_SOCKET", str(path))
    monkeypatch.delenv("WATCHDOG_USEC", raising=False)
    monkeypatch.delenv("WATCHDOG_PID", raising=False)
    try:
        yield sock
    finally:
        sock.close()


def receive(sock: socket.socket, seconds: float) -> list[str]:
    """Every message that arrives within ``seconds``."""
    got = []
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        sock.settimeout(left)
        try:
            got.append(sock.recv(4096).decode())
        except TimeoutError:
            break
    return got


def receive_one(sock: socket.socket, timeout: float = 2.0) -> str:
    sock.settimeout(timeout)
    return sock.recv(4096).decode()


def test_unset_socket_is_a_no_op(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    assert sdnotify.notify("READY=1") is False
    assert sdnotify.ready() is False
    assert sdnotify.watchdog() is False


def test_ready_status_watchdog_stopping(notify_socket: socket.socket) -> None:
    assert sdnotify.ready()
    assert receive_one(notify_socket) == "READY=1"
    assert sdnotify.status("3 agents\nrunning")
    assert receive_one(notify_socket) == "STATUS=3 agents running"
    assert sdnotify.watchdog()
    assert receive_one(notify_socket) == "WATCHDOG=1"
    assert sdnotify.stopping()
    assert receive_one(notify_socket) == "STOPPING=1"


def test_abstract_namespace(monkeypatch: pytest.MonkeyPatch) -> None:
    name = f"tether-test-{uuid.uuid4().hex}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(b"\0" + name.encode())
        monkeypatch.setenv("NOTIFY_SOCKET", "@" + name)
        assert sdnotify.ready()
        assert receive_one(sock) == "READY=1"


def test_a_socket_nobody_listens_on_is_not_an_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NOTIFY_SOCKET", str(tmp_path / "gone.sock"))
    assert sdnotify.ready() is False


def test_the_sender_is_the_process_itself(notify_socket: socket.socket) -> None:
    """With NotifyAccess=main systemd accepts a message only when its sender PID (SCM_CREDENTIALS) is the
    service's main PID: a daemon process calling ready() must send from its own PID, not a helper's."""
    notify_socket.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
    code = "import sys; from tether.host import sdnotify; sys.exit(0 if sdnotify.ready() else 3)"
    proc = subprocess.Popen([sys.executable, "-c", code], env=dict(os.environ))
    notify_socket.settimeout(10)
    data, ancillary, _, _ = notify_socket.recvmsg(4096, socket.CMSG_SPACE(struct.calcsize("3i")))
    assert proc.wait(timeout=10) == 0
    assert data == b"READY=1"
    creds = [d for level, kind, d in ancillary if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS]
    assert creds, "the kernel attached no credentials"
    pid, _uid, _gid = struct.unpack("3i", creds[0][: struct.calcsize("3i")])
    assert pid == proc.pid


def test_watchdog_interval(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("WATCHDOG_USEC", raising=False)
    monkeypatch.delenv("WATCHDOG_PID", raising=False)
    assert sdnotify.watchdog_interval() is None
    monkeypatch.setenv("WATCHDOG_USEC", "30000000")
    assert sdnotify.watchdog_interval() == 30.0
    monkeypatch.setenv("WATCHDOG_PID", str(os.getpid()))
    assert sdnotify.watchdog_interval() == 30.0
    monkeypatch.setenv("WATCHDOG_PID", str(os.getpid() + 1))  # meant for another process
    assert sdnotify.watchdog_interval() is None
    monkeypatch.setenv("WATCHDOG_PID", str(os.getpid()))
    for bad in ("", "0", "-5", "soon"):
        monkeypatch.setenv("WATCHDOG_USEC", bad)
        assert sdnotify.watchdog_interval() is None


def test_watchdog_pings_only_while_healthy(notify_socket: socket.socket, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WATCHDOG_USEC", "100000")  # 0.1 s: a ping every 0.05 s
    monkeypatch.setenv("WATCHDOG_PID", str(os.getpid()))
    healthy = threading.Event()
    healthy.set()
    dog = Watchdog(healthy.is_set)
    assert dog.interval == pytest.approx(0.1)
    assert sdnotify.ready()
    assert receive_one(notify_socket) == "READY=1"
    assert dog.start()
    try:
        assert dog.running
        pings = receive(notify_socket, 0.3)
        assert pings and set(pings) == {"WATCHDOG=1"}
        assert len(pings) >= 3

        healthy.clear()  # the daemon's loops stopped: systemd must see the silence and restart it
        time.sleep(0.1)  # a tick that checked just before the clear may still send
        receive(notify_socket, 0.01)
        assert receive(notify_socket, 0.3) == []
        assert dog.missed >= 3

        healthy.set()
        assert "WATCHDOG=1" in receive(notify_socket, 0.3)
    finally:
        dog.stop()
    assert not dog.running
    receive(notify_socket, 0.01)
    assert receive(notify_socket, 0.2) == []


def test_a_raising_health_check_counts_as_unhealthy(notify_socket: socket.socket) -> None:
    def broken() -> bool:
        raise RuntimeError("monitor thread died")

    with Watchdog(broken, interval=0.1) as dog:
        assert dog.running
        assert receive(notify_socket, 0.25) == []
    assert dog.missed >= 2 and dog.pings == 0


def test_no_watchdog_configured_starts_nothing(notify_socket: socket.socket) -> None:
    dog = Watchdog(lambda: True)
    assert dog.interval is None
    assert dog.start() is False
    assert not dog.running
    dog.stop()  # harmless
