"""``/metrics``: the signals in Prometheus text format (prometheus-client), ``tether_`` prefix, base
units, ``_total`` counters, labels bounded by the runbook (agent, model, kind, state; never a task or
session id). Every metric is listed in docs/SIGNALS.md."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from tether.classify import errors_total
from tether.signals import agent_signals, host_signals
from tether.status_report import report
from tether.vocabulary import AGENT_STATES, VIOLATION_KINDS


class Snapshot:
    """Everything /metrics shows, gathered at one ``now``."""

    def __init__(
        self, status: list[dict[str, Any]], signals: dict[str, dict[str, Any]], host: dict[str, Any],
        incidents: list[dict[str, Any]], probes: list[Any],
    ) -> None:
        self.status, self.signals, self.host, self.incidents, self.probes = status, signals, host, incidents, probes


class _Collector(Collector):
    def __init__(self, snap: Snapshot) -> None:
        self.snap = snap

    def collect(self) -> Iterator[Metric]:
        s = self.snap
        state = GaugeMetricFamily("tether_agent_state", "1 for the agent's current state", labels=["agent", "state"])
        age = GaugeMetricFamily(
            "tether_agent_heartbeat_age_seconds", "Seconds since the last heartbeat", labels=["agent"]
        )
        restarts = CounterMetricFamily("tether_agent_restarts", "Process restarts", labels=["agent"])
        retries = CounterMetricFamily("tether_agent_retries", "Retries the agent reported", labels=["agent"])
        files = CounterMetricFamily("tether_agent_files_changed", "Files changed", labels=["agent"])
        commands = CounterMetricFamily("tether_agent_commands_run", "Commands run", labels=["agent"])
        queue = GaugeMetricFamily("tether_agent_queue_depth", "Queued tasks", labels=["agent"])
        queue_age = GaugeMetricFamily(
            "tether_agent_queue_age_seconds", "Age of the oldest queued task", labels=["agent"]
        )
        pending = GaugeMetricFamily("tether_agent_approvals_pending", "Approvals waiting for a human", labels=["agent"])
        for d in s.status:
            a = d["agent"]
            for st in AGENT_STATES:
                state.add_metric([a, st], 1.0 if d["state"] == st else 0.0)
            if d.get("heartbeat_age_s") is not None:
                age.add_metric([a], float(d["heartbeat_age_s"]))
            restarts.add_metric([a], float(d.get("restarts") or 0))
            retries.add_metric([a], float(d.get("retries") or 0))
            files.add_metric([a], float(d.get("files_changed") or 0))
            commands.add_metric([a], float(d.get("commands_run") or 0))
            queue.add_metric([a], float(d.get("queue_depth") or 0))
            queue_age.add_metric([a], float(d.get("queue_age_s") or 0))
            pending.add_metric([a], float(d.get("approvals_pending", 1 if d.get("approval_required") else 0)))
        yield from (state, age, restarts, retries, files, commands, queue, queue_age, pending)

        tokens = CounterMetricFamily("tether_agent_tokens", "Model tokens", labels=["agent", "model", "type"])
        cost = CounterMetricFamily("tether_agent_cost_usd", "Spend in US dollars", labels=["agent", "model"])
        errors = CounterMetricFamily("tether_agent_errors", "Errors by kind", labels=["agent", "kind"])
        accounts = GaugeMetricFamily(
            "tether_agent_accounts_touched", "Distinct external accounts touched", labels=["agent"]
        )
        for agent, sig in sorted(s.signals.items()):
            for model, u in sorted(sig["usage_by_model"].items()):
                for kind in ("input", "output", "cache_read", "cache_write"):
                    tokens.add_metric([agent, model, kind], float(u[kind]))
                cost.add_metric([agent, model], float(u["cost_usd"]))
            for kind, n in sorted(sig["errors"].items()):
                errors.add_metric([agent, kind], float(n))
            accounts.add_metric([agent], float(sig.get("accounts_touched_count", len(sig["accounts_touched"]))))
        yield from (tokens, cost, errors, accounts)

        walled = CounterMetricFamily("tether_agent_wall_violations", "Refused connections and denied writes",
                                     labels=["agent", "kind"])
        for d in s.status:  # every agent of the runbook, every kind of the fixed set (0 when none)
            got = (s.signals.get(d["agent"]) or {}).get("violations") or {}
            for kind in VIOLATION_KINDS:
                walled.add_metric([d["agent"], kind], float(got.get(kind) or 0))
        yield walled

        incidents = GaugeMetricFamily("tether_incidents_open", "Open incidents", labels=["kind"])
        counts: dict[str, int] = {}
        for inc in s.incidents:
            counts[inc["kind"]] = counts.get(inc["kind"], 0) + 1
        for kind, n in sorted(counts.items()):
            incidents.add_metric([kind], float(n))
        yield incidents

        h = s.host
        yield GaugeMetricFamily("tether_host_uptime_seconds", "Host uptime", value=float(h.get("host_uptime_s") or 0))
        if h.get("daemon_uptime_s") is not None:
            yield GaugeMetricFamily("tether_daemon_uptime_seconds", "Daemon uptime", value=float(h["daemon_uptime_s"]))
        free = GaugeMetricFamily("tether_disk_free_bytes", "Free disk space", labels=["path"])
        used = GaugeMetricFamily("tether_disk_used_ratio", "Used fraction of the disk", labels=["path"])
        for path, d in sorted(h.get("disk", {}).items()):
            free.add_metric([path], float(d["free_bytes"]))
            used.add_metric([path], float(d["used_ratio"]))
        yield from (free, used)
        up = GaugeMetricFamily("tether_probe_up", "1 when the endpoint answered", labels=["target"])
        lat = GaugeMetricFamily("tether_probe_latency_seconds", "Probe latency", labels=["target"])
        for p in s.probes:
            up.add_metric([p.target], 1.0 if p.up else 0.0)
            lat.add_metric([p.target], float(p.latency_s))
        yield from (up, lat)
        yield CounterMetricFamily(
            "tether_classifier_errors", "Classifier exceptions in this daemon, each answered unknown",
            value=float(errors_total()),
        )


def render(snap: Snapshot) -> bytes:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Collector(snap))
    return generate_latest(registry)


def snapshot(store: Any, paths: list[str], started: float | None, probes: list[Any]) -> Snapshot:
    now = time.time()
    return Snapshot(report(store, now=now), agent_signals(store, now), host_signals(paths, started, now),
                    store.incidents("open"), probes)
