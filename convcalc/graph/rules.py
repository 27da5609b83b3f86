"""Per-op field rules: what each torch module or function does to a node's fields (docs/inspect.md, "Fields").

Each rule reads only a module's attributes, an fx node's arguments and the shapes recorded on them, so this
module imports no torch and is tested with stand-in objects. A module is known by what it is: the torch.nn
class it is or derives from (:func:`torch_class`), so timm's ``Linear`` or ``ScaledStdConv2d`` is read as
``Linear`` and ``Conv2d``. An op without a rule is per-position only where a probe on a real tensor proves
it (graph/probe.py); otherwise its field is unknown, and the note names it.

A rule returns ``(kind, flow, note)``: the node's :class:`~convcalc.graph.fields.NodeKind` (None for ops
that act per position or only move positions), its output flow, and a note where the field cannot be kept.
"""

from __future__ import annotations

from collections.abc import Sequence
from fractions import Fraction
from typing import Any

from ..layer import default_stride
from ..padding import same_padding
from ..periodic import PeriodicField, Window
from . import contract, moves
from .fields import (
    FLAT,
    GLOBAL,
    NONE,
    UNKNOWN,
    Field,
    Flow,
    NodeKind,
    adaptive,
    apply,
    mixed,
    node_argument,
    reshaped,
    resize,
    same,
    standard,
    union,
    union_one,
    unknown,
)
from .layout import dims_of, positional, scattered
from .nodes import Call, meta_shape

Shape = tuple[int, ...] | None
Rule = tuple[NodeKind | None, Flow, str | None]

MERGE_FUNCTIONS = {"add", "iadd", "sub", "isub", "rsub", "mul", "imul", "truediv", "div", "floordiv", "maximum",
                   "minimum", "where", "masked_fill", "lerp", "addcmul", "addcdiv", "pow", "atan2", "fmod",
                   "remainder", "eq", "ne", "lt", "le", "gt", "ge", "logical_and", "logical_or", "copysign"}

JOINS = {"cat", "concat", "concatenate", "stack", "hstack", "vstack"}

REDUCTIONS = {"mean", "sum", "amax", "amin", "max", "min", "std", "var", "logsumexp", "norm", "prod", "nansum",
              "nanmean", "median", "all", "any", "argmax", "argmin", "count_nonzero", "cumsum", "cumprod"}

RESHAPES = {"flatten", "view", "reshape", "squeeze", "unsqueeze", "unflatten", "view_as", "reshape_as"}

PERMUTES = {"permute", "transpose", "movedim", "moveaxis", "swapaxes", "swapdims", "t"}

SAFE_POINTWISE = {
    "ReLU", "ReLU6", "LeakyReLU", "PReLU", "RReLU", "ELU", "SELU", "CELU", "GELU", "SiLU", "Mish", "Sigmoid",
    "Tanh", "Hardtanh", "Hardswish", "Hardsigmoid", "Softplus", "Softsign", "Tanhshrink", "Threshold",
    "LogSigmoid", "Hardshrink", "Softshrink", "GLU", "Identity", "Dropout", "Dropout1d", "Dropout2d", "Dropout3d",
    "AlphaDropout", "FeatureAlphaDropout", "BatchNorm1d", "BatchNorm2d", "BatchNorm3d", "SyncBatchNorm",
    "LocalResponseNorm", "ChannelShuffle", "FrozenBatchNorm2d", "CrossMapLRN2d",
    "relu", "relu6", "leaky_relu", "gelu", "silu", "mish", "sigmoid", "tanh", "hardtanh", "hardswish",
    "hardsigmoid", "elu", "selu", "celu", "softplus", "softsign", "logsigmoid", "glu", "prelu", "rrelu", "dropout",
    "dropout1d", "dropout2d", "dropout3d", "alpha_dropout", "feature_alpha_dropout", "contiguous", "clone", "float",
    "double", "half", "bfloat16", "to", "type", "type_as", "abs", "neg", "exp", "exp2", "expm1", "log", "log2",
    "log10", "log1p", "sqrt", "rsqrt", "square", "reciprocal", "sign", "floor", "ceil", "round", "trunc", "frac",
    "erf", "erfc", "erfinv", "sin", "cos", "tan", "asin", "acos", "atan", "sinh", "cosh", "clamp", "clip",
    "clamp_min", "clamp_max", "channel_shuffle", "detach", "local_response_norm", "logit", "nan_to_num",
    "softshrink", "hardshrink", "threshold", "bool", "int", "long", "requires_grad", "cpu", "cuda",
    "__invert__", "logical_not", "isnan", "isinf", "sigmoid_", "relu_", "real", "conj", "positive", "zero",
    "fill", "float_power",
}

NORMS_OVER_POSITIONS = {"GroupNorm", "InstanceNorm1d", "InstanceNorm2d", "InstanceNorm3d"}


def linear(source: Flow, shape: Shape) -> Rule:
    if source.shape is None:
        return NodeKind.LINEAR, unknown(source, shape), None
    inner, outer = contract.linear_letters(len(source.shape))
    return contraction([(source, inner)], outer, shape, NodeKind.LINEAR)


def contraction(operands: Sequence[contract.Operand], output: str, shape: Shape, kind: NodeKind,
                 mixing_kind: NodeKind | None = None) -> Rule:
    flow, mixing, note = contract.einsum(operands, output, shape)
    first = next((f for f, _ in operands if f is not None), None)
    if flow is None:
        return kind, Flow(shape, constant=first is None) if first is None else unknown(first, shape), note
    return (mixing_kind or kind) if mixing else kind, flow, note


def normalised(source: Flow, shape: Shape, axes: Sequence[int] | range) -> Rule:
    """Normalisation by statistics over ``axes``: each value keeps its own position and adds the
    statistics' (where the axes hold positions: the whole of them, so ``global``; in the local walk, the
    statistics add nothing)."""
    if source.shape is None or source.layout is None:
        return None, unknown(source, shape), None
    rank = len(source.shape)
    axes = sorted({a % rank for a in axes})
    if not positional(source.layout, axes):
        return None, same(source, shape), None
    stats = mixed(source, axes, None)
    return NodeKind.REDUCE, source.derive(shape, union([source.fields, stats.fields], source.local)), None


def mixing(source: Flow, shape: Shape, axes: Sequence[int], keep: bool = True) -> Rule:
    """Every output along ``axes`` reads every input along them (softmax, reductions)."""
    if source.shape is None or source.layout is None:
        return NodeKind.REDUCE, unknown(source, shape), None
    rank = max(len(source.shape), 1)
    axes = sorted({int(a) % rank for a in axes})
    kind = NodeKind.REDUCE if positional(source.layout, axes) else None
    return kind, mixed(source, axes, shape, keep), None


def probed(call: Call, source: Flow, shape: Shape, what: str, kind: NodeKind | None) -> Rule:
    """An op without a rule: per position where the probe proves it, unknown otherwise."""
    if isinstance(call.shape, list):
        return several_unknown(source, call.shape, what, kind)
    sizes_kept = shape is not None and source.shape is not None and tuple(shape) == tuple(source.shape)
    verdict = call.probe(call.node, source) if call.probe is not None and sizes_kept else None
    if verdict:
        return kind, source.derive(shape), None
    if verdict is False and call.probe is not None and call.probe.reads_everything(call.node, source):
        whole: Field = NONE if source.local else GLOBAL
        return kind, source.derive(shape, [whole] * len(source.fields)), (
            f"{what} has no field rule: a probe found a change at each of four positions reaching every output, "
            f"so its field is global")
    measured = call.probe.window(call.node, source) if call.probe is not None and verdict is False else None
    if measured is not None:
        windows = [Window(1, 1, (reads,)) for reads in measured]
        spans = "x".join(str(reads[-1] - reads[0] + 1) for reads in measured)
        return kind, apply(source, windows, shape), (f"{what} has no field rule: its window ({spans}) is measured "
                                                     f"by a probe, which also found it the same at three positions")
    strided = call.probe.strided(call.node, source, shape) if (
        call.probe is not None and not sizes_kept and shape is not None and standard(source)) else None
    if strided:
        windows = [Window(1, stride, (reads,)) for stride, reads in strided]
        spans = "x".join(f"{reads[-1] - reads[0] + 1}" for _, reads in strided)
        strides = "x".join(str(stride) for stride, _ in strided)
        return kind, apply(source, windows, shape), (f"{what} has no field rule: its window ({spans}, stride "
                                                     f"{strides}) is measured by a probe, the same at three units")
    why = ("a probe found outputs that read other positions" if verdict is False else
           "it changes the size" if not sizes_kept else "it could not be probed")
    return kind, unknown(source, shape), f"{what} has no field rule and {why}: its field is unknown"


def pixel_shuffle(module: Any, label: str, source: Flow, shape: Shape) -> Rule:
    """PixelShuffle(r): (C r^2, H, W) -> (C, H r, W r), output (h, w) reads input (h // r, w // r): a window
    like nearest upsampling by r. PixelUnshuffle(r): output (h, w) reads the r x r block at (h r, w r)."""
    factor = int(getattr(module, "upscale_factor", getattr(module, "downscale_factor", 1)))
    if len(source.fields) != 2 or not standard(source):
        return None, unknown(source, shape), f"{label} on an unusual layout: its field is unknown"
    if label == "PixelShuffle":
        window = Window.from_function(factor, 1, lambda r: [0])
    else:
        window = Window.convolution(factor, factor, 1, 0)
    return NodeKind.RESIZE, apply(source, [window, window], shape), None


def left_pads(padding: Any, kernel: Sequence[int], dilation: Sequence[int]) -> list[int]:
    """A convolution's left padding per dimension: 'same' puts the odd element on the right
    (torch/nn/modules/conv.py), as Layer.pads does."""
    if padding == "valid":
        return [0] * len(kernel)
    if padding == "same":
        return [same_padding(k, d)[0] for k, d in zip(kernel, dilation)]
    return list(per_dim(padding, len(kernel)))



def per_dim(value: Any, n: int) -> tuple[int, ...]:
    if isinstance(value, (tuple, list)):
        return tuple(int(v) for v in value) if len(value) == n else (int(value[0]),) * n
    return (int(value),) * n



def through_function(call: Call) -> Rule:
    """A ``call_function`` or ``call_method`` node."""
    name, node, shape = call.name.lower(), call.node, call.out
    if name == "getattr" and len(node.args) == 2 and node.args[1] in ("values", "indices"):  # x.max(1).values
        container = call.flows.get(getattr(node.args[0], "name", ""))
        if container is not None and container.items is not None and len(container.items) == 2:
            return None, container.items[node.args[1] == "indices"], None
    tensors = call.tensors
    if not tensors:
        return None, Flow(shape, constant=True) if not isinstance(call.shape, list) else Flow(
            None, constant=True, items=[Flow(s, constant=True) for s in call.shape]), None
    source = tensors[0]
    if isinstance(call.shape, list):
        return _several(call, name, source)
    if name in JOINS:
        return _join(call, name)
    if name in MERGE_FUNCTIONS:
        return _merge(call, tensors, shape)
    if name in ("conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d", "conv_transpose3d"):
        return _functional_conv(name, node, source, shape)
    if name in ("max_pool1d", "max_pool2d", "max_pool3d", "avg_pool1d", "avg_pool2d", "avg_pool3d"):
        return _functional_pool(name, node, source, shape)
    if name.startswith("adaptive_"):
        return NodeKind.ADAPTIVE, adaptive(source, shape), None
    if name in ("interpolate", "upsample", "upsample_nearest", "upsample_bilinear"):
        mode = {"upsample_nearest": "nearest", "upsample_bilinear": "bilinear"}.get(
            name, node_argument(node, "mode", 3, "nearest"))
        corners = bool(node_argument(node, "align_corners", 4, name == "upsample_bilinear"))
        flow, note = resize(source, shape, mode, corners, bool(node_argument(node, "antialias", 6, False)))
        return NodeKind.RESIZE, flow, note
    if name in ("pixel_shuffle", "pixel_unshuffle"):
        factor = node_argument(node, "upscale_factor" if name == "pixel_shuffle" else "downscale_factor", 1, 1)
        module = type("Shuffle", (), {"upscale_factor": factor, "downscale_factor": factor})()
        return pixel_shuffle(module, "PixelShuffle" if name == "pixel_shuffle" else "PixelUnshuffle", source, shape)
    if name in RESHAPES:
        return reshape(source, shape)
    if name in PERMUTES:
        return None, moves.permute(name, node, source, shape), None
    if name in ("expand", "expand_as", "broadcast_to"):
        return None, moves.expand(source, shape), None
    if name in ("repeat", "tile"):
        flow, note = moves.repeat(source, shape)
        return None, flow, note
    if name == "roll":
        flow, note = moves.roll(node, source, shape)
        return None, flow, note
    if name == "_patch_merging_pad":  # torchvision's Swin
        flow, note = moves.patch_merging(source, shape)
        return None, flow, note
    if name == "pad":
        flow, note = moves.pad(node, source, shape)
        mode = node_argument(node, "mode", 2, "constant")
        if mode != "constant" and note is None:
            note = f"pad mode={mode!r}: units at the border read other positions; the field's size is unchanged"
        return None, flow, note
    if name == "linear":
        weight_rank = call.arg_rank("weight", 1)
        if source is not call.arg("input", 0) or weight_rank not in (1, 2):
            return probed(call, source, shape, f"function {call.name}", NodeKind.LINEAR)
        return linear(source, shape)
    if name in ("matmul", "mm", "bmm", "addmm", "baddbmm", "addbmm"):
        return _matmul(call, name)
    if name == "einsum":
        return _einsum(call)
    if name == "scaled_dot_product_attention":
        ranks = tuple(call.arg_rank(n, i) or 0 for i, n in enumerate(("query", "key", "value")))
        if min(ranks) < 2:
            return NodeKind.ATTENTION, unknown(source, shape), "attention on vectors: its field is unknown"
        flow = contract.attention(call.arg("query", 0), call.arg("key", 1), call.arg("value", 2),
                                  ranks, shape)  # type: ignore[arg-type]
        note = None if node_argument(node, "attn_mask", 3, None) is None and not node_argument(
            node, "is_causal", 5, False) else ("an attention mask may keep a unit from some of these positions: "
                                               "the field is the most the attention reads")
        return NodeKind.ATTENTION, flow or unknown(source, shape), note
    if name == "shifted_window_attention":
        flow, note = contract.window_attention(node, source, shape)
        return NodeKind.ATTENTION, flow, note
    if name in ("max", "min") and len(tensors) > 1:  # torch.max(a, b): elementwise, as maximum
        return _merge(call, tensors, shape)
    if name in REDUCTIONS:
        return _reduce(call, name, source, shape)
    if name in ("softmax", "log_softmax", "softmin"):
        return mixing(source, shape, [node_argument(node, "dim", 1, -1)])
    if name == "layer_norm":
        normalized = node_argument(node, "normalized_shape", 1, ())
        count = len(normalized) if isinstance(normalized, (tuple, list)) else 1
        return normalised(source, shape, range(-count, 0))
    if name == "rms_norm":
        normalized = node_argument(node, "normalized_shape", 1, ())
        return normalised(source, shape, range(-(len(normalized) if isinstance(normalized, (tuple, list)) else 1), 0))
    if name in ("group_norm", "instance_norm"):
        return normalised(source, shape, range(1 if name == "group_norm" else 2, len(source.shape or ())))
    if name == "normalize":
        return normalised(source, shape, [node_argument(node, "dim", 2, 1)])
    if name == "batch_norm" and node_argument(node, "training", 5, False):
        return normalised(source, shape, [0] + list(range(2, len(source.shape or ()))))
    if name in SAFE_POINTWISE or name == "batch_norm":
        if len(tensors) > 1:
            return _merge(call, tensors, shape)
        return None, same(source, shape), None
    return probed(call, source, shape, f"function {call.name}", None)


def _several(call: Call, name: str, source: Flow) -> Rule:
    """Ops that return several tensors: chunk, split, unbind (moves.pieces); a reduction's values and
    indices; anything else per the probe, never."""
    shapes = call.shape
    if name in ("chunk", "split", "tensor_split", "unbind", "split_with_sizes"):
        return None, moves.pieces(call.node, name, shapes, [source], call.notes), None
    if name in REDUCTIONS or name in ("sort", "topk", "kthvalue", "mode", "aminmax"):
        kind, flow, note = _reduce(call, name, source, shapes[0] if shapes and isinstance(shapes[0], tuple) else None)
        return kind, Flow(None, items=[flow.derive(s) if isinstance(s, tuple) else Flow(s, constant=True)
                                       for s in shapes]), note
    return several_unknown(source, shapes, f"function {call.name}", None)


def several_unknown(source: Flow, shapes: list[Any], what: str, kind: NodeKind | None) -> Rule:
    """An op without a rule that returns several tensors (a tuple, a dict's values): each is unknown."""
    items = [unknown(source, s) if isinstance(s, tuple) else Flow(None, constant=True) for s in shapes]
    return kind, Flow(None, items=items), f"{what} returns several tensors and has no field rule: their fields " \
                                          f"are unknown"


def reshape(source: Flow, shape: Shape) -> Rule:
    flow = reshaped(source, shape)
    became_flat = any(f is FLAT and isinstance(g, PeriodicField) for f, g in zip(flow.fields, source.fields))
    lost = any(f is UNKNOWN and isinstance(g, PeriodicField) for f, g in zip(flow.fields, source.fields))
    if lost:
        return NodeKind.FLATTEN, flow, "a reshape splits positions unevenly: its field is unknown"
    return (NodeKind.FLATTEN if became_flat else None), flow, None


MATMUL_OPERANDS = {"addmm": ("mat1", "mat2"), "baddbmm": ("batch1", "batch2"), "addbmm": ("batch1", "batch2")}


def _matmul(call: Call, name: str) -> Rule:
    """matmul, mm, bmm; addmm, baddbmm, addbmm with their added input as one more operand."""
    offset = 1 if name in MATMUL_OPERANDS else 0
    names = MATMUL_OPERANDS.get(name, ("input", "other"))
    values = [node_argument(call.node, n, offset + i, None) for i, n in enumerate(names)]
    shapes = [meta_shape(v) if hasattr(v, "meta") else None for v in values]
    if shapes[0] is None or shapes[1] is None:
        return NodeKind.LINEAR, unknown(call.tensors[0], call.out), None
    a, b, out = contract.matmul_letters(len(shapes[0]), len(shapes[1]))
    if name == "addbmm":
        out = out[1:]
    operands: list[contract.Operand] = [(call.flows.get(v.name) if hasattr(v, "name") else None, letters)
                                        for v, letters in zip(values, (a, b))]
    bias, rank = call.arg("input", 0), call.arg_rank("input", 0)
    if offset and bias is not None and rank:
        operands.append((bias, out[len(out) - rank:]))
    return contraction(operands, out, call.out, NodeKind.LINEAR, NodeKind.ATTENTION)


def _einsum(call: Call) -> Rule:
    node = call.node
    equation = node.args[0] if node.args else node.kwargs.get("equation")
    values = node.args[1:] if len(node.args) > 1 else ()
    if len(values) == 1 and isinstance(values[0], (list, tuple)):
        values = values[0]
    shapes = [meta_shape(v) if hasattr(v, "meta") else None for v in values]
    source = call.tensors[0]
    if not isinstance(equation, str) or None in shapes:
        return NodeKind.LINEAR, unknown(source, call.out), "an einsum convcalc cannot read: its field is unknown"
    spelled = contract.einsum_equation(equation, [len(s) for s in shapes])  # type: ignore[arg-type]
    if spelled is None:
        return NodeKind.LINEAR, unknown(source, call.out), "an einsum convcalc cannot read: its field is unknown"
    letters, output = spelled
    operands = [(call.flows.get(v.name) if hasattr(v, "name") else None, t) for v, t in zip(values, letters)]
    return contraction(operands, output, call.out, NodeKind.LINEAR, NodeKind.ATTENTION)


def _join(call: Call, name: str) -> Rule:
    """cat and stack: along an axis that holds no position, each value keeps its operand's field (their
    union); along an axis of positions, with one operand holding them (a class token in front of the
    patches), the axis holds them scattered; else unknown."""
    node, shape = call.node, call.out
    values = node.args[0] if node.args else node.kwargs.get("tensors", ())
    axis = node_argument(node, "dim", 1, 0 if name not in ("hstack",) else 1)
    operands = [call.flows.get(v.name) if hasattr(v, "name") else None for v in (values or ())]
    spatial = [f for f in operands if f is not None and f.spatial()]
    source = spatial[0] if spatial else call.tensors[0]
    if shape is None or source.layout is None or not isinstance(axis, int) or name in ("hstack", "vstack"):
        return NodeKind.MERGE, unknown(source, shape), None
    axis %= len(shape)
    layouts = [f.layout for f in spatial if f.layout is not None and len(f.layout) == len(shape) - (name == "stack")]
    if len(layouts) != len(spatial):
        return NodeKind.MERGE, unknown(source, shape), None
    fields, notes = _union_noted([f.fields for f in spatial], source.local)
    if name == "stack":
        layout = layouts[0][:axis] + (((None, shape[axis], 0),),) + layouts[0][axis:]
        return NodeKind.MERGE, source.derive(shape, fields, layout), notes
    holding = [lay for lay in layouts if positional(lay, [axis])]
    if not holding:
        layout = tuple(((None, shape[axis], 0),) if a == axis else ax for a, ax in enumerate(layouts[0]))
        return NodeKind.MERGE, source.derive(shape, fields, layout), notes
    if len(holding) == 1 and len(spatial) == 1:
        dims = sorted({d for f in holding[0][axis] for d in dims_of(f)})
        layout = tuple(scattered(dims, shape[axis]) if a == axis else ax for a, ax in enumerate(holding[0]))
        return NodeKind.MERGE, source.derive(shape, fields, layout), None
    return NodeKind.MERGE, unknown(source, shape), "concatenates along an axis of positions: its field is unknown"


def _merge(call: Call, tensors: list[Flow], shape: Shape) -> Rule:
    """Elementwise ops of several tensors (broadcast): the union of their fields, each axis's positions
    from the inputs that hold positions there (they must agree)."""
    if shape is None:
        return NodeKind.MERGE, unknown(tensors[0], shape), None
    layout: list[tuple] = []
    for a, n in enumerate(shape):
        chosen = None
        for flow in tensors:
            if flow.layout is None:
                return NodeKind.MERGE, unknown(tensors[0], shape), None
            offset = len(shape) - len(flow.layout)
            axis = flow.layout[a - offset] if a >= offset else None
            if axis is None or not any(f[0] is not None and f[1] > 1 for f in axis):
                continue
            if chosen is not None and chosen != axis:
                return NodeKind.MERGE, unknown(tensors[0], shape), "its inputs hold different positions on one axis"
            chosen = axis
        layout.append(chosen if chosen is not None else ((None, n, 0),))
    fields, notes = _union_noted([f.fields for f in tensors], tensors[0].local)
    kind = NodeKind.MERGE if len(tensors) > 1 else None
    return kind, tensors[0].derive(shape, fields, tuple(layout)), notes


def _union_noted(fields: list[list[Field]], local: bool) -> tuple[list[Field], str | None]:
    """Per dimension, the union of the inputs' fields, with a note where their jumps or centres differ."""
    notes = []
    out = list(fields[0])
    for other in fields[1:]:
        for d, (mine, theirs) in enumerate(zip(out, other)):
            if isinstance(mine, PeriodicField) and isinstance(theirs, PeriodicField):
                merged, aligned = mine.union(theirs)
                if not aligned:
                    notes.append(f"dim {d + 1}: the inputs disagree on jump ({_number(mine.jump)} vs "
                                 f"{_number(theirs.jump)}); the union holds for the units of one period")
                elif mine.start != theirs.start:
                    notes.append(f"dim {d + 1}: the inputs disagree on centre ({_number(mine.start)} vs "
                                 f"{_number(theirs.start)}); the union is the largest span")
                out[d] = merged
            else:
                out[d] = union_one(mine, theirs, local)
    return out, "; ".join(notes) or None


def _functional_conv(name: str, node: Any, source: Flow, shape: Shape) -> Rule:
    weight = node.args[1] if len(node.args) > 1 else node.kwargs.get("weight")
    weight_shape = meta_shape(weight) if weight is not None and hasattr(weight, "meta") else None
    n = len(source.fields)
    if weight_shape is None:
        return NodeKind.CONV, unknown(source, shape), "a functional convolution whose weight shape is unknown"
    kernel = weight_shape[-n:]
    transposed = "transpose" in name
    stride = per_dim(node_argument(node, "stride", 3, 1), n)
    dilation = per_dim(node_argument(node, "dilation", 7 if transposed else 5, 1), n)
    pads = left_pads(node_argument(node, "padding", 4, 0), kernel, dilation)
    make = Window.transposed if transposed else Window.convolution
    windows = [make(k, s, d, p) for k, s, d, p in zip(kernel, stride, dilation, pads)]
    return (NodeKind.TCONV if transposed else NodeKind.CONV), apply(source, windows, shape), None


def _functional_pool(name: str, node: Any, source: Flow, shape: Shape) -> Rule:
    n = len(source.fields)
    kernel = per_dim(node_argument(node, "kernel_size", 1, 1), n)
    stride_value = node_argument(node, "stride", 2, None)
    stride = per_dim(stride_value if stride_value not in (None, [], ()) else default_stride("max_pool", kernel), n)
    padding = per_dim(node_argument(node, "padding", 3, 0), n)
    dilation = per_dim(node_argument(node, "dilation", 4, 1), n) if name.startswith("max") else (1,) * n
    windows = [Window.convolution(k, s, d, p) for k, s, d, p in zip(kernel, stride, dilation, padding)]
    return NodeKind.POOL, apply(source, windows, shape), None


def _reduce(call: Call, name: str, source: Flow, shape: Shape) -> Rule:
    """A reduction over ``dim`` (all axes where none is given); the axes kept or dropped as the output's
    rank says. Cumulative sums read every earlier position: unknown along an axis of positions."""
    axis = node_argument(call.node, "dim", 2 if name == "norm" else 1, None)
    if source.shape is None:
        return NodeKind.REDUCE, unknown(source, shape), None
    rank = len(source.shape)
    if name in ("cumsum", "cumprod"):
        if isinstance(axis, int) and source.layout is not None and positional(source.layout, [axis % rank]):
            return NodeKind.REDUCE, unknown(source, shape), f"{name} reads every earlier position: its field is unknown"
        return None, same(source, shape), None
    if not (axis is None or isinstance(axis, int) or
            isinstance(axis, (list, tuple)) and all(isinstance(a, int) for a in axis)):
        return NodeKind.REDUCE, unknown(source, shape), f"{name} over axes it cannot read: its field is unknown"
    axes = list(range(rank)) if axis is None or axis == [] else [axis] if isinstance(axis, int) else list(axis)
    keep = shape is not None and len(shape) == rank
    return mixing(source, shape, axes, keep)


def _number(value: Fraction) -> str:
    return str(value.numerator) if value.denominator == 1 else f"{value.numerator}/{value.denominator}"
