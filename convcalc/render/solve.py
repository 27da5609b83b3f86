"""``convcalc solve``: the best layers as ready-to-paste torch code, and the count; and the
``convcalc.solve/1`` document listing them all (docs/design.md, "JSON")."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rich.console import Group

from ..padding import pad_tuple
from .common import line, sizes

if TYPE_CHECKING:
    from ..reports import SolveReport
    from ..solve import Solution

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
        parts.append(line(f"{shown}, in order: symmetric padding, fewer taps, dilation 1, smaller stride, smaller "
                          f"padding, no output_padding", "dim"))
    width = len(str(min(report.top, r.count)))
    for i, s in enumerate(r.solutions[:report.top], 1):
        parts.append(line(f"{i:>{width}}. {s.torch}{_note(s)}"))
    if r.count > report.top:
        parts.append(line(f"... and {r.count - report.top:,} more (--top N shows more; --json lists them all)",
                          "dim"))
    return Group(*parts)


def _note(s: Solution) -> str:
    if s.options[0].tf:
        return f"   # TensorFlow '{s.options[0].tf.upper()}'"
    return "" if s.symmetric else "   # unequal padding: F.pad first"


def _solution_json(s: Solution) -> dict[str, Any]:
    layer = s.layer
    pads = layer.pads_on(s.in_size)
    return {"op": layer.op, "kernel_size": list(layer.kernel_size), "stride": list(layer.stride),
            "padding": [list(p) for p in pads], "dilation": list(layer.dilation),
            "output_padding": list(layer.output_padding), "ceil_mode": layer.ceil_mode, "symmetric": s.symmetric,
            "torch": s.torch, "pad": list(pad_tuple(pads)) if layer.pads_first else None}


def solve_document(report: SolveReport) -> dict[str, Any]:
    """The ``convcalc.solve/1`` JSON document (docs/design.md)."""
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
