"""``convcalc sizes`` and ``inspect --sizes``: the rule, the output of each accepted size, the rejected
sizes grouped by the node that fails; and the ``convcalc.sizes/1`` document (docs/architecture.md, "JSON")."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rich.console import Group

from .common import PlainTable, line, sizes

if TYPE_CHECKING:
    from ..reports import SizesReport
    from ..sizes import SizeResult, SizeSweep

SHOWN_ACCEPTED = 24  # accepted sizes listed in the text view (JSON lists every one)


def _what(report: SizesReport) -> str:
    if report.input_shape is None:
        tf = ", TensorFlow convention" if report.convention == "tf" else ""
        return f"{report.subject} ({report.dims}-d, every dimension the same size{tf})"
    axes = ", ".join(str(a) for a in report.axes)
    return f"{report.subject} on {sizes(report.input_shape)}, sizes on dim {axes}"


def sizes_view(report: SizesReport) -> Group:
    s = report.sweep
    total = s.high - s.low + 1
    parts: list[Any] = [line(f"sizes {s.low}..{s.high} through {_what(report)}", "dim"),
                        line(f"accepted: {s.rule} ({len(s.accepted):,} of {total:,})", "bold")]
    if s.same_size:
        parts.append(line(f"output equals input: {s.same_size_rule} ({len(s.wanted):,} of {total:,})", "bold"))
    wanted = set(s.wanted)
    accepted = [r for r in s.results if r.size in wanted]
    if accepted:
        table = PlainTable("accepted sizes" if not s.same_size else "sizes that keep their size")
        table.add_column("size", justify="right")
        table.add_column("output", justify="right")
        for r in accepted[:SHOWN_ACCEPTED]:
            table.add_row(str(r.size), sizes(r.out) if r.out else "-")
        parts.append(table)
        if len(accepted) > SHOWN_ACCEPTED:
            parts.append(line(f"... and {len(accepted) - SHOWN_ACCEPTED:,} more (--json lists every size)", "dim"))
    rejected = rejected_by_node(s)
    if rejected:
        table = PlainTable("rejected sizes, by the first node that fails")
        for name in ("sizes", "count", "node", "reason (at the first of them)"):
            table.add_column(name, justify="right" if name == "count" else "left")
        for rule, count, r in rejected:
            table.add_row(rule, f"{count:,}", r.node or "-", r.reason or "")
        parts.append(table)
    parts += [line(f"note: {w}", "yellow") for w in report.warnings]
    return Group(*parts)


def rejected_by_node(sweep: SizeSweep) -> list[tuple[str, int, SizeResult]]:
    """The rejected sizes grouped by the node that fails first: (their rule, how many, the first result)."""
    from ..sizes import size_rule

    groups: dict[str | None, list[SizeResult]] = {}
    for r in sweep.results:
        if not r.ok:
            groups.setdefault(r.node, []).append(r)
    return [(size_rule([r.size for r in group], sweep.low, sweep.high), len(group), group[0])
            for group in groups.values()]


def sizes_document(report: SizesReport) -> dict[str, Any]:
    """The ``convcalc.sizes/1`` JSON document (docs/architecture.md)."""
    s = report.sweep
    key = "out" if report.input_shape is None else "out_shape"
    subject: dict[str, Any] = {"layers": report.subject, "dims": report.dims, "convention": report.convention} \
        if report.input_shape is None else {"model": report.subject, "input": list(report.input_shape),
                                            "vary_dims": list(report.axes)}
    return {
        "schema": "convcalc.sizes/1",
        **subject,
        "range": [s.low, s.high],
        "accepted": s.accepted,
        "rule": s.rule,
        "same_size": {"sizes": s.wanted, "rule": s.same_size_rule} if s.same_size else None,
        "results": [{"size": r.size, "ok": r.ok, key: list(r.out) if r.out is not None else None, "node": r.node,
                     "reason": r.reason} for r in s.results],
        "warnings": list(report.warnings),
    }

