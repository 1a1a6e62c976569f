"""Which connections an agent's proxy lets through: ``scope.hosts`` as host:port pairs, everything else
judged by the boundary as ``network.egress`` (so an ask becomes an approval, and its grant lets the
retry through), ``network: none`` refuses all.

A ``scope.hosts`` entry is ``HOST`` (ports 443 and 80), ``HOST:PORT`` (that port) or ``HOST:*`` (any
port); ``*.example.com`` matches the domain and its subdomains. Pairs, not hosts: a list of hosts alone
would let a CONNECT to ``127.0.0.1:22`` through. Loopback is not special here (the classifier treats it
as local, the wall does not); the daemon's own API is reached directly (``NO_PROXY``), not through here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from tether.wall import violations

WEB_PORTS = frozenset({80, 443})
ANY_PORT = 0


@dataclass(frozen=True)
class Verdict:
    """``allow`` (connect), ``deny`` (refused, with why) or ``pending`` (held for approval ``approval``)."""

    decision: str
    reason: str
    approval: int | None = None
    rule: str = "scope.hosts"

    @property
    def allowed(self) -> bool:
        return self.decision == "allow"


def norm_host(host: str) -> str:
    """Lower case, no brackets around IPv6, no trailing dot."""
    return host.strip().strip("[]").lower().rstrip(".")


def parse_entry(entry: str) -> tuple[str, frozenset[int]]:
    """``(host pattern, ports)`` of one ``scope.hosts`` entry; ports ``{0}`` means any port."""
    text = entry.strip().lower()
    if "://" in text:  # a URL given as a host: its host and port
        from urllib.parse import urlsplit

        try:
            parts = urlsplit(text)
            port = parts.port
        except ValueError:
            return text, frozenset()
        given = port or {"http": 80, "https": 443}.get(parts.scheme)
        return norm_host(parts.hostname or ""), frozenset({given}) if given else WEB_PORTS
    host, port_text = text, ""
    if text.startswith("["):  # [::1]:8080
        close = text.find("]")
        host, port_text = text[: close + 1], text[close + 1 :].removeprefix(":")
    elif text.count(":") == 1:
        host, port_text = text.split(":")
    if port_text == "*":
        return norm_host(host), frozenset({ANY_PORT})
    if port_text:
        return (norm_host(host), frozenset({int(port_text)})) if port_text.isdigit() else (text, frozenset())
    return norm_host(host), WEB_PORTS


#: The model APIs an agent kind cannot work without, let through like its own scope.hosts.
KIND_HOSTS: dict[str, tuple[str, ...]] = {
    "claude-code": ("api.anthropic.com:443",),
    "codex": ("api.openai.com:443", "chatgpt.com:443"),
}
#: Variables of an agent's ``env:`` that point its CLI at another model API (a gateway, a local stand-in).
BASE_URL_VARS: tuple[str, ...] = ("ANTHROPIC_BASE_URL", "OPENAI_BASE_URL")


def allowed_entries(spec: Any) -> tuple[str, ...]:
    """What an agent's proxy lets through without asking: its ``scope.hosts``, the model API its kind needs,
    and the host of a base URL its runbook ``env:`` sets for that API."""
    implied = list(KIND_HOSTS.get(spec.kind, ()))
    for var in BASE_URL_VARS:
        url = spec.env.get(var) if isinstance(spec.env, dict) else None
        if isinstance(url, str) and "://" in url:
            implied.append(url)
    return (*spec.scope.hosts, *implied)


class HostPorts:
    """An allow-list of host:port pairs (from ``scope.hosts``)."""

    def __init__(self, entries: tuple[str, ...]) -> None:
        self.rules = tuple(parse_entry(e) for e in entries if e.strip())

    def allows(self, host: str, port: int) -> bool:
        h = norm_host(host)
        for pattern, ports in self.rules:
            if port not in ports and ANY_PORT not in ports:
                continue
            if h == pattern or (pattern.startswith("*.") and (h.endswith(pattern[1:]) or h == pattern[2:])):
                return True
        return False


class Egress:
    """The verdict for one agent's connection. ``check`` asks the boundary (``Gatekeeper.check``) about a
    host:port outside scope; ``killed`` says why the agent is held by a kill file (or None).

    ``quick`` answers at once from memory (in scope, ``network: none``); when it returns None, ``judge``
    (which may touch the store: run it off the event loop) decides."""

    def __init__(
        self,
        agents: dict[str, tuple[str, tuple[str, ...]]],
        check: Callable[[str, str, int], Any],
        killed: Callable[[str], str | None],
    ) -> None:
        """``agents``: name → (network mode, scope.hosts)."""
        self.modes = {name: mode for name, (mode, _) in agents.items()}
        self.lists = {name: HostPorts(hosts) for name, (_, hosts) in agents.items()}
        self._check = check
        self._killed = killed

    def quick(self, agent: str, host: str, port: int) -> Verdict | None:
        mode = self.modes.get(agent)
        if mode is None:
            return Verdict("deny", f"no agent named {agent} in the runbook", rule="runbook")
        if mode == "none":
            return Verdict("deny", f"agent {agent} has network: none", rule=f"agents.{agent}.network: none")
        if not 0 < port < 65536:
            return Verdict("deny", f"port {port} is not a TCP port", rule="proxy")
        killed = self._killed(agent)
        if killed is not None:
            return Verdict("deny", f"{killed} (`tether resume` lifts it)", rule="kill switch")
        if mode == "open" or self.lists[agent].allows(host, port):
            return Verdict("allow", f"{host}:{port} is in scope.hosts" if mode != "open" else "network: open")
        return None

    def judge(self, agent: str, host: str, port: int) -> Verdict:
        """The boundary's verdict for a host:port outside scope (an approval for an ask)."""
        got = self.quick(agent, host, port)
        if got is not None:
            return got
        out = self._check(agent, host, port)
        return Verdict(out.decision, out.reason, out.approval_id, out.rule)


def gatekeeper_check(gatekeeper: Any) -> Callable[[str, str, int], Any]:
    """``Egress``'s ``check`` through the daemon's boundary: the connection is a ``network.egress`` action
    whose identity is ``connect HOST:PORT`` (an approval covers that pair, for the agent's current run)."""
    from tether.boundary import Request  # lazy: +120 ms to importing wall.plan (tether check, doctor)

    def check(agent: str, host: str, port: int) -> Any:
        shown = f"[{host}]" if ":" in host else host
        return gatekeeper.check(agent, Request(action="network.egress", detail=f"connect {shown}:{port}"))

    return check


def for_daemon(
    daemon: Any, watch: violations.Watch | None = None
) -> tuple[Callable[[], Egress], Callable[[list[tuple[str, dict[str, Any]]]], None]]:
    """The proxy's rules (rebuilt when the daemon loads another runbook) and its recorder for a daemon:
    ``network.connection`` events, a refused one also as a ``wall.violation`` (``wall.violations``: repeated
    ones open an incident for the owner), and the first connection of an agent to a host as
    ``accounts.touched`` (``host:NAME``), in one write per batch."""
    from tether.approvals import Approvals  # lazy, the daemon's only: +5 ms to wall.plan
    from tether.boundary import Boundary, Gatekeeper, killed_line  # lazy: as in gatekeeper_check
    from tether.store.base import NewEvent  # lazy, the daemon's only: +4 ms to wall.plan

    cached: list[Any] = [None, None]
    seen: set[tuple[str, str]] = set()
    watch = watch if watch is not None else violations.for_daemon(daemon)

    def rules() -> Egress:
        loaded = daemon.loaded
        if cached[0] is not loaded:
            approvals: Approvals = daemon.approvals
            gk = Gatekeeper(Boundary(loaded), approvals)

            def killed(agent: str) -> str | None:
                path = loaded.state.kill_engaged(agent)
                return None if path is None else killed_line(path)

            agents = {n: (a.network, allowed_entries(a)) for n, a in loaded.runbook.agents.items()}
            cached[0], cached[1] = loaded, Egress(agents, gatekeeper_check(gk), killed)
        got: Egress = cached[1]
        return got

    def record(batch: list[tuple[str, dict[str, Any]]]) -> None:
        events = []
        refused = []  # (index of the violation event, agent, its data)
        for agent, data in batch:
            events.append(NewEvent("network.connection", agent, data))
            violation = violations.from_connection(data)
            if violation is not None:
                refused.append((len(events), agent, violation))
                events.append(NewEvent(violations.EVENT, agent, violation))
            if data.get("verdict") == "allow" and (agent, data["host"]) not in seen:
                if len(seen) > 10_000:  # bounded: a host seen again after this counts once more
                    seen.clear()
                seen.add((agent, data["host"]))
                events.append(NewEvent("accounts.touched", agent, {"accounts": [f"host:{data['host']}"]}))
        ids = daemon.store.append(events)
        for i, agent, v in refused:
            what = f"{v['verdict']} connection to {v['host']}:{v['port']}"
            watch.saw(agent, events[i].ts, violations.key(ids[i], v), what)

    return rules, record
