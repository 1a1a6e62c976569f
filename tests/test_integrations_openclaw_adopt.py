"""Adopting an OpenClaw gateway that already runs on the agent's port (``TETHER_OPENCLAW_ADOPT=1``), with the real
package (``openclaw`` 2026.9.6 on its own Node 24, ``.ci/install-agents``): the user's gateway, run by hand in
the foreground on its own state folder, is stopped by tether, which then runs it under its keeper on the same
port, config and state, with tether's plugin. Without the setting the start is refused with the hand-over
command (``test_integrations_openclaw_units.py``). The systemd/launchd path (``openclaw gateway stop``
stopping a service) is not exercised here: this machine runs no user service manager.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
from pathlib import Path

import pytest
import yaml

from fakes.tether_host import PERSON, Host
from test_integrations_openclaw import GW_TOKEN, NODE, OPENCLAW, _free_port, _gateway_pids, _openclaw, _wait
from tether.integrations import openclaw

pytestmark = pytest.mark.timeout(300)


def test_a_gateway_already_on_the_port_is_adopted(tmp_path: Path) -> None:
    _openclaw()
    port = _free_port()
    home, ws = tmp_path / "user", tmp_path / "ws"
    state = home / ".openclaw"
    state.mkdir(parents=True)
    ws.mkdir()
    config = tmp_path / "openclaw.json"
    config.write_text(json.dumps({
        "gateway": {"mode": "local", "port": port, "bind": "loopback", "auth": {"mode": "token", "token": GW_TOKEN}},
        "update": {"checkOnStart": False},
        "browser": {"enabled": False},
        "agents": {"defaults": {"heartbeat": {"every": "0m"}, "workspace": str(ws)}},
    }))
    quiet = {"OPENCLAW_SKIP_CHANNELS": "1", "OPENCLAW_DISABLE_BONJOUR": "1", "CI": "1"}
    own = {"OPENCLAW_CONFIG_PATH": str(config), "OPENCLAW_STATE_DIR": str(state), **quiet}
    base = {k: v for k, v in os.environ.items() if not k.startswith("TETHER_")}
    with open(tmp_path / "theirs.log", "wb") as log:  # the user's own gateway, in the foreground
        theirs = subprocess.Popen([str(NODE), str(OPENCLAW), "gateway", "run"], env={**base, "HOME": str(home), **own},
                                  stdout=log, stderr=log, stdin=subprocess.DEVNULL, start_new_session=True)
    host = Host(tmp_path, {})
    try:
        _wait(lambda: openclaw.gateway_answers(port, 2), 120, f"the user's gateway answers on {port}")
        host.runbook.write_text(yaml.safe_dump({
            "version": 1,
            "host": {"state_dir": str(host.state), "workspace_root": str(tmp_path / "wsroot"), "listen": "127.0.0.1:0"},
            "agents": {"claw": {
                "kind": "openclaw", "owner": PERSON, "backup": PERSON, "sandbox": "off", "cwd": str(ws),
                "command": [str(NODE), str(OPENCLAW), "gateway", "run"],
                "env": {**own, "TETHER_OPENCLAW_ADOPT": "1", "PATH": f"{NODE.parent}:/usr/local/bin:/usr/bin:/bin"},
                "network": "open", "heartbeat": {"interval": "1s", "stale_after": "60s"}, "kill": {"grace": "5s"},
            }},
        }))
        host.up()
        assert theirs.wait(90) is not None  # tether stopped the user's gateway (SIGTERM: it drains and exits)
        _wait(lambda: openclaw.gateway_answers(port, 2), 120, "the gateway tether runs answers on the same port")
        listening = _gateway_pids(port)
        assert theirs.pid not in listening, listening
        code, row = host.call("GET", "/v1/agents/claw")
        assert code == 200 and row["state"] == "running" and row["pid"] in listening, (row, listening)
        run = json.loads((state / "tether-gateway.json").read_text())  # its config and state: the user's
        assert openclaw.installed(run) and run["gateway"]["port"] == port
        assert f"adopting the gateway on port {port}: signalled pid {theirs.pid}" in (
            tmp_path / "daemon.log").read_text()
    finally:
        host.down()
        if theirs.poll() is None:
            os.killpg(theirs.pid, signal.SIGKILL)
        for pid in _gateway_pids(port):
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
