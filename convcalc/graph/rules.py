"""Per-op field rules: what each torch module or function does to a node's fields (docs/architecture.md, "Fields").

Each rule reads only a module's attributes or an fx node's arguments and the shapes recorded on it, so
this module imports no torch and is tested with stand-in objects. Returns ``(kind, flow, note)``: the
node's :class:`~convcalc.graph.fields.NodeKind` (None for pointwise ops), its output flow, and a note
where the field cannot be guaranteed.
"""

from __future__ import annotations

from collections.abc import Sequence
from fractions import Fraction
from typing import Any

from ..layer import default_stride
from ..padding import same_padding
from ..periodic import PeriodicField, Window
from .fields import (
    FLAT,
    GLOBAL,
    UNKNOWN,
    Field,
    Flow,
    NodeKind,
    adaptive,
    apply,
    broadcast_along,
    flatten,
    flattened,
    globalised,
    last_axis,
    node_argument,
    resize,
    same,
    same_spatial,
    unknown,
)

MERGE_FUNCTIONS = {"add", "iadd", "sub", "isub", "mul", "imul", "truediv", "div", "cat", "concat", "stack",
                   "maximum", "minimum", "where"}


REDUCTIONS = {"mean", "sum", "amax", "amin", "max", "min", "std", "var", "logsumexp", "norm", "prod"}


RESHAPES = {"flatten", "view", "reshape", "squeeze", "unsqueeze", "unflatten"}


SAFE_POINTWISE = {
    "ReLU", "ReLU6", "LeakyReLU", "PReLU", "ELU", "SELU", "CELU", "GELU", "SiLU", "Mish", "Sigmoid", "Tanh",
    "Hardtanh", "Hardswish", "Hardsigmoid", "Softplus", "Softsign", "Tanhshrink", "Threshold", "LogSigmoid",
    "Identity", "Dropout", "Dropout1d", "Dropout2d", "Dropout3d", "AlphaDropout", "FeatureAlphaDropout",
    "BatchNorm1d", "BatchNorm2d", "BatchNorm3d", "SyncBatchNorm", "GroupNorm", "InstanceNorm1d",
    "InstanceNorm2d", "InstanceNorm3d", "LocalResponseNorm", "ChannelShuffle", "FrozenBatchNorm2d",
    "relu", "relu_", "relu6", "leaky_relu", "gelu", "silu", "mish", "sigmoid", "tanh", "hardtanh",
    "hardswish", "hardsigmoid", "elu", "selu", "softplus", "dropout", "dropout2d", "batch_norm", "group_norm",
    "instance_norm", "contiguous", "clone", "float", "double", "half", "to", "type_as", "abs", "neg", "exp",
    "log", "sqrt", "rsqrt", "pow", "clamp", "clamp_", "sigmoid_", "relu6_", "channel_shuffle", "detach",
}


def through_module(module: Any, label: str, tensors: list[Flow], shape: tuple[int, ...] | None,
                    node: Any) -> tuple[NodeKind | None, Flow, str | None]:
    source = tensors[0] if tensors else None
    if source is None:
        return None, Flow(shape, constant=True), None
    n = len(source.fields)
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
    if label == "Flatten":
        start = module.start_dim % len(source.shape) if source.shape else 1
        return flatten(source, shape, start)
    if label in ("Linear", "Bilinear", "LazyLinear"):
        return NodeKind.LINEAR, last_axis(source, shape), None
    if label == "LayerNorm":
        return _layer_norm(source, shape, len(module.normalized_shape))
    if label in SAFE_POINTWISE or same_spatial(source, shape):
        note = None if label in SAFE_POINTWISE else "an unfamiliar module keeps the size: assumed to act per position"
        return None, same(source, shape), note
    return None, unknown(source, shape), f"unfamiliar module {label} changes the size: its field is unknown"


def _layer_norm(source: Flow, shape: tuple[int, ...] | None, count: int) -> tuple[NodeKind | None, Flow, None]:
    """Normalising over the last ``count`` axes: over every position where one of them is spatial."""
    spatial = source.shape is not None and any(a in source.axes for a in
                                               range(len(source.shape) - count, len(source.shape)))
    return (NodeKind.REDUCE if spatial else None), (globalised(source, shape) if spatial else same(source, shape)), None


def _conv_arguments(module: Any, n: int) -> list[tuple[int, int, int, int]]:
    kernel, stride, dilation = (_per_dim(getattr(module, a), n) for a in ("kernel_size", "stride", "dilation"))
    return list(zip(kernel, stride, dilation, _left_pads(module.padding, kernel, dilation)))


def _left_pads(padding: Any, kernel: Sequence[int], dilation: Sequence[int]) -> list[int]:
    """A convolution's left padding per dimension: 'same' puts the odd element on the right
    (torch/nn/modules/conv.py), as Layer.pads does."""
    if padding == "valid":
        return [0] * len(kernel)
    if padding == "same":
        return [same_padding(k, d)[0] for k, d in zip(kernel, dilation)]
    return list(_per_dim(padding, len(kernel)))


def _pool_windows(module: Any, n: int) -> list[Window]:
    kernel = _per_dim(module.kernel_size, n)
    stride = _per_dim(module.stride if module.stride is not None else default_stride("max_pool", kernel), n)
    padding = _per_dim(getattr(module, "padding", 0), n)
    dilation = _per_dim(getattr(module, "dilation", 1), n)
    return [Window.convolution(k, s, d, p) for k, s, d, p in zip(kernel, stride, dilation, padding)]


def _per_dim(value: Any, n: int) -> tuple[int, ...]:
    if isinstance(value, (tuple, list)):
        return tuple(int(v) for v in value) if len(value) == n else (int(value[0]),) * n
    return (int(value),) * n


def through_function(label: str, node: Any, tensors: list[Flow], flows: dict[str, Flow],
                      shape: tuple[int, ...] | None) -> tuple[NodeKind | None, Flow, str | None]:
    if not tensors:
        return None, Flow(shape, constant=True), None
    source = tensors[0]
    name = label.lower()
    if name in MERGE_FUNCTIONS:
        return _merge(name, node, tensors, shape)
    if name in ("conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d", "conv_transpose3d"):
        return _functional_conv(name, node, source, flows, shape)
    if name in ("max_pool1d", "max_pool2d", "max_pool3d", "avg_pool1d", "avg_pool2d", "avg_pool3d"):
        return _functional_pool(name, node, source, shape)
    if name.startswith("adaptive_"):
        return NodeKind.ADAPTIVE, adaptive(source, shape), None
    if name in ("interpolate", "upsample"):
        mode = node_argument(node, "mode", 3, "nearest")
        flow, note = resize(source, shape, mode, bool(node_argument(node, "align_corners", 4, False)),
                             bool(node_argument(node, "antialias", 6, False)))
        return NodeKind.RESIZE, flow, note
    if name in RESHAPES:
        if same_spatial(source, shape) and name in ("squeeze", "unsqueeze", "view", "reshape", "unflatten") and \
                shape is not None and source.shape is not None and len(shape) == len(source.shape):
            return None, same(source, shape), None
        if name == "flatten":
            start = node_argument(node, "start_dim", 1, 0)
            return flatten(source, shape, start % len(source.shape) if source.shape else 0)
        return NodeKind.FLATTEN, flattened(source, shape), None
    if name in ("permute", "transpose", "movedim", "swapaxes", "t"):
        return None, _permuted(name, node, source, shape), None
    if name in ("linear", "matmul", "mm", "bmm", "einsum", "baddbmm", "addmm"):
        return NodeKind.LINEAR, last_axis(source, shape), None
    if name in REDUCTIONS:
        return _reduce(node, source, shape)
    if name == "layer_norm":
        normalized = node_argument(node, "normalized_shape", 1, ())
        return _layer_norm(source, shape, len(normalized) if isinstance(normalized, (tuple, list)) else 1)
    if name in ("softmax", "log_softmax"):
        axis = node_argument(node, "dim", 1, -1)
        if source.shape is not None and isinstance(axis, int) and axis % len(source.shape) in source.axes:
            return NodeKind.REDUCE, globalised(source, shape), None
        return None, same(source, shape), None
    if len(tensors) > 1 and name not in SAFE_POINTWISE:
        return _merge(name, node, tensors, shape)
    if name in SAFE_POINTWISE or same_spatial(source, shape):
        note = None if name in SAFE_POINTWISE else "an unfamiliar function keeps the size: assumed to act per position"
        return None, same(source, shape), note
    return None, unknown(source, shape), f"unfamiliar function {label} changes the size: its field is unknown"


def _merge(name: str, node: Any, tensors: list[Flow], shape: tuple[int, ...] | None
           ) -> tuple[NodeKind, Flow, str | None]:
    """Union of the inputs' fields; cat must join channels (or batch), not positions."""
    if name in ("cat", "concat", "stack"):
        axis = node_argument(node, "dim", 1, 0)
        base = tensors[0].shape
        if base is not None and isinstance(axis, int) and axis % (len(base) + (name == "stack")) in tensors[0].axes:
            return NodeKind.MERGE, unknown(tensors[0], shape), "concatenates along a spatial axis: its field is unknown"
    notes = []
    fields: list[Field] = list(tensors[0].fields)
    for other in tensors[1:]:
        for d, (mine, theirs) in enumerate(zip(fields, other.fields)):
            if GLOBAL in (mine, theirs) or broadcast_along(other, shape, d):
                fields[d] = GLOBAL if GLOBAL in (mine, theirs) else mine
                continue
            if UNKNOWN in (mine, theirs) or FLAT in (mine, theirs):
                fields[d] = UNKNOWN if UNKNOWN in (mine, theirs) else FLAT
                continue
            assert isinstance(mine, PeriodicField) and isinstance(theirs, PeriodicField)
            merged, aligned = mine.union(theirs)
            if not aligned:
                notes.append(f"dim {d + 1}: the inputs disagree on jump ({_number(mine.jump)} vs "
                             f"{_number(theirs.jump)}); the union holds for the units of one period")
            elif mine.start != theirs.start:
                notes.append(f"dim {d + 1}: the inputs disagree on centre ({_number(mine.start)} vs "
                             f"{_number(theirs.start)}); the union is the largest span")
            fields[d] = merged
    return NodeKind.MERGE, Flow(shape, fields, dict(tensors[0].axes)), "; ".join(notes) or None


def _functional_conv(name: str, node: Any, source: Flow, flows: dict[str, Flow],
                     shape: tuple[int, ...] | None) -> tuple[NodeKind, Flow, str | None]:
    weight = node.args[1] if len(node.args) > 1 else node.kwargs.get("weight")
    weight_shape = meta_shape(weight) if weight is not None and hasattr(weight, "meta") else None
    n = len(source.fields)
    if weight_shape is None:
        return NodeKind.CONV, unknown(source, shape), "a functional convolution whose weight shape is unknown"
    kernel = weight_shape[-n:]
    transposed = "transpose" in name
    stride = _per_dim(node_argument(node, "stride", 3, 1), n)
    dilation = _per_dim(node_argument(node, "dilation", 7 if transposed else 5, 1), n)
    pads = _left_pads(node_argument(node, "padding", 4, 0), kernel, dilation)
    make = Window.transposed if transposed else Window.convolution
    windows = [make(k, s, d, p) for k, s, d, p in zip(kernel, stride, dilation, pads)]
    return (NodeKind.TCONV if transposed else NodeKind.CONV), apply(source, windows, shape), None


def _functional_pool(name: str, node: Any, source: Flow, shape: tuple[int, ...] | None
                     ) -> tuple[NodeKind, Flow, str | None]:
    n = len(source.fields)
    kernel = _per_dim(node_argument(node, "kernel_size", 1, 1), n)
    stride_value = node_argument(node, "stride", 2, None)
    stride = _per_dim(stride_value if stride_value not in (None, [], ()) else default_stride("max_pool", kernel), n)
    padding = _per_dim(node_argument(node, "padding", 3, 0), n)
    dilation = _per_dim(node_argument(node, "dilation", 4, 1), n) if name.startswith("max") else (1,) * n
    windows = [Window.convolution(k, s, d, p) for k, s, d, p in zip(kernel, stride, dilation, padding)]
    return NodeKind.POOL, apply(source, windows, shape), None


def _permuted(name: str, node: Any, source: Flow, shape: tuple[int, ...] | None) -> Flow:
    if source.shape is None:
        return unknown(source, shape)
    rank = len(source.shape)
    order = list(range(rank))
    if name == "permute":
        dims = node.args[1:] if len(node.args) > 2 else (node.args[1] if len(node.args) > 1 else node.kwargs["dims"])
        order = [int(d) % rank for d in dims]
    elif name in ("transpose", "swapaxes"):
        a, b = (int(node_argument(node, "dim0", 1, 0)) % rank, int(node_argument(node, "dim1", 2, 1)) % rank)
        order[a], order[b] = order[b], order[a]
    elif name == "t":
        order = order[::-1]
    else:
        return unknown(source, shape)
    axes = {new: source.axes[old] for new, old in enumerate(order) if old in source.axes}
    return Flow(shape, list(source.fields), axes)


def _reduce(node: Any, source: Flow, shape: tuple[int, ...] | None) -> tuple[NodeKind | None, Flow, str | None]:
    axis = node_argument(node, "dim", 1, None)
    if source.shape is None:
        return NodeKind.REDUCE, globalised(source, shape), None
    rank = len(source.shape)
    axes = None if axis is None else ([axis] if isinstance(axis, int) else list(axis))
    reduced = set(range(rank)) if axes is None else {int(a) % rank for a in axes}
    if reduced & set(source.axes):
        return NodeKind.REDUCE, globalised(source, shape), None
    keep = bool(node_argument(node, "keepdim", 2, False))
    axes_map = {a - (0 if keep else sum(1 for r in reduced if r < a)): d for a, d in source.axes.items()}
    return None, Flow(shape, list(source.fields), axes_map), None


def getitem(node: Any, flows: dict[str, Flow], shape: tuple[int, ...] | None, notes: list[str]) -> Flow:
    container = flows.get(node.args[0].name) if hasattr(node.args[0], "name") else None
    if container is None:
        return Flow(shape, constant=True)
    if container.items is not None:
        index = node.args[1]
        if isinstance(index, int) and -len(container.items) <= index < len(container.items):
            return container.items[index]
        return Flow(shape, constant=True)
    if not container.spatial():
        return Flow(shape, constant=container.constant)
    index = node.args[1] if isinstance(node.args[1], tuple) else (node.args[1],)
    touched = [i for i, part in enumerate(index) if i in container.axes and part != slice(None)]
    if touched or Ellipsis in index:
        notes.append(f"{node.name} (getitem): indexes a spatial axis: its field is unknown")
        return unknown(container, shape)
    return same(container, shape)


def pieces(node: Any, meta: Sequence[Any], tensors: list[Flow], notes: list[str]) -> Flow:
    """A function returning several tensors: each keeps the input's fields, unless it was cut along a
    spatial axis."""
    shapes = list(meta)
    if not tensors:
        return Flow(None, constant=True, items=[Flow(s, constant=True) for s in shapes])
    source = tensors[0]
    axis = node_argument(node, "dim", 2, 0) if function_name(node) in ("chunk", "split", "tensor_split") else \
        node_argument(node, "dim", 1, 0)
    cut = source.shape is not None and isinstance(axis, int) and axis % len(source.shape) in source.axes
    if cut:
        notes.append(f"{node.name} ({function_name(node)}): splits along a spatial axis: its fields are unknown")
    items = [(unknown if cut else same)(source, s) for s in shapes]
    return Flow(None, constant=False, items=items)


def meta_shape(node: Any) -> tuple[int, ...] | None:
    shape = node.meta.get("convcalc_shape")
    return shape if isinstance(shape, tuple) else None


def node_args(node: Any) -> list[Any]:
    """The graph nodes a node reads, in its arguments and keyword arguments."""
    return _nodes_in(node.args, node.kwargs)


def _nodes_in(*values: Any) -> list[Any]:
    """The graph nodes inside ``values`` (nested in lists, tuples and dicts), in order."""
    found: list[Any] = []

    def collect(value: Any) -> None:
        if hasattr(value, "op") and hasattr(value, "name"):
            found.append(value)
        elif isinstance(value, (list, tuple)):
            for item in value:
                collect(item)
        elif isinstance(value, dict):
            for item in value.values():
                collect(item)

    collect(values)
    return found


def first_flow(args: Any, flows: dict[str, Flow]) -> Flow | None:
    for arg in _nodes_in(args):
        flow = flows.get(arg.name)
        if flow is not None and not flow.constant:
            return flow.items[0] if flow.items else flow
    return None


def function_name(node: Any) -> str:
    target = node.target
    if isinstance(target, str):
        return target
    return getattr(target, "__name__", str(target)).rstrip("_") or str(target)


def _number(value: Fraction) -> str:
    return str(value.numerator) if value.denominator == 1 else f"{value.numerator}/{value.denominator}"


def node_key(fx_node: Any) -> str:
    """A graph node's name as shown: a module's qualified name, else fx's node name."""
    return str(fx_node.target) if fx_node.op == "call_module" else fx_node.name
