"""``convcalc solve``: the best layers as ready-to-paste torch code, and the count; and the
``convcalc.solve/1`` document listing them all (docs/architecture.md, "JSON")."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rich.console import Group

from ..padding import pad_tuple
from ..solve import op_order
from .common import PlainTable, line, sizes

if TYPE_CHECKING:
    from ..reports import SolveReport
    from ..solve import Solution, SolveResult

WORDS = {"conv": "conv", "conv_transpose": "transposed conv", "max_pool": "max pool", "avg_pool": "avg pool"}


def solve_view(report: SolveReport) -> Group:
    """How many layers map the sizes, then the best ``top`` as code, numbered."""
    r = report.result
    what = WORDS[r.op] if r.op else "layer"
    bounds = f"kernel <= {r.bounds.kernel_size}, stride <= {r.bounds.stride}, dilation <= {r.bounds.dilation}"
    convention = ", TensorFlow 'SAME'/'VALID' padding" if r.convention == "tf" else ""
    verb = "maps" if r.count == 1 else "map"
    parts: list[Any] = [line(f"{r.count:,} {what}{'s' if r.count != 1 else ''} {verb} {sizes(r.in_size)} to "
                             f"{sizes(r.out_size)} ({bounds}{convention})", "bold")]
    if r.count:
        shown = f"the best {report.top}" if r.count > report.top else "all"
        parts.append(line(f"{shown}, in order: {_order(r)}", "dim"))
    if r.count:
        listing = PlainTable(None, box=None, show_header=False, padding=(0, 1, 0, 0), pad_edge=False)
        listing.add_column(justify="right")
        listing.add_column()  # the code wraps under itself on a narrow terminal
        for i, s in enumerate(r.solutions[:report.top], 1):
            listing.add_row(f"{i}.", f"{s.torch}{_note(s)}")
        parts.append(listing)
    if r.count > report.top:
        parts.append(line(f"... and {r.count - report.top:,} more (--top N shows more; --json lists them all)",
                          "dim"))
    return Group(*parts)


def _order(r: SolveResult) -> str:
    """The ranking, as it applies to the ops listed (Solution.rank)."""
    ops = {s.options[0].op for s in r.solutions}
    first = []
    if len(ops) > 1:
        first.append(f"{WORDS[op_order(r.in_size, r.out_size)[0]]}s first")
    if "conv_transpose" in ops:
        first += ["out = stride x in for every input size", "no output gaps"]
    return ", ".join(first + ["symmetric padding", "fewer taps", "dilation 1", "smaller stride", "smaller padding",
                              "no output_padding"])


def _note(s: Solution) -> str:
    if s.options[0].tf:
        return f"   # TensorFlow '{s.options[0].tf.upper()}'"
    if s.options[0].op == "conv_transpose":
        factor = "x".join(str(o.stride) for o in s.options) if len({o.stride for o in s.options}) > 1 else \
            str(s.options[0].stride)
        gaps = "; leaves output positions no input reaches" if s.leaves_gaps else ""
        if s.scales:
            return f"   # out = {factor} x in for every input size{gaps}"
        return f"   # fits {sizes(s.in_size)} only (out = {factor} x in + {_offset(s)} elsewhere){gaps}"
    return "" if s.symmetric else "   # unequal padding: F.pad first"


def _offset(s: Solution) -> str:
    """``e + output_padding - s - 2p`` per dimension: what a transposed conv adds beyond ``s x in``."""
    values = [o.dilation * (o.kernel_size - 1) + 1 + o.output_padding - o.stride - 2 * o.pads[0] for o in s.options]
    return str(values[0]) if len(set(values)) == 1 else "x".join(map(str, values))


def _solution_json(s: Solution) -> dict[str, Any]:
    layer = s.layer
    pads = layer.pads_on(s.in_size)
    return {"op": layer.op, "kernel_size": list(layer.kernel_size), "stride": list(layer.stride),
            "padding": [list(p) for p in pads], "dilation": list(layer.dilation),
            "output_padding": list(layer.output_padding), "ceil_mode": layer.ceil_mode, "symmetric": s.symmetric,
            "torch": s.torch, "pad": list(pad_tuple(pads)) if s.pad is not None else None, "scales": s.scales,
            "leaves_gaps": s.leaves_gaps}


def solve_document(report: SolveReport) -> dict[str, Any]:
    """The ``convcalc.solve/1`` JSON document (docs/architecture.md)."""
    r = report.result
    return {
        "schema": "convcalc.solve/1",
        "in": list(r.in_size),
        "out": list(r.out_size),
        "op": r.op,
        "convention": r.convention,
        "bounds": {"kernel_size": r.bounds.kernel_size, "stride": r.bounds.stride, "dilation": r.bounds.dilation},
        "count": r.count,
        "solutions": [_solution_json(s) for s in r.solutions],
        "reason": r.reason,
    }
