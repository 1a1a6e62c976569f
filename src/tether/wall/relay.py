"""Relaying bytes between two connected sockets on an asyncio loop, without copying them through Python
where the OS allows: ``splice(2)`` socket → pipe → socket on Linux, ``recv_into``/``send`` elsewhere.

Each direction is one ``Pump`` driven by the loop's readiness callbacks: read when the pipe (or buffer) is
empty, write until it is, and while the receiver is full stop reading the sender (back-pressure). An end of
stream is passed on as a half-close; an error ends both directions.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import time
from collections.abc import Callable

CHUNK = 1024 * 1024
HAS_SPLICE = hasattr(os, "splice")
_FLAGS = (getattr(os, "SPLICE_F_MOVE", 1) | getattr(os, "SPLICE_F_NONBLOCK", 2)) if HAS_SPLICE else 0


class Pump:
    """One direction, ``src`` → ``dst``. ``moved(n)`` is told every chunk; ``done`` resolves at the end."""

    def __init__(self, loop: asyncio.AbstractEventLoop, src: socket.socket, dst: socket.socket,
                 moved: Callable[[int], None], use_splice: bool = HAS_SPLICE) -> None:
        self.loop, self.src, self.dst, self.moved = loop, src, dst, moved
        self.done: asyncio.Future[None] = loop.create_future()
        self.pending = 0  # bytes read and not yet written
        self.eof = False
        self.pipe: tuple[int, int] | None = None
        self.buf = memoryview(b"")
        self.store = bytearray(0)
        if use_splice:
            r, w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
            self.pipe = (r, w)
            with contextlib.suppress(OSError, AttributeError):
                import fcntl

                fcntl.fcntl(w, fcntl.F_SETPIPE_SZ, CHUNK)
        else:
            self.store = bytearray(256 * 1024)
        loop.add_reader(src.fileno(), self._readable)

    def _readable(self) -> None:
        for _ in range(16):  # what is there now, a few chunks at most, then back to the loop
            try:
                n = self._read()
            except BlockingIOError:
                return
            except OSError:
                self._finish(failed=True)
                return
            if n == 0:
                self.eof = True
                self.loop.remove_reader(self.src.fileno())
                self._writable()
                return
            self.pending += n
            self.moved(n)
            if not self._drained():
                return

    def _drained(self) -> bool:
        """Write what is pending; False when the receiver is full (then the writer callback waits)."""
        self._writable()
        return self.pending == 0 and not self.done.done()

    def _writable(self) -> None:
        try:
            while self.pending:
                self.pending -= self._write()
        except BlockingIOError:
            self.loop.remove_reader(self.src.fileno())
            self.loop.add_writer(self.dst.fileno(), self._writable)
            return
        except OSError:
            self._finish(failed=True)
            return
        self.loop.remove_writer(self.dst.fileno())
        if self.eof:
            with contextlib.suppress(OSError):
                self.dst.shutdown(socket.SHUT_WR)
            self._finish(failed=False)
        elif not self.done.done():
            self.loop.add_reader(self.src.fileno(), self._readable)

    def _read(self) -> int:
        if self.pipe is not None:
            return os.splice(self.src.fileno(), self.pipe[1], CHUNK, flags=_FLAGS)
        n = self.src.recv_into(self.store)
        self.buf = memoryview(self.store)[:n]
        return n

    def _write(self) -> int:
        if self.pipe is not None:
            return os.splice(self.pipe[0], self.dst.fileno(), self.pending, flags=_FLAGS)
        n = self.dst.send(self.buf)
        self.buf = self.buf[n:]
        return n

    def _finish(self, failed: bool) -> None:
        self.stop()
        if not self.done.done():
            self.done.set_result(None)
        if failed:  # a reset or a broken pipe: the other direction ends too
            for s in (self.src, self.dst):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)

    def stop(self) -> None:
        for sock, remove in ((self.src, self.loop.remove_reader), (self.dst, self.loop.remove_writer)):
            with contextlib.suppress(OSError, ValueError):
                if sock.fileno() >= 0:
                    remove(sock.fileno())
        if self.pipe is not None:
            for fd in self.pipe:
                with contextlib.suppress(OSError):
                    os.close(fd)
            self.pipe = None


async def relay(a: socket.socket, b: socket.socket, up: Callable[[int], None], down: Callable[[int], None],
                idle: float) -> None:
    """Carry bytes both ways between ``a`` (the agent) and ``b`` (the host) until both directions end, or
    nothing moves for ``idle`` seconds. Closes neither socket."""
    loop = asyncio.get_running_loop()
    last = [time.monotonic()]

    def counted(f: Callable[[int], None]) -> Callable[[int], None]:
        def moved(n: int) -> None:
            last[0] = time.monotonic()
            f(n)
        return moved

    pumps = (Pump(loop, a, b, counted(up)), Pump(loop, b, a, counted(down)))
    both = asyncio.gather(*(p.done for p in pumps))
    try:
        while True:
            left = last[0] + idle - time.monotonic()
            if left <= 0:
                break
            done, _ = await asyncio.wait({both}, timeout=left)
            if done:
                break
    finally:
        for p in pumps:
            p.stop()
        if not both.done():
            both.cancel()
