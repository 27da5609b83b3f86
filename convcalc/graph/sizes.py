"""Which input sizes a traced model accepts: shapes propagated through the fx graph by convcalc's own
rules, one pass per size and no tensor allocated (docs/design.md, "Sizes a model accepts").

Convolutions and pooling go through :class:`~convcalc.layer.Layer` (the rules `convcalc out` uses);
merges, concatenation, flatten, view and Linear check what torch checks and say it in the model's terms
(``cat: 37 vs 38 in dim 3 (up1 gives 37, enc1.3 gives 38)``). A node without a rule runs on the meta
device (shapes only) and the sweep says which nodes did.
"""

from __future__ import annotations

import copy
import math
import re
import warnings
from collections.abc import Sequence
from typing import Any, NamedTuple

from ..errors import ConvcalcError, ShapeError
from ..layer import Layer, format_size
from ..sizes import MAX_MODEL_SIZES, SizeResult, SizeSweep, nearest_sizes
from ..torchcheck import error_line, import_torch
from .rules import SAFE_POINTWISE, function_name
from .tracing import fx_trace, node_key


class Tensor(NamedTuple):
    """A tensor in the sweep: its shape only."""

    shape: tuple[int, ...]


class NodeFailure(Exception):
    """A node that rejects its input, in the model's terms."""


ELEMENTWISE = {"add", "iadd", "sub", "isub", "mul", "imul", "truediv", "itruediv", "div", "maximum", "minimum",
               "where", "floordiv", "pow", "eq", "ne", "lt", "gt", "le", "ge"}
SAME_SHAPE_MODULES = SAFE_POINTWISE - {"InstanceNorm1d", "InstanceNorm2d", "InstanceNorm3d", "LocalResponseNorm"}
SAME_SHAPE_FUNCTIONS = {name for name in SAFE_POINTWISE if name[:1].islower()} - {"instance_norm", "to", "type_as"}


class ShapePass:
    """One fx graph, ready to take any input shape: per node a rule, or a meta-device module."""

    def __init__(self, graph_module: Any):
        self.torch = import_torch("sweeping input sizes")
        self.graph = graph_module
        self.nodes = list(graph_module.graph.nodes)
        self.modules = dict(graph_module.named_modules())
        self.layers: dict[Any, Layer] = {}
        self.meta_modules: dict[str, Any] = {}
        self.meta_nodes: set[str] = set()  # nodes sized on the meta device, for the note

    def run(self, input_shape: tuple[int, ...]) -> SizeResult:
        """The output shape for ``input_shape``, or the first node that fails and why."""
        env: dict[Any, Any] = {}
        placeholders = 0
        for node in self.nodes:
            if node.op == "output":
                out = _first_tensor(_resolve(node.args, env))
                return SizeResult(0, out.shape if out is not None else ())
            try:
                if node.op == "placeholder":
                    recorded = node.meta.get("convcalc_shape")
                    env[node] = Tensor(tuple(input_shape)) if placeholders == 0 else (
                        Tensor(recorded) if isinstance(recorded, tuple) else None)
                    placeholders += 1
                    continue
                env[node] = self._node(node, env)
            except NodeFailure as exc:
                return SizeResult(0, None, node_key(node), str(exc))
        raise AssertionError("a graph without an output node")

    def _node(self, node: Any, env: dict[Any, Any]) -> Any:
        if node.op == "get_attr":
            value = _attribute(self.graph, str(node.target))
            return Tensor(tuple(value.shape)) if isinstance(value, self.torch.Tensor) else value
        args, kwargs = _resolve(node.args, env), _resolve(node.kwargs, env)
        if node.op == "call_module":
            module = self.modules[node.target]
            return self._module(node, module, type(module).__name__, args, kwargs, env)
        name = function_name(node)
        tensors = [a for a in _flat(args) + _flat(kwargs) if isinstance(a, Tensor)]
        if not tensors and node.op == "call_function" and getattr(node.target, "__module__", "") in (
                "_operator", "operator", "builtins", "math"):
            return node.target(*args, **kwargs)  # arithmetic on sizes
        rule = _FUNCTION_RULES.get(name)
        if rule is not None:
            result = rule(self, node, args, kwargs, env)
            if result is not NotImplemented:
                return result
        if name in SAME_SHAPE_FUNCTIONS and tensors and node.op != "call_module":
            return tensors[0]
        return self._meta(node, args, kwargs)

    def _module(self, node: Any, module: Any, label: str, args: tuple, kwargs: dict, env: dict) -> Any:
        x = args[0] if args else None
        if not isinstance(x, Tensor) or len(args) > 1 or kwargs:
            return self._meta(node, args, kwargs)
        name = node_key(node)
        if label.startswith(("Conv", "MaxPool", "AvgPool")) and hasattr(module, "kernel_size") and \
                label[-2:-1].isdigit():
            channels = getattr(module, "in_channels", None)
            try:
                layer = self._module_layer(module, label)
            except ConvcalcError:  # a layer convcalc's rules do not take: torch decides
                return self._meta(node, args, kwargs)
            return self._windowed(node, name, label, x, layer, channels, getattr(module, "out_channels", None), env)
        if label in ("Linear", "LazyLinear"):
            return _linear(name, label, x, module.in_features, module.out_features, node, env)
        if label.startswith(("AdaptiveAvgPool", "AdaptiveMaxPool")) and not getattr(module, "return_indices", False):
            return _adaptive(name, x, module.output_size, int(label[-2]))
        if label == "Flatten":
            return _flatten(x, module.start_dim, module.end_dim)
        if label == "LayerNorm":
            return _layer_norm(name, x, tuple(module.normalized_shape))
        if label.startswith(("BatchNorm", "SyncBatchNorm")) or label == "GroupNorm":
            expected = getattr(module, "num_features", getattr(module, "num_channels", None))
            if expected is not None and (len(x.shape) < 2 or x.shape[1] != expected):
                raise NodeFailure(f"{label} expects {expected} channels, gets {_channels(x)}")
            return x
        if label in SAME_SHAPE_MODULES:
            return x
        return self._meta(node, args, kwargs)

    def _module_layer(self, module: Any, label: str) -> Layer:
        if module not in self.layers:
            op = "conv_transpose" if label.startswith("ConvTranspose") else "conv" if label.startswith("Conv") \
                else "max_pool" if label.startswith("MaxPool") else "avg_pool"
            dims = int(label[-2])
            self.layers[module] = Layer.build(
                module.kernel_size, module.stride, module.padding, getattr(module, "dilation", 1), op=op,
                output_padding=getattr(module, "output_padding", 0), ceil_mode=getattr(module, "ceil_mode", False),
                dims=dims, padding_mode=getattr(module, "padding_mode", "zeros"))
        return self.layers[module]

    def _windowed(self, node: Any, name: str, label: str, x: Tensor, layer: Layer, channels: int | None,
                  out_channels: int | None, env: dict) -> Tensor:
        dims = layer.dims
        if len(x.shape) not in (dims + 1, dims + 2):
            raise NodeFailure(f"{label} expects a {dims + 1}-d or {dims + 2}-d input, gets "
                              f"{format_size(x.shape)}")
        if channels is not None and x.shape[-dims - 1] != channels:
            raise NodeFailure(f"{label} expects {channels} channels, {_source(node, env)} gives "
                              f"{x.shape[-dims - 1]}")
        spatial = x.shape[-dims:]
        try:
            out = layer.output_of(spatial)
        except ShapeError as exc:  # "dim 2: ..." counts spatial dimensions from 1: say the tensor's axis
            first = len(x.shape) - dims
            reason = re.sub(r"^dim (\d+): ", lambda m: f"axis {first + int(m.group(1)) - 1}: ", str(exc))
            raise NodeFailure(f"{label} on {format_size(spatial)}: {reason}") from None
        lead = x.shape[:-dims - 1] + ((out_channels,) if out_channels is not None else (x.shape[-dims - 1],))
        return Tensor(lead + out)

    def _meta(self, node: Any, args: tuple, kwargs: dict) -> Any:
        """The node run on the meta device: shapes without data."""
        torch = self.torch
        self.meta_nodes.add(node_key(node))

        def meta(value: Any) -> Any:
            if isinstance(value, Tensor):
                return torch.empty(value.shape, device="meta")
            if isinstance(value, (list, tuple)) and not isinstance(value, Tensor):
                return type(value)(meta(v) for v in value)
            if isinstance(value, dict):
                return {k: meta(v) for k, v in value.items()}
            return value

        margs, mkwargs = meta(args), meta(kwargs)
        try:
            with torch.no_grad(), warnings.catch_warnings():
                warnings.simplefilter("ignore")
                if node.op == "call_module":
                    if node.target not in self.meta_modules:
                        self.meta_modules[node.target] = copy.deepcopy(self.modules[node.target]).to("meta")
                    result = self.meta_modules[node.target](*margs, **mkwargs)
                elif node.op == "call_method":
                    result = getattr(margs[0], node.target)(*margs[1:], **mkwargs)
                else:
                    result = node.target(*margs, **mkwargs)
        except (Exception, SystemExit) as exc:
            label = type(self.modules[node.target]).__name__ if node.op == "call_module" else function_name(node)
            raise NodeFailure(f"{label} (on the meta device): {error_line(exc)}") from None
        return _from_torch(result, torch)


def _from_torch(value: Any, torch: Any) -> Any:
    if isinstance(value, torch.Tensor):
        return Tensor(tuple(int(d) for d in value.shape))
    if isinstance(value, torch.Size):
        return tuple(int(d) for d in value)
    if isinstance(value, (list, tuple)):
        return type(value)(_from_torch(v, torch) for v in value)
    return value


def _attribute(root: Any, target: str) -> Any:
    value = root
    for part in target.split("."):
        value = getattr(value, part)
    return value


def _resolve(value: Any, env: dict[Any, Any]) -> Any:
    if hasattr(value, "op") and hasattr(value, "name") and value in env:
        return env[value]
    if isinstance(value, tuple) and not isinstance(value, Tensor):
        return tuple(_resolve(v, env) for v in value)
    if isinstance(value, list):
        return [_resolve(v, env) for v in value]
    if isinstance(value, dict):
        return {k: _resolve(v, env) for k, v in value.items()}
    return value


def _flat(value: Any) -> list[Any]:
    if isinstance(value, Tensor):
        return [value]
    if isinstance(value, (list, tuple)):
        return [item for v in value for item in _flat(v)]
    if isinstance(value, dict):
        return [item for v in value.values() for item in _flat(v)]
    return [value]


def _first_tensor(value: Any) -> Tensor | None:
    return next((v for v in _flat(value) if isinstance(v, Tensor)), None)


def _channels(x: Tensor) -> str:
    return str(x.shape[1]) if len(x.shape) > 1 else f"a {len(x.shape)}-d tensor"


def _source(node: Any, env: dict, index: int = 0) -> str:
    """The name of the node that produced a node's ``index``-th tensor argument."""
    nodes = [a for a in _flat_nodes(node.args) if isinstance(env.get(a), Tensor)]
    return node_key(nodes[index]) if index < len(nodes) else "its input"


def _flat_nodes(value: Any) -> list[Any]:
    if hasattr(value, "op") and hasattr(value, "name"):
        return [value]
    if isinstance(value, (list, tuple)):
        return [item for v in value for item in _flat_nodes(v)]
    return []


def _linear(name: str, label: str, x: Tensor, in_features: int, out_features: int, node: Any, env: dict) -> Tensor:
    if not x.shape or x.shape[-1] != in_features:
        given = x.shape[-1] if x.shape else 0
        raise NodeFailure(f"{name} expects {in_features:,} features, {_source(node, env)} gives {given:,}")
    return Tensor(x.shape[:-1] + (out_features,))


def _adaptive(name: str, x: Tensor, output_size: Any, dims: int) -> Tensor:
    sizes = output_size if isinstance(output_size, (tuple, list)) else (output_size,) * dims
    spatial = x.shape[-dims:]
    if any(n < 1 for n in spatial):
        raise NodeFailure(f"{name}: adaptive pooling of an empty input {format_size(x.shape)}")
    return Tensor(x.shape[:-dims] + tuple(n if s is None else int(s) for s, n in zip(sizes, spatial)))


def _flatten(x: Tensor, start: int = 0, end: int = -1) -> Tensor:
    rank = len(x.shape)
    if rank == 0:
        return Tensor((1,))
    start, end = start % rank, end % rank
    return Tensor(x.shape[:start] + (math.prod(x.shape[start:end + 1]),) + x.shape[end + 1:])


def _layer_norm(name: str, x: Tensor, normalized: tuple[int, ...]) -> Tensor:
    if x.shape[-len(normalized):] != normalized:
        raise NodeFailure(f"LayerNorm normalizes over {format_size(normalized)}, gets "
                          f"{format_size(x.shape)}")
    return x


def _argument(args: tuple, kwargs: dict, name: str, position: int, default: Any) -> Any:
    if name in kwargs:
        return kwargs[name]
    return args[position] if len(args) > position else default


def _broadcast(sweep: ShapePass, node: Any, args: tuple, kwargs: dict, env: dict) -> Any:
    tensors = [a for a in list(args) + list(kwargs.values()) if isinstance(a, Tensor)]
    if not tensors:
        return NotImplemented
    shape = list(tensors[0].shape)
    for index, other in enumerate(tensors[1:], 1):
        a, b = shape, list(other.shape)
        rank = max(len(a), len(b))
        a, b = [1] * (rank - len(a)) + a, [1] * (rank - len(b)) + b
        merged = []
        for d, (m, n) in enumerate(zip(a, b)):
            if m != n and 1 not in (m, n):
                raise NodeFailure(f"{function_name(node)}: {m} vs {n} on axis {d} ({_source(node, env)} gives {m}, "
                                  f"{_source(node, env, index)} gives {n})")
            merged.append(n if m == 1 else m)
        shape = merged
    return Tensor(tuple(shape))


def _cat(sweep: ShapePass, node: Any, args: tuple, kwargs: dict, env: dict) -> Any:
    tensors = _argument(args, kwargs, "tensors", 0, None)
    dim = _argument(args, kwargs, "dim", 1, 0)
    if not isinstance(tensors, (list, tuple)) or not all(isinstance(t, Tensor) for t in tensors) or not tensors:
        return NotImplemented
    stack = function_name(node) == "stack"
    first = tensors[0].shape
    rank = len(first) + stack
    axis = dim % rank
    sources = _flat_nodes(_argument(node.args, node.kwargs, "tensors", 0, []))
    for index, other in enumerate(tensors[1:], 1):
        if len(other.shape) != len(first):
            raise NodeFailure(f"{function_name(node)}: tensors of rank {len(first)} and {len(other.shape)}")
        for d, (m, n) in enumerate(zip(first, other.shape)):
            if m != n and (stack or d != axis):
                names = [node_key(s) for s in sources] if len(sources) == len(tensors) else []
                where = f" ({names[0]} gives {m}, {names[index]} gives {n})" if names else ""
                raise NodeFailure(f"{function_name(node)}: {m} vs {n} on axis {d}{where}")
    if stack:
        return Tensor(first[:axis] + (len(tensors),) + first[axis:])
    return Tensor(first[:axis] + (sum(t.shape[axis] for t in tensors),) + first[axis + 1:])


def _flatten_function(sweep: ShapePass, node: Any, args: tuple, kwargs: dict, env: dict) -> Any:
    x = args[0] if args else None
    if not isinstance(x, Tensor):
        return NotImplemented
    return _flatten(x, _argument(args, kwargs, "start_dim", 1, 0), _argument(args, kwargs, "end_dim", 2, -1))


def _view(sweep: ShapePass, node: Any, args: tuple, kwargs: dict, env: dict) -> Any:
    x = args[0] if args else None
    if not isinstance(x, Tensor):
        return NotImplemented
    shape = args[1] if len(args) == 2 and isinstance(args[1], (tuple, list)) else args[1:]
    shape = kwargs.get("shape", shape)
    if not all(isinstance(s, int) for s in shape) or sum(s == -1 for s in shape) > 1:
        return NotImplemented
    total = math.prod(x.shape)
    known = math.prod(s for s in shape if s != -1)
    if (-1 in shape and (known == 0 or total % known)) or (-1 not in shape and known != total):
        raise NodeFailure(f"{function_name(node)}: {format_size(x.shape)} ({total:,} elements) cannot be viewed as "
                          f"[{', '.join(map(str, shape))}]")
    return Tensor(tuple(total // known if s == -1 else s for s in shape))


def _size(sweep: ShapePass, node: Any, args: tuple, kwargs: dict, env: dict) -> Any:
    x = args[0] if args else None
    if not isinstance(x, Tensor):
        return NotImplemented
    dim = _argument(args, kwargs, "dim", 1, None)
    return x.shape if dim is None else x.shape[dim]


def _getattr(sweep: ShapePass, node: Any, args: tuple, kwargs: dict, env: dict) -> Any:
    if len(args) == 2 and isinstance(args[0], Tensor) and args[1] == "shape":
        return args[0].shape
    return NotImplemented


def _getitem(sweep: ShapePass, node: Any, args: tuple, kwargs: dict, env: dict) -> Any:
    container, index = args[0], args[1]
    if isinstance(container, (tuple, list)) and not isinstance(container, Tensor):
        return container[index]
    return NotImplemented


def _linear_function(sweep: ShapePass, node: Any, args: tuple, kwargs: dict, env: dict) -> Any:
    x, weight = args[0] if args else None, _argument(args, kwargs, "weight", 1, None)
    if not isinstance(x, Tensor) or not isinstance(weight, Tensor) or len(weight.shape) != 2:
        return NotImplemented
    return _linear(node_key(node), "linear", x, weight.shape[1], weight.shape[0], node, env)


def _conv_function(sweep: ShapePass, node: Any, args: tuple, kwargs: dict, env: dict) -> Any:
    name = function_name(node)
    x, weight = args[0] if args else None, _argument(args, kwargs, "weight", 1, None)
    if not isinstance(x, Tensor) or not isinstance(weight, Tensor):
        return NotImplemented
    transposed = "transpose" in name
    dims = int(name[-2])
    groups = _argument(args, kwargs, "groups", 6, 1)
    key = (node, "layer")
    if key not in sweep.layers:
        try:
            sweep.layers[key] = Layer.build(
                weight.shape[2:], _argument(args, kwargs, "stride", 3, 1), _argument(args, kwargs, "padding", 4, 0),
                _argument(args, kwargs, "dilation", 7 if transposed else 5, 1),
                op="conv_transpose" if transposed else "conv", dims=dims,
                output_padding=_argument(args, kwargs, "output_padding", 5, 0) if transposed else 0)
        except ConvcalcError:
            return NotImplemented
    channels = weight.shape[0] if transposed else weight.shape[1] * groups
    out_channels = weight.shape[1] * groups if transposed else weight.shape[0]
    return sweep._windowed(node, node_key(node), name, x, sweep.layers[key], channels, out_channels, env)


def _pool_function(sweep: ShapePass, node: Any, args: tuple, kwargs: dict, env: dict) -> Any:
    name = function_name(node)
    x = args[0] if args else None
    if not isinstance(x, Tensor) or _argument(args, kwargs, "return_indices", 6 if name.startswith("max") else 99,
                                              False):
        return NotImplemented
    key = (node, "layer")
    if key not in sweep.layers:
        kernel = _argument(args, kwargs, "kernel_size", 1, None)
        stride = _argument(args, kwargs, "stride", 2, None)
        try:
            sweep.layers[key] = Layer.build(
                kernel, stride if stride not in (None, [], ()) else None, _argument(args, kwargs, "padding", 3, 0),
                _argument(args, kwargs, "dilation", 4, 1) if name.startswith("max") else 1,
                op="max_pool" if name.startswith("max") else "avg_pool", dims=int(name[-2]),
                ceil_mode=_argument(args, kwargs, "ceil_mode", 5 if name.startswith("max") else 4, False))
        except ConvcalcError:
            return NotImplemented
    return sweep._windowed(node, node_key(node), name, x, sweep.layers[key], None, None, env)


def _adaptive_function(sweep: ShapePass, node: Any, args: tuple, kwargs: dict, env: dict) -> Any:
    name = function_name(node)
    x = args[0] if args else None
    if not isinstance(x, Tensor) or _argument(args, kwargs, "return_indices", 2, False):
        return NotImplemented
    return _adaptive(node_key(node), x, _argument(args, kwargs, "output_size", 1, None), int(name[-2]))


def _interpolate(sweep: ShapePass, node: Any, args: tuple, kwargs: dict, env: dict) -> Any:
    """Output ``size``, or ``floor(n * scale_factor)`` per dimension (F.interpolate), at least 1."""
    x = args[0] if args else None
    size, scale = _argument(args, kwargs, "size", 1, None), _argument(args, kwargs, "scale_factor", 2, None)
    if not isinstance(x, Tensor) or len(x.shape) < 3 or (size is None) == (scale is None):
        return NotImplemented
    dims = len(x.shape) - 2
    spatial = x.shape[2:]
    if size is not None:
        sizes = tuple(size) if isinstance(size, (tuple, list)) else (size,) * dims
        if len(sizes) != dims or not all(isinstance(s, int) for s in sizes):
            return NotImplemented
        out = sizes
    else:
        scales = tuple(scale) if isinstance(scale, (tuple, list)) else (scale,) * dims
        if len(scales) != dims:
            return NotImplemented
        out = tuple(math.floor(float(n) * float(s)) for n, s in zip(spatial, scales))
    if any(n < 1 for n in spatial + out):
        raise NodeFailure(f"interpolate from {format_size(spatial)} to {format_size(out)}: "
                          f"input and output sizes should be greater than 0")
    return Tensor(x.shape[:2] + out)


_FUNCTION_RULES = {
    **{name: _broadcast for name in ELEMENTWISE},
    "cat": _cat, "concat": _cat, "concatenate": _cat, "stack": _cat,
    "flatten": _flatten_function, "view": _view, "reshape": _view, "size": _size, "getattr": _getattr,
    "getitem": _getitem, "linear": _linear_function, "interpolate": _interpolate,
    **{f"conv{n}d": _conv_function for n in (1, 2, 3)},
    **{f"conv_transpose{n}d": _conv_function for n in (1, 2, 3)},
    **{f"{kind}_pool{n}d": _pool_function for kind in ("max", "avg") for n in (1, 2, 3)},
    **{f"adaptive_{kind}_pool{n}d": _adaptive_function for kind in ("max", "avg") for n in (1, 2, 3)},
}


def sweep_sizes(model: Any, base: tuple[int, ...], low: int, high: int, axes: Sequence[int] | None = None
                ) -> tuple[SizeSweep, list[str]]:
    """Every size ``n`` in ``low..high`` on the spatial ``axes`` (default: all of them; the others as in
    ``base``, the --input shape) through the model's traced graph; and notes (nodes sized on the meta
    device). One trace, then one pass over the graph per size: no tensor is allocated."""
    if high - low + 1 > MAX_MODEL_SIZES:
        raise ConvcalcError(f"{{sizes}} holds {high - low + 1:,} sizes; a model sweep takes at most "
                            f"{MAX_MODEL_SIZES:,}", parameters=("sizes",))
    axes = list(axes) if axes is not None else list(range(2, len(base)))
    shape_pass = ShapePass(fx_trace(model.eval(), "--sizes"))
    results = []
    for n in range(low, high + 1):
        shape = tuple(n if axis in axes else size for axis, size in enumerate(base))
        result = shape_pass.run(shape)
        results.append(SizeResult(n, result.out, result.node, result.reason))
    notes = [f"no shape rule for {', '.join(sorted(shape_pass.meta_nodes))}: sized on the meta device"] \
        if shape_pass.meta_nodes else []
    return SizeSweep(low, high, tuple(results)), notes


def diagnose_input(graph_module: Any, shape: tuple[int, ...], reach: int = 64) -> str | None:
    """Why ``shape`` fails, in the model's terms, and the nearest input shapes that work (every spatial
    size moved together, up to ``reach`` either way); None where the rules find no failure."""
    shape_pass = ShapePass(graph_module)
    result = shape_pass.run(shape)
    if result.ok:
        return None
    spatial = shape[2:]
    moves = list(range(-min(spatial) + 1, reach + 1))
    working = [delta for delta in moves if delta and shape_pass.run(
        shape[:2] + tuple(n + delta for n in spatial)).ok]
    below, above = nearest_sizes(working, 0)
    options = [format_size(shape[:2] + tuple(n + d for n in spatial)) for d in (below, above) if d is not None]
    nearest = f"; nearest inputs that work: {' or '.join(options)}" if options else \
        f"; no input within {reach} of it along every spatial dimension works"
    return f"the model fails on {format_size(shape)} at {result.node}: {result.reason}{nearest}"


