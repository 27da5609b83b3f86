"""``convcalc design``: dilation schedules that reach a receptive field with no holes."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from ..design import design as search
from ..errors import ConvcalcError
from ..render.common import print_note
from ..reports import DesignReport
from ..render.design import design_document, design_view
from .options import JsonOpt, TapsOpt
from .typer_app import app, examples, finish

DESIGN_EXAMPLES = examples(
    ("convcalc design --rf 1000", "fewest 3x3 layers, field >= 1000"),
    ("convcalc design --depth 8 --map 65", "largest field of 8 layers, 65x65 map"),
    ("convcalc design --rf 60 --depth 4 --hdc", "4 layers, HDC's M_2 <= 3 too"),
    "convcalc design --rf 200 -k 2 --max-rate 16 --top 3 --json",
    notes="Exit code 1 when no schedule satisfies the constraints (it says how far they get).",
)

def _depth(depth: int | None, layers: str | None) -> int | None:
    """``--depth N``; ``--layers N``, its old name, still works and says what it is now."""
    if layers is None:
        return depth
    if depth is not None:
        raise ConvcalcError("give --depth, not both --depth and --layers (the same count)")
    text = layers.strip()
    if not text.isdigit():
        raise ConvcalcError(f"design --layers takes a count of layers (now named --depth), got {layers!r}; a "
                            f"layer spec such as 3x3d1,3x3d2 is convcalc rf --layers")
    print_note(f"design --layers {text} is --depth {text}: the count of layers (rf --layers takes a layer spec)")
    return int(text)


RfOpt = Annotated[Optional[int], typer.Option("--rf", help="Receptive field to reach (at least).", show_default=False)]
DepthOpt = Annotated[Optional[int], typer.Option("--depth", help="Exactly this many layers \\[default: the fewest].",
                                                 show_default=False)]
LayersAlias = Annotated[Optional[str], typer.Option("--layers", hidden=True, show_default=False, help=(
    "The old name of --depth (a count here; rf --layers takes a layer spec)."))]
MapOpt = Annotated[Optional[int], typer.Option("--map", help="Feature-map size M: every rate must be below M.",
                                               show_default=False)]
MaxRateOpt = Annotated[Optional[int], typer.Option("--max-rate", help="Largest rate allowed.", show_default=False)]
HdcOpt = Annotated[bool, typer.Option("--hdc", help="Also require HDC's M_2 <= K (on the ascending list).")]
TopOpt = Annotated[int, typer.Option("--top", help="How many schedules to list, best first.")]


@app.command(epilog=DESIGN_EXAMPLES)
def design(
    rf: RfOpt = None,
    kernel_size: TapsOpt = 3,
    depth: DepthOpt = None,
    layers: LayersAlias = None,
    map_size: MapOpt = None,
    max_rate: MaxRateOpt = None,
    hdc: HdcOpt = False,
    top: TopOpt = 10,
    json_: JsonOpt = False,
) -> int:
    """Dilation rates that reach a receptive field with no holes: the optimal schedules, and why."""
    result = search(kernel_size, rf, _depth(depth, layers), map_size, max_rate, hdc, top)
    return finish(DesignReport(result), json_, design_document, design_view)
