"""``GET /v1/incidents`` is bounded like the approvals listing (issue 14): an agent can open incidents without end
(its violations, stale beats, crashes), and the whole table in one answer grows the daemon with it. The newest
``limit`` (default 200, at most 1,000), in id order, with ``more``."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from test_dashboard_kit import InProcess, Served
from tether.store import NewEvent

ROWS = 230


@pytest.fixture(scope="module")
def host(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[InProcess, str]]:
    h = InProcess(Path(tmp_path_factory.mktemp("incidents")))
    h.store.append([NewEvent("incident.opened", "a", {"kind": f"violation-{i}", "summary": f"incident {i}"})
                    for i in range(ROWS)])
    served = Served(h.app)
    yield h, served.url
    served.stop()
    h.close()


def _get(host: tuple[InProcess, str], query: str) -> httpx.Response:
    h, url = host
    return httpx.get(f"{url}/v1/incidents{query}", headers={"Authorization": f"Bearer {h.tokens['approver']}"},
                     timeout=30)


def test_the_listing_is_the_newest_in_id_order_with_more(host: tuple[InProcess, str]) -> None:
    h, _ = host
    ids = [i["id"] for i in h.store.incidents(None)]
    assert len(ids) >= ROWS
    page = _get(host, "").json()
    assert [i["id"] for i in page["incidents"]] == ids[-200:] and page["more"] is True
    page = _get(host, "?state=open&limit=3").json()
    opened = [i["id"] for i in h.store.incidents("open")]
    assert [i["id"] for i in page["incidents"]] == opened[-3:] and page["more"] is True
    page = _get(host, "?limit=1000").json()
    assert [i["id"] for i in page["incidents"]] == ids and page["more"] is False
    assert _get(host, "?state=resolved").json() == {"incidents": [], "more": False}
    newest = [i["id"] for i in h.store.incidents(None, "a")][-2:]
    assert [i["id"] for i in h.store.incidents(None, "a", limit=2)] == newest


@pytest.mark.parametrize("limit", ["0", "1001", "-1", "abc", str(2**64)])
def test_a_limit_out_of_bounds_is_a_422_naming_it(host: tuple[InProcess, str], limit: str) -> None:
    got = _get(host, f"?limit={limit}")
    assert got.status_code == 422 and "limit" in got.text
