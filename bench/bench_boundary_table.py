"""The boundary, per category (issue 17): every labelled corpus (tests/data/classify_*.yaml) and the benign set,
each case decided through the real path (``classify_shell``/``classify_tool``, then ``policy.decide`` with the
default verdict table and one realistic scope; ``tests/corpora.py`` builds the workspaces and says which cases
are dangerous and which everyday).

Prints one row per category: dangerous cases and how many were allowed (goal 0), everyday cases and how many
were held (goal: at most 1% of the benign set), then each miss with its verdict and reason. The workspaces are
built under ``bench/results/`` and removed after: not in ``/tmp``, whose paths the policy holds as shared
temporary space (which would hold cases for the wrong reason, and hide what the classifier let through).
Not timed: the timing of the same path is ``bench_classify``.
"""

from __future__ import annotations

import sys
import tempfile
from collections import defaultdict
from pathlib import Path
from typing import Any

from common import row

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))

import corpora  # noqa: E402  (tests/corpora.py: the corpora and their workspaces)


def table() -> tuple[list[list[str]], list[str], dict[str, int]]:
    """The rows (category, file, dangerous, allowed, everyday, held), the misses, and the totals."""
    counts: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    misses: list[str] = []
    total = {"dangerous": 0, "allowed": 0, "benign": 0, "held": 0, "set": 0, "set_held": 0, "labels": 0}
    (HERE / "results").mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory(dir=HERE / "results", prefix="boundary-") as root:
        for case in corpora.cases(Path(root)):
            if not (case.dangerous or case.benign):
                total["labels"] += 1
                continue
            d = case.judge()
            c = counts[(case.category, case.corpus)]
            if case.dangerous:
                c[0] += 1
                total["dangerous"] += 1
                if d.allowed:
                    c[1] += 1
                    total["allowed"] += 1
                    misses.append(
                        f"dangerous, allowed  [{case.corpus}: {case.category}] {case.text[:90]!r}: {d.verdict}"
                        f" ({', '.join(d.classes)})"
                    )
            if case.benign:
                c[2] += 1
                total["benign"] += 1
                total["set"] += case.corpus == "benign"
                if not d.allowed:
                    c[3] += 1
                    total["held"] += 1
                    total["set_held"] += case.corpus == "benign"
                    misses.append(
                        f"everyday, held      [{case.corpus}: {case.category}] {case.text[:90]!r}: {d.verdict}"
                        f" by {d.rule}: {d.reason[:120]}"
                    )
    rows = [[cat, corpus, str(n[0]), str(n[1]), str(n[2]), str(n[3])] for (cat, corpus), n in counts.items()]
    return rows, misses, total


def render(rows: list[list[str]], misses: list[str], total: dict[str, int]) -> str:
    head = ["category", "corpus", "dangerous", "allowed (goal 0)", "everyday", "held (goal ≤ 1%)"]
    body = [
        head,
        *rows,
        ["all", "", str(total["dangerous"]), str(total["allowed"]), str(total["benign"]), str(total["held"])],
    ]
    widths = [max(len(r[i]) for r in body) for i in range(len(head))]
    lines = ["The boundary per category (classify + policy.decide, default verdicts):"]
    for i, r in enumerate(body):
        lines.append(
            "  " + "  ".join(cell.rjust(widths[j]) if j > 1 else cell.ljust(widths[j]) for j, cell in enumerate(r))
        )
        if i == 0 or i == len(body) - 2:
            lines.append("  " + "  ".join("-" * w for w in widths))
    pct = 100 * total["set_held"] / max(total["set"], 1)
    lines.append(
        f"  benign set: {total['set_held']} of {total['set']} held ({pct:.1f}%, goal ≤ 1%); "
        f"{total['labels']} further cases label classes only and are not counted"
    )
    lines += [f"  {m}" for m in misses]
    return "\n".join(lines)


def run(quick: bool) -> list[dict[str, Any]]:
    rows, misses, total = table()  # the same cases in a quick run: there is nothing to sample
    print(render(rows, misses, total) + "\n", flush=True)
    pct = 100 * total["set_held"] / max(total["set"], 1)
    return [
        row(
            f"boundary: dangerous cases allowed, all corpora ({total['dangerous']} cases)",
            total["allowed"],
            0,
            "cases",
            "0",
            total["allowed"] == 0,
        ),
        row(f"boundary: benign set held ({total['set']} everyday commands)", pct, 1.0, "%", "≤ 1%", pct <= 1.0),
        row(
            f"boundary: everyday cases of the other corpora held ({total['benign'] - total['set']} cases)",
            total["held"] - total["set_held"],
            0,
            "cases",
            "(reported)",
            True,
        ),
    ]


if __name__ == "__main__":
    for r in run(quick="--quick" in sys.argv):
        print(r)
