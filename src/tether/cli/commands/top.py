"""``tether top``: the dashboard's overview as a live terminal view (rich), read straight from the store:
it works with the daemon down, and over SSH where no browser is."""

from __future__ import annotations

import json
import time
from typing import Any

import click

from tether.cli.context import Context
from tether.daemon_state import RUNNING, probe
from tether.web.views import age, money, overview, size

TONE = {"ok": "green", "warn": "yellow", "bad": "bold red"}


def render(data: dict[str, Any], width: int | None = None) -> Any:
    """The overview (``tether.web.views.overview``) as one rich renderable."""
    from rich import box
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    t, h = data["totals"], data["host"]
    head = Text()
    head.append("tether top", style="bold")
    head.append(f"  {h.get('name') or ''}  up {age(h.get('uptime_s'))}")
    if h.get("daemon_uptime_s"):
        head.append(f"  daemon {age(h['daemon_uptime_s'])}")
    elif (data.get("daemon") or {}).get("state") == "stopped":
        head.append(f"  daemon stopped (SIGSTOP, pid {data['daemon']['pid']})", style="bold red")
    else:
        head.append("  daemon down", style="yellow")
    for d in h.get("disk", []):
        style = "bold red" if d["used_ratio"] > 0.9 else ("yellow" if d["used_ratio"] > 0.8 else "")
        head.append(f"  disk {d['used_ratio'] * 100:.0f}% ({size(d['free_bytes'])} free)", style=style)
    net = h.get("network") or {}
    if net.get("sent_per_s") is not None:
        head.append(f"  net ↑{size(net['sent_per_s'])}/s ↓{size(net['recv_per_s'])}/s")
    elif net.get("bytes_sent") is not None:
        head.append(f"  net ↑{size(net['bytes_sent'])} ↓{size(net['bytes_recv'])}")
    summary = Text()
    summary.append(f"{t['agents']} agents: ")
    summary.append(f"{t['ok']} ok", style="green")
    summary.append(" · ")
    summary.append(f"{t['warn']} attention", style="yellow" if t["warn"] else "")
    summary.append(" · ")
    summary.append(f"{t['bad']} failing", style="bold red" if t["bad"] else "")
    summary.append(f"   approvals pending: {t['pending_approvals']}",
                   style="bold yellow" if t["pending_approvals"] else "")
    summary.append(f"   open incidents: {t['open_incidents']}", style="bold red" if t["open_incidents"] else "")
    summary.append(f"   spend today: {money(t['spend_today_usd'])}")

    agents = Table(box=box.SIMPLE_HEAD, expand=True, pad_edge=False)
    for col, kw in (("agent", {"no_wrap": True}), ("state", {"no_wrap": True}), ("beat", {"justify": "right"}),
                    ("task", {"ratio": 3, "no_wrap": True}), ("queue", {"justify": "right"}),
                    ("blocked", {"ratio": 3, "no_wrap": True}),
                    ("spend", {"justify": "right"}), ("err", {"justify": "right"}), ("rst", {"justify": "right"})):
        agents.add_column(col, overflow="ellipsis", **kw)
    for a in data["agents"]:
        task = (a["task"] or "") + (f" · {a['progress']}" if a.get("progress") else "")
        queue = f"{a['queue_depth']} · {age(a['queue_age_s'])}" if a["queue_depth"] else "0"
        agents.add_row(
            a["name"], Text(a["state"], style=TONE[a["tone"]]), age(a["heartbeat_age_s"]), task or "—", queue,
            Text(a["blocked"] or "—", style="yellow" if a["blocked"] else "dim"), money(a["spend_today_usd"]),
            Text(str(a["errors"]), style="red" if a["errors"] else ""),
            Text(str(a["restarts"]), style="red" if a["restarts"] else ""),
        )
    parts: list[Any] = [head, summary, agents]
    if data["approvals"]:
        ap = Table(title="pending approvals", title_justify="left", box=box.SIMPLE_HEAD, expand=True, pad_edge=False)
        for col in ("id", "agent", "action", "waiting", "command"):
            ap.add_column(col, overflow="ellipsis", no_wrap=True, ratio=1 if col == "command" else None)
        for a in data["approvals"]:
            ap.add_row(f"#{a['id']}", a["agent"], a["action"], age(a["age_s"]), a["detail"])
        parts.append(ap)
    if data["incidents"]:
        inc = Table(title="open incidents", title_justify="left", box=box.SIMPLE_HEAD, expand=True, pad_edge=False)
        for col in ("id", "agent", "kind", "open", "summary"):
            inc.add_column(col, overflow="ellipsis", no_wrap=True, ratio=1 if col == "summary" else None)
        for i in data["incidents"]:
            inc.add_row(f"#{i['id']}", i["agent"] or "host", i["kind"], age(i["age_s"]),
                        ("[acked] " if i.get("acked") else "") + str(i["summary"]))
        parts.append(inc)
    return Group(*parts)


def snapshot(obj: Context) -> dict[str, Any]:
    store = obj.store(readonly=True)
    paths = [str(obj.state.root)]
    try:
        paths.append(str(obj.loaded.workspace_root))
    except Exception:  # no runbook here: the state directory alone
        pass
    running = probe(obj.state.root)  # a crashed daemon leaves its daemon.json: the process table says
    started = running["started"] if running["state"] == RUNNING else None
    return {**overview(store, paths=paths, started=started, recent=0), "daemon": running}


@click.command()
@click.option("--interval", default=1.0, show_default=True, type=click.FloatRange(0.1, 3600),
              help="Seconds between refreshes.")
@click.option("--once", is_flag=True, help="Print the view once and exit (also when not on a terminal).")
@click.option("--json", "as_json", is_flag=True, help="Print the overview as JSON once.")
@click.option("--frames", type=int, default=None, hidden=True, help="Stop after this many refreshes (tests).")
@click.pass_obj
def top(obj: Context, interval: float, once: bool, as_json: bool, frames: int | None) -> None:
    """The overview as a live terminal view: every agent's state, heartbeat age, task, queue, blocked
    reason, spend today, errors and restarts; the host; pending approvals and open incidents.

    Reads the store directly, so it works with the daemon down. Ctrl-C quits.
    """
    from rich.console import Console

    if as_json:
        click.echo(json.dumps(snapshot(obj), default=str))
        return
    console = Console()
    if once or (frames is None and not console.is_terminal):
        console.print(render(snapshot(obj)))
        return
    from rich.live import Live

    shown = 0
    try:
        with Live(render(snapshot(obj)), console=console, screen=frames is None, auto_refresh=False,
                  transient=False) as live:
            while frames is None or shown < frames:
                time.sleep(interval)
                live.update(render(snapshot(obj)), refresh=True)
                shown += 1
    except KeyboardInterrupt:
        pass
