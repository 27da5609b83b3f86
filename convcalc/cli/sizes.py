"""``convcalc sizes``: which input sizes a stack of layers accepts, and what each gives."""

from __future__ import annotations

from typing import Annotated

import typer

from ..reports import SizesReport
from ..render.sizes import sizes_document, sizes_view
from ..sizes import parse_range, stack_sizes
from ..spec import parse_layers
from .options import ConventionOpt, DimsOpt, JsonOpt, parse_convention
from .typer_app import app, examples, finish

SIZES_EXAMPLES = examples(
    ("convcalc sizes --layers 3x3p1,max2,3x3p1,max2", "multiples of 4 from 4"),
    "convcalc sizes --layers 5x5,max2,5x5,max2 --range 1..64 --dims 2",
    "convcalc sizes --layers 3x3p1,max2,tconv2s2 --range 1..256 --same-size",
    "convcalc sizes --layers 7x7s2psame,max3s2psame --convention tf --json",
    notes=("Each size n is given to every spatial dimension. Exit code 1 when no size in the range is "
           "accepted (with --same-size: when none keeps its size). For a model: convcalc inspect MODEL "
           "--input ... --sizes A..B."),
)

LayersOpt = Annotated[str, typer.Option("--layers", "-l", help="The stack, e.g. 3x3p1,max2 (see convcalc rf).")]
RangeOpt = Annotated[str, typer.Option("--range", help="Input sizes A..B to try, e.g. 1..4096.")]
SameSizeOpt = Annotated[bool, typer.Option("--same-size", help="Also: which sizes give an output of the same size.")]


@app.command(epilog=SIZES_EXAMPLES)
def sizes(
    layers: LayersOpt,
    range_: RangeOpt = "1..1024",
    dims: DimsOpt = None,
    same_size: SameSizeOpt = False,
    convention: ConventionOpt = "torch",
    json_: JsonOpt = False,
) -> int:
    """Which input sizes a stack of layers accepts: the rule, and the output of each size."""
    low, high = parse_range(range_)
    convention = parse_convention(convention)
    stack = parse_layers(layers, dims, None, convention)
    n = stack[0].dims if stack else (dims or 2)
    sweep = stack_sizes(stack, low, high, n, same_size)
    report = SizesReport(sweep, layers, dims=n, convention=convention)
    return finish(report, json_, sizes_document, sizes_view)
