"""What flows through a model's graph: shapes, and per spatial dimension a field (docs/architecture.md, "Fields").

A field is a :class:`~convcalc.periodic.PeriodicField` (the exact input positions each unit sees) or a
:class:`FieldState` where no set of positions describes it. The functions here move fields through
windows, adaptive pooling, interpolation, flattening and merges. Pure Python: no torch (tested so).
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any, NamedTuple, Union

from ..errors import ConvcalcError
from ..periodic import PeriodicField, Window


class FieldState(enum.Enum):
    """A field that is not a set of positions."""

    GLOBAL = "global"  # every input position (after global pooling, a linear layer over positions, ...)
    FLAT = "flat"  # positions flattened into features: each value has a field, the tensor has no positions
    UNKNOWN = "unknown"  # an op convcalc has no rule for


class Macs(NamedTuple):
    """One node's multiply-accumulates per convention, at batch 1 (graph/costs.py)."""

    aten: int = 0
    fvcore: int = 0
    torchinfo: int = 0


NO_MACS = Macs()


def node_argument(node: Any, name: str, position: int, default: Any) -> Any:
    """An fx node's argument, given by keyword or at ``position``."""
    if node is None:
        return default
    if name in node.kwargs:
        return node.kwargs[name]
    return node.args[position] if len(node.args) > position else default


GLOBAL, FLAT, UNKNOWN = FieldState.GLOBAL, FieldState.FLAT, FieldState.UNKNOWN
Field = Union[PeriodicField, FieldState]  # per spatial dimension


class NodeKind(enum.Enum):
    """What a node does to positions; nodes of every kind are shown by default (pointwise ones are not)."""

    CONV = "conv"
    TCONV = "tconv"
    POOL = "pool"
    ADAPTIVE = "adaptive pool"
    RESIZE = "resize"
    FLATTEN = "flatten"
    LINEAR = "linear"
    MERGE = "merge"
    REDUCE = "reduce"


SHOWN = frozenset(NodeKind)


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
    kind: NodeKind | None
    shape: tuple[int, ...] | None
    params: int
    flow: Flow
    note: str | None = None
    macs: Macs = NO_MACS  # at batch 1 (costs.model_totals scales by the batch)
    aliases: bool = False  # its output is its input, a view of it, or written into it
    modules: tuple[str, ...] = ()  # the modules it runs inside, outermost first (fx's nn_module_stack)

    @property
    def fields(self) -> list[Field]:
        return self.flow.fields

    @property
    def out_numel(self) -> int:
        """Elements of the node's output (at the input's batch), 0 where it is not one tensor."""
        return math.prod(self.shape) if self.shape else 0


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
    params: int = 0  # the model's parameters, each counted once however often it is used
    trainable_params: int = 0
    peak_bytes: int | None = None  # memory --infer's peak (graph/memory.py)

    def node(self, name: str) -> NodeInfo:
        """The node named ``name``; a module that holds several nodes (``layer4``, a block) stands for
        its output, the last node run inside it."""
        for info in self.nodes:
            if info.name == name:
                return info
        inside = [info for info in self.nodes if name in info.modules]
        if inside:
            return inside[-1]
        known = ", ".join(n.name for n in self.nodes if n.kind in SHOWN)
        raise ConvcalcError(f"no node named {name!r} in the traced graph (nodes shown by default: {known})")


def input_flow(shape: tuple[int, ...] | None, dims: int) -> Flow:
    """The model's input: each spatial axis (2, 3, ...) its own dimension, each unit seeing itself."""
    return Flow(shape, [PeriodicField.input() for _ in range(dims)], {2 + d: d for d in range(dims)})


def apply(source: Flow, windows: list[Window], shape: tuple[int, ...] | None) -> Flow:
    if not _standard_axes(source):
        return unknown(source, shape)
    fields = [f.through(w) if isinstance(f, PeriodicField) else f for f, w in zip(source.fields, windows)]
    return Flow(shape, fields, dict(source.axes))


def _standard_axes(source: Flow) -> bool:
    """Spatial dimensions still on the tensor's last axes, in order (what conv and pooling act on)."""
    if source.shape is None:
        return False
    n = len(source.fields)
    return all(source.axes.get(len(source.shape) - n + d) == d for d in range(n))


def adaptive(source: Flow, shape: tuple[int, ...] | None) -> Flow:
    if shape is None or source.shape is None or not _standard_axes(source):
        return unknown(source, shape)
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


def resize(source: Flow, shape: tuple[int, ...] | None, mode: str, align_corners: bool,
            antialias: bool = False) -> tuple[Flow, str | None]:
    """Interpolation by whole factors, up or down, read exactly (taps of zero weight excluded); "area"
    is adaptive average pooling; antialiased downsampling widens the filter, so its field is unknown."""
    if shape is None or source.shape is None or not _standard_axes(source):
        return unknown(source, shape), "interpolation on an unusual layout: its field is unknown"
    n = len(source.fields)
    fields: list[Field] = []
    for d, f in enumerate(source.fields):
        size_in, size_out = source.shape[-n + d], shape[-n + d]
        if antialias and size_out < size_in:
            return unknown(source, shape), "antialiased downsampling widens its filter: its field is unknown"
        window = _adaptive_window(size_in, size_out) if mode == "area" else \
            _resize_window(size_in, size_out, mode, align_corners)
        if window is None:
            return unknown(source, shape), (f"interpolation from {size_in} to {size_out} ({mode}"
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


def flatten(source: Flow, shape: tuple[int, ...] | None, start: int) -> tuple[NodeKind | None, Flow, str | None]:
    """Flattening positions into features: global stays global, positional fields become FLAT."""
    if source.shape is not None and any(axis >= start for axis in source.axes):
        return NodeKind.FLATTEN, flattened(source, shape), None
    return None, Flow(shape, list(source.fields), dict(source.axes)), None


def flattened(source: Flow, shape: tuple[int, ...] | None) -> Flow:
    return Flow(shape, [f if f in (GLOBAL, UNKNOWN) else FLAT for f in source.fields], {})


def last_axis(source: Flow, shape: tuple[int, ...] | None) -> Flow:
    """A layer acting on the last axis (Linear): global if that axis is a spatial one or holds flattened
    positions."""
    if FLAT in source.fields or (source.shape is not None and (len(source.shape) - 1) in source.axes):
        return globalised(source, shape)
    return same(source, shape)


def same(source: Flow, shape: tuple[int, ...] | None) -> Flow:
    return Flow(shape, list(source.fields), dict(source.axes))


def globalised(source: Flow, shape: tuple[int, ...] | None) -> Flow:
    return Flow(shape, [GLOBAL if f != UNKNOWN else UNKNOWN for f in source.fields], {})


def unknown(source: Flow, shape: tuple[int, ...] | None) -> Flow:
    return Flow(shape, [f if f == GLOBAL else UNKNOWN for f in source.fields], dict(source.axes))


def same_spatial(source: Flow, shape: tuple[int, ...] | None) -> bool:
    return shape is not None and source.shape is not None and len(shape) == len(source.shape) and all(
        shape[axis] == source.shape[axis] for axis in source.axes)


def broadcast_along(flow: Flow, shape: tuple[int, ...] | None, dim: int) -> bool:
    """An input of size 1 along a spatial axis that the output has wider (broadcast): it adds nothing
    per position along that dimension beyond its own (usually global) field."""
    if flow.shape is None or shape is None:
        return False
    for axis, d in flow.axes.items():
        if d == dim and axis < len(flow.shape) and axis < len(shape):
            return flow.shape[axis] == 1 and shape[axis] > 1
    return False


def field_values(fields: list[Field], what: str) -> Any:
    """A node's receptive field (``what="rf"``) or jump per dimension, as checks compare them: ``"global"``
    (a receptive field) or None (a jump) for a global field; None where any dimension has no positions."""
    if fields and all(f is GLOBAL for f in fields):
        return "global" if what == "rf" else None
    if not fields or any(isinstance(f, FieldState) for f in fields):
        return None
    return tuple(f.receptive_field if what == "rf" else f.jump for f in fields)  # type: ignore[union-attr]
