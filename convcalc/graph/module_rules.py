"""Field rules for module calls: a torch.nn module known by the class it is or derives from
(:func:`~convcalc.graph.nodes.torch_class`), an opaque leaf by probing it (docs/inspect.md, "Fields").
No torch: modules are read by their attributes only.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..layer import default_stride
from ..periodic import Window
from . import contract, moves
from .fields import Flow, NodeKind, adaptive, apply, mixed, resize, same, unknown
from .layout import positional
from .nodes import Call, meta_shape, node_args
from .rules import (
    NORMS_OVER_POSITIONS,
    SAFE_POINTWISE,
    Rule,
    Shape,
    contraction,
    left_pads,
    linear,
    mixing,
    normalised,
    per_dim,
    pixel_shuffle,
    probed,
    reshape,
)


def through_module(module: Any, call: Call, opaque: bool = False) -> Rule:
    """A ``call_module`` node (or a forward hook's call in the fallback)."""
    tensors = call.tensors
    if not tensors:
        return None, Flow(call.out, constant=True), None
    source, shape = tensors[0], call.out
    label = call.name if not opaque else type(module).__name__
    n = len(source.fields)
    if opaque:
        return probed(call, source, shape, f"{label} (opaque)", NodeKind.OPAQUE)
    if label.startswith("ConvTranspose"):
        windows = [Window.transposed(k, s, d, p) for k, s, d, p in _conv_arguments(module, n)]
        return NodeKind.TCONV, apply(source, windows, shape), None
    if label.startswith("Conv") and hasattr(module, "kernel_size"):
        windows = [Window.convolution(k, s, d, p) for k, s, d, p in _conv_arguments(module, n)]
        mode = getattr(module, "padding_mode", "zeros")
        read = {"reflect": "reflected", "replicate": "replicated", "circular": "wrapped-around"}.get(mode, mode)
        note = None if mode == "zeros" else (f"padding_mode={mode!r}: units at the border read {read} positions "
                                              f"of the input instead of zeros; the field's size is unchanged")
        return NodeKind.CONV, apply(source, windows, shape), note
    if label.startswith(("MaxPool", "AvgPool", "LPPool")):
        return NodeKind.POOL, apply(source, _pool_windows(module, n), shape), None
    if label.startswith(("AdaptiveAvgPool", "AdaptiveMaxPool")):
        return NodeKind.ADAPTIVE, adaptive(source, shape), None
    if label in ("Upsample", "UpsamplingNearest2d", "UpsamplingBilinear2d"):
        mode = getattr(module, "mode", "nearest")
        corners = bool(getattr(module, "align_corners", False)) or label == "UpsamplingBilinear2d"
        return NodeKind.RESIZE, *resize(source, shape, mode, corners)
    if label in ("Flatten", "Unflatten"):
        return reshape(source, shape)
    if label in ("Linear", "LazyLinear", "NonDynamicallyQuantizableLinear"):
        return linear(source, shape)
    if label == "Bilinear":
        return contraction([(call.arg("input1", 0), "ak"), (call.arg("input2", 1), "al")], "aj", shape,
                            NodeKind.LINEAR)
    if label in ("LayerNorm", "RMSNorm"):
        return normalised(source, shape, range(-len(module.normalized_shape), 0))
    if label in NORMS_OVER_POSITIONS:
        if label.startswith("Instance") and getattr(module, "track_running_stats", False):
            return None, same(source, shape), None
        return normalised(source, shape, range(1 if label == "GroupNorm" else 2, len(source.shape or ())))
    if label in ("Softmax", "LogSoftmax", "Softmin", "Softmax2d"):
        axis = -3 if label == "Softmax2d" else getattr(module, "dim", None)
        return mixing(source, shape, [axis] if axis is not None else [-1 if len(source.shape or ()) != 4 else 1])
    if label == "MultiheadAttention" and call.node is None:
        return NodeKind.ATTENTION, Flow(None, items=[unknown(source, None)]), "attention seen by a hook: unknown"
    if label == "MultiheadAttention":
        return contract.multihead_attention(module, call.node, call.flows, _shapes(call), call.shape)
    if label in ("PixelShuffle", "PixelUnshuffle"):
        return pixel_shuffle(module, label, source, shape)
    if label in ("LSTM", "GRU", "RNN"):
        return _recurrent(module, source, call.shape)
    if label.startswith(("ZeroPad", "ConstantPad", "ReflectionPad", "ReplicationPad", "CircularPad")):
        flow, note = moves.pad(_PadNode(module.padding), source, shape)
        if not label.startswith(("ZeroPad", "ConstantPad")) and note is None:
            note = f"{label}: units at the border read {label[:-6].lower()}ed positions; the field's size is unchanged"
        return None, flow, note
    if label in SAFE_POINTWISE:
        return None, same(source, shape), None
    return probed(call, source, shape, f"module {label}", None)


class _PadNode:
    """A padding module's ``padding`` read as ``F.pad``'s argument."""

    def __init__(self, padding: Sequence[int]):
        self.args, self.kwargs = (None, tuple(padding)), {}


def _shapes(call: Call) -> dict[str, Shape]:
    return {a.name: meta_shape(a) for a in node_args(call.node)}


def _conv_arguments(module: Any, n: int) -> list[tuple[int, int, int, int]]:
    kernel, stride, dilation = (per_dim(getattr(module, a), n) for a in ("kernel_size", "stride", "dilation"))
    return list(zip(kernel, stride, dilation, left_pads(module.padding, kernel, dilation)))


def _pool_windows(module: Any, n: int) -> list[Window]:
    kernel = per_dim(module.kernel_size, n)
    stride = per_dim(module.stride if module.stride is not None else default_stride("max_pool", kernel), n)
    padding = per_dim(getattr(module, "padding", 0), n)
    dilation = per_dim(getattr(module, "dilation", 1), n)
    return [Window.convolution(k, s, d, p) for k, s, d, p in zip(kernel, stride, dilation, padding)]


def _recurrent(module: Any, source: Flow, shape: Any) -> Rule:
    """LSTM, GRU, RNN over the sequence axis (0, or 1 with ``batch_first``): bidirectional, each output
    reads the whole sequence; one way, every earlier step (no periodic field: unknown along it).
    Returns (output, state) as fx sees it."""
    out_shape = shape[0] if isinstance(shape, list) and shape else shape if isinstance(shape, tuple) else None
    axis = 1 if getattr(module, "batch_first", False) else 0
    if source.layout is None or source.shape is None or len(source.shape) != 3:
        out = unknown(source, out_shape)
        note: str | None = "an unbatched recurrent layer: its field is unknown"
    elif getattr(module, "bidirectional", False):
        out = mixed(source, [axis, 2], out_shape)
        note = None
    elif positional(source.layout, [axis]):
        out = unknown(source, out_shape)
        note = "a one-way recurrent layer reads every earlier step: not a periodic field, unknown"
    else:
        out = mixed(source, [2], out_shape)
        note = None
    held = shape[1] if isinstance(shape, list) and len(shape) > 1 else None
    states = [unknown(source, s) for s in (held if isinstance(held, list) else [held] if held is not None else [])]
    state = states[0] if isinstance(held, tuple) else Flow(None, items=states)  # GRU's h, LSTM's (h, c)
    if states:
        note = (note + "; " if note else "") + "its final state's field is unknown"
    return NodeKind.LINEAR, Flow(None, items=[out, state]), note


