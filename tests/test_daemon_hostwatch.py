"""Network reachability (TCP probes, never ping) and free disk become incidents, opened once while they
last and resolved when they recover; the probe results reach /metrics."""

from __future__ import annotations

import json
import socket
import urllib.request
from collections.abc import Callable

from test_daemon_kit import Host, agent, make_host, wait_until  # noqa: F401 - the fixture


def _incidents(h: Host, kind: str) -> list[dict]:
    out = h.cli("incidents", "--all", "--json").stdout
    return [i for i in json.loads(out) if i["kind"] == kind]


def test_an_unreachable_endpoint_opens_and_resolves_one_incident(make_host: Callable[..., Host]) -> None:  # noqa: F811
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    port = listener.getsockname()[1]
    h = make_host({"a": agent(["sleep", "600"])},
                  host={"probes": [f"tcp://127.0.0.1:{port}"], "probe_interval": "1s", "disk_low_bytes": 0})
    daemon = h.up()
    wait_until(lambda: h.cli("incidents", "--json").returncode == 0, 10, "the incidents command")
    assert not _incidents(h, "network.unreachable"), "reachable: no incident"
    listener.close()
    got = wait_until(lambda: _incidents(h, "network.unreachable"), 10, "a network.unreachable incident")
    assert len(got) == 1 and got[0]["state"] == "open" and str(port) in got[0]["summary"]
    again = socket.socket()
    again.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    again.bind(("127.0.0.1", port))
    again.listen(8)
    wait_until(lambda: [i for i in _incidents(h, "network.unreachable") if i["state"] == "resolved"], 10,
               "the incident resolved")
    assert len(_incidents(h, "network.unreachable")) == 1, "one incident for the whole outage"
    info = json.loads((h.state / "daemon.json").read_text())
    token = (h.state / "admin.token").read_text().strip()
    req = urllib.request.Request(info["url"] + "/metrics", headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        text = resp.read().decode()
    assert f'tether_probe_up{{target="tcp://127.0.0.1:{port}"}} 1.0' in text
    again.close()
    h.down(daemon)


def test_low_disk_opens_an_incident(make_host: Callable[..., Host]) -> None:  # noqa: F811
    h = make_host({"a": agent(["sleep", "600"])}, host={"probe_interval": "1s", "disk_low_bytes": 1 << 60})
    daemon = h.up()
    got = wait_until(lambda: _incidents(h, "disk.low"), 10, "a disk.low incident")
    assert got[0]["state"] == "open" and "MiB free" in got[0]["summary"]
    h.down(daemon)
