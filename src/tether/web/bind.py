"""Which addresses the daemon may listen on: loopback always; anything else only over TLS, or when the
user says so explicitly (``--allow-remote``), because the dashboard's session cookie and every bearer
token would otherwise cross the network in clear."""

from __future__ import annotations

import ipaddress

from tether.errors import TetherError

LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback"})


def is_loopback(host: str) -> bool:
    """True for 127.0.0.0/8, ::1 (and ::ffff:127.x) and the loopback host names; never for 0.0.0.0 or ::."""
    host = host.strip().strip("[]").lower()
    if host in LOOPBACK_NAMES:
        return True
    try:
        addr = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        addr = addr.ipv4_mapped
    return addr.is_loopback


def check_bind(listen: str, tls: object = None, allow_remote: bool = False) -> None:
    """Refuse (``TetherError``) to listen on a non-loopback ``HOST:PORT`` unless TLS is configured
    (``tls`` is anything truthy: the runbook's TLS settings) or ``allow_remote`` is set."""
    host, sep, _port = listen.rpartition(":")
    if not sep:
        host = listen
    if is_loopback(host):
        return
    if tls or allow_remote:
        return
    shown = host or "every address"
    raise TetherError(
        f"refusing to listen on {listen} ({shown} is not a loopback address) without TLS: tokens and the "
        "dashboard's session cookie would cross the network in clear; configure TLS (host.tls: {cert, key}) "
        "or pass --allow-remote if something else (a TLS proxy, a VPN) protects it"
    )
