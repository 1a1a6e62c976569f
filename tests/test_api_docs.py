"""The API's docs page works offline: /v1/docs (Swagger UI) loads every asset from the daemon itself, and a
real browser that may reach nothing but 127.0.0.1 renders the routes from /openapi.json."""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.request
from collections.abc import Callable
from urllib.parse import urljoin, urlsplit

from test_daemon_kit import PY, Host, agent, make_host  # noqa: F401
from test_dashboard_kit import CHROMIUM_ARGS, chromium_or_skip


def _get(url: str) -> tuple[int, str, bytes]:
    with urllib.request.urlopen(url, timeout=10) as r:
        return r.status, r.headers.get("content-type", ""), r.read()


def test_docs_pages_load_only_from_the_daemon(make_host: Callable[..., Host]) -> None:  # noqa: F811
    h = make_host({"a": agent([PY, "-c", "import time; time.sleep(60)"], autostart=False)})
    daemon = h.up()
    base = h.url.rstrip("/") + "/"
    for page, asset_kinds in (("v1/docs", {"javascript", "css"}),):
        status, kind, body = _get(base + page)
        assert status == 200 and kind.startswith("text/html")
        html = body.decode()
        refs = re.findall(r"""(?:src|href)\s*=\s*["']([^"']+)["']""", html)
        urls = re.findall(r"""https?://[^\s"'<>)]+""", html)
        assert refs, html
        assert not [u for u in urls if urlsplit(u).hostname not in ("127.0.0.1", "localhost")], urls
        seen = set()
        for ref in refs:
            status, kind, body = _get(urljoin(base + page, ref))
            assert status == 200 and len(body) > 1000, ref
            seen |= {k for k in ("javascript", "css", "png") if k in kind}
        assert asset_kinds <= seen, (page, seen)
    status, _, body = _get(base + "openapi.json")
    assert status == 200 and "/v1/agents" in json.loads(body)["paths"]
    for gone in ("redoc", "v1/redoc", "docs"):  # no other docs page, none that would reach a CDN
        try:
            code = _get(base + gone)[0]
        except urllib.error.HTTPError as err:
            code = err.code
        assert code == 404, gone
    assert h.down(daemon) == 0


def test_swagger_ui_renders_in_a_browser_with_no_way_out(make_host: Callable[..., Host]) -> None:  # noqa: F811
    chromium = chromium_or_skip()
    from playwright.sync_api import Route, sync_playwright

    h = make_host({"a": agent([PY, "-c", "import time; time.sleep(60)"], autostart=False)})
    daemon = h.up()
    outside: list[str] = []

    def only_local(route: Route) -> None:
        if urlsplit(route.request.url).hostname in ("127.0.0.1", "localhost"):
            route.continue_()
        else:
            outside.append(route.request.url)
            route.abort()

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            page.route("**/*", only_local)
            page.goto(h.url.rstrip("/") + "/v1/docs")
            # the routes, drawn from /openapi.json by the Swagger UI script the daemon served
            page.locator(".opblock-summary-path", has_text="/v1/health").first.wait_for(timeout=20_000)
            assert page.locator(".opblock").count() > 20
        finally:
            browser.close()
    assert outside == [], "the docs asked for something outside the host"
    assert h.down(daemon) == 0


def _call(method: str, url: str) -> int:
    req = urllib.request.Request(url, method=method, data=b"{}" if method in ("POST", "PUT", "PATCH") else None,
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return int(r.status)
    except urllib.error.HTTPError as err:
        return int(err.code)


def test_api_md_says_what_is_served(make_host: Callable[..., Host]) -> None:  # noqa: F811
    """docs/API.md's opening: the docs pages it names are served without a token, the ReDoc page it says is
    gone is a 404, and every route of the schema but /v1/health refuses a request without a token."""
    from pathlib import Path

    opening = (Path(__file__).parent.parent / "docs" / "API.md").read_text().split("\n\n")[1]
    named = set(re.findall(r"`(/[^`\s]*)`", opening))
    assert {"/openapi.json", "/v1/docs", "/v1/docs/static/", "/redoc", "/v1/health"} <= named, named
    h = make_host({"a": agent([PY, "-c", "import time; time.sleep(60)"], autostart=False)})
    daemon = h.up()
    base = h.url.rstrip("/")
    assert [_call("GET", base + p) for p in ("/openapi.json", "/v1/docs", "/v1/health")] == [200, 200, 200]
    assert _call("GET", base + "/redoc") == 404
    schema = json.loads(_get(base + "/openapi.json")[2])
    open_routes = []
    for path, methods in schema["paths"].items():
        for method in methods:
            url = base + re.sub(r"\{[^}]+\}", "1", path)
            if _call(method.upper(), url) != 401:
                open_routes.append(f"{method.upper()} {path}")
    assert open_routes == ["GET /v1/health"], open_routes
    assert h.down(daemon) == 0
