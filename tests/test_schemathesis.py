"""schemathesis against the daemon's OpenAPI document (the real app, a real store, in process): every
operation with generated data, once with each role's token (agent, approver, admin): no 5xx, every answer
conforms to its documented schema and content type. Status codes are not checked against the document:
401/403/404/409 are the roles and the core speaking, documented in prose. The agent token's calls name its
own agent in half the cases (the rest: random names, which must be refused, never crash)."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

schemathesis = pytest.importorskip("schemathesis")
from hypothesis import HealthCheck, settings  # noqa: E402
from schemathesis.checks import not_a_server_error  # noqa: E402
from schemathesis.specs.openapi.checks import content_type_conformance, response_schema_conformance  # noqa: E402

from test_dashboard_kit import InProcess  # noqa: E402

EXAMPLES = 8 if os.environ.get("CI") else 5  # per operation and role: three roles, ~45 operations each
ROLES = ("agent", "approver", "admin")


# The schema is read when this module is collected, so the host is made then (a temporary folder, removed
# when the module's tests end). Held actions expire at once: a generated `wait` never holds a test long.
_ROOT = tempfile.mkdtemp(prefix="tether-schemathesis-")
atexit.register(shutil.rmtree, _ROOT, True)  # also when this module's tests are deselected
HOST = InProcess(Path(_ROOT), approvals={"timeout": "200ms", "escalate_after": "100ms", "retry_window": "0s"})
HOST.app.state.sse_lifetime = 0.2
schema = schemathesis.openapi.from_asgi("/openapi.json", HOST.app)


@pytest.fixture(scope="module")
def host() -> Iterator[InProcess]:
    yield HOST
    HOST.close()
    shutil.rmtree(_ROOT, ignore_errors=True)


@pytest.mark.parametrize("role", ROLES)
@schema.parametrize()
@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
def test_openapi(case: Any, host: InProcess, role: str) -> None:
    params = case.path_parameters or {}
    if role == "agent" and isinstance(params.get("agent"), str) and len(params["agent"]) % 2 == 0:
        params["agent"] = "a"  # its own agent: the routes past the role check
    case.call_and_validate(
        headers={"Authorization": f"Bearer {host.tokens[role]}"},
        checks=[not_a_server_error, response_schema_conformance, content_type_conformance],
    )


def test_openapi_documents_every_json_endpoint(host: InProcess) -> None:
    from fastapi.routing import APIRoute

    doc = host.app.openapi()
    paths = doc["paths"]
    for route in host.app.routes:
        if isinstance(route, APIRoute) and route.include_in_schema:
            assert route.path in paths, route.path
    # the dashboard's pages are not part of the API document
    assert "/login" not in paths and "/" not in paths
    for path in ("/v1/overview", "/v1/incidents/{incident_id}/ack", "/v1/audit", "/v1/stream", "/v1/tokens"):
        assert path in paths, path
