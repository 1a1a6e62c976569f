"""Network reachability of the endpoints an agent depends on: TCP connects and HTTP requests with
timeouts (never ping). A target is ``tcp://host:port`` or an ``http(s)://`` URL."""

from __future__ import annotations

import socket
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from urllib.parse import urlsplit


@dataclass(frozen=True)
class ProbeResult:
    target: str
    up: bool
    latency_s: float
    detail: str


def probe(target: str, timeout: float = 3.0) -> ProbeResult:
    started = time.perf_counter()
    try:
        parts = urlsplit(target)
        if parts.scheme == "tcp":
            if not parts.hostname or not parts.port:
                return ProbeResult(target, False, 0.0, "expected tcp://HOST:PORT")
            with socket.create_connection((parts.hostname, parts.port), timeout=timeout):
                pass
            detail = "connected"
        elif parts.scheme in ("http", "https"):
            req = urllib.request.Request(target, method="GET", headers={"User-Agent": "tether-probe"})
            try:
                with urllib.request.urlopen(req, timeout=timeout) as resp:
                    detail = f"HTTP {resp.status}"
            except urllib.error.HTTPError as err:  # it answered: reachable, whatever the status
                detail = f"HTTP {err.code}"
        else:
            return ProbeResult(target, False, 0.0, f"unknown probe scheme {parts.scheme!r}; use tcp:// or http(s)://")
    except (OSError, ValueError, urllib.error.URLError) as err:
        reason = getattr(err, "reason", err)
        return ProbeResult(target, False, time.perf_counter() - started, f"unreachable: {reason}")
    return ProbeResult(target, True, time.perf_counter() - started, detail)
