"""``convcalc aspp``: each branch's share of valid taps on the map, and torch's count; and the
``convcalc.aspp/1`` document (docs/architecture.md, "JSON")."""

from __future__ import annotations

from fractions import Fraction
from typing import TYPE_CHECKING, Any

from rich.console import Group

from .common import PlainTable, agreement, line, sizes

if TYPE_CHECKING:
    from ..reports import AsppReport


def aspp_view(report: AsppReport) -> Group:
    """One row per branch, the legend, and torch's count."""
    first = report.branches[0]
    k = first.kernel_size
    kernel = "x".join([str(k)] * len(first.in_size))
    table = PlainTable(f"ASPP on a {sizes(first.in_size)} map, {kernel} atrous branches, padding = rate*(k-1)/2")
    flagged = any(b.degenerate for b in report.branches)
    for name in ["rate", "pad", "out", "rf", "all taps", "centre only", "weights"] + ([""] if flagged else []):
        table.add_column(name, justify="right")
    for b in report.branches:
        flag = ["degenerate" if b.degenerate else ""] if flagged else []
        table.add_row(str(b.rate), str(b.padding), sizes(b.out), str(b.receptive_field), percent(b.all_taps_valid),
                      percent(b.only_center_valid), percent(b.valid_weights), *flag)
    parts: list[Any] = [table, line("all taps / centre only: shares of output positions where every tap, or only "
                                    "the centre tap, lands on the map; weights: the mean share of filter weights "
                                    "applied to the map; degenerate: only the centre tap ever lands on the map, so "
                                    "the branch is a 1x1 conv (DeepLabv3, section 3.3 and Figure 4)", "dim")]
    if report.counts is not None:
        word, style = agreement(report.agrees)
        how = report.counts[0].how
        parts.append(line(f"PyTorch {report.counts[0].version}, a ones mask convolved with a ones filter ({how}): "
                          f"{', '.join(percent(t.all_taps_valid) for t in report.counts)} all valid -> {word}", style))
    return Group(*parts)


def percent(share: Fraction) -> str:
    """``Fraction(61, 65) ** 2`` -> ``93.9%``; 0 and 1 exactly as ``0%`` and ``100%``."""
    return "0%" if share == 0 else "100%" if share == 1 else f"{float(share) * 100:.1f}%"


def aspp_document(report: AsppReport) -> dict[str, Any]:
    """The ``convcalc.aspp/1`` JSON document (docs/architecture.md); shares are fractions in [0, 1]."""
    first = report.branches[0]
    doc: dict[str, Any] = {
        "schema": "convcalc.aspp/1",
        "in": list(first.in_size),
        "kernel_size": [first.kernel_size] * len(first.in_size),
        "branches": [{"rate": b.rate, "padding": b.padding, "out": list(b.out), "receptive_field": b.receptive_field,
                      "all_taps_valid": float(b.all_taps_valid), "only_center_valid": float(b.only_center_valid),
                      "valid_weights": float(b.valid_weights), "degenerate": b.degenerate}
                     for b in report.branches],
    }
    if report.counts is not None:
        doc["verify"] = {"torch": report.counts[0].version, "how": report.counts[0].how, "agrees": report.agrees,
                         "all_taps_valid": [float(t.all_taps_valid) for t in report.counts],
                         "only_center_valid": [float(t.only_center_valid) for t in report.counts]}
    return doc
