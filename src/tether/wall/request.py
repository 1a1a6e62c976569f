"""What an agent asks the egress proxy (``wall/proxy.py``) and what it is answered: the request head read
from the connection (through CRLFCRLF, bounded), parsed into the host and port it names (HTTP ``CONNECT``,
or plain HTTP with an absolute URL, rewritten to origin form for the host), and the plain-text answer of a
refusal. Stdlib only; no connection is judged here."""

from __future__ import annotations

import asyncio
import socket

ALLOWED_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def phrase(text: str) -> str:
    """A reason phrase for a status line: printable ASCII on one line, at most 200 characters."""
    clean = "".join(c if " " <= c < "\x7f" else " " for c in text)
    return clean[:200] or "Forbidden"


def response(status: int, reason: str, headers: dict[str, str] | None = None) -> bytes:
    body = f"tether: {reason}\n".encode("ascii", "replace")
    extra = "".join(f"{k}: {phrase(v)}\r\n" for k, v in (headers or {}).items())
    head = (
        f"HTTP/1.1 {status} {phrase(reason)}\r\ncontent-type: text/plain\r\nconnection: close\r\n"
        f"content-length: {len(body)}\r\n{extra}\r\n"
    )
    return head.encode("ascii", "replace") + body


class BadRequest(Exception):
    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


def parse_head(head: bytes) -> tuple[str, str, int, bytes]:
    """``(method, host, port, what to send upstream first)`` from a request head (up to and with CRLFCRLF).
    For CONNECT nothing is sent; for plain HTTP the request in origin form, ``Proxy-*`` headers dropped and
    ``connection: close`` (one request per connection: each is judged on its own)."""
    try:
        text = head.decode("latin-1")
    except UnicodeDecodeError:  # pragma: no cover - latin-1 decodes every byte
        raise BadRequest(400, "request head is not text") from None
    lines = text.split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
        raise BadRequest(400, "not an HTTP/1.x request line")
    method, target, version = parts
    if method == "CONNECT":
        host, port = split_authority(target, None)
        return method, host, port, b""
    if method not in ALLOWED_METHODS:
        raise BadRequest(405, f"method {method[:20]} is not proxied")
    if not target.lower().startswith("http://"):
        raise BadRequest(400, "plain requests need an absolute http:// URL (use CONNECT for https)")
    rest = target[7:]
    authority, slash, path = rest.partition("/")
    authority = authority.rpartition("@")[2]  # credentials in the URL are not forwarded
    host, port = split_authority(authority, 80)
    out = [f"{method} /{path if slash else ''} {version}"]
    for line in lines[1:]:
        if not line:
            continue
        name = line.split(":", 1)[0].strip().lower()
        if name.startswith("proxy-") or name in ("connection", "keep-alive"):
            continue
        out.append(line)
    out.append("connection: close")
    return method, host, port, ("\r\n".join(out) + "\r\n\r\n").encode("latin-1")


def split_authority(authority: str, default: int | None) -> tuple[str, int]:
    """``host:port`` (``[v6]:port``) → (host, port)."""
    a = authority.strip()
    if a.startswith("["):
        close = a.find("]")
        if close < 0:
            raise BadRequest(400, f"bad authority {a[:100]!r}")
        host, port_text = a[1:close], a[close + 1 :].removeprefix(":")
    elif a.count(":") == 1:
        host, port_text = a.split(":")
    elif ":" in a:
        raise BadRequest(400, f"bad authority {a[:100]!r} (IPv6 needs brackets)")
    else:
        host, port_text = a, ""
    if not port_text:
        if default is None:
            raise BadRequest(400, f"CONNECT needs host:port, got {a[:100]!r}")
        port_text = str(default)
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise BadRequest(400, f"bad port in {a[:100]!r}")
    if not host or len(host) > 253 or any(c in host for c in " /\\@\x00"):
        raise BadRequest(400, f"bad host in {a[:100]!r}")
    return host.lower(), int(port_text)


async def read_head(loop: asyncio.AbstractEventLoop, sock: socket.socket, limit: int) -> tuple[bytes, bytes]:
    """The request head (through CRLFCRLF) and whatever came after it."""
    data = bytearray()
    while True:
        chunk = await loop.sock_recv(sock, 16 * 1024)
        if not chunk:
            raise BadRequest(400, "the connection closed before a request")
        data += chunk
        end = data.find(b"\r\n\r\n", max(0, len(data) - len(chunk) - 3))
        if end >= 0 and end + 4 <= limit:
            return bytes(data[: end + 4]), bytes(data[end + 4 :])
        if len(data) > limit or end >= 0:
            raise BadRequest(431, "request head too large")
