"""Shape rules for the size sweep: what each module or function does to a tensor's shape, and where torch
raises, said in the model's terms (docs/architecture.md, "Sizes a model accepts").

Convolutions and pooling go through :class:`~convcalc.layer.Layer` (the rules `convcalc out` uses);
merges, concatenation, flatten, view and Linear check what torch checks. A rule returns the output
(a :class:`Tensor`, or a Python value for sizes), raises :class:`NodeFailure`, or returns NotImplemented
where it has no answer (the sweep then runs the node on the meta device). No torch here.
"""

from __future__ import annotations

import math
import re
from typing import Any, NamedTuple

from ..errors import ConvcalcError, ShapeError
from ..layer import Layer, format_size
from .nodes import function_name, node_key
from .rules import SAFE_POINTWISE


class Tensor(NamedTuple):
    """A tensor in the sweep: its shape only."""

    shape: tuple[int, ...]


class NodeFailure(Exception):
    """A node that rejects its input, in the model's terms."""


ELEMENTWISE = {"add", "iadd", "sub", "isub", "mul", "imul", "truediv", "itruediv", "div", "maximum", "minimum",
               "where", "floordiv", "pow", "eq", "ne", "lt", "gt", "le", "ge"}
SAME_SHAPE_MODULES = SAFE_POINTWISE - {"InstanceNorm1d", "InstanceNorm2d", "InstanceNorm3d", "LocalResponseNorm"}
SAME_SHAPE_FUNCTIONS = {name for name in SAFE_POINTWISE if name[:1].islower()} - {"instance_norm", "to", "type_as"}


def module_shape(layers: dict[Any, Layer], node: Any, module: Any, label: str, args: tuple, kwargs: dict,
                 env: dict) -> Any:
    """A module call's output, NodeFailure where torch would raise, NotImplemented where there is no rule."""
    x = args[0] if args else None
    if not isinstance(x, Tensor) or len(args) > 1 or kwargs:
        return NotImplemented
    name = node_key(node)
    if label.startswith(("Conv", "MaxPool", "AvgPool")) and hasattr(module, "kernel_size") and \
            label[-2:-1].isdigit():
        channels = getattr(module, "in_channels", None)
        try:
            layer = module_layer(layers, module, label)
        except ConvcalcError:  # a layer convcalc's rules do not take: torch decides
            return NotImplemented
        return windowed(node, label, x, layer, channels, getattr(module, "out_channels", None), env)
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
    if label in ("Upsample", "UpsamplingNearest2d", "UpsamplingBilinear2d"):
        return resized(x, module.size, module.scale_factor)
    if label in SAME_SHAPE_MODULES:
        return x
    return NotImplemented


def module_layer(layers: dict[Any, Layer], module: Any, label: str) -> Layer:
    if module not in layers:
        op = "conv_transpose" if label.startswith("ConvTranspose") else "conv" if label.startswith("Conv") \
            else "max_pool" if label.startswith("MaxPool") else "avg_pool"
        dims = int(label[-2])
        layers[module] = Layer.build(
            module.kernel_size, module.stride, module.padding, getattr(module, "dilation", 1), op=op,
            output_padding=getattr(module, "output_padding", 0), ceil_mode=getattr(module, "ceil_mode", False),
            dims=dims, padding_mode=getattr(module, "padding_mode", "zeros"))
    return layers[module]


def windowed(node: Any, label: str, x: Tensor, layer: Layer, channels: int | None, out_channels: int | None,
             env: dict) -> Tensor:
    """Convolution or pooling through :class:`Layer`: channels checked, spatial sizes by its rules."""
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


def resolve(value: Any, env: dict[Any, Any]) -> Any:
    if hasattr(value, "op") and hasattr(value, "name") and value in env:
        return env[value]
    if isinstance(value, tuple) and not isinstance(value, Tensor):
        return tuple(resolve(v, env) for v in value)
    if isinstance(value, list):
        return [resolve(v, env) for v in value]
    if isinstance(value, dict):
        return {k: resolve(v, env) for k, v in value.items()}
    return value


def flat(value: Any) -> list[Any]:
    if isinstance(value, Tensor):
        return [value]
    if isinstance(value, (list, tuple)):
        return [item for v in value for item in flat(v)]
    if isinstance(value, dict):
        return [item for v in value.values() for item in flat(v)]
    return [value]


def first_tensor(value: Any) -> Tensor | None:
    return next((v for v in flat(value) if isinstance(v, Tensor)), None)


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
        raise NodeFailure(f"{name} expects {in_features:,} features, {_source(node, env)} gives {given:,} (on this "
                          f"input, {label}(in_features={given}, ...) would fit)")
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


def _broadcast(layers: dict[Any, Layer], node: Any, args: tuple, kwargs: dict, env: dict) -> Any:
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


def _cat(layers: dict[Any, Layer], node: Any, args: tuple, kwargs: dict, env: dict) -> Any:
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


def _flatten_function(layers: dict[Any, Layer], node: Any, args: tuple, kwargs: dict, env: dict) -> Any:
    x = args[0] if args else None
    if not isinstance(x, Tensor):
        return NotImplemented
    return _flatten(x, _argument(args, kwargs, "start_dim", 1, 0), _argument(args, kwargs, "end_dim", 2, -1))


def _view(layers: dict[Any, Layer], node: Any, args: tuple, kwargs: dict, env: dict) -> Any:
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


def _size(layers: dict[Any, Layer], node: Any, args: tuple, kwargs: dict, env: dict) -> Any:
    x = args[0] if args else None
    if not isinstance(x, Tensor):
        return NotImplemented
    dim = _argument(args, kwargs, "dim", 1, None)
    return x.shape if dim is None else x.shape[dim]


def _getattr(layers: dict[Any, Layer], node: Any, args: tuple, kwargs: dict, env: dict) -> Any:
    if len(args) == 2 and isinstance(args[0], Tensor) and args[1] == "shape":
        return args[0].shape
    return NotImplemented


def _getitem(layers: dict[Any, Layer], node: Any, args: tuple, kwargs: dict, env: dict) -> Any:
    container, index = args[0], args[1]
    if isinstance(container, (tuple, list)) and not isinstance(container, Tensor):
        return container[index]
    return NotImplemented


def _linear_function(layers: dict[Any, Layer], node: Any, args: tuple, kwargs: dict, env: dict) -> Any:
    x, weight = args[0] if args else None, _argument(args, kwargs, "weight", 1, None)
    if not isinstance(x, Tensor) or not isinstance(weight, Tensor) or len(weight.shape) != 2:
        return NotImplemented
    return _linear(node_key(node), "linear", x, weight.shape[1], weight.shape[0], node, env)


def _conv_function(layers: dict[Any, Layer], node: Any, args: tuple, kwargs: dict, env: dict) -> Any:
    name = function_name(node)
    x, weight = args[0] if args else None, _argument(args, kwargs, "weight", 1, None)
    if not isinstance(x, Tensor) or not isinstance(weight, Tensor):
        return NotImplemented
    transposed = "transpose" in name
    dims = int(name[-2])
    groups = _argument(args, kwargs, "groups", 6, 1)
    key = (node, "layer")
    if key not in layers:
        try:
            layers[key] = Layer.build(
                weight.shape[2:], _argument(args, kwargs, "stride", 3, 1), _argument(args, kwargs, "padding", 4, 0),
                _argument(args, kwargs, "dilation", 7 if transposed else 5, 1),
                op="conv_transpose" if transposed else "conv", dims=dims,
                output_padding=_argument(args, kwargs, "output_padding", 5, 0) if transposed else 0)
        except ConvcalcError:
            return NotImplemented
    channels = weight.shape[0] if transposed else weight.shape[1] * groups
    out_channels = weight.shape[1] * groups if transposed else weight.shape[0]
    return windowed(node, name, x, layers[key], channels, out_channels, env)


def _pool_function(layers: dict[Any, Layer], node: Any, args: tuple, kwargs: dict, env: dict) -> Any:
    name = function_name(node)
    x = args[0] if args else None
    if not isinstance(x, Tensor) or _argument(args, kwargs, "return_indices", 6 if name.startswith("max") else 99,
                                              False):
        return NotImplemented
    key = (node, "layer")
    if key not in layers:
        kernel = _argument(args, kwargs, "kernel_size", 1, None)
        stride = _argument(args, kwargs, "stride", 2, None)
        try:
            layers[key] = Layer.build(
                kernel, stride if stride not in (None, [], ()) else None, _argument(args, kwargs, "padding", 3, 0),
                _argument(args, kwargs, "dilation", 4, 1) if name.startswith("max") else 1,
                op="max_pool" if name.startswith("max") else "avg_pool", dims=int(name[-2]),
                ceil_mode=_argument(args, kwargs, "ceil_mode", 5 if name.startswith("max") else 4, False))
        except ConvcalcError:
            return NotImplemented
    return windowed(node, name, x, layers[key], None, None, env)


def _adaptive_function(layers: dict[Any, Layer], node: Any, args: tuple, kwargs: dict, env: dict) -> Any:
    name = function_name(node)
    x = args[0] if args else None
    if not isinstance(x, Tensor) or _argument(args, kwargs, "return_indices", 2, False):
        return NotImplemented
    return _adaptive(node_key(node), x, _argument(args, kwargs, "output_size", 1, None), int(name[-2]))


def _interpolate(layers: dict[Any, Layer], node: Any, args: tuple, kwargs: dict, env: dict) -> Any:
    """Output ``size``, or ``floor(n * scale_factor)`` per dimension (F.interpolate), at least 1."""
    x = args[0] if args else None
    if not isinstance(x, Tensor):
        return NotImplemented
    return resized(x, _argument(args, kwargs, "size", 1, None), _argument(args, kwargs, "scale_factor", 2, None))


def resized(x: Tensor, size: Any, scale: Any) -> Any:
    """F.interpolate's (and nn.Upsample's) output: ``size``, or ``floor(n * scale_factor)`` (torch computes
    it in double precision, as Python floats are), every size at least 1."""
    if len(x.shape) < 3 or (size is None) == (scale is None):
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


FUNCTION_RULES = {
    **{name: _broadcast for name in ELEMENTWISE},
    "cat": _cat, "concat": _cat, "concatenate": _cat, "stack": _cat,
    "flatten": _flatten_function, "view": _view, "reshape": _view, "size": _size, "getattr": _getattr,
    "getitem": _getitem, "linear": _linear_function, "interpolate": _interpolate,
    **{f"conv{n}d": _conv_function for n in (1, 2, 3)},
    **{f"conv_transpose{n}d": _conv_function for n in (1, 2, 3)},
    **{f"{kind}_pool{n}d": _pool_function for kind in ("max", "avg") for n in (1, 2, 3)},
    **{f"adaptive_{kind}_pool{n}d": _adaptive_function for kind in ("max", "avg") for n in (1, 2, 3)},
}
