"""Human output for the CLI (rich). Imported only by commands that print tables."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.segment import Segment, Segments
from rich.table import Table
from rich.text import Text

from tether.fleet.seam import ALONE, Seen

STATE_STYLE = {
    "running": "green",
    "idle": "green",
    "starting": "cyan",
    "waiting_for_approval": "yellow",
    "blocked": "yellow",
    "stale": "red",
    "stuck": "red",
    "crashloop": "bold red",
    "killed": "bold red",
    "stopped": "dim",
    "unsupervised": "yellow",  # unsupervised: it runs, and no daemon watches it
}


#: The widest an agent or node name and a task get before an ellipsis; a state is never cut.
NAME_MAX, NODE_MAX, TASK_MAX = 32, 16, 24
#: The narrowest WHY column worth having; below it WHY gets its own line under the agent's row.
WHY_MIN = 30
SHORT = {"HEARTBEAT": "BEAT"}  # headers in a narrow terminal


def ago(seconds: float | None) -> str:
    """``12s ago``, ``5m ago``, ``3h ago``, ``2d ago``; ``-`` for never. Never negative."""
    if seconds is None:
        return "-"
    seconds = max(0.0, seconds)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size:.0f}{unit} ago"
    return f"{int(seconds)}s ago"


def width() -> int:
    """The columns the tables are fitted to: the terminal's, ``$COLUMNS``, else 80 (rich's rule)."""
    return Console().width


def status_table(docs: list[dict[str, Any]], now: float, place: Seen = ALONE) -> None:
    """The agents, one line each, fitted to the terminal (80 columns when it is not one): names and
    tasks past their caps end in an ellipsis, a state is never cut, and WHY is one line, a column when
    at least ``WHY_MIN`` columns are left for it, else its own indented line under the row. VIOLATIONS
    shows when an agent has any. ``place`` adds its columns and notes (each agent's node), then its tables
    (the nodes)."""
    console = Console()
    sections = place.sections()
    if not docs and not sections:
        console.print("no agents yet: start the daemon with `tether up`, or try `tether demo`")
        return
    if docs:
        _agents(console, docs, place)
    for nodes in sections:
        console.print()
        nodes_table(nodes)


def _agents(console: Console, docs: list[dict[str, Any]], place: Seen) -> None:
    rows, whys = [], []
    for d in docs:
        why, notes = d["reason"] or "", place.note(d)
        why = f"{why}; {notes}" if why and notes else why or notes
        violations = sum((d.get("violations") or {}).values())  # wall: refused connections, denied writes
        rows.append(
            {
                "AGENT": d["agent"],
                **place.cells(d),
                "STATE": d["state"],
                "HEARTBEAT": ago(d["heartbeat_age_s"]),
                "TASK": d["task"] or "-",
                "RESTARTS": str(d["restarts"]),
                "FILES": str(d["files_changed"]),
                "VIOLATIONS": str(violations),
            }
        )
        whys.append(" ".join(why.split()))
    cols = ["AGENT", *place.columns, "STATE", "HEARTBEAT", "TASK", "RESTARTS", "FILES"]
    if any(r["VIOLATIONS"] != "0" for r in rows):
        cols.append("VIOLATIONS")
    widths, gap, headers = layout(cols, rows, console.width)
    room = console.width - sum(widths.values()) - gap * len(cols)
    natural = max(len(w) for w in whys)
    why_column = natural > 0 and room >= min(natural, WHY_MIN)
    table = Table(box=None, header_style="bold", padding=(0, gap, 0, 0), pad_edge=False)
    for col in cols:
        right = col in ("RESTARTS", "FILES", "VIOLATIONS")
        table.add_column(
            headers[col], width=widths[col], no_wrap=True, overflow="ellipsis", justify="right" if right else "left"
        )
    if why_column:
        table.add_column("WHY", width=min(natural, room), no_wrap=True, overflow="ellipsis")
    for r, why in zip(rows, whys, strict=True):
        cells = [f"[{STATE_STYLE.get(r[c], '')}]{r[c]}[/]" if c == "STATE" else escape(r[c]) for c in cols]
        table.add_row(*cells, *([escape(why)] if why_column else []))
    if why_column or natural == 0:
        console.print(table)
        return
    lines = console.render_lines(table, console.options, pad=False)  # one line a row: every column no_wrap
    console.print(Segments([*lines[0], Segment.line()]), end="")
    for line, why in zip(lines[1:], whys, strict=True):
        console.print(Segments([*line, Segment.line()]), end="")
        if why:  # WHY under its row, indented, one line too
            console.print(Text(f"  why: {why}", style="dim"), no_wrap=True, overflow="ellipsis", crop=True)


def layout(cols: list[str], rows: list[dict[str, str]], width: int) -> tuple[dict[str, int], int, dict[str, str]]:
    """Column widths, the gap between columns and the headers that fit ``width``: as they are when they
    fit; else a task gives up room first (down to 8), then the headers get short (BEAT) and the gap one
    space, then a name (down to 12) and a node (down to 8). A state is never cut."""
    caps = {"AGENT": NAME_MAX, "NODE": NODE_MAX, "TASK": TASK_MAX}
    for gap, short in ((2, False), (1, True)):
        headers = {c: SHORT.get(c, c) if short else c for c in cols}
        widths = {c: min(max(len(headers[c]), *(len(r[c]) for r in rows)), caps.get(c, 1 << 16)) for c in cols}
        used = sum(widths.values()) + gap * (len(cols) - 1)
        for col, least in (("TASK", 8), *((("AGENT", 12), ("NODE", 8)) if short else ())):
            if col in widths and used > width:
                cut = min(used - width, widths[col] - min(least, widths[col]))
                widths[col] -= cut
                used -= cut
        if used <= width:
            break
    return widths, gap, headers


NODE_STYLE = {"up": "green", "lost": "bold red", "stopped": "dim"}


def nodes_table(fleet: dict[str, Any]) -> None:
    """The nodes (``tether.fleet.view.overview``): state, last beat, agents pinned there, requests pending there."""
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
            ago(age),
            ", ".join(n["agents"]) or "-",
            ", ".join(waiting) or "-",
            n["url"] or "-",
        )
    console.print(table)
