"""``convcalc gridding``: does a stack of dilated convolutions leave holes?"""

from __future__ import annotations

from typing import Annotated

import typer

from ..layer import Layer
from ..reports import RatesReport
from ..render.gridding import gridding_document, gridding_view
from .typer_app import Command, app, examples, finish
from .options import JsonOpt, TapsOpt, VerifyOpt, joined_rates, parse_rates

GRIDDING_EXAMPLES = examples(
    ("convcalc gridding 2,2,2", "grids: gcd 2, though HDC's M_2 = 2 <= 3"),
    ("convcalc gridding 1,2,5", "covers every offset of its 17-wide field"),
    ("convcalc gridding 1 2 9 --json", "holes, and M_2 = 5 > 3"),
    "convcalc gridding 1,2,4,8,16,32,64,128,256,512 -k 2",
    "convcalc gridding 2,2,2 --exit-zero --verify",
    notes="Exit code 1 when the rates grid (as a linter does); --exit-zero keeps 0.",
)

RatesArg = Annotated[list[str], typer.Argument(metavar="RATES", show_default=False, help=(
    "Dilation rates of the stacked layers: 2,2,2 or 1,2,5 (or 1 2 5)."))]
ExitZeroOpt = Annotated[bool, typer.Option("--exit-zero", help="Exit 0 even when the rates grid.")]


@app.command(cls=Command, epilog=GRIDDING_EXAMPLES)
def gridding(
    rates: RatesArg,
    kernel_size: TapsOpt = 3,
    exit_zero: ExitZeroOpt = False,
    verify: VerifyOpt = False,
    json_: JsonOpt = False,
) -> int:
    """Does a stack of dilated convolutions leave holes? Common factor, HDC criterion, exact coverage, repairs."""
    from ..gridding import covered_runs
    from ..gridding import gridding as analyse

    analysis = analyse(parse_rates(*joined_rates(rates)), kernel_size)
    measured = None
    if verify:
        from ..torchmeasure import measure_field

        measured = measure_field([Layer.build(kernel_size, dilation=rate, dims=1) for rate in analysis.rates])
    runs = covered_runs([(r, kernel_size) for r in analysis.rates])
    return finish(RatesReport(analysis, runs, measured, exit_zero), json_, gridding_document, gridding_view)
