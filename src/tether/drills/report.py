"""The drill report: a table for people, JSON for scripts (``{"host", "run", "drills": [...]}``)."""

from __future__ import annotations

import io
import json
from dataclasses import dataclass, field
from typing import Any

from tether.drills.base import Result

STYLE = {"pass": "green", "degraded": "yellow", "fail": "bold red", "skipped": "dim"}


@dataclass
class Report:
    host: str
    run: str
    results: list[Result] = field(default_factory=list)
    sandbox: str | None = None

    @property
    def failed(self) -> bool:
        return any(r.status == "fail" for r in self.results)

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for r in self.results:
            out[r.status] = out.get(r.status, 0) + 1
        return out

    def to_dict(self) -> dict[str, Any]:
        return {"host": self.host, "run": self.run, "sandbox": self.sandbox,
                "drills": [r.to_dict() for r in self.results]}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2) + "\n"


def line(r: Result) -> str:
    """One result as a progress line."""
    return f"{r.drill:<15} {r.agent:<20} {r.status:<9} {r.seconds:>6.1f}s  {r.detail}"


def table(report: Report, width: int = 140) -> str:
    from rich.console import Console
    from rich.table import Table

    out = io.StringIO()
    console = Console(file=out, width=width, force_terminal=False, no_color=True, highlight=False)
    t = Table(box=None, header_style="bold", show_edge=False)
    for col, kw in (("AGENT", {"no_wrap": True}), ("DRILL", {"no_wrap": True}), ("STATUS", {"no_wrap": True}),
                    ("TIME", {"justify": "right", "no_wrap": True}), ("DETAIL", {"overflow": "fold"})):
        t.add_column(col, **kw)
    for r in report.results:
        t.add_row(r.agent, r.drill, f"[{STYLE.get(r.status, '')}]{r.status}[/]", f"{r.seconds:.1f}s", r.detail)
    console.print(t)
    counts = report.counts()
    summary = ", ".join(f"{counts[s]} {s}" for s in ("pass", "degraded", "fail", "skipped") if s in counts)
    where = f" (sandbox {report.sandbox})" if report.sandbox else ""
    console.print(f"{report.host}{where}: {len(report.results)} drill(s): {summary or 'none'}; run {report.run}")
    return out.getvalue()
