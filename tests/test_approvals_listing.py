"""``GET /v1/approvals`` is bounded like every listing: every ``ask`` adds a row an agent can read back, and
the whole table in one answer (60,000 rows: 56 MB of JSON) took the daemon up 380 MB per request under
bench_fuzz (issue 14). The newest ``limit`` (default 200, at most 1,000), in id order, with ``more``."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from test_dashboard_kit import InProcess, Served
from tether.store import NewEvent

ROWS = 230
PENDING = 20  # under approvals.MAX_PENDING: the rest expired, as an agent's asks do while nobody answers


def _asks(agent: str, n: int) -> list[NewEvent]:
    return [NewEvent("approval.requested", agent, {"action": "git.push", "fingerprint": f"fp-{agent}-{i}",
                                                   "classes": ["git.push"], "detail": f"git push {agent} #{i}",
                                                   "rule": "default table: git.push: ask", "reason": "a push"})
            for i in range(n)]


@pytest.fixture(scope="module")
def host(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[InProcess, str]]:
    h = InProcess(Path(tmp_path_factory.mktemp("listing")))
    ids = h.store.append(_asks("a", ROWS))  # through the events and their projection, in one commit
    h.store.append([NewEvent("approval.expired", "a", {"approval_id": i, "state": "expired", "by": "timeout"})
                    for i in ids[:-PENDING]])
    h.store.append(_asks("b", 1))
    served = Served(h.app)
    yield h, served.url
    served.stop()
    h.close()


def _get(host: tuple[InProcess, str], query: str, role: str = "agent") -> httpx.Response:
    h, url = host
    return httpx.get(f"{url}/v1/approvals{query}", headers={"Authorization": f"Bearer {h.tokens[role]}"},
                     timeout=30)


def test_the_listing_is_the_newest_200_in_id_order_with_more(host: tuple[InProcess, str]) -> None:
    h, _ = host
    ids = [a["id"] for a in h.store.approvals(None, "a")]
    assert len(ids) == ROWS
    got = _get(host, "?state=all")  # an agent token: its own agent's
    assert got.status_code == 200, got.text
    page = got.json()
    assert [a["id"] for a in page["approvals"]] == ids[-200:] and page["more"] is True
    page = _get(host, "").json()  # pending by default
    assert [a["id"] for a in page["approvals"]] == ids[-PENDING:] and page["more"] is False


def test_limit_picks_the_newest_and_more_says_whether_older_exist(host: tuple[InProcess, str]) -> None:
    h, _ = host
    ids = [a["id"] for a in h.store.approvals(None, "a")]
    page = _get(host, "?state=all&limit=5").json()
    assert [a["id"] for a in page["approvals"]] == ids[-5:] and page["more"] is True
    page = _get(host, "?state=all&limit=1000").json()
    assert [a["id"] for a in page["approvals"]] == ids and page["more"] is False
    page = _get(host, "?state=all&agent=b&limit=1", role="approver").json()
    assert [a["detail"] for a in page["approvals"]] == ["git push b #0"] and page["more"] is False
    assert _get(host, "?state=denied").json() == {"approvals": [], "more": False}


@pytest.mark.parametrize("limit", ["0", "1001", "-1", "abc", "1e9", str(2**64)])
def test_a_limit_out_of_bounds_is_a_422_naming_it(host: tuple[InProcess, str], limit: str) -> None:
    got = _get(host, f"?limit={limit}")
    assert got.status_code == 422 and "limit" in got.text


def test_the_store_reads_only_the_newest_limit_rows(host: tuple[InProcess, str]) -> None:
    h, _ = host
    every = h.store.approvals(None, None)
    assert [a["id"] for a in h.store.approvals(None, None, limit=3)] == [a["id"] for a in every[-3:]]
    expired = [a["id"] for a in every if a["state"] == "expired"]
    assert [a["id"] for a in h.store.approvals("expired", "a", limit=2)] == expired[-2:]
    assert h.store.approvals(None, None, limit=0) == []
    assert len(h.store.approvals(None, None, limit=10_000)) == len(every) == ROWS + 1
