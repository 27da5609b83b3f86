"""What several commands take: option declarations (Typer ``Annotated`` types) and their parsers.

Parsers turn option text into core values and raise ConvcalcError naming the flag; nothing here
computes an answer.
"""

from __future__ import annotations

from typing import Annotated, Any, Optional

import typer

from ..errors import ConvcalcError
from ..layer import Layer, resolve_dims
from ..padding import PADDING_STRINGS, convention_named
from ..spec import parse_shape, parse_size

OPS = {"conv": "conv", "tconv": "conv_transpose", "conv_transpose": "conv_transpose",
       "max": "max_pool", "max_pool": "max_pool", "avg": "avg_pool", "avg_pool": "avg_pool"}

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
PaddingOpt = Annotated[str, typer.Option("-p", "--padding", help="Padding: a size, 'same', 'valid' or 'causal'.")]
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
ConventionOpt = Annotated[str, typer.Option(
    "--convention", help="torch, or tf (also tensorflow, keras, jax): 'same' is TensorFlow's 'SAME' (any "
                         "stride, pools too).")]


def parse_convention(text: str) -> str:
    """``--convention``: torch, or tf under any of its names (tensorflow, keras, jax)."""
    try:
        return convention_named(text)
    except ConvcalcError:
        raise ConvcalcError(f"unknown --convention {text!r}: expected torch, or tf (also tensorflow, keras or "
                            f"jax: they share TensorFlow's SAME)") from None


def layer_from_options(in_value: int | tuple[int, ...], kernel: str, stride: str | None, padding: str,
                       dilation: str, op: str, output_padding: str, ceil: bool, dims: int | None,
                       padding_mode: str = "zeros", convention: str = "torch") -> tuple[Layer, tuple[int, ...]]:
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
                        op=OPS[op.lower()], output_padding=values["output_padding"], ceil_mode=ceil, dims=n,
                        padding_mode=padding_mode, convention=parse_convention(convention))
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


def parse_padding(text: str, name: str) -> int | tuple[int, ...] | str:
    """A padding option: 'same', 'valid', 'causal' or a size."""
    return text.lower() if text.lower() in PADDING_STRINGS else parse_size(text, name)


def per_dim_values(text: str, name: str, dims: int, of: str = "the stack") -> tuple[int, ...]:
    """A size option as one value per dimension (a scalar applies to all)."""
    value = parse_size(text, name)
    if isinstance(value, tuple) and len(value) != dims:
        raise ConvcalcError(f"{name} has {len(value)} dimensions, {of} has {dims}")
    return value if isinstance(value, tuple) else (value,) * dims


def parse_rates(text: str, name: str) -> tuple[int, ...]:
    """``2,2,2`` (or ``2x2x2``) -> (2, 2, 2); a single rate is a list of one."""
    if not text.strip():
        raise ConvcalcError(f"{name}: no rates given: expected a list such as 1,2,5")
    value = parse_size(text, name)
    return value if isinstance(value, tuple) else (value,)


def joined_rates(values: list[str] | None, option: str | None = None) -> tuple[str, str]:
    """Rates given as words (``1 2 5``, ``1, 2, 5``, ``1,2,5``) or as ``--rates``' value, as one list,
    and the name to give it in a message (``RATES`` or ``--rates``)."""
    words = [part for value in (values or []) for part in [value.strip().strip(",").strip()] if part]
    if option is not None:
        if words:
            raise ConvcalcError(f"rates given twice: {' '.join(values or [])} and --rates {option}: give one")
        return option, "--rates"
    return ",".join(words), "RATES"


def parse_kwargs(text: str | None) -> dict[str, Any]:
    """``--kwargs``: a JSON object."""
    if text is None:
        return {}
    import json

    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConvcalcError(f"--kwargs is not valid JSON: {exc.msg} at character {exc.pos}") from None
    except RecursionError:
        raise ConvcalcError("--kwargs nests objects or arrays too deeply") from None
    if not isinstance(value, dict):
        raise ConvcalcError(f"--kwargs must be a JSON object such as '{{\"num_classes\": 10}}', got {text}")
    return value


def write_text(path: str, text: str) -> None:
    """Write a report file, or say in one line why it cannot be written."""
    try:
        with open(path, "w", encoding="utf-8") as handle:
            handle.write(text)
    except (OSError, ValueError) as exc:  # ValueError: a path with a NUL byte
        raise ConvcalcError(f"cannot write {path!r}: {getattr(exc, 'strerror', None) or exc}") from None


TapsOpt = Annotated[int, typer.Option("-k", "--kernel-size", help="Taps per dimension of each kernel.")]
