"""``convcalc out``: one layer's output size, with the formula and its numbers."""

from __future__ import annotations

from dataclasses import replace
from typing import Annotated, Any, Optional

import typer

from ..errors import ConvcalcError, ShapeError
from ..layer import POOLS, Layer, output_padding_for
from ..reports import OutReport
from ..render.out import out_document, out_view
from ..render.common import print_note
from .hints import channels_last, strided_same
from .typer_app import app, examples, finish
from .options import (CeilOpt, ConventionOpt, DeviceOpt, DilationOpt, DimsOpt, DtypeOpt, ExpectOpt, GroupsOpt,
                      JsonOpt, KernelOpt, NoBiasOpt, OpOpt, OptionalSizeIn, OutChannelsOpt, OutputPaddingOpt,
                      PaddingOpt, ShapeOpt, StrideOpt, VerifyOpt, channel_options, expected_size, input_of,
                      layer_from_options, per_dim_values, verify_device)

OUT_EXAMPLES = examples(
    ("convcalc out --in 256 -k 3 -d 2 -p 2", "dilated 3x3 keeps 256"),
    ("convcalc out --in 224x320 -k 1x7 -p 0x3", "per-dimension values"),
    "convcalc out --in 5 -k 2 -s 2 -p 1 --op max --ceil --dims 1",
    "convcalc out --in 64 -k 4 -s 2 -p 1 --op tconv --verify",
    "convcalc out --in 256 -k 3 -s 2 -p 1 --expect 128 --json",
    "convcalc out --shape 1x3x256x256 -k 3 -p 2 -d 2 --out-channels 64",
    "convcalc out --shape 8x32x56x56 -k 3 -p 1 --groups 32 --dtype float16",
    "convcalc out --in 5 -k 3 -s 2 -p 1 --op tconv --output-size 10",
    ("convcalc out --in 224 -k 3 -s 2 -p same --convention tf", "TensorFlow SAME"),
    ("convcalc out --in 100 -k 3 -d 4 -p causal --dims 1", "WaveNet"),
    "convcalc out --in 32 -k 3 -p 1 --padding-mode reflect --verify",
    notes="Defaults follow PyTorch: padding 0, dilation 1, stride 1 (pools: the kernel size).",
)
OutputSizeOpt = Annotated[Optional[str], typer.Option(
    "--output-size", help="tconv: the output size wanted; output_padding as torch's output_size= picks it.",
    show_default=False)]
PaddingModeOpt = Annotated[str, typer.Option(
    "--padding-mode", help="zeros, reflect, replicate or circular (conv; tconv takes zeros only).")]


@app.command(epilog=OUT_EXAMPLES)
def out(
    kernel_size: KernelOpt,
    in_size: OptionalSizeIn = None,
    stride: StrideOpt = None,
    padding: PaddingOpt = "0",
    dilation: DilationOpt = "1",
    op: OpOpt = "conv",
    output_padding: OutputPaddingOpt = "0",
    ceil: CeilOpt = False,
    output_size: OutputSizeOpt = None,
    padding_mode: PaddingModeOpt = "zeros",
    convention: ConventionOpt = "torch",
    dims: DimsOpt = None,
    shape: ShapeOpt = None,
    out_channels: OutChannelsOpt = None,
    groups: GroupsOpt = 1,
    no_bias: NoBiasOpt = False,
    dtype: DtypeOpt = "float32",
    expect: ExpectOpt = None,
    verify: VerifyOpt = False,
    device: DeviceOpt = "cpu",
    json_: JsonOpt = False,
) -> int:
    """Output size of one layer (Conv, ConvTranspose, MaxPool, AvgPool), with the formula and its numbers."""
    spatial, full = input_of(in_size, shape)
    if full is None and (note := channels_last(spatial, "out")):
        print_note(note)
    layer, size = layer_from_options(spatial, kernel_size, stride, padding, dilation, op, output_padding, ceil,
                                     dims, padding_mode, convention)
    if output_size is not None and output_padding != "0":
        raise ConvcalcError("give --output-padding or --output-size, not both")
    wanted = per_dim_values(output_size, "--output-size", layer.dims, "the layer") if output_size else None
    channels = channel_options(full, out_channels, groups, not no_bias, dtype)
    report = out_report(layer, size, expected_size(expect, layer.dims, full is not None),
                        verify_device(verify, device), full, channels, wanted)
    if report.error is not None:
        report = report._replace(hint=strided_same([layer], size))
    shown = report.error is None or report.answer is not None  # a bare rejection is its red line alone
    return finish(report, json_, out_document, out_view if shown else None)


def out_report(layer: Layer, size: tuple[int, ...], expected: tuple[int, ...] | None, device: str | None,
               shape: tuple[int, ...] | None = None, channels: dict[str, Any] | None = None,
               output_size: tuple[int, ...] | None = None) -> OutReport:
    """Our output size (or rejection), the channel side with ``shape``, and torch's answer on a device;
    with ``output_size`` the transposed conv's output_padding is the one torch picks for it."""
    cost = None
    asked = layer  # with output_size, torch gets the layer as given and picks output_padding itself
    try:
        if output_size is not None:
            layer = replace(layer, output_padding=output_padding_for(layer, size, output_size))
        result, error = layer.output_size(size), None
        if shape is not None:
            from ..cost import layer_cost

            cost = layer_cost(layer, shape, **(channels or {}))
    except ShapeError as exc:
        result, error = None, str(exc)
    if device is None:
        return OutReport(layer, size, result, error, expected, cost=cost, shape=shape, output_size=output_size)
    from ..torchcheck import Channels, judge, run_layer

    torch_channels = Channels()
    if shape is not None and channels is not None:
        out_channels = channels["out_channels"] or shape[1]
        torch_channels = Channels(shape[0], shape[1], shape[1] if layer.op in POOLS
                                  else out_channels, channels["groups"], channels["bias"])
    answer = run_layer(asked if output_size is not None else layer, size, result, device, torch_channels,
                       output_size)
    return OutReport(layer, size, result, error, expected, answer, judge([layer], result, answer, cost), cost, shape,
                     output_size)
