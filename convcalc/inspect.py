"""``convcalc inspect``: shapes and receptive fields of a real torch model, through its whole graph.

The model is traced with torch.fx; shapes come from running the traced graph eagerly on a zero
tensor (CPU, eval mode, batch 1), never from guessing. Fields follow the graph: each layer reads its
input through a :class:`~convcalc.receptive.Window`, a merge (add, mul, cat on channels) sees the union
of its inputs' fields, and global pooling, flattening and linear layers over positions see the
whole input ("global"). Models fx cannot trace fall back to forward hooks in call order, which give
exact shapes but fields that hold only where the model does not branch. Along with torchcheck.py this
is the only module that imports torch (the calculator never loads it).
"""

from __future__ import annotations

import copy
import importlib
import importlib.util
import json
import math
import operator
import os
import sys
import traceback
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any, Union

from .errors import ConvcalcError
from .layer import Layer, format_size
from .receptive import PeriodicField, UnitField, Window
from .torchcheck import MEASURE_MARGIN, error_line, fields_seen, import_torch, stand_in

GLOBAL = "global"
UNKNOWN = "unknown"
FLAT = "flat"  # positions flattened into features: each value has a field, but the tensor has no positions
Field = Union[PeriodicField, str]  # a PeriodicField, GLOBAL, FLAT or UNKNOWN, per spatial dimension

CONV, TCONV, POOL, ADAPTIVE, RESIZE, FLATTEN, LINEAR, MERGE, REDUCE = (
    "conv", "tconv", "pool", "adaptive pool", "resize", "flatten", "linear", "merge", "reduce")
SHOWN = {CONV, TCONV, POOL, ADAPTIVE, RESIZE, FLATTEN, LINEAR, MERGE, REDUCE}
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
# Normalisations that defeat the gradient measurement (see verify): they normalise over positions
# (GroupNorm, InstanceNorm) or, with every channel equal, leave a zero gradient (LayerNorm).
SPOILS_GRADIENT = {"GroupNorm", "InstanceNorm1d", "InstanceNorm2d", "InstanceNorm3d", "LayerNorm",
                   "group_norm", "instance_norm", "layer_norm", "LocalResponseNorm"}


@dataclass
class Flow:
    """What a value in the graph carries: its shape, and per spatial dimension its field.

    ``axes`` maps tensor axes to the model input's spatial dimensions; ``constant`` marks values that do
    not depend on the input (parameters, sizes), which merges ignore.
    """

    shape: tuple[int, ...] | None
    fields: list[Field] = field(default_factory=list)
    axes: dict[int, int] = field(default_factory=dict)
    constant: bool = False
    items: list[Flow] | None = None  # tuples and lists of values

    def spatial(self) -> bool:
        return bool(self.fields) and not self.constant


@dataclass
class NodeInfo:
    """One node of the traced graph: what it is, its output shape and parameters, and its fields."""

    name: str
    op: str
    kind: str | None
    shape: tuple[int, ...] | None
    params: int
    flow: Flow
    note: str | None = None

    @property
    def fields(self) -> list[Field]:
        return self.flow.fields


@dataclass
class Inspection:
    """A model, traced: its nodes in order, the output, and what could not be guaranteed."""

    model: str
    input_shape: tuple[int, ...]
    nodes: list[NodeInfo]
    output: NodeInfo
    warnings: list[str]
    traced: bool = True
    graph: Any = None  # the fx GraphModule (None after the hook fallback)

    def node(self, name: str) -> NodeInfo:
        for info in self.nodes:
            if info.name == name:
                return info
        known = ", ".join(n.name for n in self.nodes if n.kind in SHOWN)
        raise ConvcalcError(f"no node named {name!r} in the traced graph (nodes shown by default: {known})")


# -- loading the user's model ------------------------------------------------------------------------

def load_model(target: str, kwargs: dict[str, Any] | None = None) -> Any:
    """``package.module:attribute`` or ``path/to/model.py:Name``: an nn.Module, or a callable returning one.

    Importing the module runs its code, as pytest and uvicorn do.
    """
    torch = import_torch()
    location, _, attribute = target.rpartition(":")
    if not location or not attribute:
        raise ConvcalcError(f"expected MODULE:ATTR such as torchvision.models:resnet50 or path/to/model.py:Net, "
                            f"got {target!r}")
    module = _import(location)
    obj: Any = module
    for part in attribute.split("."):
        if not hasattr(obj, part):
            raise ConvcalcError(f"{location} has no attribute {attribute!r}")
        obj = getattr(obj, part)
    if not isinstance(obj, torch.nn.Module):
        if not callable(obj):
            raise ConvcalcError(f"{target} is not a model: a {type(obj).__name__}, neither an nn.Module nor a "
                                f"callable that returns one")
        try:
            obj = obj(**(kwargs or {}))
        except (Exception, SystemExit) as exc:  # the user's code may call sys.exit
            raise ConvcalcError(f"calling {target}(**{json.dumps(kwargs or {})}) raised "
                                f"{error_line(exc)}") from None
    elif kwargs:
        raise ConvcalcError(f"{target} is already a model: --kwargs applies to a class or factory")
    if not isinstance(obj, torch.nn.Module):
        raise ConvcalcError(f"{target} returned a {type(obj).__name__}, not an nn.Module")
    return obj


def _import(location: str) -> Any:
    try:
        if location.endswith(".py") or os.sep in location or "/" in location:
            path = os.path.abspath(location)
            if not os.path.isfile(path):
                raise ConvcalcError(f"no such file: {location}")
            name = "convcalc_user_" + os.path.splitext(os.path.basename(path))[0]
            spec = importlib.util.spec_from_file_location(name, path)
            if spec is None or spec.loader is None:
                raise ConvcalcError(f"cannot import {location}")
            module = importlib.util.module_from_spec(spec)
            sys.modules[name] = module
            sys.path.insert(0, os.path.dirname(path))
            try:
                spec.loader.exec_module(module)
            finally:
                sys.path.remove(os.path.dirname(path))
            return module
        if os.getcwd() not in sys.path:
            sys.path.insert(0, os.getcwd())
        return importlib.import_module(location)
    except ConvcalcError:
        raise
    except (Exception, SystemExit) as exc:  # the user's module failed (or exited) while importing
        raise ConvcalcError(f"cannot import {location}: {error_line(exc)}") from None


# -- tracing and shapes --------------------------------------------------------------------------------

def inspect_model(model: Any, input_shape: Sequence[int], name: str = "model") -> Inspection:
    """Trace ``model`` and work out every node's shape and field for an input of ``input_shape``."""
    torch = import_torch()
    shape = tuple(input_shape)
    if len(shape) < 3:
        raise ConvcalcError(f"--input {format_size(shape)} has rank {len(shape)}: expected N x C and 1 to 3 spatial "
                            f"sizes, e.g. 1x3x224x224")
    model = model.eval()
    x = torch.zeros(1, *shape[1:])
    try:
        graph = torch.fx.symbolic_trace(model)
    except (Exception, SystemExit) as exc:
        return _hook_inspection(model, x, shape, name, _trace_failure(exc))
    try:
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch's notes (e.g. 'same' padding copies) are not ours to print
            _shapes(graph, torch).run(x)
    except (Exception, SystemExit) as exc:
        raise _raised_on_zeros(exc, shape) from None
    return _walk(graph, shape, name)


def _raised_on_zeros(exc: BaseException, shape: tuple[int, ...]) -> ConvcalcError:
    return ConvcalcError(f"the model raised on a zero input of shape {format_size(shape)}: {error_line(exc)}")


def _shapes(graph: Any, torch: Any) -> Any:
    """An interpreter that runs the graph eagerly and records each node's output shape (a tuple for a
    tensor, a list for a sequence of tensors, None otherwise) in ``node.meta["convcalc_shape"]``."""

    def shape_of(value: Any) -> Any:
        if isinstance(value, torch.Tensor):
            return tuple(int(d) for d in value.shape)
        if isinstance(value, (tuple, list)) and value and all(isinstance(v, torch.Tensor) for v in value):
            return [tuple(int(d) for d in v.shape) for v in value]
        return None

    class Shapes(torch.fx.Interpreter):
        def run_node(self, node: Any) -> Any:
            result = super().run_node(node)
            node.meta["convcalc_shape"] = shape_of(result)
            return result

    return Shapes(graph)


def _trace_failure(exc: BaseException) -> str:
    """The message of an fx trace error, with the user's line that caused it."""
    frames = [f for f in traceback.extract_tb(exc.__traceback__)
              if "site-packages" not in f.filename and f"{os.sep}torch{os.sep}" not in f.filename
              and f"{os.sep}convcalc{os.sep}" not in f.filename]
    where = f" at {frames[-1].filename}:{frames[-1].lineno}: {(frames[-1].line or '').strip()}" if frames else ""
    return f"torch.fx could not trace the model{where} ({error_line(exc)})"


def _walk(graph: Any, shape: tuple[int, ...], name: str) -> Inspection:
    modules = dict(graph.named_modules())
    flows: dict[str, Flow] = {}
    nodes: list[NodeInfo] = []
    notes: list[str] = []
    output: NodeInfo | None = None
    for node in graph.graph.nodes:
        info = _node_info(node, modules, flows, shape, notes)
        flows[node.name] = info.flow
        if node.op == "output":
            output = info
        else:
            nodes.append(info)
    assert output is not None
    return Inspection(name, shape, nodes, output, notes, True, graph)


def _input_flow(shape: tuple[int, ...] | None, dims: int) -> Flow:
    """The model's input: each spatial axis (2, 3, ...) its own dimension, each unit seeing itself."""
    return Flow(shape, [PeriodicField.input() for _ in range(dims)], {2 + d: d for d in range(dims)})


def _meta_shape(node: Any) -> tuple[int, ...] | None:
    shape = node.meta.get("convcalc_shape")
    return shape if isinstance(shape, tuple) else None


def _node_info(node: Any, modules: dict[str, Any], flows: dict[str, Flow], input_shape: tuple[int, ...],
               notes: list[str]) -> NodeInfo:
    batch = input_shape[0]
    shape = _meta_shape(node)
    shown_shape = (batch, *shape[1:]) if shape else None
    if node.op == "placeholder":
        return NodeInfo(node.name, "input", None, input_shape, 0, _input_flow(shape, len(input_shape) - 2))
    if node.op == "get_attr":
        return NodeInfo(node.name, "get_attr", None, shown_shape, 0, Flow(shape, constant=True))
    if node.op == "output":
        source = _first_flow(node.args, flows)
        out_shape = source.shape if source is not None else None
        return NodeInfo("output", "output", None, (batch, *out_shape[1:]) if out_shape else None, 0,
                        source or Flow(None, constant=True))
    inputs = [flows[a.name] for a in _node_args(node) if a.name in flows]
    tensors = [f for f in inputs if f.spatial()]
    meta = node.meta.get("convcalc_shape")
    if node.op != "call_module" and isinstance(meta, list):  # chunk, split, unbind, ...
        return NodeInfo(node.name, _function_name(node), None, None, 0, _pieces(node, meta, tensors, notes))
    if node.op != "call_module" and meta is None:  # sizes, shapes, numbers: nothing positional
        return NodeInfo(node.name, _function_name(node), None, None, 0, Flow(None, constant=True))
    if node.op == "call_module":
        module = modules[node.target]
        label = type(module).__name__
        params = sum(p.numel() for p in module.parameters())
        kind, flow, note = _through_module(module, label, tensors, shape, node)
        if note:
            notes.append(f"{node.target} ({label}): {note}")
        return NodeInfo(str(node.target), label, kind, shown_shape, params, flow, note)
    label = _function_name(node)
    if node.op == "call_function" and node.target is operator.getitem:
        return NodeInfo(node.name, "getitem", None, shown_shape, 0, _getitem(node, flows, shape, notes))
    kind, flow, note = _through_function(label, node, tensors, flows, shape)
    if note:
        notes.append(f"{node.name} ({label}): {note}")
    return NodeInfo(node.name, label, kind, shown_shape, 0, flow, note)


def _pieces(node: Any, meta: Sequence[Any], tensors: list[Flow], notes: list[str]) -> Flow:
    """A function returning several tensors: each keeps the input's fields, unless it was cut along a
    spatial axis."""
    shapes = list(meta)
    if not tensors:
        return Flow(None, constant=True, items=[Flow(s, constant=True) for s in shapes])
    source = tensors[0]
    axis = _argument(node, "dim", 2, 0) if _function_name(node) in ("chunk", "split", "tensor_split") else \
        _argument(node, "dim", 1, 0)
    cut = source.shape is not None and isinstance(axis, int) and axis % len(source.shape) in source.axes
    if cut:
        notes.append(f"{node.name} ({_function_name(node)}): splits along a spatial axis: its fields are unknown")
    items = [(_unknown if cut else _same)(source, s) for s in shapes]
    return Flow(None, constant=False, items=items)


def _node_args(node: Any) -> list[Any]:
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


def _first_flow(args: Any, flows: dict[str, Flow]) -> Flow | None:
    for arg in _nodes_in(args):
        flow = flows.get(arg.name)
        if flow is not None and not flow.constant:
            return flow.items[0] if flow.items else flow
    return None


def _function_name(node: Any) -> str:
    target = node.target
    if isinstance(target, str):
        return target
    return getattr(target, "__name__", str(target)).rstrip("_") or str(target)


# -- geometry of modules and functions -----------------------------------------------------------------

def _through_module(module: Any, label: str, tensors: list[Flow], shape: tuple[int, ...] | None,
                    node: Any) -> tuple[str | None, Flow, str | None]:
    source = tensors[0] if tensors else None
    if source is None:
        return None, Flow(shape, constant=True), None
    n = len(source.fields)
    if label.startswith("ConvTranspose"):
        windows = [Window.transposed(k, s, d, p) for k, s, d, p in _conv_arguments(module, n)]
        return TCONV, _apply(source, windows, shape), None
    if label.startswith("Conv") and hasattr(module, "kernel_size"):
        windows = [Window.convolution(k, s, d, p) for k, s, d, p in _conv_arguments(module, n)]
        return CONV, _apply(source, windows, shape), None
    if label.startswith(("MaxPool", "AvgPool", "LPPool")):
        return POOL, _apply(source, _pool_windows(module, n), shape), None
    if label.startswith(("AdaptiveAvgPool", "AdaptiveMaxPool")):
        return ADAPTIVE, _adaptive(source, shape), None
    if label in ("Upsample", "UpsamplingNearest2d", "UpsamplingBilinear2d"):
        mode = getattr(module, "mode", "nearest")
        corners = bool(getattr(module, "align_corners", False)) or label == "UpsamplingBilinear2d"
        return RESIZE, *_resize(source, shape, mode, corners)
    if label == "Flatten":
        start = module.start_dim % len(source.shape) if source.shape else 1
        return _flatten(source, shape, start)
    if label in ("Linear", "Bilinear", "LazyLinear"):
        return LINEAR, _last_axis(source, shape), None
    if label == "LayerNorm":
        return _layer_norm(source, shape, len(module.normalized_shape))
    if label in SAFE_POINTWISE or _same_spatial(source, shape):
        note = None if label in SAFE_POINTWISE else "an unfamiliar module keeps the size: assumed to act per position"
        return None, _same(source, shape), note
    return None, _unknown(source, shape), f"unfamiliar module {label} changes the size: its field is unknown"


def _layer_norm(source: Flow, shape: tuple[int, ...] | None, count: int) -> tuple[str | None, Flow, None]:
    """Normalising over the last ``count`` axes: over every position where one of them is spatial."""
    spatial = source.shape is not None and any(a in source.axes for a in
                                               range(len(source.shape) - count, len(source.shape)))
    return (REDUCE if spatial else None), (_globalised(source, shape) if spatial else _same(source, shape)), None


def _conv_arguments(module: Any, n: int) -> list[tuple[int, int, int, int]]:
    kernel, stride, dilation = (_per_dim(getattr(module, a), n) for a in ("kernel_size", "stride", "dilation"))
    return list(zip(kernel, stride, dilation, _left_pads(module.padding, kernel, dilation)))


def _left_pads(padding: Any, kernel: Sequence[int], dilation: Sequence[int]) -> list[int]:
    """A convolution's left padding per dimension: 'same' puts the odd element on the right
    (torch/nn/modules/conv.py), as Layer.pads does."""
    if padding == "valid":
        return [0] * len(kernel)
    if padding == "same":
        return [d * (k - 1) // 2 for k, d in zip(kernel, dilation)]
    return list(_per_dim(padding, len(kernel)))


def _pool_windows(module: Any, n: int) -> list[Window]:
    kernel = _per_dim(module.kernel_size, n)
    stride = _per_dim(module.stride if module.stride is not None else module.kernel_size, n)
    padding = _per_dim(getattr(module, "padding", 0), n)
    dilation = _per_dim(getattr(module, "dilation", 1), n)
    return [Window.convolution(k, s, d, p) for k, s, d, p in zip(kernel, stride, dilation, padding)]


def _per_dim(value: Any, n: int) -> tuple[int, ...]:
    if isinstance(value, (tuple, list)):
        return tuple(int(v) for v in value) if len(value) == n else (int(value[0]),) * n
    return (int(value),) * n


def _apply(source: Flow, windows: list[Window], shape: tuple[int, ...] | None) -> Flow:
    if not _standard_axes(source):
        return _unknown(source, shape)
    fields = [f.through(w) if isinstance(f, PeriodicField) else f for f, w in zip(source.fields, windows)]
    return Flow(shape, fields, dict(source.axes))


def _standard_axes(source: Flow) -> bool:
    """Spatial dimensions still on the tensor's last axes, in order (what conv and pooling act on)."""
    if source.shape is None:
        return False
    n = len(source.fields)
    return all(source.axes.get(len(source.shape) - n + d) == d for d in range(n))


def _adaptive(source: Flow, shape: tuple[int, ...] | None) -> Flow:
    if shape is None or source.shape is None or not _standard_axes(source):
        return _unknown(source, shape)
    n = len(source.fields)
    fields: list[Field] = []
    for d, f in enumerate(source.fields):
        size_in, size_out = source.shape[-n + d], shape[-n + d]
        if size_out == 1 or not isinstance(f, PeriodicField):
            fields.append(GLOBAL if size_out == 1 else f)
            continue
        fields.append(f.through(_adaptive_window(size_in, size_out)))
    return Flow(shape, fields, dict(source.axes))


def _adaptive_window(size_in: int, size_out: int) -> Window:
    """Adaptive pooling (and "area" interpolation): output i averages inputs floor(i*n/m) .. ceil((i+1)*n/m) - 1."""
    g = math.gcd(size_in, size_out)
    return Window.from_function(size_out // g, size_in // g, lambda r: range(
        (r * size_in) // size_out, -(-((r + 1) * size_in) // size_out)))


def _resize(source: Flow, shape: tuple[int, ...] | None, mode: str, align_corners: bool,
            antialias: bool = False) -> tuple[Flow, str | None]:
    """Interpolation by whole factors, up or down, read exactly (taps of zero weight excluded); "area"
    is adaptive average pooling; antialiased downsampling widens the filter, so its field is unknown."""
    if shape is None or source.shape is None or not _standard_axes(source):
        return _unknown(source, shape), "interpolation on an unusual layout: its field is unknown"
    n = len(source.fields)
    fields: list[Field] = []
    for d, f in enumerate(source.fields):
        size_in, size_out = source.shape[-n + d], shape[-n + d]
        if antialias and size_out < size_in:
            return _unknown(source, shape), "antialiased downsampling widens its filter: its field is unknown"
        window = _adaptive_window(size_in, size_out) if mode == "area" else \
            _resize_window(size_in, size_out, mode, align_corners)
        if window is None:
            return _unknown(source, shape), (f"interpolation from {size_in} to {size_out} ({mode}"
                                             f"{', align_corners' if align_corners else ''}) is not by a whole "
                                             f"factor: its field is unknown")
        fields.append(f.through(window) if isinstance(f, PeriodicField) else f)
    return Flow(shape, fields, dict(source.axes)), None


def _resize_window(size_in: int, size_out: int, mode: str, align_corners: bool) -> Window | None:
    if size_in == size_out:
        return Window(1, 1, ((0,),))
    if align_corners and mode != "nearest":
        if size_in < 2 or size_out < 2 or (size_out - 1) % (size_in - 1) and (size_in - 1) % (size_out - 1):
            return None
        scale = Fraction(size_in - 1, size_out - 1)
        source = (lambda u: u * scale)
    else:
        if size_out % size_in and size_in % size_out:
            return None
        scale = Fraction(size_in, size_out)
        source = (lambda u: (u + Fraction(1, 2)) * scale - Fraction(1, 2))  # half-pixel centres

    def reads(u: int) -> list[int]:
        if mode in ("nearest", "nearest-exact"):
            if mode == "nearest-exact":
                return [math.floor((u + Fraction(1, 2)) * scale)]
            return [math.floor(u * scale)]
        position = source(u)
        base = math.floor(position)
        fraction = position - base
        if mode == "bicubic":
            return [base] if fraction == 0 else [base - 1, base, base + 1, base + 2]
        return [base] if fraction == 0 else [base, base + 1]  # linear, bilinear, trilinear

    return Window.from_function(scale.denominator, scale.numerator, reads)


def _flatten(source: Flow, shape: tuple[int, ...] | None, start: int) -> tuple[str | None, Flow, str | None]:
    """Flattening positions into features: global stays global, positional fields become FLAT."""
    if source.shape is not None and any(axis >= start for axis in source.axes):
        return FLATTEN, _flattened(source, shape), None
    return None, Flow(shape, list(source.fields), dict(source.axes)), None


def _flattened(source: Flow, shape: tuple[int, ...] | None) -> Flow:
    return Flow(shape, [f if f in (GLOBAL, UNKNOWN) else FLAT for f in source.fields], {})


def _last_axis(source: Flow, shape: tuple[int, ...] | None) -> Flow:
    """A layer acting on the last axis (Linear): global if that axis is a spatial one or holds flattened
    positions."""
    if FLAT in source.fields or (source.shape is not None and (len(source.shape) - 1) in source.axes):
        return _globalised(source, shape)
    return _same(source, shape)


def _same(source: Flow, shape: tuple[int, ...] | None) -> Flow:
    return Flow(shape, list(source.fields), dict(source.axes))


def _globalised(source: Flow, shape: tuple[int, ...] | None) -> Flow:
    return Flow(shape, [GLOBAL if f != UNKNOWN else UNKNOWN for f in source.fields], {})


def _unknown(source: Flow, shape: tuple[int, ...] | None) -> Flow:
    return Flow(shape, [f if f == GLOBAL else UNKNOWN for f in source.fields], dict(source.axes))


def _same_spatial(source: Flow, shape: tuple[int, ...] | None) -> bool:
    return shape is not None and source.shape is not None and len(shape) == len(source.shape) and all(
        shape[axis] == source.shape[axis] for axis in source.axes)


def _through_function(label: str, node: Any, tensors: list[Flow], flows: dict[str, Flow],
                      shape: tuple[int, ...] | None) -> tuple[str | None, Flow, str | None]:
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
        return ADAPTIVE, _adaptive(source, shape), None
    if name in ("interpolate", "upsample"):
        mode = _argument(node, "mode", 3, "nearest")
        flow, note = _resize(source, shape, mode, bool(_argument(node, "align_corners", 4, False)),
                             bool(_argument(node, "antialias", 6, False)))
        return RESIZE, flow, note
    if name in RESHAPES:
        if _same_spatial(source, shape) and name in ("squeeze", "unsqueeze", "view", "reshape", "unflatten") and \
                shape is not None and source.shape is not None and len(shape) == len(source.shape):
            return None, _same(source, shape), None
        if name == "flatten":
            start = _argument(node, "start_dim", 1, 0)
            return _flatten(source, shape, start % len(source.shape) if source.shape else 0)
        return FLATTEN, _flattened(source, shape), None
    if name in ("permute", "transpose", "movedim", "swapaxes", "t"):
        return None, _permuted(name, node, source, shape), None
    if name in ("linear", "matmul", "mm", "bmm", "einsum", "baddbmm", "addmm"):
        return LINEAR, _last_axis(source, shape), None
    if name in REDUCTIONS:
        return _reduce(node, source, shape)
    if name == "layer_norm":
        normalized = _argument(node, "normalized_shape", 1, ())
        return _layer_norm(source, shape, len(normalized) if isinstance(normalized, (tuple, list)) else 1)
    if name in ("softmax", "log_softmax"):
        axis = _argument(node, "dim", 1, -1)
        if source.shape is not None and isinstance(axis, int) and axis % len(source.shape) in source.axes:
            return REDUCE, _globalised(source, shape), None
        return None, _same(source, shape), None
    if len(tensors) > 1 and name not in SAFE_POINTWISE:
        return _merge(name, node, tensors, shape)
    if name in SAFE_POINTWISE or _same_spatial(source, shape):
        note = None if name in SAFE_POINTWISE else "an unfamiliar function keeps the size: assumed to act per position"
        return None, _same(source, shape), note
    return None, _unknown(source, shape), f"unfamiliar function {label} changes the size: its field is unknown"


def _argument(node: Any, name: str, position: int, default: Any) -> Any:
    if name in node.kwargs:
        return node.kwargs[name]
    return node.args[position] if len(node.args) > position else default


def _merge(name: str, node: Any, tensors: list[Flow], shape: tuple[int, ...] | None
           ) -> tuple[str, Flow, str | None]:
    """Union of the inputs' fields; cat must join channels (or batch), not positions."""
    if name in ("cat", "concat", "stack"):
        axis = _argument(node, "dim", 1, 0)
        base = tensors[0].shape
        if base is not None and isinstance(axis, int) and axis % (len(base) + (name == "stack")) in tensors[0].axes:
            return MERGE, _unknown(tensors[0], shape), "concatenates along a spatial axis: its field is unknown"
    notes = []
    fields: list[Field] = list(tensors[0].fields)
    for other in tensors[1:]:
        for d, (mine, theirs) in enumerate(zip(fields, other.fields)):
            if GLOBAL in (mine, theirs) or _broadcast_along(other, shape, d):
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
    return MERGE, Flow(shape, fields, dict(tensors[0].axes)), "; ".join(notes) or None


def _broadcast_along(flow: Flow, shape: tuple[int, ...] | None, dim: int) -> bool:
    """An input of size 1 along a spatial axis that the output has wider (broadcast): it adds nothing
    per position along that dimension beyond its own (usually global) field."""
    if flow.shape is None or shape is None:
        return False
    for axis, d in flow.axes.items():
        if d == dim and axis < len(flow.shape) and axis < len(shape):
            return flow.shape[axis] == 1 and shape[axis] > 1
    return False


def _functional_conv(name: str, node: Any, source: Flow, flows: dict[str, Flow],
                     shape: tuple[int, ...] | None) -> tuple[str, Flow, str | None]:
    weight = node.args[1] if len(node.args) > 1 else node.kwargs.get("weight")
    weight_shape = _meta_shape(weight) if weight is not None and hasattr(weight, "meta") else None
    n = len(source.fields)
    if weight_shape is None:
        return CONV, _unknown(source, shape), "a functional convolution whose weight shape is unknown"
    kernel = weight_shape[-n:]
    transposed = "transpose" in name
    stride = _per_dim(_argument(node, "stride", 3, 1), n)
    dilation = _per_dim(_argument(node, "dilation", 7 if transposed else 5, 1), n)
    pads = _left_pads(_argument(node, "padding", 4, 0), kernel, dilation)
    make = Window.transposed if transposed else Window.convolution
    windows = [make(k, s, d, p) for k, s, d, p in zip(kernel, stride, dilation, pads)]
    return (TCONV if transposed else CONV), _apply(source, windows, shape), None


def _functional_pool(name: str, node: Any, source: Flow, shape: tuple[int, ...] | None
                     ) -> tuple[str, Flow, str | None]:
    n = len(source.fields)
    kernel = _per_dim(_argument(node, "kernel_size", 1, 1), n)
    stride_value = _argument(node, "stride", 2, None)
    stride = _per_dim(stride_value if stride_value not in (None, [], ()) else kernel, n)
    padding = _per_dim(_argument(node, "padding", 3, 0), n)
    dilation = _per_dim(_argument(node, "dilation", 4, 1), n) if name.startswith("max") else (1,) * n
    windows = [Window.convolution(k, s, d, p) for k, s, d, p in zip(kernel, stride, dilation, padding)]
    return POOL, _apply(source, windows, shape), None


def _permuted(name: str, node: Any, source: Flow, shape: tuple[int, ...] | None) -> Flow:
    if source.shape is None:
        return _unknown(source, shape)
    rank = len(source.shape)
    order = list(range(rank))
    if name == "permute":
        dims = node.args[1:] if len(node.args) > 2 else (node.args[1] if len(node.args) > 1 else node.kwargs["dims"])
        order = [int(d) % rank for d in dims]
    elif name in ("transpose", "swapaxes"):
        a, b = (int(_argument(node, "dim0", 1, 0)) % rank, int(_argument(node, "dim1", 2, 1)) % rank)
        order[a], order[b] = order[b], order[a]
    elif name == "t":
        order = order[::-1]
    else:
        return _unknown(source, shape)
    axes = {new: source.axes[old] for new, old in enumerate(order) if old in source.axes}
    return Flow(shape, list(source.fields), axes)


def _reduce(node: Any, source: Flow, shape: tuple[int, ...] | None) -> tuple[str | None, Flow, str | None]:
    axis = _argument(node, "dim", 1, None)
    if source.shape is None:
        return REDUCE, _globalised(source, shape), None
    rank = len(source.shape)
    axes = None if axis is None else ([axis] if isinstance(axis, int) else list(axis))
    reduced = set(range(rank)) if axes is None else {int(a) % rank for a in axes}
    if reduced & set(source.axes):
        return REDUCE, _globalised(source, shape), None
    keep = bool(_argument(node, "keepdim", 2, False))
    axes_map = {a - (0 if keep else sum(1 for r in reduced if r < a)): d for a, d in source.axes.items()}
    return None, Flow(shape, list(source.fields), axes_map), None


def _getitem(node: Any, flows: dict[str, Flow], shape: tuple[int, ...] | None, notes: list[str]) -> Flow:
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
        return _unknown(container, shape)
    return _same(container, shape)


def _number(value: Fraction) -> str:
    return str(value.numerator) if value.denominator == 1 else f"{value.numerator}/{value.denominator}"


# -- the forward-hook fallback ---------------------------------------------------------------------------



def _hook_inspection(model: Any, x: Any, shape: tuple[int, ...], name: str, failure: str) -> Inspection:
    """Shapes from forward hooks on the model's leaf modules, fields composed in call order."""
    torch = import_torch()
    calls: list[tuple[str, Any, tuple[int, ...], tuple[int, ...]]] = []
    handles = []
    for module_name, module in model.named_modules():
        if next(module.children(), None) is None and module_name:
            def hook(mod: Any, args: Any, out: Any, module_name: str = module_name) -> None:
                first = args[0] if args and hasattr(args[0], "shape") else None
                if first is not None and hasattr(out, "shape"):
                    calls.append((module_name, mod, tuple(first.shape), tuple(out.shape)))
            handles.append(module.register_forward_hook(hook))
    try:
        with torch.no_grad():
            model(x)
    except (Exception, SystemExit) as exc:
        raise _raised_on_zeros(exc, shape) from None
    finally:
        for handle in handles:
            handle.remove()
    flow = _input_flow(tuple(x.shape), len(shape) - 2)
    nodes = [NodeInfo("input", "input", None, shape, 0, flow)]
    for module_name, module, in_shape, out_shape in calls:
        label = type(module).__name__
        source = Flow(in_shape, list(flow.fields), dict(flow.axes))
        kind, flow, note = _through_module(module, label, [source], out_shape, None)
        nodes.append(NodeInfo(module_name, label, kind, (shape[0], *out_shape[1:]), sum(
            p.numel() for p in module.parameters()), flow, note))
    notes = [failure, "fell back to forward hooks: shapes are exact, but the receptive fields compose the "
                         "modules in the order they ran and cannot be guaranteed where the model branches or "
                         "calls functions between modules"]
    output = NodeInfo("output", "output", None, nodes[-1].shape, 0, nodes[-1].flow)
    return Inspection(name, shape, nodes, output, notes, False, None)


# -- what to show --------------------------------------------------------------------------------------

def shown_nodes(inspection: Inspection, show_all: bool = False, node: str | None = None) -> list[NodeInfo]:
    """Geometry-changing nodes and merges (or all, or those on the path to ``node``)."""
    nodes = inspection.nodes
    if node is not None:
        target = inspection.node(node)
        keep = _ancestors(inspection, target.name)
        nodes = [n for n in nodes if n.name in keep]
    if show_all:
        return nodes
    return [n for n in nodes if n.kind in SHOWN or n.op == "input" or (node is not None and n.name == node)]


def _key(fx_node: Any) -> str:
    """A graph node's name as shown: a module's qualified name, else fx's node name."""
    return str(fx_node.target) if fx_node.op == "call_module" else fx_node.name


def _ancestors(inspection: Inspection, name: str) -> set[str]:
    if inspection.graph is None:  # hooks: call order is all there is
        names = [n.name for n in inspection.nodes]
        return set(names[:names.index(name) + 1])
    by_name = {}
    for fx_node in inspection.graph.graph.nodes:
        by_name[_key(fx_node)] = fx_node
    keep: set[str] = set()
    stack = [by_name[name]]
    while stack:
        current = stack.pop()
        key = _key(current)
        if key in keep:
            continue
        keep.add(key)
        stack.extend(_node_args(current))
    return keep


# -- verification by gradient ----------------------------------------------------------------------------

@dataclass(frozen=True)
class NodeMeasurement:
    """The gradient measurement of one node's field, beside the computed one (or why it was not made)."""

    node: str
    in_size: tuple[int, ...]
    unit: tuple[int, ...]
    measured: tuple[UnitField, ...]
    predicted: tuple[UnitField, ...]
    skipped: str | None = None

    @classmethod
    def skip(cls, node: str, reason: str, in_size: tuple[int, ...] = ()) -> NodeMeasurement:
        """A node not measured, and why."""
        return cls(node, in_size, (), (), (), reason)

    @property
    def agrees(self) -> bool:
        return self.skipped is not None or self.measured == self.predicted


MEASURE_BUDGET = 2**22


def default_candidates(inspection: Inspection) -> list[str]:
    """Shown nodes with measurable (positional, known, not too wide) fields, deepest first."""
    candidates = [n for n in inspection.nodes if n.kind in SHOWN and _measurable(n, inspection.input_shape)]
    return [n.name for n in reversed(candidates)]


def verify_default(inspection: Inspection, tries: int = 3) -> list[NodeMeasurement]:
    """Measure the deepest measurable node; where its field cannot be measured (it reaches a border at
    every input size, say), the next deepest, up to ``tries`` nodes. Skipped ones are kept, with why."""
    measurements = []
    for name in default_candidates(inspection)[:tries]:
        measurements.append(_measure(inspection, name))
        if measurements[-1].skipped is None:
            break
    return measurements


def _measurable(node: NodeInfo, input_shape: tuple[int, ...]) -> bool:
    fields = node.fields
    if not fields or any(not isinstance(f, PeriodicField) for f in fields):
        return False
    size = _measure_size(fields, input_shape[2:])  # type: ignore[arg-type]
    return math.prod(size) * input_shape[1] <= MEASURE_BUDGET


def _measure_size(fields: Sequence[PeriodicField], input_size: Sequence[int]) -> tuple[int, ...]:
    """Twice the field and a margin, rounded up to a whole multiple of the inspected input size, so that
    every intermediate size scales with it (interpolation to the input's size keeps its factor)."""
    needed = [2 * f.receptive_field + 4 * math.ceil(f.jump) + 16 for f in fields]
    return tuple(n * -(-want // n) for want, n in zip(needed, input_size))


def verify_nodes(inspection: Inspection, names: Sequence[str]) -> list[NodeMeasurement]:
    """Measure each node's field by gradient, with positive weights, average pooling standing in for max
    pooling, saturating activations replaced, in float64, and compare with the computed field."""
    return [_measure(inspection, name) for name in names]


def _measure(inspection: Inspection, name: str) -> NodeMeasurement:
    torch = import_torch()
    info = inspection.node(name)
    dims = len(inspection.input_shape) - 2
    if inspection.graph is None:
        return NodeMeasurement.skip(name, "the model could not be traced, so no node can be measured")
    if not info.fields or UNKNOWN in info.fields:
        return NodeMeasurement.skip(name, "its field is unknown: nothing to compare")
    if FLAT in info.fields:
        return NodeMeasurement.skip(name, "its positions are flattened into features: each value has its own "
                                          "field, none is the tensor's")
    spoiler = _spoiler(inspection, name)
    if spoiler:
        return NodeMeasurement.skip(name, f"{spoiler} lies before it: normalising over positions, or over "
                                          f"equal channels, leaves no usable gradient")
    if any(f == GLOBAL for f in info.fields):
        return _measure_global(inspection, name, torch)
    fields: list[PeriodicField] = list(info.fields)  # type: ignore[arg-type]
    size = _measure_size(fields, inspection.input_shape[2:])
    for _ in range(3):  # fields of adaptive pooling grow with the input: enlarge until the unit fits
        if math.prod(size) * inspection.input_shape[1] > MEASURE_BUDGET * 4:
            return NodeMeasurement.skip(name, f"an input of {format_size(size)} would be needed; too large", size)
        try:
            at_size = _reinspected(inspection, size, torch).node(name)
        except ConvcalcError as exc:
            return NodeMeasurement.skip(name, str(exc), size)
        if at_size.shape is None or any(not isinstance(f, PeriodicField) for f in at_size.fields):
            return NodeMeasurement.skip(name, "its field is not positional on a larger input", size)
        unit = tuple(n // 2 for n in at_size.shape[-dims:])
        seen = [f.of(u) for f, u in zip(at_size.fields, unit)]  # type: ignore[union-attr]
        if all(s and MEASURE_MARGIN <= s.first and s.last < n - MEASURE_MARGIN for s, n in zip(seen, size)):
            break
        size = tuple(2 * n for n in size)
    else:
        return NodeMeasurement.skip(name, "no input size keeps the unit's field inside the input", size)
    predicted = tuple(UnitField(s.first, s.last, s.coverage().holes) for s in seen)
    measured = _gradient_at(inspection, name, size, lambda value: value[(0, slice(None)) + unit].sum(), torch)
    if isinstance(measured, str):
        return NodeMeasurement.skip(name, measured, size)
    return NodeMeasurement(name, size, unit, measured, predicted)


def _reinspected(inspection: Inspection, size: tuple[int, ...], torch: Any) -> Inspection:
    """The same graph's fields on an input of ``size`` (windows of adaptive pooling and of interpolation
    to a given size depend on it)."""
    shape = (1, inspection.input_shape[1], *size)
    try:
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            _shapes(inspection.graph, torch).run(torch.zeros(*shape))
    except (Exception, SystemExit) as exc:
        raise ConvcalcError(f"the model did not run on a {format_size(size)} input: "
                            f"{error_line(exc)}") from None
    return _walk(inspection.graph, shape, inspection.model)


def _measure_global(inspection: Inspection, name: str, torch: Any) -> NodeMeasurement:
    """A global field: one output value's gradient must reach every input position."""
    size = tuple(inspection.input_shape[2:])
    measured = _gradient_at(inspection, name, size, lambda value: value.reshape(-1)[0], torch)
    if isinstance(measured, str):
        return NodeMeasurement.skip(name, measured, size)
    return NodeMeasurement(name, size, (), measured, tuple(UnitField(0, n - 1, 0) for n in size))


def _gradient_at(inspection: Inspection, name: str, size: tuple[int, ...], pick: Callable[[Any], Any],
                 torch: Any) -> tuple[UnitField, ...] | str:
    """Run the measurement copy of the graph on ones of ``size`` up to node ``name``, backpropagate from
    what ``pick`` takes of its value, and read the field off the input's gradient (or say why not)."""
    graph = _measurement_copy(inspection.graph, torch)
    x = torch.ones(1, inspection.input_shape[1], *size, dtype=torch.float64, requires_grad=True)
    try:
        value = _value_at(graph, x, name, torch)
    except Exception as exc:
        return f"the model did not run on a {format_size(size)} input: {error_line(exc)}"
    pick(value).backward()
    return fields_seen(x.grad[0].abs().sum(dim=0) != 0)


def _spoiler(inspection: Inspection, name: str) -> str | None:
    keep = _ancestors(inspection, name)
    for node in inspection.nodes:
        if node.name in keep and node.op in SPOILS_GRADIENT:
            return f"{node.op} ({node.name})"
    return None


def _measurement_copy(graph: Any, torch: Any) -> Any:
    """A float64 copy whose every path carries a positive gradient."""
    model = copy.deepcopy(graph).double().eval()
    nn = torch.nn
    for module_name, module in list(model.named_modules()):
        replacement = _stand_in(module, torch)
        if replacement is not None:
            _set_submodule(model, module_name, replacement)
            continue
        for parameter_name, parameter in module.named_parameters(recurse=False):
            with torch.no_grad():
                if parameter_name == "weight" and parameter.dim() > 1:
                    parameter.fill_(1.0 / max(1, parameter[0].numel()))
                elif parameter_name == "weight":
                    parameter.fill_(1.0)
                else:
                    parameter.fill_(0.0)
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            module.running_mean.zero_()
            module.running_var.fill_(1.0)
    function_stand_ins = _function_stand_ins(torch)
    for node in model.graph.nodes:  # functional max pools and saturating activations
        if node.op == "call_function" and node.target in function_stand_ins:
            node.target = function_stand_ins[node.target]
    model.recompile()
    return model


def _stand_in(module: Any, torch: Any) -> Any:
    nn = torch.nn
    label = type(module).__name__
    if label.startswith("MaxPool"):
        n = int(label[-2])
        layer = Layer.build(module.kernel_size, module.stride, module.padding, module.dilation, op="max_pool",
                            ceil_mode=module.ceil_mode, dims=n)
        return stand_in(layer, torch.float64)
    if label.startswith("AdaptiveMaxPool"):
        return getattr(nn, label.replace("Max", "Avg"))(module.output_size)
    if label in ("ReLU6", "Hardtanh"):
        return nn.ReLU()
    if label == "Hardsigmoid":
        return nn.Sigmoid()
    if label == "Hardswish":
        return nn.SiLU()
    return None


def _function_stand_ins(torch: Any) -> dict[Callable[..., Any], Callable[..., Any]]:
    F = torch.nn.functional
    return {F.relu6: F.relu, F.hardtanh: lambda x, *a, **k: F.relu(x), F.hardsigmoid: torch.sigmoid,
            F.hardswish: F.silu, F.max_pool1d: _avg_like_max, F.max_pool2d: _avg_like_max,
            F.max_pool3d: _avg_like_max, F.adaptive_max_pool2d: lambda x, size, *a, **k: F.adaptive_avg_pool2d(
                x, size)}


def _avg_like_max(x: Any, kernel_size: Any, stride: Any = None, padding: Any = 0, dilation: Any = 1,
                  ceil_mode: bool = False, return_indices: bool = False) -> Any:
    """A max pool's windows, averaged (as torchcheck.stand_in does for modules)."""
    n = x.dim() - 2
    layer = Layer.build(kernel_size, stride if stride not in (None, [], ()) else None, padding, dilation,
                        op="max_pool", ceil_mode=ceil_mode, dims=n)
    return stand_in(layer, x.dtype)(x)


def _set_submodule(root: Any, name: str, module: Any) -> None:
    parent_name, _, child = name.rpartition(".")
    parent = root.get_submodule(parent_name) if parent_name else root
    setattr(parent, child, module)


def _value_at(graph: Any, x: Any, name: str, torch: Any) -> Any:
    """Run the graph up to the node ``name`` and return its value."""

    class Stop(Exception):
        pass

    captured: dict[str, Any] = {}

    class Interpreter(torch.fx.Interpreter):
        def run_node(self, node: Any) -> Any:
            result = super().run_node(node)
            if _key(node) == name:
                captured["value"] = result
                raise Stop
            return result

    try:
        Interpreter(graph).run(x)
    except Stop:
        pass
    value = captured.get("value")
    if value is None:
        raise ConvcalcError(f"node {name!r} produced no value")
    if isinstance(value, (tuple, list)):
        value = value[0]
    return value
