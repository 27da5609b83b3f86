"""``convcalc design``: dilation schedules that reach a receptive field with no holes."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from ..design import design as search
from ..reports import DesignReport
from ..render.design import design_document, design_view
from .options import JsonOpt, TapsOpt
from .typer_app import app, finish

DESIGN_EXAMPLES = """\
[b]Examples[/b]

  convcalc design --rf 1000                    [dim]# fewest 3x3 layers whose field is >= 1000, no holes[/dim]

  convcalc design --layers 8 --map 65          [dim]# the largest field of 8 layers on a 65x65 map[/dim]

  convcalc design --rf 60 --layers 4 --hdc     [dim]# exactly 4 layers, HDC's M_2 <= 3 too[/dim]

  convcalc design --rf 200 -k 2 --max-rate 16 --top 3 --json

Exit code 1 when no schedule satisfies the constraints (it says how far they get).
"""

RfOpt = Annotated[Optional[int], typer.Option("--rf", help="Receptive field to reach (at least).", show_default=False)]
LayersOpt = Annotated[Optional[int], typer.Option("--layers", help="Exactly this many layers \\[default: the fewest].",
                                                  show_default=False)]
MapOpt = Annotated[Optional[int], typer.Option("--map", help="Feature-map size M: every rate must be below M.",
                                               show_default=False)]
MaxRateOpt = Annotated[Optional[int], typer.Option("--max-rate", help="Largest rate allowed.", show_default=False)]
HdcOpt = Annotated[bool, typer.Option("--hdc", help="Also require HDC's M_2 <= K (on the ascending list).")]
TopOpt = Annotated[int, typer.Option("--top", help="How many schedules to list, best first.")]


@app.command(epilog=DESIGN_EXAMPLES)
def design(
    rf: RfOpt = None,
    kernel_size: TapsOpt = 3,
    layers: LayersOpt = None,
    map_size: MapOpt = None,
    max_rate: MaxRateOpt = None,
    hdc: HdcOpt = False,
    top: TopOpt = 10,
    json_: JsonOpt = False,
) -> int:
    """Dilation rates that reach a receptive field with no holes: the optimal schedules, and why."""
    result = search(kernel_size, rf, layers, map_size, max_rate, hdc, top)
    return finish(DesignReport(result), json_, design_document, design_view)
