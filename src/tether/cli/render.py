"""Human output for the CLI (rich). Imported only by commands that print tables."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table

STATE_STYLE = {
    "running": "green", "idle": "green", "starting": "cyan", "waiting_for_approval": "yellow",
    "blocked": "yellow", "stale": "red", "stuck": "red", "crashloop": "bold red", "killed": "bold red",
    "stopped": "dim",
}


def status_table(docs: list[dict[str, Any]], now: float) -> None:
    console = Console()
    if not docs:
        console.print("no agents yet: start the daemon with `tether up`, or try `tether demo`")
        return
    table = Table(box=None, header_style="bold")
    for col in ("AGENT", "STATE", "HEARTBEAT", "TASK", "RESTARTS", "FILES", "WHY"):
        table.add_column(col)
    for d in docs:
        age = d["heartbeat_age_s"]
        table.add_row(
            d["agent"],
            f"[{STATE_STYLE.get(d['state'], '')}]{d['state']}[/]",
            "-" if age is None else f"{age:.0f}s ago",
            d["task"] or "-",
            str(d["restarts"]),
            str(d["files_changed"]),
            d["reason"] or "",
        )
    console.print(table)
