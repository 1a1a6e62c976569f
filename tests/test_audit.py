"""The hash-chained audit log and its seal file: every gated verdict and every decision is chained, and
``tether audit verify`` (a real process) finds an edited, a deleted and a truncated row, and a table
rewritten whole into a fresh, self-consistent chain."""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
from pathlib import Path

import pytest

from helpers import run_cli
from test_boundary import GATED, make_repo
from test_policy import write_runbook
from tether import audit
from tether.approvals import Approvals
from tether.boundary import Boundary, Gatekeeper, Request
from tether.store import open_store
from tether.store.projections import AUDITED, GENESIS, audit_hash


@pytest.fixture(scope="module")
def sealed_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A state directory after a run of gated actions and decisions, its store closed."""
    loaded = write_runbook(tmp_path_factory.mktemp("audit") / "host", GATED)
    make_repo(loaded.agent_cwd("gated"), "a - b")  # its pr.open gate fails
    store = open_store(loaded.store_url)
    gk = Gatekeeper(Boundary(loaded), Approvals(store))
    assert gk.check("a", Request(command="ls")).decision == "allow"  # not gated: not audited
    assert gk.check("a", Request(command="pip install requests")).decision == "allow"  # log
    assert gk.check("a", Request(command="rm -rf data")).decision == "deny"  # block
    assert gk.check("gated", Request(command="gh pr create --fill")).decision == "deny"  # gate failed
    push = gk.check("a", Request(command="git push --force origin main"))
    deploy = gk.check("a", Request(command="terraform apply"))
    assert push.approval_id and deploy.approval_id
    gk.approvals.decide(push.approval_id, True, "approver:alice")
    gk._seal()
    gk.approvals.decide(deploy.approval_id, False, "approver:alice", "not on a Friday")
    gk._seal()
    assert gk.check("a", Request(command="git push --force origin main")).decision == "allow"  # the grant
    assert gk.check("hasty", Request(command="terraform apply"), wait=5).decision == "deny"  # expired
    gk._seal()
    store.close()
    return loaded.state.root


def copy_home(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def verify(home: Path) -> subprocess.CompletedProcess[str]:
    return run_cli("--home", str(home), "audit", "verify", cwd=home, timeout=30)


def rows(home: Path) -> list[dict[str, object]]:
    conn = sqlite3.connect(home / "tether.db")
    conn.row_factory = sqlite3.Row
    try:
        return [dict(r) for r in conn.execute("SELECT * FROM audit ORDER BY id")]
    finally:
        conn.close()


def sql(home: Path, statement: str, params: tuple[object, ...] = ()) -> None:
    conn = sqlite3.connect(home / "tether.db")
    try:
        with conn:
            conn.execute(statement, params)
    finally:
        conn.close()


def test_every_gated_verdict_and_decision_is_chained(sealed_home: Path) -> None:
    conn = sqlite3.connect(sealed_home / "tether.db")
    try:
        events = conn.execute("SELECT id, kind, data FROM events ORDER BY id").fetchall()
    finally:
        conn.close()
    chained = {r["event_id"]: r for r in rows(sealed_home)}
    audited = [(i, k, json.loads(d)) for i, k, d in events if k in AUDITED]
    assert {i for i, _, _ in audited} == set(chained)  # every audited event, nothing else
    got = [k for _, k, _ in audited]
    assert got.count("approval.requested") == 3
    assert got.count("approval.decided") == 2 and got.count("approval.expired") == 1
    assert "approval.used" in got and "approval.escalated" in got
    decisions = [d["decision"] for _, k, d in audited if k == "verdict"]
    assert sorted(decisions) == ["allow", "allow", "deny", "deny"]  # log, grant / block, failed gate
    assert not any(k == "verdict" and d["action"] == "ls" for _, k, d in audited)
    denied = [d for _, k, d in audited if k == "approval.decided" and d["state"] == "denied"]
    assert denied[0]["by"] == "approver:alice" and denied[0]["note"] == "not on a Friday"
    # the chain links each row to the one before it, and the seal file holds every row's hash
    prev = GENESIS
    for r in rows(sealed_home):
        assert r["prev"] == prev
        prev = str(r["hash"])
    sealed = (sealed_home / "audit.chain").read_text().split()
    assert sealed[-1] == prev and len(sealed) == 2 * len(chained)


def test_verify_ok(sealed_home: Path) -> None:
    proc = verify(sealed_home)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    n = len(rows(sealed_home))
    assert proc.stdout.strip() == f"audit log ok: {n} row(s), {n} sealed in {sealed_home / 'audit.chain'}"


def problems(proc: subprocess.CompletedProcess[str]) -> list[str]:
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    assert proc.stderr.startswith("tether: error: audit log: ")
    lines = proc.stdout.splitlines()
    assert lines and all(line.startswith("audit row ") for line in lines)
    return lines


def test_edited_row(sealed_home: Path, tmp_path: Path) -> None:
    home = copy_home(sealed_home, tmp_path / "home")
    target = next(r for r in rows(home) if r["kind"] == "approval.decided" and "Friday" in str(r["data"]))
    sql(home, "UPDATE audit SET data = ? WHERE id = ?", (str(target["data"]).replace("Friday", "Monday"), target["id"]))
    assert problems(verify(home)) == [f"audit row {target['id']}: its contents do not match its hash (edited?)"]


def test_deleted_row(sealed_home: Path, tmp_path: Path) -> None:
    home = copy_home(sealed_home, tmp_path / "home")
    target = next(r for r in rows(home) if r["kind"] == "approval.decided")
    sql(home, "DELETE FROM audit WHERE id = ?", (target["id"],))
    got = problems(verify(home))
    assert f"audit row {target['id']}: sealed in audit.chain but missing from the store (deleted or truncated)" in got
    assert f"audit row {int(target['id']) + 1}: does not follow the row before it (a row was deleted?)" in got


def test_rewritten_whole(sealed_home: Path, tmp_path: Path) -> None:
    """A consistent forgery: different content, every hash recomputed from genesis. The chain alone
    cannot tell; the seal file outside the database can."""
    home = copy_home(sealed_home, tmp_path / "home")
    original = rows(home)
    forged = []
    prev = GENESIS
    for r in original:
        data = str(r["data"]).replace("approver:alice", "approver:mallory").replace("not on a Friday", "ok")
        h = audit_hash(prev, int(r["event_id"]), float(r["ts"]), r["agent"], str(r["kind"]), data)  # type: ignore[arg-type]
        forged.append((r["id"], r["event_id"], r["ts"], r["agent"], r["kind"], data, prev, h))
        prev = h
    conn = sqlite3.connect(home / "tether.db")
    try:
        with conn:
            conn.execute("DELETE FROM audit")
            conn.executemany("INSERT INTO audit (id, event_id, ts, agent, kind, data, prev, hash) "
                             "VALUES (?, ?, ?, ?, ?, ?, ?, ?)", forged)
    finally:
        conn.close()
    changed = [r["id"] for r, f in zip(original, forged, strict=True) if r["data"] != f[5]]
    assert changed
    got = problems(verify(home))
    # the forged chain is internally valid: only the seal disagrees, from the first forged row on
    assert not any("do not match its hash" in p or "does not follow" in p for p in got)
    first = min(changed)
    assert got == [f"audit row {r['id']}: differs from its seal in audit.chain (rewritten)"
                   for r in original if int(r["id"]) >= int(first)]  # type: ignore[call-overload]


def test_truncated_tail(sealed_home: Path, tmp_path: Path) -> None:
    home = copy_home(sealed_home, tmp_path / "home")
    ids = [int(r["id"]) for r in rows(home)]  # type: ignore[call-overload]
    sql(home, "DELETE FROM audit WHERE id > ?", (ids[-3],))
    assert problems(verify(home)) == [
        f"audit row {i}: sealed in audit.chain but missing from the store (deleted or truncated)" for i in ids[-2:]
    ]


def test_seal_appends_only_new_rows(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'tether.db'}")
    chain = tmp_path / "audit.chain"
    try:
        assert audit.seal(store, chain) == 0 and not chain.exists()
        store.emit("verdict", "a", decision="deny")
        store.emit("heartbeat.missed", "a")  # not an audited kind
        store.emit("approval.escalated", "a", approval_id=1, to="backup")
        assert audit.seal(store, chain) == 2
        assert audit.seal(store, chain) == 0
        store.emit("verdict", "a", decision="allow")
        assert audit.seal(store, chain) == 1
        assert len(chain.read_text().splitlines()) == 3
        assert audit.verify(store, chain).ok
    finally:
        store.close()
