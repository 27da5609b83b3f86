"""``convcalc gridding``: common factor, HDC table, exact coverage (a 2-D map, a strip or runs), the
verdict and the repairs; and the ``convcalc.gridding/1`` document (docs/architecture.md, "JSON")."""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from rich.console import Group
from rich.text import Text

from ..gridding import dilated_field
from ..reports import short_rates
from .common import PlainTable, line, measured_document, measured_lines

if TYPE_CHECKING:
    from ..gridding import GriddingReport
    from ..reports import RatesReport


MAP_LIMIT = 61  # widest field drawn as a 2-D map
HDC_ROWS = 24
STRIP_LIMIT = 120  # widest field drawn offset by offset
PALETTE = ("blue", "cyan", "green", "yellow", "red")


def gridding_view(report: RatesReport) -> Group:
    """The three tests in order (common factor, HDC, exact coverage), the verdict and the repairs."""
    r = report.analysis
    k, c = r.kernel_size, r.coverage
    parts: list[Any] = [line(f"rates {short_rates(r.rates)} with {k}x{k} kernels (stride 1)", "bold")]
    common = (f"gcd {r.gcd}: every tap lands on a multiple of {r.gcd}, so the stack grids" if r.gcd > 1
              else "gcd 1: no common factor")
    parts.append(line(f"1. common factor: {common}", "yellow" if r.gcd > 1 else None))
    parts.append(hdc_table(r))
    if r.hdc.ok is None:
        parts.append(line("   M_2 needs at least two rates: the criterion says nothing here", "dim"))
    else:
        verdict = "passes" if r.hdc.ok else "FAILS"
        parts.append(line(f"   M_2 = {r.hdc.M2} {'<=' if r.hdc.ok else '>'} K = {k}: {verdict} "
                          f"(Wang et al. 2018, section 3.2)",
                          "green" if r.hdc.ok else "yellow"))
    parts.append(line("   note: the recursion never looks at r_1 (so 2,3 passes it yet has holes), and 2,2,2 passes "
                      "it yet grids", "dim"))
    parts.append(line(f"3. exact coverage (per dimension): receptive field {c.receptive_field:,}, covered "
                      f"{c.covered:,}, holes {c.holes:,}, largest gap {c.largest_gap:,}"))
    if r.paths is not None and c.receptive_field <= MAP_LIMIT:
        parts += coverage_map(r.paths)
    else:
        parts += coverage_strip(report)
    if r.gridding:
        parts.append(line(f"verdict: GRIDDING: {c.holes:,} of {c.receptive_field:,} offsets per dimension are never "
                          f"reached ({c.receptive_field ** 2 - c.covered ** 2:,} of {c.receptive_field ** 2:,} in "
                          f"2-D)", "bold red"))
        parts += repair_lines(r)
    else:
        parts.append(line(f"verdict: no gridding: every offset of the {c.receptive_field:,}-wide field is reached",
                          "bold green"))
    if report.measured is not None:
        parts += measured_lines(report.measured)
    return Group(*parts)


def _rates(rates: Iterable[int]) -> str:
    return ",".join(map(str, rates))


def hdc_table(report: GriddingReport) -> PlainTable:
    table = PlainTable("2. HDC criterion")
    for name in ("i", "r_i", "M_i"):
        table.add_column(name, justify="right")
    rows = list(enumerate(zip(report.rates, report.hdc.M), 1))
    hidden = len(rows) - HDC_ROWS
    if hidden > 0:  # long stacks: the first rows and the last, which hold M_2's recursion
        rows = rows[:HDC_ROWS // 2] + [None] + rows[-HDC_ROWS // 2:]  # type: ignore[list-item]
    for row in rows:
        if row is None:
            table.add_row("...", f"{hidden} more", "")
            continue
        i, (rate, m) = row
        table.add_row(str(i), str(rate), str(m) if i > 1 else "-")
    return table


def coverage_map(paths: Sequence[int]) -> list[Text]:
    """The 2-D coverage of a k x k stack: each cell coloured by its number of paths, holes as dots.

    Cells are two characters wide (about square) for fields up to 40, one beyond.
    """
    top = max(paths)
    width = 2 if len(paths) <= 40 else 1
    rows = []
    for y in paths:
        row = Text(no_wrap=True, overflow="ignore")
        for x in paths:
            count = x * y
            if count == 0:
                row.append("·" * width, style="dim")
            else:
                level = 0 if top == 1 else min(len(PALETTE) - 1, int(len(PALETTE) * math.log(count) /
                                                                     (2 * math.log(top) + 1e-9)))
                row.append("█" * width, style=PALETTE[level])
        rows.append(row)
    if os.environ.get("NO_COLOR"):  # no colours to tell path counts apart (https://no-color.org)
        return rows + [Text(f"█ reached (by 1 to {top * top:,} tap paths)   · never reached", no_wrap=True)]
    legend = Text("paths per offset: ", no_wrap=True)
    for colour in PALETTE:
        legend.append("█", style=colour)
    legend.append(f" 1 .. {top * top:,}   · never reached", style="dim")
    return rows + [legend]


def coverage_strip(report: RatesReport) -> list[Text]:
    """One dimension: every offset for fields up to 120, else the runs of reached offsets."""
    common, head, hidden, tail = report.runs
    field = report.analysis.coverage.receptive_field
    if field <= STRIP_LIMIT and report.analysis.paths is not None:
        strip = Text(no_wrap=True, overflow="ignore")
        for count in report.analysis.paths:
            strip.append("█" if count else "·", style="green" if count else "dim")
        return [strip]

    def show(runs: list[tuple[int, int]]) -> str:
        step = f" step {common}" if common > 1 else ""
        return ", ".join(str(common * a) if a == b else f"{common * a}-{common * b}{step}" for a, b in runs)

    text = f"offsets reached along one dimension: {show(head)}"
    if hidden:
        text += f", ... {hidden:,} more runs ..., {show(tail)}"
    return [line(text)]


def repair_lines(r: GriddingReport) -> list[Text]:
    field = r.coverage.receptive_field
    lines = []
    if r.suggestions:
        listed = "; ".join(f"{_rates(s)} (field {dilated_field(s, r.kernel_size)})" for s in r.suggestions)
        lines.append(line(f"repairs: the closest {len(r.rates)} rates that cover without holes and keep a field "
                          f">= {field}: {listed}", "green"))
    if r.sawtooth is not None:
        lines.append(line(f"sawtooth (HDC): {_rates(r.sawtooth[:24])}{',...' if len(r.sawtooth) > 24 else ''} "
                          f"(field {dilated_field(r.sawtooth, r.kernel_size):,})", "green"))
    if not lines:
        k, n = r.kernel_size, len(r.rates)
        best = _rates(k**i for i in range(n)) if n <= 4 else f"1,{k},{k}^2,...,{k}^{n - 1}"
        rates, layers = ("1 rate", "1 layer") if n == 1 else (f"{n} rates", f"{n} layers")
        verb = "covers" if n == 1 else "cover"
        lines.append(line(f"no {rates} with {k}-tap kernels {verb} a field of {field:,} without holes: the "
                          f"largest hole-free field of {layers} is {r.largest_hole_free_field:,} (rates {best})",
                          "yellow"))
    return lines


def gridding_document(report: RatesReport) -> dict[str, Any]:
    """The ``convcalc.gridding/1`` JSON document (docs/architecture.md); per-dimension lists for the k x k kernel."""
    r = report.analysis
    c = r.coverage
    doc: dict[str, Any] = {
        "schema": "convcalc.gridding/1",
        "rates": list(r.rates),
        "kernel_size": [r.kernel_size, r.kernel_size],
        "gcd": r.gcd,
        "hdc": {"M": list(r.hdc.M), "M2": r.hdc.M2, "ok": r.hdc.ok},
        "coverage": {"receptive_field": [c.receptive_field] * 2, "covered": [c.covered] * 2,
                     "holes": [c.holes] * 2, "largest_gap": [c.largest_gap] * 2},
        "gridding": r.gridding,
        "suggestions": [list(s) for s in r.suggestions] + ([list(r.sawtooth)] if r.sawtooth else []),
    }
    if r.paths is not None:
        doc["paths"] = list(r.paths)
    if report.measured is not None:
        doc["verify_field"] = measured_document(report.measured)
    return doc
