"""The CLI's way to the running daemon: its URL from ``daemon.json`` and the host's admin token."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

from tether.daemon_state import info
from tether.errors import DaemonUnavailable, NotFound, RouteMissing, RunbookError, TetherError
from tether.paths import StateDir


def call(state: StateDir, method: str, path: str, body: dict[str, Any] | None = None, timeout: float = 15) -> Any:
    running = info(state.root)
    if running is None:
        raise DaemonUnavailable(f"no daemon runs for {state.root}; start it with `tether up`")
    try:
        token = (state.root / "admin.token").read_text().strip()
    except OSError as err:
        raise DaemonUnavailable(f"cannot read the admin token in {state.root} ({err.strerror})") from None
    req = urllib.request.Request(
        running["url"] + path, method=method, data=None if body is None else json.dumps(body).encode(),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return json.loads(resp.read() or b"null")
    except urllib.error.HTTPError as err:
        try:
            detail = json.loads(err.read()).get("detail")
        except ValueError:
            detail = err.reason
        if err.code == 404:  # tether's own answers say their kind (api/errors.py); an unknown route does not
            ours = err.headers.get("X-Tether-Error") == "not-found"
            raise (NotFound if ours else RouteMissing)(str(detail)) from None
        if err.code == 422 and isinstance(detail, dict) and "runbook" in detail:  # the daemon rejected the runbook
            raise RunbookError([str(line) for line in detail["runbook"]]) from None
        raise TetherError(f"the daemon refused: {detail}") from None
    except (urllib.error.URLError, OSError) as err:
        raise DaemonUnavailable(
            f"the daemon at {running['url']} does not answer ({err}); is it hung? `tether kill` still works"
        ) from None
