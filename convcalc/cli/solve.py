"""``convcalc solve``: which layers map an input size to an output size."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from ..errors import ConvcalcError
from ..reports import SolveReport
from ..render.solve import solve_document, solve_view
from ..solve import Bounds
from ..solve import solve as search
from .options import OPS, ConventionOpt, DimsOpt, JsonOpt, parse_convention, per_dim_values
from .typer_app import app, examples, finish

SOLVE_EXAMPLES = examples(
    ("convcalc solve --in 224 --out 112 -k 3 -s 2", "which padding; the odd pixel"),
    ("convcalc solve --in 7 --out 14 --op tconv", "which ConvTranspose2d doubles"),
    ("convcalc solve --in 224 --out 112 -k 3 -s 2 --convention tf", "TF SAME"),
    "convcalc solve --in 224x320 --out 112x160 --op conv --top 5 --json",
    notes="Exit code 1 when no layer within the bounds fits (it says why).",
)

InOpt = Annotated[str, typer.Option("--in", help="Input size: 224, 224x320 (per dim).", show_default=False)]
OutOpt = Annotated[str, typer.Option("--out", help="Output size wanted: 112, 112x160 (per dim).",
                                     show_default=False)]
SolveOpOpt = Annotated[Optional[str], typer.Option("--op", help="conv, tconv, max or avg \\[default: every op].",
                                                   show_default=False)]
FixedKernel = Annotated[Optional[str], typer.Option("-k", "--kernel-size", help="Fix the kernel size (3 or 1x7).",
                                                    show_default=False)]
FixedStride = Annotated[Optional[str], typer.Option("-s", "--stride", help="Fix the stride.", show_default=False)]
FixedDilation = Annotated[Optional[str], typer.Option("-d", "--dilation", help="Fix the dilation.",
                                                      show_default=False)]
FixedPadding = Annotated[Optional[str], typer.Option("-p", "--padding", help="Fix a symmetric padding.",
                                                     show_default=False)]
MaxKernel = Annotated[int, typer.Option("--max-kernel", help="Largest kernel size searched.")]
MaxStride = Annotated[int, typer.Option("--max-stride", help="Largest stride searched.")]
MaxDilation = Annotated[int, typer.Option("--max-dilation", help="Largest dilation searched.")]
TopOpt = Annotated[int, typer.Option("--top", help="How many layers to show, best first.")]


@app.command(epilog=SOLVE_EXAMPLES)
def solve(
    in_size: InOpt,
    out_size: OutOpt,
    op: SolveOpOpt = None,
    kernel_size: FixedKernel = None,
    stride: FixedStride = None,
    dilation: FixedDilation = None,
    padding: FixedPadding = None,
    dims: DimsOpt = None,
    max_kernel: MaxKernel = 7,
    max_stride: MaxStride = 4,
    max_dilation: MaxDilation = 4,
    convention: ConventionOpt = "torch",
    top: TopOpt = 10,
    json_: JsonOpt = False,
) -> int:
    """Which layers map an input size to an output size: every PyTorch-valid one within bounds, ranked."""
    if op is not None and op.lower() not in OPS:
        raise ConvcalcError(f"unknown --op {op!r}: expected conv, tconv, max or avg")
    if top < 1:
        raise ConvcalcError(f"--top must be at least 1, got {top}")
    from ..layer import resolve_dims
    from ..spec import parse_size

    given = {name: parse_size(text, flag) if text is not None else None for name, text, flag in (
        ("in", in_size, "--in"), ("out", out_size, "--out"), ("kernel_size", kernel_size, "--kernel-size"),
        ("stride", stride, "--stride"), ("dilation", dilation, "--dilation"), ("padding", padding, "--padding"))}
    n = resolve_dims({f"--{k.replace('_size', '').replace('_', '-')}": v for k, v in given.items()}, dims)
    result = search(per_dim_values(in_size, "--in", n, "the sizes"), per_dim_values(out_size, "--out", n, "the sizes"),
                    OPS[op.lower()] if op else None, given["kernel_size"], given["stride"], given["dilation"],
                    given["padding"], Bounds(max_kernel, max_stride, max_dilation), parse_convention(convention))
    return finish(SolveReport(result, top), json_, solve_document, solve_view)
