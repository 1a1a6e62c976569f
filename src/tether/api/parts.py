"""The daemon's parts as a view reaches them through its request (``tether.api.app.Control``): the store,
the loaded runbook, the state directory, and the one 404 for an agent nobody knows. The JSON API and the
dashboard's pages (``tether.web.common``) share these."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from fastapi import Request

from tether.errors import NotFound
from tether.store import Store

if TYPE_CHECKING:
    from tether.api.app import Control


def control(request: Request) -> Control:
    c: Control = request.app.state.control
    return c


def store(request: Request) -> Store:
    s: Store = control(request).store
    return s


def loaded(request: Request) -> Any:
    return control(request).loaded


def state_root(request: Request) -> Path | None:
    lr = loaded(request)
    return None if lr is None else Path(lr.state.root)


def known(request: Request, agent: str) -> None:
    """A 404 unless ``agent`` is this daemon's or the store knows it (another node's, in a fleet)."""
    names = control(request).agent_names()
    if agent not in names and store(request).agent(agent) is None:
        raise NotFound(f"no agent named {agent!r}")
