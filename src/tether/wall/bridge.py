"""The wall's network: a namespace of the agent's own with only ``lo``, and two ways out of it.

An agent inside the wall (``network: scoped`` or ``none``) runs with ``bwrap --unshare-net``: nothing it
opens itself reaches the host or the internet. The daemon's proxy gives each agent two unix sockets in
``STATE/agents/NAME/run/net/`` (``wall/proxy.py``); the wall binds that folder read-only at
``SOCKETS_INSIDE`` (the folder, so the sockets of a next daemon reach agents that outlived this one), and
socat bridges each socket to a TCP port on the agent's own 127.0.0.1:

- ``proxy.sock`` on 127.0.0.1:3128, the agent's ``HTTP(S)_PROXY`` (``scoped`` only): the egress proxy judges
  every connection by the agent's scope;
- ``api.sock`` on the daemon's own port, so ``TETHER_URL`` (heartbeats, hooks, the SDK) works unchanged.

A root daemon needs no bridge: it makes the agent's namespace itself, once per agent, with its proxy
listening inside on the same addresses (``wall/netns.py``); ``Net.netns`` then names it and each run
enters it (``nsenter``) with nothing to start. The bridges below are for a daemon that is not root and for
walls built outside the daemon.

``launcher`` is the command that runs first inside the wall: it starts the bridges, waits until each says it
listens (socat's own line on a pipe the shell reads: no polling), then ``exec``s the agent's command, which
stays the sandbox's first process. When it ends, bwrap's init ends and the kernel kills whatever is left in
the pid namespace, the bridges included; the kill switch finds them as it finds the agent (cgroup,
``TETHER_INSTANCE``, descendants). A bridge that cannot start ends the run (exit 70) with socat's line.
"""

from __future__ import annotations

import ipaddress
import shlex
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

from tether.wall.listeners import API_SOCK, PROXY_SOCK
from tether.wall.netns import Endpoint
from tether.wall.proxy import INSIDE_PORT, bridge_argv, sandbox_env

SOCKETS_INSIDE = "/run/tether"  # the agent's socket folder, read-only inside the wall
PROXY_INSIDE = f"{SOCKETS_INSIDE}/{PROXY_SOCK}"
API_INSIDE = f"{SOCKETS_INSIDE}/{API_SOCK}"
API_FALLBACK_PORT = 3127  # the API bridge's port inside when the daemon's own is below 1024
DEADLINE = 10  # seconds for the bridges to listen; then the run ends with the reason
EXIT = 70  # the run's exit status when a bridge did not start
PROXY_VARS = ("http_proxy", "https_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY")

# "$@" is the agent's argv. The bridges write their log to a pipe read here until each said `listening on`;
# socat ignores SIGPIPE, so its later lines (one per connection) are dropped once the reader is gone. The
# watchdog's line ends the wait if socat never says it (a socat whose wording changed must not hang a start);
# none of them keeps the agent's stdout or stderr open (the keeper's log filters end on their EOF).
_SCRIPT = """{{
{starts}  {{ sleep {deadline}; echo "tether: no bridge listening after {deadline} s"; }} 2>/dev/null &
}} | {{
  n=0
  while read -r line; do
    case $line in
      *" N listening on "*) n=$((n + 1)); [ "$n" -lt {count} ] || exit 0 ;;
      *" E "*|*" F "*|"tether: "*) echo "tether: the wall's network bridge (socat) did not start: $line" >&2; exit 1 ;;
    esac
  done
  echo "tether: the wall's network bridge (socat) ended before it listened" >&2
  exit 1
}} || exit {exit}
exec "$@"
"""


@dataclass(frozen=True)
class Bridge:
    """socat inside the wall: listens on ``host``:``port`` and carries each connection to ``socket``."""

    host: str
    port: int
    socket: str


@dataclass(frozen=True)
class Net:
    """The wall's network: ``sockets`` (the host folder of the agent's proxy and API sockets) bound at
    ``SOCKETS_INSIDE``, and the bridges started inside before the agent. With ``netns`` (a root daemon's
    namespace for the agent, its listeners already inside at the bridges' addresses) the run enters it
    with ``nsenter`` instead: no folder, no bridge."""

    sockets: str
    bridges: tuple[Bridge, ...]
    socat: str
    netns: str | None = None
    nsenter: str = "nsenter"


def endpoints(net: Net) -> tuple[Endpoint, ...]:
    """Where the daemon listens inside the agent's namespace: the bridges' addresses."""
    return tuple(Endpoint(b.host, b.port, b.socket == API_INSIDE) for b in net.bridges)


def launcher(net: Net) -> list[str]:
    """The command that starts ``net``'s bridges, then ``exec``s the agent's argv (appended after it)."""
    starts = "".join(
        f"  {shlex.join(bridge_argv(b.socket, b.port, net.socat, b.host))} 2>&1 >/dev/null &\n" for b in net.bridges
    )
    script = _SCRIPT.format(starts=starts, count=len(net.bridges), deadline=DEADLINE, exit=EXIT)
    return ["/bin/sh", "-c", script, "tether-net"]


def _api(daemon_url: str) -> tuple[str, int, str]:
    """Where the API bridge listens inside, and the ``TETHER_URL`` that reaches it there. The daemon's own
    address and port when they can be: a loopback address is kept, ``0.0.0.0`` is reached on 127.0.0.1 as
    it is. An address that does not exist inside (IPv6, a LAN address) becomes 127.0.0.1, and a port below
    1024 (the agent's user may not listen there) ``API_FALLBACK_PORT``; ``TETHER_URL`` then says so."""
    parts = urlsplit(daemon_url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    host = parts.hostname or ""
    try:
        ip = ipaddress.ip_address("127.0.0.1" if host == "localhost" else host)
    except ValueError:
        ip = None
    same_host = ip is not None and ip.version == 4 and (ip.is_loopback or ip.is_unspecified)
    listen = str(ip) if same_host and ip is not None and ip.is_loopback else "127.0.0.1"
    if same_host and port >= 1024:
        return listen, port, daemon_url
    port = port if port >= 1024 else API_FALLBACK_PORT
    return listen, port, urlunsplit((parts.scheme, f"{listen}:{port}", parts.path, "", ""))


def network(mode: str, sockets: str, daemon_url: str, socat: str) -> tuple[Net, dict[str, str]]:
    """The bridges and the environment inside for ``network: scoped`` (proxy and API) or ``none`` (the API
    only; the proxy variables emptied, so a client does not try a proxy that is not there)."""
    host, api_port, url = _api(daemon_url)
    bridges = [Bridge(host, api_port, API_INSIDE)]
    env = {"TETHER_URL": url} if url != daemon_url else {}
    if mode == "scoped":
        port = INSIDE_PORT if api_port != INSIDE_PORT else INSIDE_PORT + 1
        bridges.insert(0, Bridge("127.0.0.1", port, PROXY_INSIDE))
        env.update(sandbox_env(url, port))
    else:
        env.update(dict.fromkeys(PROXY_VARS, ""))
    return Net(sockets=sockets, bridges=tuple(bridges), socat=socat), env
