"""Channels, groups and cost of one layer: the full output shape, parameters, MACs and output memory.

Validity as torch.nn constructs the layer (``torch/nn/modules/conv.py``, ``_ConvNd.__init__``):
"in_channels must be divisible by groups", "out_channels must be divisible by groups".

Parameters as ``sum(p.numel() for p in module.parameters())``: a convolution's weight is
``(C_out, C_in/groups, *k)``, a transposed one's ``(C_in, C_out/groups, *k)``, plus ``C_out`` for the bias.

MACs (multiply-accumulates) of one forward pass of the whole batch, counted as fvcore counts them
(``fvcore/nn/jit_handles.py``, ``conv_flop_count``): ``N * prod(weight shape) * prod(positions)``
where the positions are the output's for a convolution and the input's for a transposed one (each
input element is scattered through every tap); bias additions are not counted. torchinfo's
"mult-adds" (``torchinfo/layer_info.py``) adds ``N * C_out * prod(output)`` for the bias and counts
transposed convolutions over the output positions; both numbers are given. Pooling has no
multiply-accumulates in either tool. FLOPs are commonly quoted as 2 x MACs.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from .errors import ConvcalcError, ShapeError
from .layer import POOLS, Layer, format_size

DTYPE_BYTES = {"float32": 4, "float16": 2, "bfloat16": 2, "float64": 8}


@dataclass(frozen=True)
class LayerCost:
    """One layer on a full ``N x C x spatial`` input."""

    layer: Layer
    shape: tuple[int, ...]
    out_shape: tuple[int, ...]
    groups: int
    bias: bool
    params: int
    macs: int
    torchinfo_mult_adds: int
    dtype: str

    @property
    def in_channels(self) -> int:
        return self.shape[1]

    @property
    def out_channels(self) -> int:
        return self.out_shape[1]

    @property
    def bias_params(self) -> int:
        """The bias's share of :attr:`params` (one per output channel, or none)."""
        return self.out_channels if self.bias and self.layer.op not in POOLS else 0

    @property
    def weight_params(self) -> int:
        return self.params - self.bias_params

    @property
    def out_bytes(self) -> int:
        """The output activation's size for ``dtype``."""
        return math.prod(self.out_shape) * DTYPE_BYTES[self.dtype]


def check_shape(shape: Sequence[int], dims: int) -> tuple[int, ...]:
    """``N, C, spatial...``: positive integers, rank dims + 2."""
    shape = tuple(shape)
    if len(shape) != dims + 2:
        raise ConvcalcError(f"the shape {format_size(shape)} has rank {len(shape)}; a {dims}-d layer takes "
                            f"N x C x {dims} spatial sizes (rank {dims + 2})")
    for name, value in zip(("batch size N", "channels C"), shape):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ConvcalcError(f"{name} must be a positive integer, got {value!r} in shape {format_size(shape)}")
    return shape


def element_size(dtype: str) -> int:
    """Bytes per element of ``dtype`` (torch's name for it)."""
    if dtype not in DTYPE_BYTES:
        raise ConvcalcError(f"unknown dtype {dtype!r}: expected one of {', '.join(DTYPE_BYTES)}")
    return DTYPE_BYTES[dtype]


def layer_cost(layer: Layer, shape: Sequence[int], out_channels: int | None = None, groups: int = 1,
               bias: bool = True, dtype: str = "float32") -> LayerCost:
    """Output shape, parameters and MACs of ``layer`` on an input of ``shape`` (N, C, spatial...)."""
    shape = check_shape(shape, layer.dims)
    element_size(dtype)
    in_channels = shape[1]
    if layer.op in POOLS:
        if out_channels not in (None, in_channels):
            raise ConvcalcError(f"pooling keeps the channels: out_channels {out_channels} given for "
                                f"{in_channels} input channels")
        if groups != 1:
            raise ConvcalcError("pooling has no groups")
        out = layer.output_size(shape[2:])
        return LayerCost(layer, shape, (shape[0], in_channels, *out), 1, False, 0, 0, 0, dtype)
    out_channels = in_channels if out_channels is None else out_channels
    check_groups(in_channels, out_channels, groups)
    out = layer.output_size(shape[2:])
    kernel = math.prod(layer.kernel_size)
    weight = in_channels * (out_channels // groups) * kernel  # (C_out, C_in/g, k) and (C_in, C_out/g, k) alike
    params = weight + (out_channels if bias else 0)
    positions = math.prod(shape[2:]) if layer.op == "conv_transpose" else math.prod(out)
    macs = shape[0] * weight * positions
    torchinfo = shape[0] * math.prod(out) * params
    return LayerCost(layer, shape, (shape[0], out_channels, *out), groups, bias, params, macs, torchinfo, dtype)


def check_groups(in_channels: int, out_channels: int, groups: int) -> None:
    """PyTorch's construction checks for grouped convolutions, in its words."""
    for name, value in (("in_channels", in_channels), ("out_channels", out_channels), ("groups", groups)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ConvcalcError(f"{name} must be a positive integer, got {value!r}")
    if in_channels % groups:
        raise ShapeError(f"in_channels must be divisible by groups: {in_channels} channels, {groups} groups "
                         f"(torch/nn/modules/conv.py)")
    if out_channels % groups:
        raise ShapeError(f"out_channels must be divisible by groups: {out_channels} channels, {groups} groups "
                         f"(torch/nn/modules/conv.py)")


def describe_groups(in_channels: int, out_channels: int, groups: int) -> str:
    """What each group sees: ``groups=2 on 10 -> 20 channels: 2 groups of 5 input channels, each producing 10``."""
    text = (f"groups={groups} on {in_channels} -> {out_channels} channels: {groups} group"
            f"{'s' if groups > 1 else ''} of {in_channels // groups} input channel"
            f"{'s' if in_channels // groups > 1 else ''}, each producing {out_channels // groups}")
    if groups == in_channels and groups > 1:
        multiplier = out_channels // in_channels
        text += "; depthwise" + (f", depth multiplier {multiplier}" if multiplier > 1 else "")
    return text


def stack_costs(layers: Sequence[Layer], shape: Sequence[int], channels: Sequence[int] | None = None,
                bias: bool = True, dtype: str = "float32") -> tuple[LayerCost, ...]:
    """Each layer's cost on the running shape; ``channels`` gives each conv / tconv its output channels
    in order (pools keep theirs; without it every layer keeps its input's). Stops before a layer
    PyTorch rejects on its input (receptive.receptive_field names it)."""
    convolutions = sum(layer.op not in POOLS for layer in layers)
    if channels is not None and len(channels) != convolutions:
        raise ConvcalcError(f"{{channels}} has {len(channels)} values for the stack's {convolutions} convolution"
                            f"{'s' if convolutions != 1 else ''} (pools keep their channels)", parameters=("channels",))
    remaining = list(channels or [])
    costs: list[LayerCost] = []
    current = tuple(shape)
    for layer in layers:
        out_channels = remaining.pop(0) if channels is not None and layer.op not in POOLS else None
        try:
            cost = layer_cost(layer, current, out_channels, bias=bias, dtype=dtype)
        except ShapeError:
            break
        costs.append(cost)
        current = cost.out_shape
    return tuple(costs)
