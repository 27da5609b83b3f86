"""Stacked receptive fields: jump, receptive field, start, holes and per-unit input boxes.

Recurrence (Araujo, Norris & Sim, "Computing Receptive Fields of Convolutional Neural Networks",
Distill 2019), per dimension, for conv and pooling layers::

    jump_l  = jump_{l-1} * s_l
    rf_l    = rf_{l-1} + (e_l - 1) * jump_{l-1}            e = d*(k-1) + 1
    start_l = start_{l-1} + ((e_l - 1)/2 - p_l) * jump_{l-1}   (centre of output unit 0's field)

Output unit ``o`` of such a stack sees ``start + o*jump +- (rf-1)/2``; the offsets it reaches are the
sums ``sum_l t_l * d_l * jump_{l-1}``, whose holes gridding.tap_coverage counts exactly.

A transposed convolution makes output unit ``o`` see the inputs ``i`` with ``i*s - p + t*d = o``: the
field then depends on ``o mod s`` and the jump becomes ``1/s``. Stacks holding one are computed
exactly from the set of inputs each output unit reaches, over every phase of the output.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Union

from .errors import ConvcalcError, ShapeError
from .gridding import Coverage, tap_coverage
from .layer import Layer, format_size, lazy, per_dim, resolve_dims
from .periodic import NO_FIELD, PeriodicField, UnitField, Window
from .spec import format_layer, parse_layers

MAX_EXACT_WORK = 20_000_000


@dataclass(frozen=True)
class LayerField:
    """The field of one layer's output units with respect to the stack's input."""

    index: int
    layer: Layer
    jump: tuple[Fraction, ...]
    receptive_field: tuple[int, ...]
    start: tuple[Fraction, ...]
    out: tuple[int, ...] | None = None


@dataclass(frozen=True)
class StackField:
    """A stack's fields per dimension, its output sizes, and where PyTorch stopped it.

    ``stack`` holds the layers computed: all of them, or those before the layer PyTorch rejects
    on ``in_size`` (``rejected`` names it). Per-layer rows (:attr:`layers`) are built on demand.
    """

    stack: tuple[Layer, ...]
    dims: int
    in_size: tuple[int, ...] | None
    dimensions: tuple[_DimensionFields, ...]
    outs: tuple[tuple[int, ...], ...] = ()
    rejected: tuple[int, str] | None = None
    resolved: tuple[Layer, ...] = ()  # ``stack`` with input-dependent pads made explicit (TensorFlow 'same')

    @lazy
    def layers(self) -> tuple[LayerField, ...]:
        columns = zip(zip(*(d.jumps for d in self.dimensions)), zip(*(d.receptive_fields for d in self.dimensions)),
                      zip(*(d.starts for d in self.dimensions)), self.outs or [None] * len(self.stack))
        return tuple(LayerField(i, layer, *column) for i, (layer, column) in enumerate(zip(self.stack, columns), 1))

    @property
    def coverage(self) -> tuple[Coverage, ...]:
        """The holes of the last layer's field, per dimension."""
        return tuple(d.coverage for d in self.dimensions)

    @property
    def varies(self) -> bool:
        """Transposed convolutions make the field differ between output positions."""
        return any(d.varies for d in self.dimensions)

    @property
    def receptive_field(self) -> tuple[int, ...]:
        return tuple(d.receptive_fields[-1] for d in self.dimensions) if self.stack else (1,) * self.dims

    @property
    def jump(self) -> tuple[Fraction, ...]:
        return tuple(d.jumps[-1] for d in self.dimensions) if self.stack else (Fraction(1),) * self.dims

    @property
    def start(self) -> tuple[Fraction, ...]:
        return tuple(d.starts[-1] for d in self.dimensions) if self.stack else (Fraction(0),) * self.dims

    @property
    def out(self) -> tuple[int, ...] | None:
        """The stack's output size; None without an input size or where PyTorch rejects a layer."""
        if self.in_size is None or self.rejected is not None:
            return None
        return self.outs[-1] if self.outs else self.in_size


# -- one dimension ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class _Geometry:
    """One layer along one dimension: how an output index maps to input indices."""

    transposed: bool
    kernel_size: int
    stride: int
    dilation: int
    padding: int  # left padding, the only one that moves indices

    @classmethod
    def of(cls, layer: Layer, dim: int) -> _Geometry:
        return cls(layer.op == "conv_transpose", layer.kernel_size[dim], layer.stride[dim],
                   layer.dilation[dim], layer.pads[dim][0])

    @property
    def span(self) -> int:
        return self.dilation * (self.kernel_size - 1)

    def window(self) -> Window:
        """How this layer's output units read its input's units."""
        make = Window.transposed if self.transposed else Window.convolution
        return make(self.kernel_size, self.stride, self.dilation, self.padding)


def _recurrence(geometries: Sequence[_Geometry]) -> tuple[list[int], list[int], list[int]]:
    """Jump, receptive field and twice the start after each layer (Distill 2019), for stacks without
    transposed convolutions: in integers, which is what makes 10,000-check files fast."""
    jump, rf, twice_start = 1, 1, 0
    jumps, rfs, twice_starts = [], [], []
    for g in geometries:
        rf += g.span * jump
        twice_start += (g.span - 2 * g.padding) * jump
        jump *= g.stride
        jumps.append(jump)
        rfs.append(rf)
        twice_starts.append(twice_start)
    return jumps, rfs, twice_starts


def _halves(twice: Sequence[int]) -> list[Fraction]:
    return [Fraction(t // 2) if t % 2 == 0 else Fraction(t, 2) for t in twice]


def _phases(geometries: Sequence[_Geometry]) -> int:
    """Output indices this far apart see shifted copies of the same field."""
    return math.prod(g.stride for g in geometries if g.transposed)


def _guard(geometries: Sequence[_Geometry]) -> None:
    """Refuse exact computations over a period of output units that would take minutes, not seconds."""
    plain = [g if not g.transposed else _Geometry(False, g.kernel_size, 1, g.dilation, 0) for g in geometries]
    widest = max(_recurrence(plain)[1], default=1)
    work = _phases(geometries) * len(geometries) * max((g.kernel_size for g in geometries), default=1) * \
        (widest // 64 + 1)
    if work > MAX_EXACT_WORK:
        raise ConvcalcError(f"this stack with transposed convolutions is too large to analyse exactly "
                            f"(about {work:.2g} steps; the limit is {MAX_EXACT_WORK:.2g})")


# -- the stack --------------------------------------------------------------------------------------

def receptive_field(layers: Union[str, Sequence[Layer]], in_size: Union[int, Sequence[int], None] = None,
                    dims: int | None = None) -> StackField:
    """Per-layer jump, receptive field and start of a stack (text or Layers), and its holes.

    With ``in_size`` each layer also gets its output size, and a layer PyTorch rejects ends the
    stack there (``rejected`` names it). Without it, layers PyTorch rejects on every input raise.
    """
    if isinstance(in_size, (tuple, list)):
        dims = resolve_dims({"in_size": in_size}, dims)
    stack = parse_layers(layers, dims) if isinstance(layers, str) else list(layers)
    if not stack:
        raise ConvcalcError("the stack has no layers")
    n = stack[0].dims
    if any(layer.dims != n for layer in stack):
        raise ConvcalcError("the layers of a stack must all have the same number of dimensions")
    size = per_dim("input size", in_size, n, 1) if in_size is not None else None
    if size is not None and len(size) != n:
        raise ConvcalcError(f"input size has {len(size)} dimensions, the layers have {n}")
    outs, rejected = _output_sizes(stack, size)
    kept = stack[:len(outs)] if size is not None else stack
    if size is None:
        for i, layer in enumerate(stack, 1):
            _check(layer, i)
    resolved = tuple(layer.resolved(before) for layer, before in zip(kept, [size, *outs])) if size else tuple(kept)
    return StackField(tuple(kept), n, size, tuple(_stack_fields(resolved, n)), tuple(outs), rejected,
                      resolved if resolved != tuple(kept) else ())


def _check(layer: Layer, index: int) -> None:
    try:
        layer.check()
    except ShapeError as exc:
        raise ShapeError(f"layer {index} ({format_layer(layer)}): {exc}") from None
    if layer.input_dependent:
        raise ConvcalcError(f"layer {index} ({format_layer(layer)}): TensorFlow 'same' padding at stride "
                            f"{format_size(layer.stride)} depends on the input size: give {{in_size}}",
                            parameters=("in_size",))


def _output_sizes(stack: Sequence[Layer], size: tuple[int, ...] | None
                  ) -> tuple[list[tuple[int, ...]], tuple[int, str] | None]:
    """Each layer's output size until one that PyTorch rejects: (sizes, (its index, why) or None)."""
    outs: list[tuple[int, ...]] = []
    if size is None:
        return outs, None
    current = size
    for i, layer in enumerate(stack, 1):
        try:
            current = layer.output_of(current)
        except ShapeError as exc:
            return outs, (i, f"layer {i} ({format_layer(layer)}) rejects input {format_size(current)}: {exc}")
        outs.append(current)
    return outs, None


@dataclass(frozen=True)
class _DimensionFields:
    """One dimension's jumps and fields per layer; starts and holes are worked out when first asked
    for (a check file that asks for neither never pays for them)."""

    jumps: list[Fraction]
    receptive_fields: list[int]
    starts_of: Callable[[], list[Fraction]]
    holes_of: Callable[[], Coverage]
    varies: bool = False

    @lazy
    def starts(self) -> list[Fraction]:
        return self.starts_of()

    @lazy
    def coverage(self) -> Coverage:
        return self.holes_of()


@functools.lru_cache(maxsize=2048)
def _stack_fields(stack: tuple[Layer, ...], dims: int) -> list[_DimensionFields]:
    """Jumps, receptive fields and starts per layer and dimension, and each dimension's coverage.

    Cached (check files repeat stacks); callers must not change what it returns.
    """
    per_layer = [_geometries(layer) for layer in stack]
    return [_geometry_fields(tuple(g[dim] for g in per_layer)) for dim in range(dims)]


@functools.lru_cache(maxsize=4096)
def _geometries(layer: Layer) -> tuple[_Geometry, ...]:
    """A layer's geometry along each dimension (layers written alike are one object, so this caches)."""
    return tuple(_Geometry.of(layer, dim) for dim in range(layer.dims))


@functools.lru_cache(maxsize=2048)
def _geometry_fields(geometries: tuple[_Geometry, ...]) -> _DimensionFields:
    """The fields of one dimension's geometry, cached: square kernels repeat it across dimensions.

    Without transposed convolutions: Distill's recurrence in integers, and the holes from
    gridding.tap_coverage. With them the field of each unit is worked out exactly over one period
    of output units (:class:`PeriodicField`): the receptive field is the largest, ``varies`` says
    whether they differ, jump and start are the average placement, and the coverage is that of a
    largest field.
    """
    if not any(g.transposed for g in geometries):
        jumps, rfs, twice_starts = _recurrence(geometries)
        return _DimensionFields(jumps, rfs, lambda: _halves(twice_starts), lambda: tap_coverage(
            [(g.dilation * j, g.kernel_size) for g, j in zip(geometries, [1] + jumps)]))
    fields = _chain_fields(geometries)
    last = fields[-1]
    return _DimensionFields([f.jump for f in fields], [f.receptive_field for f in fields],
                            lambda: [f.start for f in fields], lambda: last.coverage, last.varies)


# -- one output unit --------------------------------------------------------------------------------

@dataclass(frozen=True)
class UnitBox:
    """The input positions one output unit sees along one dimension: ``first``/``last`` of its whole
    window (padding included), ``clipped_first``/``clipped_last`` of the input positions it really
    reads, and the ``holes`` between those (positions it cannot reach, through strides or because a
    path runs through an intermediate layer's padding)."""

    first: int
    last: int
    clipped_first: int
    clipped_last: int
    holes: int = 0
    padding: int = 0  # positions of the whole window that lie outside the input


def unit_box(field: StackField, unit: Sequence[int]) -> tuple[UnitBox | None, ...]:
    """Per dimension, the ``[first, last]`` input box output ``unit`` sees, clipped to the input.

    None where the unit reads no input at all (a transposed convolution with stride above its
    kernel's span leaves such units).
    """
    if field.rejected is not None:
        raise ConvcalcError("{unit} needs a stack that PyTorch accepts on this input", parameters=("unit",))
    if field.in_size is None or field.out is None:
        raise ConvcalcError("{unit} needs {in_size}: the box is clipped to the input", parameters=("unit", "in_size"))
    if len(unit) != field.dims:
        raise ConvcalcError(f"{{unit}} has {len(unit)} indices, the output has {field.dims} dimensions",
                            parameters=("unit",))
    boxes = []
    for dim, (index, n_out, n_in) in enumerate(zip(unit, field.out, field.in_size)):
        if not 0 <= index < n_out:
            raise ConvcalcError(f"{{unit}} index {index} is outside the output (dim {dim + 1} has {n_out} "
                                f"units: 0..{n_out - 1})", parameters=("unit",))
        span = unit_span(_along(field, dim), index)
        sizes = [field.in_size[dim]] + [out[dim] for out in field.outs]
        reached = reached_inputs(_along(field, dim), sizes, index)
        if span is None or not reached:
            boxes.append(None)
            continue
        first, last = (reached & -reached).bit_length() - 1, reached.bit_length() - 1
        outside = max(0, -span[0]) + max(0, span[1] - (n_in - 1))
        boxes.append(UnitBox(span[0], span[1], first, last, last - first + 1 - reached.bit_count(), outside))
    return tuple(boxes)


MAX_TRACE_WORK = 10**9  # bit positions handled while tracing one unit back through a stack


def reached_inputs(geometries: Sequence[_Geometry], sizes: Sequence[int], unit: int) -> int:
    """The input positions output ``unit`` reads, as a bitmask (bit i: position i), through bounded
    feature maps: each layer reads only its input's real positions, never its padding, so a path
    through an intermediate layer's padding reaches nothing (what a gradient from the unit shows).

    Layer by layer from the output: a conv or pool unit u reads u*s - p + t*d, a transposed conv unit
    u the v with v*s - p + t*d = u; strides spread or gather bits through string slicing.
    """
    work = sum(n * g.kernel_size * max(g.stride, 1) for g, n in zip(geometries, sizes))
    if work > MAX_TRACE_WORK:
        raise ConvcalcError(f"tracing one unit through this stack would handle about {work:.2g} positions (the "
                            f"limit is {MAX_TRACE_WORK:.2g})")
    seen = 1 << unit
    for g, n_in in zip(reversed(geometries), reversed(sizes[:-1])):
        text = format(seen, "b")[::-1]  # position i is character i
        reads = 0
        if not g.transposed:
            spread = int(("0" * (g.stride - 1)).join(text)[::-1], 2)  # u -> u*s
            for t in range(g.kernel_size):
                shift = t * g.dilation - g.padding
                reads |= spread << shift if shift >= 0 else spread >> -shift
        else:
            for t in range(g.kernel_size):
                shift = g.padding - t * g.dilation  # y = u + p - t*d, then v = y / s where whole
                shifted = "0" * shift + text if shift >= 0 else text[-shift:]
                gathered = shifted[::g.stride]
                reads |= int(gathered[::-1], 2) if "1" in gathered else 0
        seen = reads & ((1 << n_in) - 1)
        if not seen:
            return 0
    return seen


def unit_span(geometries: Sequence[_Geometry], unit: int) -> tuple[int, int] | None:
    """First and last input index output ``unit`` reaches (unbounded input); None if it reads none."""
    if not any(g.transposed for g in geometries):
        if not geometries:
            return unit, unit
        jumps, rfs, twice_starts = _recurrence(geometries)
        first = (twice_starts[-1] - (rfs[-1] - 1)) // 2 + unit * jumps[-1]  # twice_start and rf - 1 share parity
        return first, first + rfs[-1] - 1
    seen = _chain_fields(geometries)[-1].of(unit)
    return (seen.first, seen.last) if seen else None


def _chain_fields(geometries: Sequence[_Geometry]) -> list[PeriodicField]:
    """The exact field of each layer's output units (for stacks with transposed convolutions)."""
    _guard(geometries)
    fields = [PeriodicField.input()]
    for g in geometries:
        fields.append(fields[-1].through(g.window()))
    return fields[1:]


def _along(field: StackField, dim: int) -> list[_Geometry]:
    """The geometry of each layer of ``field`` along dimension ``dim``."""
    return [_geometries(layer)[dim] for layer in field.resolved or field.stack]


def unit_field(field: StackField, unit: Sequence[int]) -> tuple[UnitField, ...]:
    """Per dimension, the span and holes of output ``unit`` (unbounded input), as computed here.

    Without transposed convolutions every unit has the stack's field, shifted; with them the
    unit's own set of inputs is worked out (NO_FIELD where it reads none).
    """
    result = []
    for dim, index in enumerate(unit):
        geometries = _along(field, dim)
        if any(g.transposed for g in geometries):
            seen = _chain_fields(geometries)[-1].of(index)
            if not seen:
                result.append(NO_FIELD)
                continue
            coverage, first = seen.coverage(), seen.first
        else:
            coverage = field.coverage[dim]
            first = unit_span(geometries, index)[0]
        result.append(UnitField(first, first + coverage.receptive_field - 1, coverage.holes))
    return tuple(result)
