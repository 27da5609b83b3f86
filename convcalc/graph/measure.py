"""Verification by gradient: a node's field measured in torch, beside the computed one.

Positive weights, average pooling standing in for max pooling, saturating activations replaced,
float64; the input's gradient from one output unit marks the positions it sees (fornaxai's method;
docs/references.md).
"""

from __future__ import annotations

import copy
import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from ..errors import ConvcalcError
from ..layer import Layer, format_size
from ..periodic import PeriodicField, UnitField
from ..torchcheck import error_line, import_torch
from ..torchmeasure import MEASURE_MARGIN, fields_seen, stand_in
from .fields import FLAT, GLOBAL, SHOWN, UNKNOWN, Inspection, NodeInfo
from .fx import shape_recorder
from .nodes import node_key
from .probe import PositionProbe
from .tracing import ancestors, walk

# Normalisations that defeat the gradient measurement (see verify): they normalise over positions
# (GroupNorm, InstanceNorm) or, with every channel equal, leave a zero gradient (LayerNorm).
SPOILS_GRADIENT = {"GroupNorm", "InstanceNorm1d", "InstanceNorm2d", "InstanceNorm3d", "LayerNorm",
                   "group_norm", "instance_norm", "layer_norm", "LocalResponseNorm"}


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
    def agrees(self) -> bool | None:
        """Whether torch's gradient shows the computed field; None where nothing was measured."""
        return None if self.skipped is not None else self.measured == self.predicted


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
        held = _activation_bytes(inspection, name, size)
        if held > MEASURE_LIMIT_BYTES:
            return NodeMeasurement.skip(name, f"measuring on a {format_size(size)} input would hold about "
                                              f"{held / 2**20:,.0f} MiB of float64 activations and gradients "
                                              f"(limit {MEASURE_LIMIT_BYTES // 2**20} MiB)", size)
        try:
            at_size = _reinspected(inspection, size, torch).node(name)
        except ConvcalcError as exc:
            return NodeMeasurement.skip(name, str(exc), size)
        if at_size.shape is None or any(not isinstance(f, PeriodicField) for f in at_size.fields):
            return NodeMeasurement.skip(name, "its field is not positional on a larger input", size)
        axes = {d: a for a, d in at_size.flow.axes.items()}
        if sorted(axes) != list(range(dims)):
            return NodeMeasurement.skip(name, "its positions are not one tensor axis per dimension (tokens in "
                                              "windows, say): no unit to pick", size)
        unit = tuple(at_size.shape[axes[d]] // 2 for d in range(dims))
        index: list[Any] = [slice(None)] * len(at_size.shape)
        for d in range(dims):
            index[axes[d]] = unit[d]
        seen = [f.of(u) for f, u in zip(at_size.fields, unit)]  # type: ignore[union-attr]
        if all(s and MEASURE_MARGIN <= s.first and s.last < n - MEASURE_MARGIN for s, n in zip(seen, size)):
            break
        size = tuple(2 * n for n in size)
    else:
        return NodeMeasurement.skip(name, "no input size keeps the unit's field inside the input", size)
    predicted = tuple(UnitField(s.first, s.last, s.coverage().holes) for s in seen)
    measured = _gradient_at(inspection, name, size, lambda value: value[tuple(index)].sum(), torch)
    if isinstance(measured, str):
        return NodeMeasurement.skip(name, measured, size)
    return NodeMeasurement(name, size, unit, measured, predicted)


MEASURE_LIMIT_BYTES = 512 * 2**20


def _activation_bytes(inspection: Inspection, name: str, size: tuple[int, ...]) -> int:
    """The float64 activations and gradients up to node ``name`` on an input of ``size``, estimated from
    the inspected shapes (each scales with the input's area)."""
    keep = ancestors(inspection, name)
    scale = math.prod(size) / math.prod(inspection.input_shape[2:])
    elements = sum(math.prod(n.shape[1:]) for n in inspection.nodes if n.name in keep and n.shape)
    return int(elements * scale * 8 * 2)


def _reinspected(inspection: Inspection, size: tuple[int, ...], torch: Any) -> Inspection:
    """The same graph's fields on an input of ``size`` (windows of adaptive pooling and of interpolation
    to a given size depend on it)."""
    shape = (1, inspection.input_shape[1], *size)
    try:
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            shape_recorder(inspection.graph, torch).run(torch.zeros(*shape))
    except (Exception, SystemExit) as exc:
        raise ConvcalcError(f"the model did not run on a {format_size(size)} input: "
                            f"{error_line(exc)}") from None
    return walk(inspection.graph, shape, inspection.model, probe=PositionProbe(inspection.graph))


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
    keep = ancestors(inspection, name)
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
                if parameter_name.endswith("bias"):  # a constant added: no path through it
                    parameter.fill_(0.0)
                elif parameter.dim() > 1:  # weights, and any other factor (an einsum's, a layer scale)
                    parameter.fill_(1.0 / max(1, parameter[0].numel()))
                else:
                    parameter.fill_(1.0)
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
    """A max pool's windows, averaged (as torchmeasure.stand_in does for modules)."""
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
            if node_key(node) == name:
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
