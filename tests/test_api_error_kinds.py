"""Every answer made from a tether error says its kind in a header (api/errors.py), so a client tells
"no such agent" from a route the daemon lacks (an older daemon) without reading the wording; the CLI's
client (cli/client.py) raises NotFound for the one and RouteMissing for the other. A real daemon."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Callable

import pytest

from test_daemon_kit import Host, agent, make_host  # noqa: F401
from tether.cli.client import call
from tether.errors import NotFound, RouteMissing
from tether.paths import StateDir


def _raw(h: Host, path: str) -> tuple[int, str | None, str]:
    req = urllib.request.Request(h.url + path, headers={"Authorization": f"Bearer {h.admin_token()}"})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, resp.headers.get("X-Tether-Error"), resp.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.headers.get("X-Tether-Error"), err.read().decode()


def test_not_found_and_a_missing_route_are_told_apart(make_host: Callable[..., Host]) -> None:  # noqa: F811
    h = make_host({"w": agent(["sh", "-c", "sleep 60"])})
    proc = h.up()
    try:
        code, kind, body = _raw(h, "/v1/agents/nobody/logs")
        assert (code, kind) == (404, "not-found") and "nobody" in json.loads(body)["detail"]
        code, kind, _ = _raw(h, "/v1/approvals/999999")
        assert (code, kind) == (404, "not-found")
        code, kind, _ = _raw(h, "/v1/no-such-route")
        assert (code, kind) == (404, None)
        state = StateDir(h.state)
        with pytest.raises(NotFound) as got:
            call(state, "GET", "/v1/agents/nobody/logs")
        assert not isinstance(got.value, RouteMissing)
        with pytest.raises(RouteMissing):
            call(state, "GET", "/v1/no-such-route")
    finally:
        h.down(proc)
