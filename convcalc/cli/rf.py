"""``convcalc rf``: receptive field, jump and start of a stack of layers, layer by layer."""

from __future__ import annotations

from typing import Annotated, Any, Optional

import typer

from ..errors import ConvcalcError, ShapeError
from ..layer import Layer, resolve_dims
from ..receptive import StackField
from ..reports import RfReport
from ..render.rf import rf_document, rf_view
from ..spec import parse_layers
from ..render.common import print_note
from .hints import channels_last, strided_same
from .typer_app import app, examples, finish
from .options import (ConventionOpt, parse_convention, DimsOpt, JsonOpt, NoBiasOpt, ShapeOpt, VerifyOpt, input_of, parse_padding,
                      parse_rates, per_dim_values)

RF_EXAMPLES = examples(
    ("convcalc rf --layers 3x3d1,3x3d2,3x3d5", "RF 17, jump 1"),
    ("convcalc rf --layers 3x3p1*2,max2,3x3p1*2,max2,3x3p1*3,max2 --in 224", "VGG"),
    "convcalc rf --layers 7x7s2p3,max3s2p1 --in 224 --unit 0,0",
    ("convcalc rf --layers 3x3d2*3 --verify", "holes, measured by gradient"),
    "convcalc rf --layers \"3x3, 3x3, tconv4x4 s2 p1\" --pad same --json",
    "convcalc rf --layers 3x3p1,max2 --shape 1x3x224x224 --channels 64",
    "convcalc rf --layers 7x7s2psame,max3s2psame --in 224 --convention tf",
    ("convcalc rf --layers 3pcausal,3d2pcausal --in 64 --unit 63 --dims 1", "TCN"),
    notes=("[b]Layer specs[/b]: \\[op] kernel {option} [*count], joined by commas. op: conv (default), "
           "tconv, max, avg. Options: s<stride> d<dilation> p<padding>|psame|pvalid|pcausal "
           "o<output padding> c (ceil_mode)."),
)

LayersOpt = Annotated[str, typer.Option("--layers", "-l", help="The stack, e.g. 3x3d1,3x3d2,3x3d5 (see below).")]
RfSizeIn = Annotated[Optional[str], typer.Option(
    "--in", help="Input size: adds each layer's output size; needed by --unit.")]
PadOpt = Annotated[Optional[str], typer.Option(
    "--pad", help="Padding of conv layers that give none: same, valid or a size.")]
UnitOpt = Annotated[Optional[str], typer.Option(
    "--unit", help="Output unit I[,J..]: the input box it sees (needs --in).")]
ChannelsOpt = Annotated[Optional[str], typer.Option(
    "--channels", help="Output channels of each conv / tconv in order, e.g. 64,64,128 (needs --shape).")]
ExpectRfOpt = Annotated[Optional[str], typer.Option(
    "--expect-rf", help="Expected receptive field: exit 1 when it differs.")]

@app.command(epilog=RF_EXAMPLES)
def rf(
    layers: LayersOpt,
    in_size: RfSizeIn = None,
    pad: PadOpt = None,
    unit: UnitOpt = None,
    expect_rf: ExpectRfOpt = None,
    dims: DimsOpt = None,
    shape: ShapeOpt = None,
    channels: ChannelsOpt = None,
    no_bias: NoBiasOpt = False,
    convention: ConventionOpt = "torch",
    verify: VerifyOpt = False,
    json_: JsonOpt = False,
) -> int:
    """Receptive field, jump and start of a stack of layers, layer by layer, with its holes."""
    from ..receptive import receptive_field, unit_box

    size, full = input_of(in_size, shape) if in_size is not None or shape is not None else (None, None)
    if full is None and (note := channels_last(size, "rf")):
        print_note(note)
    n = resolve_dims({"--in": size}, dims) if isinstance(size, tuple) or dims is not None else None
    stack = parse_layers(layers, n, parse_padding(pad, "--pad") if pad is not None else None, parse_convention(convention))
    try:
        field = receptive_field(stack, size)
    except ShapeError as exc:  # rejected on every input
        hint = strided_same(stack, None)
        raise ShapeError(f"{exc}; {hint}" if hint else str(exc)) from None
    index = per_dim_values(unit, "--unit", field.dims) if unit is not None else None
    boxes = unit_box(field, index) if index is not None else None
    expected = per_dim_values(expect_rf, "--expect-rf", field.dims) if expect_rf is not None else None
    costs = stack_costs_of(stack, full, channels, not no_bias)
    report = rf_report(stack, field, index, boxes, expected, verify, costs)
    if field.rejected is not None:
        rejected = field.rejected[0] - 1
        report = report._replace(hint=strided_same(stack[rejected:rejected + 1], field.outs[-1] if field.outs
                                                   else field.in_size))
    return finish(report, json_, rf_document, rf_view)


def stack_costs_of(stack: list[Layer], shape: tuple[int, ...] | None, channels: str | None, bias: bool) -> Any:
    """Per-layer shapes, parameters and MACs with ``--shape`` (and ``--channels``), else None."""
    if shape is None:
        if channels is not None or not bias:
            raise ConvcalcError(f"{'--channels' if channels is not None else '--no-bias'} needs --shape "
                                f"(N x C x spatial, e.g. 1x3x224x224)")
        return None
    from ..cost import stack_costs

    values = parse_rates(channels, "--channels") if channels is not None else None
    return stack_costs(stack, shape, values, bias)


def rf_report(stack: list[Layer], field: StackField, unit: Any, boxes: Any, expected: Any, verify: bool,
              costs: Any = None) -> RfReport:
    """The report for `convcalc rf`; with --verify, torch runs the stack and measures its field."""
    if not verify:
        return RfReport(field, unit, boxes, expected, costs=costs)
    from ..torchcheck import judge, run_stack
    from ..torchmeasure import measure_field

    answer = verdict = None
    if field.in_size is not None:
        ran = stack[:len(field.layers)] if field.rejected is None else stack[:field.rejected[0]]
        answer = run_stack(ran, field.in_size, [f.out for f in field.layers])
        verdict = judge(ran, field.out, answer)
    return RfReport(field, unit, boxes, expected, answer, verdict, measure_field(stack), costs)
