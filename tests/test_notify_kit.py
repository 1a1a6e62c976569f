"""Real receivers on 127.0.0.1 for the notification, export and dead-man tests: an HTTP server that
records every request, and an SMTP server (aiosmtpd). No tests here."""

from __future__ import annotations

import email
import email.policy
import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    def lines(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.body.decode().splitlines() if line.strip()]


@dataclass
class Receiver:
    """An HTTP server on 127.0.0.1 that records requests. ``status(req)`` picks each answer; ``delay``
    holds each answer back (a slow receiver). ``stop()`` and ``start()`` again on the same port model a
    receiver that is down and comes back."""

    port: int = 0
    requests: list[Request] = field(default_factory=list)
    status: Callable[[Request], int] = lambda req: 200
    delay: float = 0.0
    _server: ThreadingHTTPServer | None = None

    def start(self) -> Receiver:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def _any(self) -> None:
                n = int(self.headers.get("Content-Length") or 0)
                req = Request(self.command, self.path, {k.lower(): v for k, v in self.headers.items()},
                              self.rfile.read(n) if n else b"")
                if owner.delay:
                    time.sleep(owner.delay)
                code = owner.status(req)
                if 200 <= code < 300:
                    owner.requests.append(req)
                self.send_response(code)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"OK")

            do_GET = do_POST = do_HEAD = _any

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()

    def url(self, path: str = "/") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def at(self, prefix: str) -> list[Request]:
        return [r for r in list(self.requests) if r.path.startswith(prefix)]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(cond: Callable[[], Any], timeout: float = 10.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = cond()
        if got:
            return got
        time.sleep(0.02)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver().start()
    yield r
    r.stop()


@dataclass
class Mail:
    sender: str
    to: list[str]
    subject: str
    text: str


class SMTPServer:
    def __init__(self) -> None:
        from aiosmtpd.controller import Controller

        self.mails: list[Mail] = []
        self.port = free_port()
        self.controller = Controller(self, hostname="127.0.0.1", port=self.port)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        msg = email.message_from_bytes(envelope.content, policy=email.policy.default)
        part = msg.get_body(preferencelist=("plain",)) if msg.is_multipart() else msg
        text = part.get_content() if part is not None else ""
        self.mails.append(Mail(envelope.mail_from, list(envelope.rcpt_tos), str(msg["Subject"]), text))
        return "250 OK"

    def url(self, to: str) -> str:
        """An apprise URL delivering through this server (no TLS, no login) to ``to``."""
        return f"mailto://127.0.0.1:{self.port}?from=tether@localhost&to={to}"


@pytest.fixture
def smtp() -> Iterator[SMTPServer]:
    server = SMTPServer()
    server.controller.start()
    yield server
    server.controller.stop()
