"""``/metrics`` (Prometheus text) and ``/v1/signals`` (the same signals as JSON)."""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter, Request, Response

from tether.api.access import Caller, require
from tether.api.body import StrictRoute
from tether.signals import agent_signals, host_signals

router = APIRouter(route_class=StrictRoute)


def _sources(request: Request) -> tuple[Any, list[str], float | None, list[Any]]:
    control = request.app.state.control
    loaded = control.loaded
    paths = [str(loaded.state.root), str(loaded.workspace_root)]
    return control.store, paths, control.started, list(control.probe_results)


@router.get("/metrics", response_class=Response)
def metrics(who: Caller, request: Request) -> Response:
    """Prometheus text format; scrape with an approver or admin bearer token."""
    require(who, "read")
    from tether.metrics import render, snapshot  # lazy: +180 ms and 4 MiB to the daemon's start, until a scrape

    store, paths, started, probes = _sources(request)
    return Response(render(snapshot(store, paths, started, probes)), media_type="text/plain; version=0.0.4")


@router.get("/v1/signals")
def signals(who: Caller, request: Request) -> dict[str, Any]:
    """Every signal per agent and for the host, as JSON."""
    require(who, "read")
    store, paths, started, probes = _sources(request)
    now = time.time()
    return {
        "agents": agent_signals(store, now),
        "host": host_signals(paths, started, now),
        "probes": [{"target": p.target, "up": p.up, "latency_s": p.latency_s, "detail": p.detail} for p in probes],
    }
