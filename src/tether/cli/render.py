"""Human output for the CLI (rich). Imported only by commands that print tables."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table

STATE_STYLE = {
    "running": "green", "idle": "green", "starting": "cyan", "waiting_for_approval": "yellow",
    "blocked": "yellow", "stale": "red", "stuck": "red", "crashloop": "bold red", "killed": "bold red",
    "stopped": "dim", "unsupervised": "yellow",  # unsupervised: it runs, and no daemon watches it
}


def status_table(docs: list[dict[str, Any]], now: float, fleet: dict[str, Any] | None = None) -> None:
    """The agents; on a fleet store (``fleet``) with each agent's node, then the nodes."""
    console = Console()
    if not docs and fleet is None:
        console.print("no agents yet: start the daemon with `tether up`, or try `tether demo`")
        return
    table = Table(box=None, header_style="bold")
    cols = ["AGENT", *(["NODE"] if fleet is not None else []), "STATE", "HEARTBEAT", "TASK", "RESTARTS", "FILES",
            "VIOLATIONS", "WHY"]
    for col in cols:
        table.add_column(col)
    for d in docs:
        age = d["heartbeat_age_s"]
        why = d["reason"] or ""
        if fleet is not None:
            from tether.fleet.view import why as fleet_why

            notes = fleet_why(d)
            why = f"{why}; {notes}" if why and notes else why or notes
        table.add_row(
            d["agent"],
            *([d.get("node") or "-"] if fleet is not None else []),
            f"[{STATE_STYLE.get(d['state'], '')}]{d['state']}[/]",
            "-" if age is None else f"{age:.0f}s ago",
            d["task"] or "-",
            str(d["restarts"]),
            str(d["files_changed"]),
            str(sum((d.get("violations") or {}).values())),  # wall violations: refused connections, denied writes
            why,
        )
    if docs:
        console.print(table)
    if fleet is not None:
        console.print()
        nodes_table(fleet)


NODE_STYLE = {"up": "green", "lost": "bold red", "stopped": "dim"}


def nodes_table(fleet: dict[str, Any]) -> None:
    """The fleet's nodes: state, last beat, agents pinned there, requests pending there."""
    console = Console()
    if not fleet["nodes"]:
        console.print("no nodes yet: a daemon on this PostgreSQL store registers its node when it starts")
        return
    table = Table(box=None, header_style="bold")
    for col in ("NODE", "STATE", "LAST BEAT", "AGENTS", "PENDING", "URL"):
        table.add_column(col)
    for n in fleet["nodes"]:
        age = n["last_beat_age_s"]
        waiting = [f"{p['action']} {p['agent']}" for p in fleet["pending"] if p["node"] == n["node"]]
        table.add_row(
            n["node"],
            f"[{NODE_STYLE.get(n['state'], '')}]{n['state']}[/]",
            "-" if age is None else f"{age:.0f}s ago",
            ", ".join(n["agents"]) or "-",
            ", ".join(waiting) or "-",
            n["url"] or "-",
        )
    console.print(table)
