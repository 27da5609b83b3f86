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
from .layout import (
    Layout,
    axis_dims,
    covers,
    dropped,
    input_layout,
    mixed_factors,
    mixing_window,
    standard_dims,
    without_positions,
)
from .layout import opaque as opaque_layout
from .layout import reshaped as reshaped_layout


class FieldState(enum.Enum):
    """A field that is not a set of positions."""

    GLOBAL = "global"  # every input position (after global pooling, a linear layer over positions, ...)
    FLAT = "flat"  # positions flattened into features: each value has a field, the tensor has no positions
    UNKNOWN = "unknown"  # an op convcalc has no rule for
    NONE = "none"  # local fields only: no path that avoids an op mixing a whole dimension


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


GLOBAL, FLAT, UNKNOWN, NONE = FieldState.GLOBAL, FieldState.FLAT, FieldState.UNKNOWN, FieldState.NONE
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
    ATTENTION = "attention"
    OPAQUE = "opaque"


SHOWN = frozenset(NodeKind)


@dataclass
class Flow:
    """What a value in the graph carries: its shape, per spatial dimension its field, and its layout
    (graph/layout.py: which tensor axes hold which positions).

    ``constant`` marks values that do not depend on the input (parameters, sizes), which merges ignore.
    ``local`` marks the flows of the local walk (:func:`mixed`), where an op that mixes a whole dimension
    leaves no path (NONE) instead of a global field.
    """

    shape: tuple[int, ...] | None
    fields: list[Field] = field(default_factory=list)
    layout: Layout | None = None
    constant: bool = False
    items: list[Flow] | None = None  # tuples and lists of values
    local: bool = False
    gave_up: bool = False  # a field grew past the bounds here (:func:`bounded`) and is unknown

    def spatial(self) -> bool:
        return bool(self.fields) and not self.constant

    @property
    def axes(self) -> dict[int, int]:
        """Tensor axes that each hold one spatial dimension whole: axis -> dimension."""
        return axis_dims(self.layout) if self.layout is not None else {}

    def derive(self, shape: tuple[int, ...] | None, fields: list[Field] | None = None,
               layout: Layout | None | str = "same") -> Flow:
        """A flow made from this one: the same fields and layout unless given. A field past the bounds
        (:func:`bounded`) is given up: unknown, and ``gave_up`` says so."""
        kept = [bounded(f) for f in (self.fields if fields is None else fields)]
        flow = Flow(shape, kept, self.layout if layout == "same" else layout, local=self.local)  # type: ignore[arg-type]
        flow.gave_up = any(k is UNKNOWN and f is not UNKNOWN
                           for k, f in zip(kept, self.fields if fields is None else fields))
        return flow


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
    local_fields: list[Field] = field(default_factory=list)  # the local walk's fields (:func:`mixed`)

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
    opaque: dict[str, str] = field(default_factory=dict)  # modules fx could not trace, called whole: why

    @property
    def traced_as(self) -> str:
        """``fx``, ``fx, 2 opaque modules`` (fx traced all but those: graph/partial.py), or ``forward hooks``."""
        if not self.traced:
            return "forward hooks"
        count = len(self.opaque)
        return "fx" if not count else f"fx, {count} opaque module{'s' if count != 1 else ''}"

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


MAX_SPAN = 2**22  # input positions one unit's field may span
MAX_PERIOD = 4096  # units in a field's period (each holds a set of positions)


def bounded(field: Field) -> Field:
    """A field, or unknown where following it would cost more than it tells: a span past ``MAX_SPAN``
    input positions or a period past ``MAX_PERIOD`` units. Fields grow so only where strides compose
    without end: forward hooks composing every branch of a NASNet cell in call order reach jumps of 2^23
    and bitsets of hundreds of MB."""
    if not isinstance(field, PeriodicField):
        return field
    if field.period > MAX_PERIOD or field.shift > MAX_SPAN * field.period or \
            any(p and p.last - p.first >= MAX_SPAN for p in field.phases):
        return UNKNOWN
    return field


def input_flow(shape: tuple[int, ...] | None, dims: int, local: bool = False) -> Flow:
    """The model's input: each spatial axis (2, 3, ...) its own dimension, each unit seeing itself."""
    return Flow(shape, [PeriodicField.input() for _ in range(dims)],
                input_layout(shape, dims) if shape is not None else None, local=local)


def standard(source: Flow) -> bool:
    """Spatial dimensions on the tensor's last axes, whole and in order (what conv and pooling act on)."""
    return standard_dims(source.layout, len(source.fields))


def apply(source: Flow, windows: list[Window], shape: tuple[int, ...] | None) -> Flow:
    if not standard(source):
        return unknown(source, shape)
    fields = [f.through(w) if isinstance(f, PeriodicField) else f for f, w in zip(source.fields, windows)]
    return source.derive(shape, fields, _layout_for(source, shape))


def _layout_for(source: Flow, shape: tuple[int, ...] | None) -> Layout | None:
    """The standard layout of ``shape`` (what a conv, a pool or an interpolation gives)."""
    return input_layout(shape, len(source.fields)) if shape is not None else None


def adaptive(source: Flow, shape: tuple[int, ...] | None) -> Flow:
    if shape is None or source.shape is None or not standard(source):
        return unknown(source, shape)
    n = len(source.fields)
    fields: list[Field] = []
    for d, f in enumerate(source.fields):
        size_in, size_out = source.shape[-n + d], shape[-n + d]
        if size_out == 1 and size_in > 1:
            fields.append(_whole(source))
        elif not isinstance(f, PeriodicField):
            fields.append(f)
        else:
            fields.append(f.through(_adaptive_window(size_in, size_out)))
    return source.derive(shape, fields, _layout_for(source, shape))


def _whole(source: Flow) -> Field:
    """What mixing a whole dimension gives: global, or in the local walk, no path."""
    return NONE if source.local else GLOBAL


def _adaptive_window(size_in: int, size_out: int) -> Window:
    """Adaptive pooling (and "area" interpolation): output i averages inputs floor(i*n/m) .. ceil((i+1)*n/m) - 1."""
    g = math.gcd(size_in, size_out)
    return Window.from_function(size_out // g, size_in // g, lambda r: range(
        (r * size_in) // size_out, -(-((r + 1) * size_in) // size_out)))


def resize(source: Flow, shape: tuple[int, ...] | None, mode: str, align_corners: bool,
           antialias: bool = False) -> tuple[Flow, str | None]:
    """Interpolation by whole factors, up or down, read exactly (taps of zero weight excluded); "area"
    is adaptive average pooling; antialiased downsampling widens the filter, so its field is unknown."""
    if shape is None or source.shape is None or not standard(source):
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
    return source.derive(shape, fields, _layout_for(source, shape)), None


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


def reshaped(source: Flow, shape: tuple[int, ...] | None) -> Flow:
    """A view or reshape: the positions move with the layout (graph/layout.py); where the layout cannot
    follow (a split that does not divide) the field is unknown. Positions merged with channels on one
    axis (a classifier's flatten) show as ``flat``: each value keeps its field."""
    if shape is None or source.layout is None:
        return unknown(source, shape)
    layout = reshaped_layout(source.layout, shape)
    if layout is None:
        return unknown(source, shape)
    flat = any(any(f[0] is not None for f in axis) and any(f[0] is None and f[1] > 1 for f in axis)
               for axis in layout)
    fields = [FLAT if flat and isinstance(f, PeriodicField) else f for f in source.fields]
    return source.derive(shape, fields, layout)


def mixed(source: Flow, axes: list[int], shape: tuple[int, ...] | None, keep: bool = True) -> Flow:
    """An op whose every output value along ``axes`` depends on every input value along them (attention
    over tokens, a softmax, a reduction, a linear layer over an axis of positions): each position's field
    becomes the union over the positions those axes hold (global where they hold a whole dimension; in
    the local walk, no path). ``keep``: the axes stay, holding no position now (else they are dropped)."""
    if source.layout is None or any(a >= len(source.layout) for a in axes):
        return unknown(source, shape)
    factors = mixed_factors(source.layout, axes)
    fields: list[Field] = []
    for d, f in enumerate(source.fields):
        if d not in factors or isinstance(f, FieldState) and f is not FLAT:
            fields.append(f if f is not FLAT or d not in factors else _whole(source))
        elif covers(source.layout, d, factors[d]):
            fields.append(_whole(source))
        else:
            fields.append(f.through(mixing_window(factors[d])) if isinstance(f, PeriodicField) else f)
    layout = without_positions(source.layout, axes) if keep else dropped(source.layout, axes)
    if keep and shape is not None and len(layout) == len(shape):  # keepdim: those axes hold no position, at size 1
        layout = tuple(((None, shape[a], 0),) if a in axes else axis for a, axis in enumerate(layout))
    if shape is not None and (len(layout) != len(shape) or any(math.prod(x[1] for x in axis) != n
                                                               for axis, n in zip(layout, shape))):
        layout = reshaped_layout(layout, shape) or opaque_layout(shape)
    return source.derive(shape, fields, layout)


def union(fields: list[list[Field]], local: bool) -> list[Field]:
    """Per dimension, the union of several inputs' fields (a merge); in the local walk an input with no
    path adds nothing. Returns the fields and whether the jumps and centres agreed is left to merges."""
    out: list[Field] = []
    for d in range(len(fields[0])):
        current = fields[0][d]
        for other in (f[d] for f in fields[1:]):
            current = union_one(current, other, local)
        out.append(current)
    return out


def union_one(mine: Field, theirs: Field, local: bool) -> Field:
    if local and NONE in (mine, theirs):
        return theirs if mine is NONE else mine
    if GLOBAL in (mine, theirs):
        return GLOBAL
    if UNKNOWN in (mine, theirs) or FLAT in (mine, theirs):
        return UNKNOWN if UNKNOWN in (mine, theirs) else FLAT
    assert isinstance(mine, PeriodicField) and isinstance(theirs, PeriodicField)
    return mine.union(theirs)[0]


def same(source: Flow, shape: tuple[int, ...] | None) -> Flow:
    """Per position: the fields and the layout stay (where the shape keeps its rank)."""
    if shape is None or source.shape is None or len(shape) != len(source.shape):
        return source.derive(shape, layout=None if shape is None else opaque_layout(shape))
    return source.derive(shape)


def unknown(source: Flow, shape: tuple[int, ...] | None) -> Flow:
    return source.derive(shape, [f if f in (GLOBAL, NONE) else UNKNOWN for f in source.fields],
                         opaque_layout(shape) if shape is not None else None)


def same_spatial(source: Flow, shape: tuple[int, ...] | None) -> bool:
    return shape is not None and source.shape is not None and len(shape) == len(source.shape) and all(
        shape[axis] == source.shape[axis] for axis in source.axes) and bool(source.axes)


def broadcast_along(flow: Flow, shape: tuple[int, ...] | None, dim: int) -> bool:
    """An input holding no position of ``dim`` that the output has (a gate or a bias of size 1 along it,
    broadcast): it adds nothing per position along that dimension beyond its own field."""
    if flow.layout is None or shape is None:
        return False
    holds = any(f[0] == dim and f[1] > 1 for axis in flow.layout for f in axis)
    return not holds and any(n > 1 for n in shape)


def field_values(fields: list[Field], what: str) -> Any:
    """A node's receptive field (``what="rf"``) or jump per dimension, as checks compare them: ``"global"``
    (a receptive field) or None (a jump) for a global field; None where any dimension has no positions."""
    if fields and all(f is GLOBAL for f in fields):
        return "global" if what == "rf" else None
    if not fields or any(isinstance(f, FieldState) for f in fields):
        return None
    return tuple(f.receptive_field if what == "rf" else f.jump for f in fields)  # type: ignore[union-attr]
