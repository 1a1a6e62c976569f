#!/usr/bin/env python3
"""Run every benchmark (``bench/bench_*.py``) and print one table: tether beside what a user would
pick instead, measured side by side in the same run, with the ratio and the goal.

    python bench/run.py            # full run (figures for bench/README.md)
    python bench/run.py --quick    # smoke run (CI): same code paths, fewer iterations
    python bench/run.py --only store,cli
"""

from __future__ import annotations

import argparse
import importlib
import json
import platform
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer iterations: a smoke run")
    parser.add_argument("--only", default="", help="comma-separated module names (bench_<name>.py)")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a goal is missed")
    args = parser.parse_args()
    only = {x.strip() for x in args.only.split(",") if x.strip()}
    modules = sorted(p.stem for p in HERE.glob("bench_*.py"))
    rows: list[dict[str, object]] = []
    for name in modules:
        if only and name.removeprefix("bench_") not in only:
            continue
        started = time.perf_counter()
        mod = importlib.import_module(name)
        try:
            got = mod.run(args.quick)
        except Exception as err:  # one broken bench must not hide the others
            got = [{"name": f"{name}: failed: {type(err).__name__}: {err}", "tether": float("nan"),
                    "baseline": float("nan"), "unit": "", "ratio": float("nan"), "goal": "runs", "ok": False,
                    "raised": True}]
        for row in got:
            row["module"] = name
        rows.extend(got)
        print(f"  {name} done in {time.perf_counter() - started:.1f}s", file=sys.stderr)
    print_table(rows)
    out = HERE / "results"
    out.mkdir(exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H%M%SZ")
    (out / f"{stamp}{'-quick' if args.quick else ''}.json").write_text(
        json.dumps({"date": stamp, "quick": args.quick, "python": platform.python_version(),
                    "machine": platform.machine(), "rows": rows}, indent=1, default=str)
    )
    missed = [r for r in rows if not r["ok"]]
    if missed:
        print(f"\n{len(missed)} goal(s) missed" + (" (quick run: small samples)" if args.quick else ""))
    broken = [str(r["module"]) for r in rows if r.get("raised")]
    if broken:  # a bench that raised is a defect, not a missed goal: CI goes red
        print(f"bench: {', '.join(broken)} raised: see the line above the table; fix the bench", file=sys.stderr)
        return 1
    return 1 if (missed and args.strict) else 0


def fmt(value: object) -> str:
    if isinstance(value, float):
        if value != value:
            return "-"
        return f"{value:,.3f}" if abs(value) < 10 else f"{value:,.1f}"
    return str(value)


def print_table(rows: list[dict[str, object]]) -> None:
    head = ("benchmark", "tether", "baseline", "unit", "ratio", "goal", "ok")
    table = [head] + [
        (str(r["name"]), fmt(r["tether"]), fmt(r["baseline"]), str(r["unit"]), fmt(r["ratio"]), str(r["goal"]),
         "yes" if r["ok"] else "NO")
        for r in rows
    ]
    widths = [max(len(row[i]) for row in table) for i in range(len(head))]
    for i, row in enumerate(table):
        print("  ".join(cell.ljust(widths[j]) for j, cell in enumerate(row)))
        if i == 0:
            print("  ".join("-" * w for w in widths))


if __name__ == "__main__":
    sys.exit(main())
