"""The Typer app: thin commands that parse options, call the core and hand the result to render.

Exit codes (DESIGN.md): 0 all good; 1 an expectation or check failed; 2 bad input or a layer PyTorch
would reject; 3 ``--verify`` found torch disagreeing; 4 a bug in convcalc (one line; CONVCALC_DEBUG=1
shows the traceback).
"""

from __future__ import annotations

import copy
import gc
import os
import sys
from collections.abc import Callable
from typing import Annotated, Any, Optional

import typer
from typer.core import TyperGroup

from . import __version__
from .errors import ConvcalcError, ShapeError, SpecError
from .layer import POOLS, Layer, resolve_dims
from .spec import parse_layers, parse_shape, parse_size

OK, FAILED, BAD_INPUT, DISAGREES, INTERNAL_ERROR = 0, 1, 2, 3, 4

OPS = {"conv": "conv", "tconv": "conv_transpose", "conv_transpose": "conv_transpose",
       "max": "max_pool", "max_pool": "max_pool", "avg": "avg_pool", "avg_pool": "avg_pool"}


class ConvcalcGroup(TyperGroup):
    """Turns every usage error and ConvcalcError into one red line and exit code 2, never a traceback."""

    def main(self, args: Any = None, prog_name: Any = None, complete_var: Any = None,
             standalone_mode: bool = True, **extra: Any) -> Any:
        args = list(sys.argv[1:] if args is None else args)
        sys.set_int_max_str_digits(max(sys.get_int_max_str_digits(), 100_000))  # exact products of big sizes
        try:
            code = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except typer.TyperException as exc:
            code = _usage_error(exc, json_mode="--json" in args)
        except ConvcalcError as exc:
            code = report_error(exc, json_mode="--json" in args)
        except typer.Abort:
            code = 130
        except Exception as exc:  # a bug in convcalc: one line, and the traceback on request
            if os.environ.get("CONVCALC_DEBUG"):
                raise
            from .render import print_error

            print_error(f"internal error: {type(exc).__name__}: {exc} (a bug in convcalc; run with "
                        f"CONVCALC_DEBUG=1 for the traceback, and please report it)")
            code = INTERNAL_ERROR
        code = code if isinstance(code, int) else OK
        if standalone_mode:
            sys.exit(code)
        return code


def _usage_error(exc: typer.TyperException, json_mode: bool) -> int:
    ctx = getattr(exc, "ctx", None)
    if type(exc).__name__ == "NoArgsIsHelpError":
        return exc.exit_code  # the help was printed when the error was made
    hint = f" (see '{ctx.command_path} --help')" if ctx is not None else ""
    return report_error(ConvcalcError(exc.format_message() + hint), json_mode,
                        getattr(exc, "exit_code", BAD_INPUT))


def report_error(exc: ConvcalcError, json_mode: bool, code: int = BAD_INPUT) -> int:
    """The red line on stderr (and, with --json, an error document on stdout); returns the exit code."""
    from .render import print_error, print_json

    reason = exc.reason if isinstance(exc, SpecError) else str(exc)
    detail = exc.pointer() if isinstance(exc, SpecError) else None
    print_error(reason, detail)
    if json_mode:
        document = {"schema": "convcalc.error/1", "error": reason, "exit_code": code}
        if isinstance(exc, SpecError) and exc.text is not None:
            document.update(text=exc.text, position=exc.position)
        print_json(document)
    return code


def _version(value: bool) -> None:
    if value:
        typer.echo(f"convcalc {__version__}")
        raise typer.Exit()


app = typer.Typer(
    cls=ConvcalcGroup,
    name="convcalc",
    help="Exact PyTorch output sizes, receptive fields and dilation gridding for CNN layers.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
    context_settings={"help_option_names": ["-h", "--help"]},
)


@app.callback()
def _main(
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                          help="Show the version and exit.")] = False,
) -> None:
    """convcalc: answers about convolutional layers, exactly as PyTorch computes them."""


# Shared options: declared once, used by every command that takes them.
SizeIn = Annotated[str, typer.Option("--in", help="Input size: 256, 256x256 or 224,224 (per dim).")]
OptionalSizeIn = Annotated[Optional[str], typer.Option(
    "--in", help="Input size: 256, 256x256 or 224,224 (per dim); or give --shape.")]
ShapeOpt = Annotated[Optional[str], typer.Option(
    "--shape", help="Full input shape N x C x spatial: 1x3x256x256, [1, 3, 256, 256] or torch.Size([...]).")]
OutChannelsOpt = Annotated[Optional[int], typer.Option(
    "--out-channels", help="Output channels \\[default: the input's] (needs --shape).")]
GroupsOpt = Annotated[int, typer.Option("--groups", help="Convolution groups (needs --shape).")]
NoBiasOpt = Annotated[bool, typer.Option("--no-bias", help="No bias parameters (needs --shape).")]
DtypeOpt = Annotated[str, typer.Option(
    "--dtype", help="float32, float16, bfloat16 or float64, for the output's bytes (needs --shape).")]
KernelOpt = Annotated[str, typer.Option("-k", "--kernel-size", help="Kernel size, e.g. 3 or 1x7.")]
StrideOpt = Annotated[Optional[str], typer.Option(
    "-s", "--stride", help="Stride \\[default: 1; pools: the kernel size].")]
PaddingOpt = Annotated[str, typer.Option("-p", "--padding", help="Padding: a size, 'same' or 'valid'.")]
DilationOpt = Annotated[str, typer.Option("-d", "--dilation", help="Dilation (atrous rate).")]
OpOpt = Annotated[str, typer.Option("--op", help="conv, tconv (ConvTranspose), max or avg (pooling).")]
OutputPaddingOpt = Annotated[str, typer.Option("--output-padding", help="Output padding (tconv only).")]
CeilOpt = Annotated[bool, typer.Option("--ceil", help="ceil_mode (pools only).")]
DimsOpt = Annotated[Optional[int], typer.Option(
    "--dims", help="Spatial dimensions 1, 2 or 3 \\[default: from the sizes, else 2].")]
ExpectOpt = Annotated[Optional[str], typer.Option(
    "--expect", help="Expected output size: exit 1 when it differs.")]
VerifyOpt = Annotated[bool, typer.Option("--verify", help="Check the answer with a real torch layer.")]
DeviceOpt = Annotated[str, typer.Option("--device", help="Device for --verify: cpu or cuda.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON document and nothing else.")]

OUT_EXAMPLES = """\
[b]Examples[/b]

  convcalc out --in 256 -k 3 -d 2 -p 2          [dim]# dilated 3x3 keeps 256[/dim]

  convcalc out --in 224x320 -k 1x7 -p 0x3       [dim]# per-dimension values[/dim]

  convcalc out --in 5 -k 2 -s 2 -p 1 --op max --ceil --dims 1

  convcalc out --in 64 -k 4 -s 2 -p 1 --op tconv --verify

  convcalc out --in 256 -k 3 -s 2 -p 1 --expect 128 --json

  convcalc out --shape "torch.Size([1, 3, 256, 256])" -k 3 -p 2 -d 2 --out-channels 64

  convcalc out --shape 8x32x56x56 -k 3 -p 1 --groups 32 --out-channels 64 --dtype float16
"""


def layer_from_options(in_value: int | tuple[int, ...], kernel: str, stride: str | None, padding: str,
                       dilation: str, op: str, output_padding: str, ceil: bool, dims: int | None,
                       ) -> tuple[Layer, tuple[int, ...]]:
    """Parse the shared layer options into a Layer and a per-dimension input size."""
    if op.lower() not in OPS:
        raise ConvcalcError(f"unknown --op {op!r}: expected conv, tconv, max or avg")
    values = {
        "input size": in_value,
        "kernel_size": parse_size(kernel, "--kernel-size"),
        "stride": parse_size(stride, "--stride") if stride is not None else None,
        "padding": parse_padding(padding, "--padding"),
        "dilation": parse_size(dilation, "--dilation"),
        "output_padding": parse_size(output_padding, "--output-padding"),
    }
    n = resolve_dims(values, dims)
    layer = Layer.build(values["kernel_size"], values["stride"], values["padding"], values["dilation"],
                        op=OPS[op.lower()], output_padding=values["output_padding"], ceil_mode=ceil, dims=n)
    return layer, in_value if isinstance(in_value, tuple) else (in_value,) * n


def input_of(in_text: str | None, shape_text: str | None) -> tuple[int | tuple[int, ...], tuple[int, ...] | None]:
    """``--in`` or ``--shape`` (N x C x spatial): the spatial input, and the full shape if given."""
    if shape_text is None:
        if in_text is None:
            raise ConvcalcError("give the input size: --in SIZE (e.g. 256x256) or --shape N x C x SIZE "
                                "(e.g. 1x3x256x256)")
        return parse_size(in_text, "--in"), None
    shape = parse_shape(shape_text, "--shape")
    if len(shape) < 3:
        raise ConvcalcError(f"--shape {shape_text} has rank {len(shape)}: expected N x C and 1 to 3 spatial sizes")
    if in_text is not None:
        spatial = parse_size(in_text, "--in")
        if (spatial if isinstance(spatial, tuple) else (spatial,) * (len(shape) - 2)) != shape[2:]:
            raise ConvcalcError(f"--in {in_text} disagrees with the spatial sizes of --shape {shape_text}")
    return shape[2:], shape


def expected_size(text: str | None, dims: int, full: bool = False) -> tuple[int, ...] | None:
    """``--expect`` as one size per dimension (a scalar applies to all); with ``--shape`` it may also
    be a full N x C x spatial shape."""
    if text is None:
        return None
    if not full or text.strip().isdigit():
        return per_dim_values(text, "--expect", dims, "the layer")
    shape = parse_shape(text, "--expect")
    if len(shape) not in (dims, dims + 2):
        raise ConvcalcError(f"--expect has {len(shape)} dimensions, the layer has {dims}")
    return shape


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
    layer, size = layer_from_options(spatial, kernel_size, stride, padding, dilation, op, output_padding, ceil,
                                     dims)
    channels = channel_options(full, out_channels, groups, not no_bias, dtype)
    report = out_report(layer, size, expected_size(expect, layer.dims, full is not None),
                        verify_device(verify, device), full, channels)
    return show_out(report, json_)


def channel_options(shape: tuple[int, ...] | None, out_channels: int | None, groups: int, bias: bool,
                    dtype: str) -> dict[str, Any]:
    """``--out-channels``, ``--groups``, ``--no-bias`` and ``--dtype``, which need ``--shape``."""
    given = [name for name, used in (("--out-channels", out_channels is not None), ("--groups", groups != 1),
                                     ("--no-bias", not bias), ("--dtype", dtype != "float32")) if used]
    if shape is None and given:
        raise ConvcalcError(f"{given[0]} needs --shape (N x C x spatial, e.g. 1x3x256x256)")
    return {"out_channels": out_channels, "groups": groups, "bias": bias, "dtype": dtype.lower()}


def verify_device(verify: bool, device: str) -> str | None:
    """The device to verify on, or None without --verify (where --device makes no sense)."""
    if not verify and device != "cpu":
        raise ConvcalcError("--device applies only with --verify")
    return device if verify else None


def out_report(layer: Layer, size: tuple[int, ...], expected: tuple[int, ...] | None, device: str | None,
               shape: tuple[int, ...] | None = None, channels: dict[str, Any] | None = None) -> Any:
    """Our output size (or rejection), the channel side with ``shape``, and torch's answer on a device."""
    from .render import OutReport

    cost = None
    try:
        result, error = layer.output_size(size), None
        if shape is not None:
            from .cost import layer_cost

            cost = layer_cost(layer, shape, **(channels or {}))
    except ShapeError as exc:
        result, error = None, str(exc)
    if device is None:
        return OutReport(layer, size, result, error, expected, cost=cost, shape=shape)
    from .torchcheck import Channels, judge, run_layer

    torch_channels = Channels()
    if shape is not None and channels is not None:
        out_channels = channels["out_channels"] or shape[1]
        torch_channels = Channels(shape[0], shape[1], shape[1] if layer.op in POOLS
                                  else out_channels, channels["groups"], channels["bias"])
    answer = run_layer(layer, size, result, device, torch_channels)
    return OutReport(layer, size, result, error, expected, answer, judge([layer], result, answer, cost), cost, shape)


def show_out(report: Any, json_mode: bool) -> int:
    """Print the report (a table, or the JSON document) and the one-line verdict; return the exit code."""
    from .render import out_document, out_view, sizes

    rejection = failure = None
    if report.error is not None:
        rejection = (f"{report.layer.torch_name} rejects input {sizes(report.shape or report.in_size)}: "
                     f"{report.error}")
    elif report.expected is not None and report.expected != _comparable(report):
        failure = f"expected output {sizes(report.expected)}, got {sizes(_comparable(report))}"
    view = (lambda: out_view(report)) if report.error is None or report.answer is not None else None
    return finish(json_mode, lambda: out_document(report), view, rejection=rejection, failure=failure,
                  disagrees=report.verdict is not None and not report.verdict.agrees)


def _comparable(report: Any) -> tuple[int, ...] | None:
    """What ``--expect`` compares with: the full output shape when it was given as one."""
    if report.cost is not None and report.expected is not None and len(report.expected) == len(report.cost.out_shape):
        return report.cost.out_shape
    return report.out


def finish(json_mode: bool, document: Callable[[], dict[str, Any]], view: Callable[[], Any] | None, *,
           rejection: str | None = None, failure: str | None = None, disagrees: bool = False) -> int:
    """Print the JSON document or the view (each built only when printed), then the red line; return
    the exit code, most serious first."""
    from .render import console, print_error, print_json

    if json_mode:
        print_json(document())
    elif view is not None:
        console().print(view(), crop=False)
    if rejection or failure:
        print_error(rejection or failure or "")
    if disagrees:
        return DISAGREES
    return BAD_INPUT if rejection else FAILED if failure else OK


# -- convcalc rf ----------------------------------------------------------------------------------------

RF_EXAMPLES = """\
[b]Examples[/b]

  convcalc rf --layers 3x3d1,3x3d2,3x3d5                 [dim]# RF 17, jump 1[/dim]

  convcalc rf --layers 3x3p1*2,max2,3x3p1*2,max2,3x3p1*3,max2,3x3p1*3,max2,3x3p1*3,max2 --in 224

  convcalc rf --layers 7x7s2p3,max3s2p1 --in 224 --unit 0,0

  convcalc rf --layers 3x3d2*3 --verify                  [dim]# holes, measured by gradient[/dim]

  convcalc rf --layers "3x3, 3x3 s2, tconv4x4 s2 p1" --pad same --json

  convcalc rf --layers 3x3p1*2,max2,3x3p1*2,max2 --shape 1x3x224x224 --channels 64,64,128,128

[b]Layer specs[/b]: [op] kernel {option} [*count], joined by commas. op: conv (default), tconv, max, avg.
Options: s<stride> d<dilation> p<padding>|psame|pvalid o<output padding> c (ceil_mode).
"""

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
    verify: VerifyOpt = False,
    json_: JsonOpt = False,
) -> int:
    """Receptive field, jump and start of a stack of layers, layer by layer, with its holes."""
    from .receptive import receptive_field, unit_box

    size, full = input_of(in_size, shape) if in_size is not None or shape is not None else (None, None)
    n = resolve_dims({"--in": size}, dims) if isinstance(size, tuple) or dims is not None else None
    stack = parse_layers(layers, n, parse_padding(pad, "--pad") if pad is not None else None)
    field = receptive_field(stack, size)
    index = per_dim_values(unit, "--unit", field.dims) if unit is not None else None
    boxes = unit_box(field, index) if index is not None else None
    expected = per_dim_values(expect_rf, "--expect-rf", field.dims) if expect_rf is not None else None
    costs = stack_costs_of(stack, full, channels, not no_bias)
    report = rf_report(stack, field, index, boxes, expected, verify, costs)
    return show_rf(report, json_)


def stack_costs_of(stack: list[Layer], shape: tuple[int, ...] | None, channels: str | None, bias: bool) -> Any:
    """Per-layer shapes, parameters and MACs with ``--shape`` (and ``--channels``), else None."""
    if shape is None:
        if channels is not None or not bias:
            raise ConvcalcError(f"{'--channels' if channels is not None else '--no-bias'} needs --shape "
                                f"(N x C x spatial, e.g. 1x3x224x224)")
        return None
    from .cost import stack_costs

    values = parse_rates(channels, "--channels") if channels is not None else None
    return stack_costs(stack, shape, values, bias)


def parse_padding(text: str, name: str) -> int | tuple[int, ...] | str:
    """A padding option: 'same', 'valid' or a size."""
    return text.lower() if text.lower() in ("same", "valid") else parse_size(text, name)


def per_dim_values(text: str, name: str, dims: int, of: str = "the stack") -> tuple[int, ...]:
    """A size option as one value per dimension (a scalar applies to all)."""
    value = parse_size(text, name)
    if isinstance(value, tuple) and len(value) != dims:
        raise ConvcalcError(f"{name} has {len(value)} dimensions, {of} has {dims}")
    return value if isinstance(value, tuple) else (value,) * dims


def rf_report(stack: list[Layer], field: Any, unit: Any, boxes: Any, expected: Any, verify: bool,
              costs: Any = None) -> Any:
    """The report for `convcalc rf`; with --verify, torch runs the stack and measures its field."""
    from .render import RfReport

    if not verify:
        return RfReport(field, unit, boxes, expected, costs=costs)
    from .torchcheck import judge, measure_field, run_stack

    answer = verdict = None
    if field.in_size is not None:
        ran = stack[:len(field.layers)] if field.rejected is None else stack[:field.rejected[0]]
        answer = run_stack(ran, field.in_size, [f.out for f in field.layers])
        verdict = judge(ran, field.out, answer)
    return RfReport(field, unit, boxes, expected, answer, verdict, measure_field(stack), costs)


def show_rf(report: Any, json_mode: bool) -> int:
    """Print the rf report; exit 2 where PyTorch rejects a layer, 1 on a wrong --expect-rf, 3 on disagreement."""
    from .render import rf_document, rf_view, sizes

    field = report.field
    failure = None
    if report.expected_rf is not None and report.expected_rf != field.receptive_field:
        failure = f"expected receptive field {sizes(report.expected_rf)}, got {sizes(field.receptive_field)}"
    disagrees = (report.verdict is not None and not report.verdict.agrees) or \
        (report.measured is not None and not report.measured.agrees)
    rejection = field.rejected[1] if field.rejected is not None else None
    return finish(json_mode, lambda: rf_document(report), lambda: rf_view(report), rejection=rejection,
                  failure=failure, disagrees=disagrees)


# -- convcalc gridding and aspp -------------------------------------------------------------------------

GRIDDING_EXAMPLES = """\
[b]Examples[/b]

  convcalc gridding 2,2,2            [dim]# grids: gcd 2, though HDC's M_2 = 2 <= 3[/dim]

  convcalc gridding 1,2,5            [dim]# covers every offset of its 17-wide field[/dim]

  convcalc gridding 1,2,9 --json     [dim]# holes, and M_2 = 5 > 3[/dim]

  convcalc gridding 1,2,4,8,16,32,64,128,256,512 -k 2

  convcalc gridding 2,2,2 --exit-zero --verify

Exit code 1 when the rates grid (as a linter does); --exit-zero keeps 0.
"""

ASPP_EXAMPLES = """\
[b]Examples[/b]

  convcalc aspp --in 65 --rates 6,12,18        [dim]# DeepLabv3 at output stride 16 (513 input)[/dim]

  convcalc aspp --in 129x129 --rates 12,24,36  [dim]# output stride 8: rates doubled[/dim]

  convcalc aspp --in 33 --rates 6,12,18,36 --verify --json
"""

RatesArg = Annotated[str, typer.Argument(metavar="RATES", help="Dilation rates of the stacked layers, e.g. 2,2,2 or 1,2,5.",
                                         show_default=False)]
RatesOpt = Annotated[str, typer.Option("--rates", help="The branches' rates, e.g. 6,12,18.")]
TapsOpt = Annotated[int, typer.Option("-k", "--kernel-size", help="Taps per dimension of each kernel.")]
ExitZeroOpt = Annotated[bool, typer.Option("--exit-zero", help="Exit 0 even when the rates grid.")]


def parse_rates(text: str, name: str) -> tuple[int, ...]:
    """``2,2,2`` (or ``2x2x2``) -> (2, 2, 2); a single rate is a list of one."""
    if not text.strip():
        raise ConvcalcError(f"{name}: no rates given: expected a list such as 1,2,5")
    value = parse_size(text, name)
    return value if isinstance(value, tuple) else (value,)


@app.command(epilog=GRIDDING_EXAMPLES)
def gridding(
    rates: RatesArg,
    kernel_size: TapsOpt = 3,
    exit_zero: ExitZeroOpt = False,
    verify: VerifyOpt = False,
    json_: JsonOpt = False,
) -> int:
    """Does a stack of dilated convolutions leave holes? Common factor, HDC criterion, exact coverage, repairs."""
    from .gridding import covered_runs
    from .gridding import gridding as analyse
    from .render import GriddingView, gridding_document, gridding_view, short_rates

    report = analyse(parse_rates(rates, "RATES"), kernel_size)
    measured = None
    if verify:
        from .torchcheck import measure_field

        measured = measure_field([Layer.build(kernel_size, dilation=rate, dims=1) for rate in report.rates])
    view = GriddingView(report, covered_runs([(r, kernel_size) for r in report.rates]), measured)
    failure = None
    if report.gridding and not exit_zero:
        failure = f"the rates {short_rates(report.rates)} grid: {report.coverage.holes:,} holes per dimension"
    return finish(json_, lambda: gridding_document(view), lambda: gridding_view(view), failure=failure,
                  disagrees=measured is not None and not measured.agrees)


@app.command(epilog=ASPP_EXAMPLES)
def aspp(
    in_size: SizeIn,
    rates: RatesOpt,
    kernel_size: TapsOpt = 3,
    verify: VerifyOpt = False,
    json_: JsonOpt = False,
) -> int:
    """ASPP branches: the share of positions where all taps, or only the centre, fall on the feature map."""
    from .aspp import aspp as branches_of
    from .render import AsppView, aspp_document, aspp_view

    size = parse_size(in_size, "--in")
    size = size if isinstance(size, tuple) else (size, size)
    branches = branches_of(size, parse_rates(rates, "--rates"), kernel_size)
    counts = None
    if verify:
        from .torchcheck import count_valid_taps

        counts = tuple(count_valid_taps(b.rate, b.in_size, b.kernel_size) for b in branches)
    view = AsppView(branches, counts)
    return finish(json_, lambda: aspp_document(view), lambda: aspp_view(view), disagrees=not view.agrees)


# -- convcalc check -------------------------------------------------------------------------------------

CHECK_EXAMPLES = """\
[b]Examples[/b]

  convcalc check shapes.toml

  convcalc check shapes.toml --junit-xml convcalc-junit.xml     [dim]# for CI test reports[/dim]

  convcalc check shapes.toml --json --verify

[b]A check file[/b] holds [[check]] tables with the keys name, in, layers, out, rf, jump, no_gridding:

  [[check]]
  name = "dilated 3x3 keeps size"
  in = "256x256"
  layers = "3x3d2p2"
  out = "256x256"
  rf = 5

Exit 0 when every check passes, 1 when one fails, 2 when the file itself is wrong.
"""

FileArg = Annotated[str, typer.Argument(metavar="FILE", help="A TOML file of [[check]] tables.", show_default=False)]
JunitOpt = Annotated[Optional[str], typer.Option("--junit-xml", help="Also write a JUnit XML report to PATH.",
                                                 metavar="PATH")]


@app.command(epilog=CHECK_EXAMPLES)
def check(
    file: FileArg,
    verify: VerifyOpt = False,
    json_: JsonOpt = False,
    junit_xml: JunitOpt = None,
) -> int:
    """Run every [[check]] of a TOML file: output sizes, receptive fields, jumps, no gridding."""
    from .checks import load_checks, run_checks
    from .render import CheckView, check_document, check_view
    from .render import junit_xml as junit_report

    if verify:
        from .torchcheck import import_torch

        import_torch()  # the install hint now, not a field "not measured" later
    gc.disable()  # a batch of small objects with no cycles to collect: 10,000 checks run ~20% faster
    try:
        results = tuple(run_checks(load_checks(file)))
    finally:
        gc.freeze()  # and the results are kept to the end: nothing to gain from scanning them again
        gc.enable()
    verdicts = None
    if verify:
        from .torchcheck import verify_check

        verdicts = tuple(verify_check(result) for result in results)
    view = CheckView(file, results, verdicts)
    if junit_xml is not None:
        write_text(junit_xml, junit_report(view))
    failure = f"{view.failed:,} of {len(results):,} checks failed" if view.failed else None
    return finish(json_, lambda: check_document(view), lambda: check_view(view), failure=failure,
                  disagrees=not view.agrees)


def write_text(path: str, text: str) -> None:
    """Write a report file, or say in one line why it cannot be written."""
    try:
        with open(path, "w", encoding="utf-8") as handle:
            handle.write(text)
    except (OSError, ValueError) as exc:  # ValueError: a path with a NUL byte
        raise ConvcalcError(f"cannot write {path!r}: {getattr(exc, 'strerror', None) or exc}") from None


# -- convcalc inspect ------------------------------------------------------------------------------------

INSPECT_EXAMPLES = """\
[b]Examples[/b]

  convcalc inspect torchvision.models:resnet50 --input 1x3x224x224

  convcalc inspect torchvision.models.segmentation:deeplabv3_resnet50 --input 1x3x512x512 \\
      --kwargs '{"weights": null, "weights_backbone": null}' --node backbone.layer4

  convcalc inspect path/to/model.py:Net --input "torch.Size([1, 3, 64, 64])" --all --json

  convcalc inspect mypackage.models:UNet --input 1x1x256x256 --verify

Importing MODULE runs its code, as pytest and uvicorn do.
"""

TargetArg = Annotated[str, typer.Argument(metavar="MODULE:ATTR", show_default=False, help=(
    "A model: package.module:attribute or path/to/model.py:Name (an nn.Module, or a class or function "
    "returning one)."))]
InputOpt = Annotated[str, typer.Option("--input", help="Input shape N x C x spatial, e.g. 1x3x224x224.")]
KwargsOpt = Annotated[Optional[str], typer.Option("--kwargs", help="JSON keyword arguments for the class or "
                                                                    "factory, e.g. '{\"num_classes\": 10}'.")]
AllOpt = Annotated[bool, typer.Option("--all", help="Show every node, not only those that change geometry.")]
NodeOpt = Annotated[Optional[str], typer.Option("--node", help="Only the path up to this node (and verify it).")]


@app.command(epilog=INSPECT_EXAMPLES)
def inspect(
    target: TargetArg,
    input_shape: InputOpt,
    kwargs: KwargsOpt = None,
    all_nodes: AllOpt = False,
    node: NodeOpt = None,
    verify: VerifyOpt = False,
    json_: JsonOpt = False,
) -> int:
    """Shapes and receptive fields of a real torch model, node by node through its traced graph."""
    from . import inspect as inspector
    from .render import inspect_document, inspect_view

    shape = parse_shape(input_shape, "--input")
    model = inspector.load_model(target, parse_kwargs(kwargs))
    inspection = inspector.inspect_model(model, shape, target)
    nodes = inspector.shown_nodes(inspection, all_nodes, node)
    measurements = None
    if verify:
        measurements = (inspector.verify_nodes(inspection, [node]) if node is not None
                        else inspector.verify_default(inspection))
    return finish(json_, lambda: inspect_document(inspection, nodes, measurements),
                  lambda: inspect_view(inspection, nodes, measurements),
                  disagrees=any(not m.agrees for m in measurements or ()))


def parse_kwargs(text: str | None) -> dict[str, Any]:
    """``--kwargs``: a JSON object."""
    if text is None:
        return {}
    import json

    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConvcalcError(f"--kwargs is not valid JSON: {exc.msg} at character {exc.pos}") from None
    if not isinstance(value, dict):
        raise ConvcalcError(f"--kwargs must be a JSON object such as '{{\"num_classes\": 10}}', got {text}")
    return value


def main() -> None:
    """Console-script entry point."""
    app_for(sys.argv[1:])()


def app_for(args: list[str]) -> typer.Typer:
    """The app, narrowed to the command being run: Typer builds every command's options on each start,
    and the calculator's start-up budget (benchmarks/startup.py) is tight. Help, errors and exit codes
    are those of the full app, which any other invocation gets."""
    name = args[0] if args else None
    chosen = [command for command in app.registered_commands if command.callback is not None
              and (command.name or command.callback.__name__) == name]
    if not chosen:
        return app
    narrowed = copy.copy(app)
    narrowed.registered_commands = chosen
    return narrowed
