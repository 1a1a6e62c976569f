"""The protected-file drill: through the daemon's check endpoint (the admin token acting for the agent, as
its hooks and SDK calls do), ask to write a protected file: ``.env`` in its workspace, and the first of
the agent's own ``approvals.protected_paths`` when it has some. Pass when each ask is held for a human
(``pending``, with an approval approvers can see); the drill then denies those approvals ("drill").

A write that is allowed fails the drill; one denied outright is safe but asks nobody: ``degraded``.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from tether.drills.base import Host, Result, Trace, first_line
from tether.errors import TetherError

DETAIL = "tether drill: protected-file (denied by the drill)"


def run(host: Host, agent: str) -> Result:
    t = Trace(agent, "protected-file")
    if host.daemon() is None:
        return t.failed(f"no daemon runs for {host.state.root}: nothing would hold the write for approval")
    outcomes: list[str] = []
    worst = "pass"
    for path in protected_targets(host, agent):
        cursor = host.cursor()
        try:
            got: dict[str, Any] = host.api("POST", f"/v1/agents/{agent}/check",
                                           {"path": str(path), "op": "write", "detail": DETAIL})
        except TetherError as err:
            return t.failed(f"the daemon did not answer the check for {path}: {err}")
        decision, approval = got.get("decision"), got.get("approval_id")
        if decision == "pending" and isinstance(approval, int):
            row = _approval(host, approval)
            if row is None or row.get("state") != "pending":
                worst = "fail"
                outcomes.append(f"writing {path}: pending, but approval {approval} is not pending for approvers")
            else:
                t.cite(approval)
                outcomes.append(f"writing {path} held for approval {approval} ({got.get('rule')})")
            _deny(host, approval)
            for e in host.events(cursor, agent, ["approval.decided"]):
                if e.data.get("approval_id") == approval:
                    t.cite(e.id)
        elif decision == "deny":
            for e in host.events(cursor, agent, ["verdict"]):
                t.cite(e.id)
            worst = "fail" if worst == "fail" else "degraded"
            outcomes.append(f"writing {path} denied outright, no approval asked ({first_line(str(got.get('reason')))})")
        else:
            worst = "fail"
            outcomes.append(f"writing {path} was {decision} without approval ({got.get('rule') or got.get('reason')})")
    t.mark("checked_s")
    return t.result(worst, "; ".join(outcomes))


def protected_targets(host: Host, agent: str) -> list[Path]:
    cwd = host.cwd(agent)
    out = [cwd / ".env"]
    own = host.spec(agent).approvals.protected_paths
    if own:
        path = Path(os.path.expanduser(materialise(own[0])))
        path = path if path.is_absolute() else cwd / path
        if path not in out:
            out.append(path)
    return out


def materialise(glob: str) -> str:
    """A path the glob matches: ``**/secrets/**`` → ``secrets/tether-drill``, ``*.pem`` → ``tether-drill.pem``."""
    text = glob.strip()
    text = re.sub(r"^\*\*/", "", text)
    text = re.sub(r"/\*\*$", "/tether-drill", text)
    text = text.replace("/**/", "/").replace("**", "tether-drill")
    text = text.replace("*", "tether-drill").replace("?", "x")
    text = re.sub(r"\[!?([^\]])[^\]]*\]", r"\1", text)
    return text.rstrip("/") or "tether-drill"


def _approval(host: Host, approval: int) -> dict[str, Any] | None:
    try:
        row: dict[str, Any] = host.api("GET", f"/v1/approvals/{approval}")
        return row
    except TetherError:
        return None


def _deny(host: Host, approval: int) -> None:
    try:
        host.api("POST", f"/v1/approvals/{approval}/deny", {"reason": "drill"})
    except TetherError:
        pass
