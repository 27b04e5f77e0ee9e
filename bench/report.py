"""Results, goals and the printed table (no measuring here).

Every row holds the measured value and a floor measured in the same run on the same
machine (bare sqlite3, raw hashlib, raw libsodium, ...). `ratio` is always
measured / floor in the row's unit: for a rate, the fraction of the floor reached;
for a time or a size, how many times the floor it costs.
"""

from __future__ import annotations

import json
import os
import platform
import sqlite3
import statistics
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

__all__ = ["Goal", "Result", "best", "median", "print_table", "spread", "write_json"]

NOISY = 0.15  # repeats further apart than this (relative) are flagged as noisy


@dataclass(frozen=True, slots=True)
class Goal:
    """`subject` (the measured value or the ratio) must be `op` `value`."""

    op: Literal[">=", "<="]
    value: float
    subject: Literal["measured", "ratio"] = "measured"

    def met(self, measured: float, ratio: float | None) -> bool:
        x = measured if self.subject == "measured" else ratio
        if x is None:
            return False
        return x >= self.value if self.op == ">=" else x <= self.value


@dataclass(slots=True)
class Result:
    name: str
    unit: str  # "/s", "ms", "us" or "MiB"
    measured: float
    floor: float | None
    floor_what: str
    goal: Goal
    stat: str  # which statistic: "best of 3", "median of 1000", ...
    spread: float | None = None  # (worst - best) / best over the repeats
    notes: list[str] = field(default_factory=list)

    @property
    def ratio(self) -> float | None:
        return self.measured / self.floor if self.floor else None

    @property
    def passed(self) -> bool:
        return self.goal.met(self.measured, self.ratio)

    @property
    def noisy(self) -> bool:
        return self.spread is not None and self.spread > NOISY


@dataclass(slots=True)
class Failure:
    """A benchmark that raised instead of producing a number."""

    name: str
    error: str


def best(samples: list[float], *, higher_is_better: bool) -> float:
    return max(samples) if higher_is_better else min(samples)


def median(samples: list[float]) -> float:
    return statistics.median(samples)


def spread(samples: list[float]) -> float:
    lo, hi = min(samples), max(samples)
    return (hi - lo) / lo if lo > 0 else 0.0


def fmt(value: float, unit: str) -> str:
    if unit == "/s":
        return f"{value:,.0f} /s"
    if unit in ("ms", "us"):
        return f"{value:.3g} {unit}" if value < 100 else f"{value:,.0f} {unit}"
    return f"{value:.1f} {unit}"


def _goal_text(r: Result) -> str:
    if r.goal.subject == "ratio":
        return f"ratio {r.goal.op} {r.goal.value:g}"
    return f"{r.goal.op} {fmt(r.goal.value, r.unit)}"


def _ratio_text(r: Result) -> str:
    ratio = r.ratio
    return "-" if ratio is None else f"{ratio:.2f}x"


def _stat_text(r: Result) -> str:
    if r.spread is None:
        return r.stat
    mark = " NOISY" if r.noisy else ""
    return f"{r.stat}, spread {r.spread:.0%}{mark}"


def machine() -> dict[str, Any]:
    return {
        "python": sys.version.split()[0],
        "sqlite": sqlite3.sqlite_version,
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "loadavg": os.getloadavg(),
    }


def print_table(results: list[Result], failures: list[Failure], *, title: str) -> None:
    headers = ["benchmark", "measured", "floor (same run)", "ratio", "goal", "result", "stat"]
    rows = [
        [
            r.name,
            fmt(r.measured, r.unit),
            "-" if r.floor is None else f"{fmt(r.floor, r.unit)} {r.floor_what}",
            _ratio_text(r),
            _goal_text(r),
            "PASS" if r.passed else "FAIL <<<",
            _stat_text(r),
        ]
        for r in results
    ]
    rows += [[f.name, "ERROR", f.error[:60], "-", "-", "ERROR <<<", "-"] for f in failures]
    try:
        from rich.console import Console
        from rich.table import Table
    except ImportError:  # plain aligned text
        widths = [max(len(str(x)) for x in col) for col in zip(headers, *rows, strict=True)]
        print(title)
        for row in [headers, *rows]:
            print("  ".join(str(x).ljust(w) for x, w in zip(row, widths, strict=True)))
    else:
        table = Table(title=title, title_justify="left")
        for h in headers:
            table.add_column(h, justify="right" if h in ("measured", "ratio") else "left")
        for row, r in zip(rows, [*results, *failures], strict=True):
            style = "" if isinstance(r, Result) and r.passed else "bold red"
            table.add_row(*row, style=style)
        Console(width=200).print(table)
    for r in results:
        for note in r.notes:
            print(f"  note [{r.name}]: {note}")
    passed = sum(r.passed for r in results)
    print(f"{passed} of {len(results) + len(failures)} goals met; "
          f"ratio = measured / floor; load average now {os.getloadavg()[0]:.2f}")


def write_json(
    path: Path, results: list[Result], failures: list[Failure], meta: dict[str, Any]
) -> None:
    doc = {
        "meta": {**machine(), **meta},
        "results": [
            {**asdict(r), "goal": _goal_text(r), "ratio": r.ratio, "passed": r.passed,
             "noisy": r.noisy}
            for r in results
        ],
        "errors": [asdict(f) for f in failures],
    }
    path.write_text(json.dumps(doc, indent=2) + "\n")
