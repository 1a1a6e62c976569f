"""Signals and /metrics from a real store: each agent-reported signal driven to a non-zero value
through its real source (store events), and the Prometheus text parsed back."""

from __future__ import annotations

import time
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from tether.metrics import Snapshot, render
from tether.probes import probe
from tether.signals import agent_signals, host_signals
from tether.status_report import report
from tether.store import NewEvent
from tether.store.sqlite import SQLiteStore


def _store(tmp_path: Path) -> SQLiteStore:
    store = SQLiteStore(tmp_path / "tether.db")
    store.append([NewEvent("agent.registered", "builder", {"info": {}}), NewEvent("agent.started", "builder", {})])
    store.emit("usage", "builder", model="claude-x", input_tokens=1000, output_tokens=200,
               cache_read_tokens=50, cache_write_tokens=5, cost_usd=0.0125)
    store.emit("usage", "builder", model="claude-x", input_tokens=10, output_tokens=2, cost_usd=0.001)
    store.emit("error", "builder", kind="tool_error", detail="Bash exited 2")
    store.emit("error", "builder", kind="tool_error")
    store.emit("error", "builder", kind="api_rate_limit")
    store.emit("retry", "builder", what="api call")
    store.emit("accounts.touched", "builder", accounts=["github.com/acme/app", "aws:dev"])
    store.emit("accounts.touched", "builder", accounts=["aws:dev"])
    return store


def test_agent_signals_add_up(tmp_path: Path) -> None:
    store = _store(tmp_path)
    sig = agent_signals(store)["builder"]
    assert sig["tokens_today"] == {"input": 1010, "output": 202, "cache_read": 50, "cache_write": 5}
    assert sig["spend_today_usd"] == 0.0135
    assert sig["usage_by_model"]["claude-x"]["cost_usd"] == 0.0135
    assert sig["errors"] == {"tool_error": 2, "api_rate_limit": 1}
    assert sorted(sig["accounts_touched"]) == ["aws:dev", "github.com/acme/app"]
    assert store.agent("builder")["retries"] == 1  # type: ignore[index]
    store.close()


def test_usage_is_kept_per_utc_day(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "tether.db")
    yesterday = time.time() - 86400
    store.append([NewEvent("usage", "a", {"model": "m", "input_tokens": 7, "cost_usd": 1.0}, yesterday)])
    store.emit("usage", "a", model="m", input_tokens=3, cost_usd=0.5)
    sig = agent_signals(store)["a"]
    assert sig["tokens_today"]["input"] == 3 and sig["spend_today_usd"] == 0.5
    assert sig["usage_by_model"]["m"]["input"] == 10
    store.close()


def test_metrics_text_parses_and_follows_the_conventions(tmp_path: Path) -> None:
    store = _store(tmp_path)
    snap = Snapshot(report(store), agent_signals(store), host_signals([str(tmp_path)], time.time() - 5), [], [])
    families = {f.name: f for f in text_string_to_metric_families(render(snap).decode())}
    assert all(name.startswith("tether_") for name in families)
    tokens = {tuple(sorted(s.labels.items())): s.value for s in families["tether_agent_tokens"].samples
              if s.name == "tether_agent_tokens_total"}
    assert tokens[(("agent", "builder"), ("model", "claude-x"), ("type", "input"))] == 1010
    errors = {s.labels["kind"]: s.value for s in families["tether_agent_errors"].samples if s.name.endswith("_total")}
    assert errors == {"tool_error": 2, "api_rate_limit": 1}
    state = {s.labels["state"]: s.value for s in families["tether_agent_state"].samples}
    assert state["running"] == 1 and state["stale"] == 0
    assert families["tether_disk_free_bytes"].samples[0].value > 0
    assert families["tether_daemon_uptime_seconds"].samples[0].value >= 5
    for f in families.values():  # no unbounded labels
        for s in f.samples:
            assert not {"task", "session", "task_id", "session_id"} & set(s.labels)
    store.close()


def test_probes_tell_up_from_down() -> None:
    import socket

    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    port = server.getsockname()[1]
    up = probe(f"tcp://127.0.0.1:{port}", timeout=1)
    server.close()
    down = probe(f"tcp://127.0.0.1:{port}", timeout=1)
    assert up.up and not down.up and "unreachable" in down.detail
    assert not probe("ftp://x").up


def test_last_drill_and_overdue_flag_in_the_status(tmp_path: Path) -> None:
    store = _store(tmp_path)
    now = time.time()
    doc = report(store, now=now)[0]
    assert doc["last_drill"] is None and doc["drill_overdue"] is True, "never drilled: flagged"
    store.append([
        NewEvent("drill.result", "builder", {"drill": "kill", "status": "pass"}, now - 40 * 86400),
        NewEvent("drill.result", "builder", {"drill": "reboot", "status": "fail"}, now - 35 * 86400),
    ])
    doc = report(store, now=now)[0]
    assert doc["last_drill"] == {"status": "fail", "drills": {"kill": "pass", "reboot": "fail"}}
    assert doc["drill_overdue"] is True, "35 days ago: flagged"
    store.append([NewEvent("drill.result", "builder", {"drill": "reboot", "status": "pass"}, now - 60),
                  NewEvent("drill.result", "builder", {"drill": "network", "status": "skipped"}, now - 30)])
    doc = report(store, now=now)[0]
    assert doc["last_drill"] == {"status": "pass", "drills": {"kill": "pass", "reboot": "pass"}}
    assert doc["drill_overdue"] is False and doc["last_drill_at"] is not None
    assert doc["retries"] == 1
    store.close()


def test_accounts_touched_show_the_newest_by_name_and_count_them_all(tmp_path: Path) -> None:
    """An agent can name accounts without end (issue 14): its status shows the ACCOUNTS_SHOWN it touched last
    and the count of all; /metrics counts them all."""
    from tether.signals import ACCOUNTS_SHOWN

    store = _store(tmp_path)
    names = [f"github.com/acme/repo-{i:03d}" for i in range(ACCOUNTS_SHOWN + 30)]
    for i, name in enumerate(names):
        store.append([NewEvent("accounts.touched", "builder", {"accounts": [name]}, ts=time.time() + 100 + i)])
    sig = agent_signals(store)["builder"]
    assert sig["accounts_touched_count"] == len(names) + 2
    assert sig["accounts_touched"] == sorted(names[-ACCOUNTS_SHOWN:])  # the newest, by name
    text = render(Snapshot(report(store), agent_signals(store), host_signals([str(tmp_path)], time.time() - 5), [],
                           [])).decode()
    [family] = [f for f in text_string_to_metric_families(text) if f.name == "tether_agent_accounts_touched"]
    assert [s.value for s in family.samples if s.labels == {"agent": "builder"}] == [len(names) + 2]
    store.close()
