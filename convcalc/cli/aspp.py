"""``convcalc aspp``: atrous branches on a small feature map (DeepLabv3, section 3.3)."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from ..errors import ConvcalcError
from ..reports import AsppReport
from ..render.aspp import aspp_document, aspp_view
from ..spec import parse_size
from .typer_app import Command, app, examples, finish
from .options import JsonOpt, SizeIn, TapsOpt, VerifyOpt, joined_rates, parse_rates

ASPP_EXAMPLES = examples(
    ("convcalc aspp --in 33 6,12,18", "DeepLabv3 at output stride 16"),
    ("convcalc aspp --in 65 12,24,36", "output stride 8: rates doubled"),
    "convcalc aspp --in 33 --rates 6,12,18,36 --verify --json",
    notes=("A 513x513 crop at output stride 16 gives (513-1)/16+1 = 33. A branch is degenerate when only "
           "its centre tap lands on the map."),
)

RatesArg = Annotated[Optional[list[str]], typer.Argument(metavar="RATES", show_default=False, help=(
    "The branches' rates: 6,12,18 (or 6 12 18); --rates works too."))]
RatesOpt = Annotated[Optional[str], typer.Option("--rates", help="The branches' rates, e.g. 6,12,18.",
                                                 show_default=False)]


@app.command(cls=Command, epilog=ASPP_EXAMPLES)
def aspp(
    in_size: SizeIn,
    rate_words: RatesArg = None,
    rates: RatesOpt = None,
    kernel_size: TapsOpt = 3,
    verify: VerifyOpt = False,
    json_: JsonOpt = False,
) -> int:
    """ASPP branches: the share of positions where all taps, or only the centre, fall on the feature map."""
    from ..aspp import aspp as branches_of

    size = parse_size(in_size, "--in")
    size = size if isinstance(size, tuple) else (size, size)
    text, name = joined_rates(rate_words, rates)
    if not text:
        raise ConvcalcError(f"no rates given: give the branches' rates, e.g. convcalc aspp --in {in_size} 6,12,18 "
                            f"(or --rates 6,12,18)")
    branches = branches_of(size, parse_rates(text, name), kernel_size)
    counts = None
    if verify:
        from ..torchmeasure import count_valid_taps

        counts = tuple(count_valid_taps(b.rate, b.in_size, b.kernel_size) for b in branches)
    return finish(AsppReport(branches, counts), json_, aspp_document, aspp_view)
