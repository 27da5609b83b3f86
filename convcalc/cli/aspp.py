"""``convcalc aspp``: atrous branches on a small feature map (DeepLabv3, section 3.3)."""

from __future__ import annotations

from typing import Annotated

import typer

from ..reports import AsppReport
from ..render.aspp import aspp_document, aspp_view
from ..spec import parse_size
from .typer_app import app, finish
from .options import JsonOpt, SizeIn, TapsOpt, VerifyOpt, parse_rates

ASPP_EXAMPLES = """\
[b]Examples[/b]

  convcalc aspp --in 33 --rates 6,12,18        [dim]# DeepLabv3, 513 crop at output stride 16: (513-1)/16+1 = 33[/dim]

  convcalc aspp --in 65x65 --rates 12,24,36    [dim]# output stride 8 (65x65): rates doubled[/dim]

  convcalc aspp --in 33 --rates 6,12,18,36 --verify --json
"""

RatesOpt = Annotated[str, typer.Option("--rates", help="The branches' rates, e.g. 6,12,18.")]


@app.command(epilog=ASPP_EXAMPLES)
def aspp(
    in_size: SizeIn,
    rates: RatesOpt,
    kernel_size: TapsOpt = 3,
    verify: VerifyOpt = False,
    json_: JsonOpt = False,
) -> int:
    """ASPP branches: the share of positions where all taps, or only the centre, fall on the feature map."""
    from ..aspp import aspp as branches_of

    size = parse_size(in_size, "--in")
    size = size if isinstance(size, tuple) else (size, size)
    branches = branches_of(size, parse_rates(rates, "--rates"), kernel_size)
    counts = None
    if verify:
        from ..torchmeasure import count_valid_taps

        counts = tuple(count_valid_taps(b.rate, b.in_size, b.kernel_size) for b in branches)
    return finish(AsppReport(branches, counts), json_, aspp_document, aspp_view)
