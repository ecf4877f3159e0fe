"""Turns measurements into the printed table, the PASS/FAIL target lines and JSON.

Input: ``Results`` (project → scenario → builder → runs). Output: text and a
JSON-ready dict. Targets are printed, never asserted: benchmarks inform.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from benchmarks.measure import median

CACHED_SCENARIOS = ("noop", "code", "touch", "requirements")


@dataclass
class Cell:
    """All repetitions of one scenario for one builder on one project."""

    seconds: list[float] = field(default_factory=list)
    peak_rss_kib: list[int] = field(default_factory=list)
    error: str | None = None

    @property
    def median(self) -> float | None:
        return median(self.seconds) if self.seconds and self.error is None else None


# project -> scenario -> builder -> Cell
Results = dict[str, dict[str, dict[str, Cell]]]


UNSUPPORTED = "export not supported"


def _fmt(cell: Cell) -> str:
    if cell.error == UNSUPPORTED:
        return "n/a"
    return "fail" if cell.median is None else f"{cell.median:.2f}"


def table(results: Results, builders: list[str], baseline: str | None) -> str:
    """Scenario × builder medians (seconds) and each builder's ratio to ``baseline``."""
    headers = ["project", "scenario", *[f"{b} s" for b in builders]]
    others = [b for b in builders if b != baseline] if baseline else []
    headers += [f"{b}/{baseline}" for b in others]
    rows: list[list[str]] = []
    for project, scenarios in results.items():
        for scenario, cells in scenarios.items():
            row = [project, scenario]
            row += [_fmt(cells[b]) if b in cells else "-" for b in builders]
            base_cell = cells.get(baseline) if baseline else None
            base = base_cell.median if base_cell else None
            for b in others:
                value = cells[b].median if b in cells else None
                row.append(f"{value / base:.2f}x" if value is not None and base else "-")
            rows.append(row)
    widths = [max(len(r[i]) for r in [headers, *rows]) for i in range(len(headers))]
    line = "  ".join
    out = [line(h.ljust(w) for h, w in zip(headers, widths, strict=True)),
           line("-" * w for w in widths)]
    out += [line(c.rjust(w) if i > 1 else c.ljust(w)
                 for i, (c, w) in enumerate(zip(r, widths, strict=True))) for r in rows]
    return "\n".join(out)


def rss_lines(results: Results, builders: list[str]) -> list[str]:
    """Peak RSS per builder over all runs (MiB)."""
    out = []
    for b in builders:
        peaks = [max(cell.peak_rss_kib) for scen in results.values() for cells in scen.values()
                 for name, cell in cells.items() if name == b and cell.peak_rss_kib]
        if peaks:
            out.append(f"peak RSS {b}: {max(peaks) / 1024:.0f} MiB")
    return out


@dataclass(frozen=True)
class Target:
    name: str
    verdict: str  # PASS | FAIL | SKIP
    detail: str

    def line(self) -> str:
        return f"{self.verdict}  {self.name}: {self.detail}"


def targets(results: Results, layerkit: str | None, noop_budgets: dict[str, float]) -> list[Target]:
    """The performance goals of DESIGN.md, judged on this run's medians."""
    if layerkit is None:
        why = "layerkit not available in this run"
        return [Target("layerkit faster than BuildKit on every cached rebuild", "SKIP", why),
                Target("no-op rebuild ≈ Python start-up + one stat per context file", "SKIP", why)]
    slower: list[str] = []
    compared = 0
    for project, scenarios in results.items():
        for scenario in CACHED_SCENARIOS:
            cells = scenarios.get(scenario, {})
            lk, dk = cells.get(layerkit), cells.get("docker")
            if lk is None or dk is None or lk.median is None or dk.median is None:
                continue
            compared += 1
            if lk.median >= dk.median:
                slower.append(f"{project}/{scenario} {lk.median:.2f}s ≥ {dk.median:.2f}s")
    found = [Target(
        "layerkit faster than BuildKit on every cached rebuild",
        "SKIP" if compared == 0 else ("FAIL" if slower else "PASS"),
        "; ".join(slower) if slower else f"{compared} cached scenarios compared",
    )]
    for project, budget in noop_budgets.items():
        cell = results.get(project, {}).get("noop", {}).get(layerkit)
        if cell is None or cell.median is None:
            continue
        # "≈" is read as within 2x of the floor, plus 50 ms of slack for a noisy machine.
        ok = cell.median <= 2 * budget + 0.05
        found.append(Target(
            f"no-op rebuild ≈ Python start-up + one stat per context file ({project})",
            "PASS" if ok else "FAIL",
            f"{cell.median:.3f}s vs floor {budget:.3f}s (limit 2x + 0.05s)",
        ))
    return found


def to_json(results: Results, meta: dict[str, Any]) -> dict[str, Any]:
    return {
        "meta": meta,
        "results": {
            project: {
                scenario: {
                    builder: {"median_s": cell.median, "runs_s": cell.seconds,
                              "peak_rss_kib": cell.peak_rss_kib, "error": cell.error}
                    for builder, cell in cells.items()
                }
                for scenario, cells in scenarios.items()
            }
            for project, scenarios in results.items()
        },
    }
