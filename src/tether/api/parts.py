"""The daemon's parts as a view reaches them through its request (``Control``: what the API asks of the
daemon): the store, the loaded runbook, the state directory, and the one 404 for an agent nobody knows.
The JSON API and the dashboard's pages (``tether.web.common``) share these."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from fastapi import Request

from tether.errors import NotFound
from tether.store import Store

if TYPE_CHECKING:
    from tether.approvals import Approvals
    from tether.fleet.seam import Place
    from tether.runbook import LoadedRunbook


class Control(Protocol):
    """What the API asks of the daemon."""

    store: Store
    loaded: LoadedRunbook
    approvals: Approvals
    place: Place  # alone, or one node of several (tether.fleet.seam): who runs an agent, where a verb goes
    started: float  # when the daemon started (wall clock)
    probe_results: list[Any]  # the host probes' latest results (disk, network: daemon/hostwatch.py)
    shutdown_requested: threading.Event  # set once the daemon is stopping: streams end

    def agent_names(self) -> list[str]: ...
    def beat(self, agent: str, task: str | None, progress: str | None) -> None: ...
    def beat_soon(self, agent: str, task: str | None, progress: str | None) -> asyncio.Future[None]: ...
    def touched(self, agent: str) -> None: ...
    def start(self, agent: str) -> None: ...
    def stop(self, agent: str) -> None: ...
    def restart(self, agent: str) -> None: ...
    def kill(self, agent: str, reason: str | None, by: str | None = None) -> dict[str, Any] | None: ...
    def resume(self, agent: str) -> None: ...
    def reload(self) -> list[str]: ...
    def shutdown(self) -> None: ...


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
