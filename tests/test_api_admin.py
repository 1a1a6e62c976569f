"""One delivery layer split by audience: the admin routes are the JSON API's (``tether.api.admin``, tagged
``admin``), the dashboard's JSON keeps its own tag, and ``tether.api`` imports nothing of ``tether.web``, not
even inside a function (the pages use the API's role check and error map, never the other way round)."""

from __future__ import annotations

import ast
from pathlib import Path

from fastapi.routing import APIRoute

from tether.api.admin import router as admin_router
from tether.web.api import router as dashboard_router

API = Path(__file__).resolve().parent.parent / "src" / "tether" / "api"
ADMIN = {("POST", "/v1/tokens"), ("GET", "/v1/backup"), ("POST", "/v1/prune"), ("GET", "/v1/audit"),
         ("GET", "/v1/runbook")}


def _routes(router: object) -> dict[tuple[str, str], list[str]]:
    out = {}
    for r in getattr(router, "routes", []):
        if isinstance(r, APIRoute):
            for method in r.methods:
                out[(method, r.path)] = [str(t) for t in r.tags]
    return out


def test_admin_routes_are_the_json_apis() -> None:
    admin, dashboard = _routes(admin_router), _routes(dashboard_router)
    assert set(admin) == ADMIN and all(tags == ["admin"] for tags in admin.values())
    assert not ADMIN & set(dashboard)
    assert dashboard and all(tags == ["dashboard"] for tags in dashboard.values())


def test_api_never_imports_web() -> None:
    found = {}
    for f in API.rglob("*.py"):
        for node in ast.walk(ast.parse(f.read_text())):
            names = [node.module or ""] if isinstance(node, ast.ImportFrom) else (
                [a.name for a in node.names] if isinstance(node, ast.Import) else [])
            for name in names:
                if name == "tether.web" or name.startswith("tether.web."):
                    found.setdefault(f.name, []).append(name)
    found.pop("app.py", None)  # create_app mounts the web router: the one place the layers meet
    assert found == {}
