"""Every signal of docs/SIGNALS.md driven to a non-zero value through its real source, end to end: one
real daemon, one SDK agent (``tether.Agent.from_env()`` over HTTP) that crashes once and is restarted,
tasks queued with ``tether task add``, an approval left pending, ``host.probes`` with one endpoint that
answers and one that does not. Each signal is then read back from every place it is exposed:
``agent-status.json``, ``tether status --json``, ``GET /v1/agents/{name}``, ``/v1/overview``,
``/v1/signals`` and ``/metrics`` (parsed with prometheus-client); a missing or zero signal is named,
with where it is missing."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from test_daemon_kit import PY, Host, agent, make_host, wait_until  # noqa: F401 - make_host is a fixture

NAME = "worker"
MODEL = "claude-e2e"
ERROR_KINDS = ("model", "tool", "api")
TOKEN_TYPES = ("input", "output", "cache_read", "cache_write")
ACCOUNT = "aws:dev"  # what the classifier reads from `aws s3 ls --profile dev`

AGENT = r'''
import sys, time
from pathlib import Path

import tether

a = tether.Agent.from_env()
marker = Path(sys.argv[1])
if not marker.exists():  # the first run: beat once, then crash so the supervisor restarts it
    a.heartbeat(task="booting", progress="0/1")
    marker.write_text("crashed once\n")
    sys.exit(3)

deadline = time.monotonic() + 20
while (task := a.next_task()) is None:  # the test queues it with `tether task add`
    if time.monotonic() > deadline:
        sys.exit(4)
    time.sleep(0.05)
with a.task(task):
    a.heartbeat(task=task["text"], progress="1/3")
    a.report("usage", model="claude-e2e", input_tokens=1200, output_tokens=340, cache_read_tokens=560,
             cache_write_tokens=78, cost_usd=0.0421)
    a.report("error", kind="model", detail="overloaded")
    a.report("error", kind="tool", detail="Bash exited 2")
    a.report("error", kind="api", detail="HTTP 429")
    a.report("retry", what="api call")
    a.files_changed("src/app.py", "src/util.py")
    a.command_run("pytest -q", exit_code=1)
    assert a.check(command="ls -la")["decision"] == "allow"  # allowed and recorded (log): a command run
    a.check(command="aws s3 ls --profile dev")  # the classifier's resources: an external account
    a.tests(passed=41, failed=1)
a.heartbeat(task="push the fix", progress="2/3")
got = a.check(command="git push origin main", wait=0.3)  # git.push asks: no human decides, left pending
assert got["decision"] == "pending", got
print("READY", got["approval_id"], flush=True)
while True:  # alive, silent: the heartbeat ages from here on
    time.sleep(1)
'''


# -- endpoints for host.probes --------------------------------------------------------------------
class _Ok(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def http_endpoint() -> Iterator[int]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Ok)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield int(server.server_address[1])
    server.shutdown()
    server.server_close()


def closed_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = int(s.getsockname()[1])
    s.close()  # nothing listens there now: connections are refused
    return port


# -- what each surface must show ---------------------------------------------------------------------
def positive(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and x > 0


def doc_problems(doc: dict[str, Any]) -> list[str]:
    """The per-agent signals of a status document (agent-status.json, status --json, GET /v1/agents/x)."""
    usage = (doc.get("usage_by_model") or {}).get(MODEL) or {}
    errors = doc.get("errors") or {}
    checks: dict[str, bool] = {
        "heartbeat age (last_heartbeat, heartbeat_age_s)":
            bool(doc.get("last_heartbeat")) and positive(doc.get("heartbeat_age_s")),
        "state (a timed-out wait on a pending approval)": doc.get("state") == "waiting_for_approval",
        "blocked reason (blocked)": bool(doc.get("blocked")) and "approval" in str(doc.get("blocked")),
        "current task (task, progress)": doc.get("task") == "push the fix" and doc.get("progress") == "2/3",
        "last completed task (last_completed_task)": doc.get("last_completed_task") == "triage issue 12",
        "last completed task's time (last_completed_at)": bool(doc.get("last_completed_at")),
        "queue depth (queue_depth)": doc.get("queue_depth") == 2,
        "queue age (queue_age_s)": positive(doc.get("queue_age_s")),
        **{f"errors of kind {k} (errors)": errors.get(k) == 1 for k in ERROR_KINDS},
        **{f"{t} tokens of {MODEL} (usage_by_model)": positive(usage.get(t)) for t in TOKEN_TYPES},
        f"spend of {MODEL} (usage_by_model.cost_usd)": positive(usage.get("cost_usd")),
        "spend today (spend_today_usd)": positive(doc.get("spend_today_usd")),
        "retries (retries)": positive(doc.get("retries")),
        "files changed (files_changed)": (doc.get("files_changed") or 0) >= 2,
        "commands run (commands_run)": (doc.get("commands_run") or 0) >= 2,
        "external accounts touched (accounts_touched)": ACCOUNT in (doc.get("accounts_touched") or []),
        "process restarts (restarts)": positive(doc.get("restarts")),
        "approvals pending (approval_required, approvals_pending)":
            doc.get("approval_required") is True and positive(doc.get("approvals_pending")),
        "tests (tests)": (doc.get("tests") or {}).get("passed") == 41 and (doc.get("tests") or {}).get("failed") == 1,
    }
    return [f"{name}: got {_shown(doc, name)}" for name, ok in checks.items() if not ok]


def _shown(doc: dict[str, Any], name: str) -> str:
    fields = name[name.rfind("(") + 1:-1].replace(".cost_usd", "").split(", ") if "(" in name else []
    return ", ".join(f"{f}={doc.get(f, '<absent>')!r}" for f in fields) or "?"


def metric_samples(text: str) -> dict[str, list[tuple[dict[str, str], float]]]:
    out: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out.setdefault(s.name, []).append((dict(s.labels), float(s.value)))
    return out


def metric_problems(samples: dict[str, list[tuple[dict[str, str], float]]], paths: list[str],
                    up: list[str], down: list[str]) -> list[str]:
    def value(name: str, **labels: str) -> float | None:
        for got, v in samples.get(name, []):
            if all(got.get(k) == want for k, want in labels.items()):
                return v
        return None

    def pos(name: str, **labels: str) -> tuple[str, bool]:
        v = value(name, **labels)
        return f"{name}{labels or ''} = {v}", v is not None and v > 0

    checks = [
        pos("tether_agent_heartbeat_age_seconds", agent=NAME),
        (f"tether_agent_state{{agent={NAME}}} has no state at 1",
         any(v == 1 for labels, v in samples.get("tether_agent_state", []) if labels.get("agent") == NAME)),
        pos("tether_agent_queue_depth", agent=NAME),
        pos("tether_agent_queue_age_seconds", agent=NAME),
        *[pos("tether_agent_errors_total", agent=NAME, kind=k) for k in ERROR_KINDS],
        *[pos("tether_agent_tokens_total", agent=NAME, model=MODEL, type=t) for t in TOKEN_TYPES],
        pos("tether_agent_cost_usd_total", agent=NAME, model=MODEL),
        pos("tether_agent_retries_total", agent=NAME),
        pos("tether_agent_files_changed_total", agent=NAME),
        pos("tether_agent_commands_run_total", agent=NAME),
        pos("tether_agent_accounts_touched", agent=NAME),
        pos("tether_agent_restarts_total", agent=NAME),
        pos("tether_agent_approvals_pending", agent=NAME),
        pos("tether_host_uptime_seconds"),
        pos("tether_daemon_uptime_seconds"),
        *[pos("tether_disk_free_bytes", path=p) for p in paths],
        *[pos("tether_disk_used_ratio", path=p) for p in paths],
        *[pos("tether_probe_up", target=t) for t in up],
        *[(f"tether_probe_up{{target={t}}} = {value('tether_probe_up', target=t)} (want 0)",
           value("tether_probe_up", target=t) == 0) for t in down],
        *[pos("tether_probe_latency_seconds", target=t) for t in up + down],
        pos("tether_incidents_open", kind="network.unreachable"),
    ]
    return [what for what, ok in checks if not ok]


def host_problems(host: dict[str, Any], paths: list[str], up: list[str], down: list[str]) -> list[str]:
    """``host`` of /v1/signals; disk is keyed by path."""
    probes = {p["target"]: p for p in host.get("probes", [])}
    checks = {
        "host uptime": positive(host.get("host_uptime_s")),
        "daemon uptime": positive(host.get("daemon_uptime_s")),
        **{f"disk free/used of {p}": positive((host.get("disk", {}).get(p) or {}).get("free_bytes"))
           and positive((host.get("disk", {}).get(p) or {}).get("used_bytes")) for p in paths},
        **{f"probe {t} up": (probes.get(t) or {}).get("up") is True for t in up},
        **{f"probe {t} down": (probes.get(t) or {}).get("up") is False for t in down},
    }
    return [name for name, ok in checks.items() if not ok]


# -- the test -----------------------------------------------------------------------------------------
def test_every_signal_non_zero_from_its_real_source(
    make_host: Callable[..., Host], http_endpoint: int,  # noqa: F811 - the fixture
) -> None:
    started = time.monotonic()
    up = [f"http://127.0.0.1:{http_endpoint}/health", f"tcp://127.0.0.1:{http_endpoint}"]
    down = [f"tcp://127.0.0.1:{closed_port()}"]
    h = make_host({}, None)
    marker = h.root / "crashed-once"
    script = h.script("sdk_agent.py", AGENT)
    # repo.read: log, so an allowed check is recorded (a plain allow answers without writing anything)
    spec = agent([PY, script, str(marker)], approvals={"verdicts": {"repo.read": "log"}})
    spec["heartbeat"]["source"] = "sdk"  # an SDK agent: its own beats (a command's default would beat for it)
    h.write({NAME: spec}, {"probes": up + down, "probe_interval": "1s"})
    h.up()

    # the first run crashes; the supervisor starts a second one, which waits for a task
    wait_until(lambda: h.row(NAME)["restarts"] >= 1 and h.agent_pids(NAME), 15, "the restart after the crash")
    added = h.cli("task", "add", NAME, "triage issue 12")
    assert added.returncode == 0, added.stderr
    wait_until(lambda: "READY" in h.log(NAME), 15,
               f"the agent to report everything (stderr: {h.log(NAME, 'stderr')[-1500:]})")
    time.sleep(0.2)  # the heartbeat ages; then two tasks stay queued, the oldest ageing too
    for text in ("refactor the parser", "update the changelog"):
        added = h.cli("task", "add", NAME, text)
        assert added.returncode == 0, added.stderr
        time.sleep(0.1)
    wait_until(lambda: h.incidents("network.unreachable"), 10, "the network.unreachable incident")
    assert down[0] in h.incidents("network.unreachable")[0]["summary"]
    assert not any(t in i["summary"] for i in h.incidents("network.unreachable") for t in up)

    info = h.info()
    assert info is not None
    loaded_paths = [str(h.state), str(h.root / "ws")]
    problems: list[str] = []

    def doc_at(where: str, doc: dict[str, Any] | None) -> None:
        if doc is None:
            problems.append(f"{where}: no document for {NAME}")
            return
        problems.extend(f"{where}: {p}" for p in doc_problems(doc))

    # agent-status.json: the file the daemon rewrote on the last change (the second queued task)
    status_file = h.state / "agents" / NAME / "agent-status.json"
    doc_at("agent-status.json", json.loads(status_file.read_text()))

    proc = h.cli("status", "--json")
    assert proc.returncode == 0, proc.stderr
    docs = {d["agent"]: d for d in json.loads(proc.stdout)["agents"]}
    doc_at("tether status --json", docs.get(NAME))

    code, got = h.api("GET", f"/v1/agents/{NAME}")
    assert code == 200, got
    doc_at(f"GET /v1/agents/{NAME}", got)
    code, got = h.api("GET", "/v1/agents")
    assert code == 200, got
    doc_at("GET /v1/agents", {d["agent"]: d for d in got["agents"]}.get(NAME))

    # the overview (dashboard's JSON twin): one row per agent, the host
    code, ov = h.api("GET", "/v1/overview")
    assert code == 200, ov
    row = {r["name"]: r for r in ov["agents"]}.get(NAME) or {}
    for name, ok in {
        "heartbeat age": positive(row.get("heartbeat_age_s")), "current task": bool(row.get("task")),
        "queue depth": row.get("queue_depth") == 2, "queue age": positive(row.get("queue_age_s")),
        "blocked reason": "approval" in str(row.get("blocked")), "spend today": positive(row.get("spend_today_usd")),
        "tokens today": positive(row.get("tokens_today")), "errors": row.get("errors") == len(ERROR_KINDS),
        "restarts": positive(row.get("restarts")), "pending approvals": positive(ov["totals"]["pending_approvals"]),
        "host uptime": positive(ov["host"]["uptime_s"]), "daemon uptime": positive(ov["host"]["daemon_uptime_s"]),
        "disk": bool(ov["host"]["disk"]) and all(positive(d["free_bytes"]) for d in ov["host"]["disk"]),
        "probes": {p["target"]: p["up"] for p in ov["host"]["probes"]} == {**{t: True for t in up},
                                                                            **{t: False for t in down}},
        "open incidents": positive(ov["totals"]["open_incidents"]),
    }.items():
        if not ok:
            problems.append(f"GET /v1/overview: {name}: row={row}")

    # /v1/signals: the per-agent signals and the host as JSON
    code, sig = h.api("GET", "/v1/signals")
    assert code == 200, sig
    mine = sig["agents"].get(NAME) or {}
    usage = mine.get("usage_by_model", {}).get(MODEL) or {}
    for name, ok in {
        **{f"errors of kind {k}": mine.get("errors", {}).get(k) == 1 for k in ERROR_KINDS},
        **{f"{t} tokens": positive(usage.get(t)) for t in TOKEN_TYPES},
        "spend": positive(usage.get("cost_usd")), "accounts touched": ACCOUNT in mine.get("accounts_touched", []),
    }.items():
        if not ok:
            problems.append(f"GET /v1/signals: {name}: {mine}")
    problems.extend(f"GET /v1/signals host: {p}" for p in host_problems(
        {**sig["host"], "probes": sig["probes"]}, loaded_paths, up, down))

    # /metrics, parsed back
    import urllib.request

    req = urllib.request.Request(h.url + "/metrics", headers={"Authorization": f"Bearer {h.admin_token()}"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        text = resp.read().decode()
    problems.extend(f"/metrics: {p}" for p in metric_problems(metric_samples(text), loaded_paths, up, down))

    assert not problems, "signals missing or zero:\n  " + "\n  ".join(problems)
    assert time.monotonic() - started < 45, "the end-to-end signal test must stay well under a minute"
