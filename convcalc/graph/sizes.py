"""Which input sizes a traced model accepts: shapes propagated through the fx graph by convcalc's own
rules (:mod:`convcalc.graph.shapes`), one pass per size and no tensor allocated (docs/architecture.md, "Sizes a
model accepts"). A node without a rule runs on the meta device (shapes only), and the sweep says which.
"""

from __future__ import annotations

import copy
import warnings
from collections.abc import Sequence
from typing import Any

from ..errors import ConvcalcError
from ..layer import Layer, format_size
from ..sizes import MAX_MODEL_SIZES, SizeResult, SizeSweep, nearest_sizes
from ..torchcheck import error_line, import_torch
from .fx import fx_trace
from .nodes import function_name, node_key
from .shapes import (
    FUNCTION_RULES,
    SAME_SHAPE_FUNCTIONS,
    NodeFailure,
    Tensor,
    first_tensor,
    flat,
    module_shape,
    resolve,
)


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
                out = first_tensor(resolve(node.args, env))
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
        args, kwargs = resolve(node.args, env), resolve(node.kwargs, env)
        if node.op == "call_module":
            module = self.modules[node.target]
            result = module_shape(self.layers, node, module, type(module).__name__, args, kwargs, env)
            return self._meta(node, args, kwargs) if result is NotImplemented else result
        name = function_name(node)
        tensors = [a for a in flat(args) + flat(kwargs) if isinstance(a, Tensor)]
        if not tensors and node.op == "call_function" and getattr(node.target, "__module__", "") in (
                "_operator", "operator", "builtins", "math"):
            return node.target(*args, **kwargs)  # arithmetic on sizes
        rule = FUNCTION_RULES.get(name)
        if rule is not None:
            result = rule(self.layers, node, args, kwargs, env)
            if result is not NotImplemented:
                return result
        if name in SAME_SHAPE_FUNCTIONS and tensors and node.op != "call_module":
            return tensors[0]
        return self._meta(node, args, kwargs)

    def _meta(self, node: Any, args: tuple, kwargs: dict) -> Any:
        """The node run on the meta device: shapes without data."""
        torch = self.torch
        label = type(self.modules[node.target]).__name__ if node.op == "call_module" else function_name(node)
        self.meta_nodes.add(f"{node_key(node)} ({label})" if label != node_key(node) else label)

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
    size moved together, up to ``reach`` either way; none named where no spatial size helps, as with a
    wrong channel count); None where the rules find no failure."""
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
    nearest = f"; nearest inputs that work: {' or '.join(options)}" if options else ""
    return f"the model fails on {format_size(shape)} at {result.node}: {result.reason}{nearest}"


