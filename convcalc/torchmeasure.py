"""Fields measured in torch: gradients through stand-in layers, ASPP tap counts, check-file cross-checks.

The torch side of ``--verify`` for ``rf``, ``gridding``, ``aspp`` and ``check``: positive weights and
linear stand-ins (average pooling for max pooling) so that nothing cancels, and the input's gradient
from one output unit marks the positions it sees (fornaxai/receptivefield; docs/references.md).
torch is imported on first use.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from .errors import ConvcalcError
from .layer import POOLS, Layer, format_size
from .periodic import UnitField
from .torchcheck import build_module, import_torch, judge, padded, run_stack

# -- receptive fields, measured by gradient ---------------------------------------------------------

MEASURE_LIMIT_ELEMENTS = 2**24
MEASURE_LIMIT_MACS = 2**31
MEASURE_MARGIN = 3


@dataclass(frozen=True)
class MeasuredField:
    """The field torch's gradient shows for one output unit, beside the one convcalc computes."""

    version: str
    in_size: tuple[int, ...]
    unit: tuple[int, ...]
    measured: tuple[UnitField, ...]
    predicted: tuple[UnitField, ...]
    measured_out: tuple[int, ...]
    predicted_out: tuple[int, ...]
    per_dimension: bool = False  # measured one dimension at a time (the stack was too large at once)

    @property
    def agrees(self) -> bool:
        return self.measured == self.predicted and self.measured_out == self.predicted_out


def stand_in(layer: Layer, dtype: Any) -> Any:
    """A linear torch layer with positive weights and ``layer``'s geometry and output sizes.

    Convolutions get weights 1 and no bias (docs/references.md, fornaxai/receptivefield); pooling becomes
    averaging over the same windows: AvgPool, or, for a dilated max pool (which AvgPool cannot be),
    a constant dilated convolution over an input padded as the pool pads it, ceil_mode included.
    """
    torch = import_torch()
    n = layer.dims
    if layer.pads_first:
        return padded(layer, stand_in(layer.without_padding(), dtype))
    if layer.op in POOLS and all(d == 1 for d in layer.dilation):
        padding = 0 if isinstance(layer.padding, str) else layer.padding  # TensorFlow's 'valid': none
        return getattr(torch.nn, f"AvgPool{n}d")(layer.kernel_size, layer.stride, padding, ceil_mode=layer.ceil_mode)
    if layer.op == "max_pool":
        return _dilated_average(layer, dtype)
    module = build_module(layer).to(dtype)
    with torch.no_grad():
        module.weight.fill_(1.0)
    return module


def _dilated_average(layer: Layer, dtype: Any) -> Any:
    torch = import_torch()
    conv = getattr(torch.nn, f"Conv{layer.dims}d")(1, 1, layer.kernel_size, layer.stride, 0, layer.dilation,
                                                   bias=False).to(dtype)
    with torch.no_grad():
        conv.weight.fill_(1.0 / math.prod(layer.kernel_size))

    class DilatedAverage(torch.nn.Module):
        def forward(self, x: Any) -> Any:
            out = layer.output_size(tuple(x.shape[2:]))
            pads: list[int] = []
            for i in reversed(range(layer.dims)):  # F.pad takes the last dimension first
                p, n = layer.pads[i][0], x.shape[2 + i]
                right = (out[i] - 1) * layer.stride[i] + layer.effective_kernel_size[i] - n - p
                pads += [p, max(right, 0)]
            padded = torch.nn.functional.pad(x, pads)
            y = conv(padded.reshape(-1, 1, *padded.shape[2:]))  # every channel on its own, as pooling does
            return y.reshape(*x.shape[:2], *y.shape[2:])

    return DilatedAverage()


MEASURE_LIMIT_BYTES = 64 * 2**20  # activations and their gradients, float64, for one whole measurement


def measure_field(layers: Sequence[Layer]) -> MeasuredField:
    """Backpropagate from one output unit away from the borders and read the field off the gradient.

    The input is made large enough that the unit's computed field keeps a margin from every border;
    a measured field that reaches a border therefore also disagrees with the computed one. Where the
    whole stack would take more than 64 MiB of activations (or work), each dimension is measured on
    its own: the stand-in layers (weights of ones, averaging pools) act on each dimension separately,
    so the gradient's support is the product of the per-dimension ones.
    """
    if layers[0].dims > 1:
        try:
            setup = measurement_setup(layers)
        except ConvcalcError:
            setup = None
        if setup is None or _activation_bytes(layers, setup[0]) > MEASURE_LIMIT_BYTES:
            return _per_dimension([measure_field([layer.along(d) for layer in layers]) for d in range(layers[0].dims)])
        return _measure(layers, *setup)
    setup = measurement_setup(layers)
    if _activation_bytes(layers, setup[0]) > MEASURE_LIMIT_BYTES:
        raise ConvcalcError(f"the stack is too large to measure by gradient (about {_activation_bytes(layers, setup[0]):,} "
                            f"bytes of activations; the limit is {MEASURE_LIMIT_BYTES:,})")
    return _measure(layers, *setup)


def _activation_bytes(layers: Sequence[Layer], in_size: tuple[int, ...]) -> int:
    from .receptive import receptive_field

    field = receptive_field(layers, in_size)
    return 2 * 8 * (math.prod(in_size) + sum(math.prod(f.out) for f in field.layers if f.out is not None))


def _per_dimension(parts: list[MeasuredField]) -> MeasuredField:
    def joined(name: str) -> tuple[Any, ...]:
        return tuple(value for part in parts for value in getattr(part, name))

    return MeasuredField(parts[0].version, joined("in_size"), joined("unit"), joined("measured"), joined("predicted"),
                         joined("measured_out"), joined("predicted_out"), per_dimension=True)


def _measure(layers: Sequence[Layer], in_size: tuple[int, ...], unit: tuple[int, ...],
             predicted: tuple[UnitField, ...], predicted_out: tuple[int, ...]) -> MeasuredField:
    torch = import_torch()
    model = torch.nn.Sequential(*(stand_in(layer, torch.float64) for layer in layers))
    x = torch.zeros(1, 1, *in_size, dtype=torch.float64, requires_grad=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        y = model(x)
        y[(0, 0) + unit].backward()
    return MeasuredField(torch.__version__, in_size, unit, fields_seen(x.grad[0, 0] != 0), predicted,
                         tuple(y.shape[2:]), predicted_out)


def fields_seen(mask: Any) -> tuple[UnitField, ...]:
    """Per dimension, the span and holes of the positions a boolean gradient mask marks (a field
    is separable: a position is seen along one dimension if it is seen at any place along the others)."""
    torch = import_torch()
    fields = []
    for dim in range(mask.dim()):
        others = tuple(d for d in range(mask.dim()) if d != dim)
        along = mask.any(dim=others) if others else mask
        indices = torch.nonzero(along).flatten().tolist()
        fields.append(UnitField(indices[0], indices[-1], indices[-1] - indices[0] + 1 - len(indices))
                      if indices else UnitField(0, -1, 0))
    return tuple(fields)


def measurement_setup(layers: Sequence[Layer]
                      ) -> tuple[tuple[int, ...], tuple[int, ...], tuple[UnitField, ...], tuple[int, ...]]:
    """An input size, a central output unit, that unit's computed field (inside the input, clear of
    every intermediate border), and the computed output size."""
    from .receptive import receptive_field, unit_field

    whole = receptive_field([layer.without_padding() if layer.input_dependent else layer for layer in layers])
    size = tuple(rf + 2 * MEASURE_MARGIN + 2 * math.ceil(j) for rf, j in zip(whole.receptive_field, whole.jump))
    phases = max(math.prod(layer.stride[d] for layer in layers if layer.op == "conv_transpose")
                 for d in range(len(size)))
    while math.prod(size) <= MEASURE_LIMIT_ELEMENTS:
        field = receptive_field(layers, size)
        short = set(range(len(size)))  # a stack PyTorch rejects needs a larger input in some dimension
        if field.rejected is None:
            unit = _central_unit(field, phases)
            predicted = unit_field(field, unit)
            sizes = [size] + [f.out for f in field.layers]
            short = {d for d, (p, n) in enumerate(zip(predicted, size))
                     if not MEASURE_MARGIN <= p.first <= p.last < n - MEASURE_MARGIN}
            short |= _touching_padding(layers, sizes, unit)
            if not short:
                _check_work(layers, sizes)
                return size, unit, predicted, field.out
        size = tuple(2 * n if d in short else n for d, n in enumerate(size))
    raise ConvcalcError(f"the stack is too large to measure by gradient (an input of {format_size(size)} would be "
                        f"needed; the limit is {MEASURE_LIMIT_ELEMENTS:,} positions)")


def _check_work(layers: Sequence[Layer], sizes: Sequence[tuple[int, ...]]) -> None:
    macs = sum(math.prod(max(a, b) for a, b in zip(inp, out)) * math.prod(layer.kernel_size)
               for layer, inp, out in zip(layers, sizes, sizes[1:]))
    if macs > MEASURE_LIMIT_MACS:
        raise ConvcalcError(f"the stack is too large to measure by gradient (about {macs:.2g} multiply-"
                            f"accumulates; the limit is {MEASURE_LIMIT_MACS:.2g})")


MAX_PHASES = 64  # output units tried for one that reads some input


def _central_unit(field: Any, phases: int) -> tuple[int, ...]:
    """An output unit near the centre that reads some input along every dimension (see NO_FIELD)."""
    from .receptive import NO_FIELD, unit_field

    chosen: list[int | None] = [None] * len(field.out)
    for shift in range(min(phases, MAX_PHASES)):
        candidate = tuple((n // 2 + shift) % n for n in field.out)
        for dim, predicted in enumerate(unit_field(field, candidate)):
            if chosen[dim] is None and predicted != NO_FIELD:
                chosen[dim] = candidate[dim]
        if None not in chosen:
            break
    if None in chosen:
        raise ConvcalcError("no output unit of this stack reads any input (its transposed convolutions "
                            "and strides leave every unit empty)")
    return tuple(c for c in chosen if c is not None)


def _touching_padding(layers: Sequence[Layer], sizes: Sequence[tuple[int, ...]], unit: tuple[int, ...]) -> set[int]:
    """The dimensions along which the indices ``unit`` reads reach an intermediate feature map's padding.

    The computed field assumes unbounded feature maps; a path through an intermediate layer's padding
    carries no gradient, so the measured unit must keep clear of them all.
    """
    touching = set()
    for dim, index in enumerate(unit):
        low, high = index, index
        for layer, size in zip(reversed(layers), reversed(sizes[:-1])):
            k, s, d, (p, _) = layer.kernel_size[dim], layer.stride[dim], layer.dilation[dim], layer.pads_on(size)[dim]
            if layer.op == "conv_transpose":
                low, high = -((d * (k - 1) - low - p) // s), (high + p) // s
            else:
                low, high = low * s - p, high * s - p + d * (k - 1)
            if low < 0 or high >= size[dim]:
                touching.add(dim)
                break
    return touching


# -- ASPP: valid taps, counted by convolving a mask of ones -------------------------------------------

MASK_LIMIT_ELEMENTS = 2**22


@dataclass(frozen=True)
class TapCount:
    """Shares of output positions where all taps, or only the centre, land on the map, per torch."""

    version: str
    how: str
    out: tuple[int, ...]
    all_taps_valid: Fraction
    only_center_valid: Fraction


def count_valid_taps(rate: int, in_size: tuple[int, ...], kernel_size: int) -> TapCount:
    """Convolve a map of ones with a k x k filter of ones (dilation and padding as the branch): each
    output counts its taps on the map. Maps above 2**22 positions, or above 2**26 multiply-accumulates,
    are counted one dimension at a time (the taps on the map are a product over dimensions, so the
    shares multiply); above that per dimension too, the count is refused."""
    torch = import_torch()
    if math.prod(in_size) <= MASK_LIMIT_ELEMENTS and math.prod(in_size) * kernel_size ** len(in_size) <= 2**26:
        counts, out = _tap_counts(torch, rate, in_size, kernel_size)
        full, centre = kernel_size ** len(in_size), 1
        return TapCount(torch.__version__, "the whole map", out, _share(counts == full), _share(counts == centre))
    if max(in_size) > MASK_LIMIT_ELEMENTS:
        raise ConvcalcError(f"the map is too large to count by convolution ({max(in_size):,} positions along "
                            f"one dimension; the limit is {MASK_LIMIT_ELEMENTS:,})")
    all_valid = only_center = Fraction(1)
    out = []
    for n in in_size:
        counts, (size,) = _tap_counts(torch, rate, (n,), kernel_size)
        all_valid *= _share(counts == kernel_size)
        only_center *= _share(counts == 1)
        out.append(size)
    return TapCount(torch.__version__, "one dimension at a time", tuple(out), all_valid, only_center)


def _tap_counts(torch: Any, rate: int, in_size: tuple[int, ...], kernel_size: int) -> tuple[Any, tuple[int, ...]]:
    n = len(in_size)
    conv = getattr(torch.nn.functional, f"conv{n}d")
    ones = torch.ones(1, 1, *in_size, dtype=torch.float64)
    weight = torch.ones(1, 1, *(kernel_size,) * n, dtype=torch.float64)
    counts = conv(ones, weight, padding=rate * (kernel_size - 1) // 2, dilation=rate)[0, 0].round().long()
    return counts, tuple(counts.shape)


def _share(mask: Any) -> Fraction:
    return Fraction(int(mask.sum()), mask.numel())


# -- check files ------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class CheckVerify:
    """torch's view of one check: the stack run on the check's input, and its field measured."""

    agrees: bool | None  # None: nothing could be compared (the detail says why)
    detail: str


def verify_check(result: Any) -> CheckVerify | None:
    """Run the check's stack in torch on its input (shape, or rejection) and measure its field; None for
    a check convcalc could not compute (nothing to compare, and no size to bound torch's work by)."""
    if result.error or result.check.model is not None:
        return None
    layers = list(result.check.stack)
    notes = []
    agrees = True
    compared = 0
    field = result.field
    if result.check.in_size is not None:
        size = tuple(result.check.in_size) if isinstance(result.check.in_size, tuple) else \
            (result.check.in_size,) * layers[0].dims
        ours = field.out if field is not None else None
        answer = run_stack(layers, size, [f.out for f in field.layers] if field is not None else [])
        verdict = judge(layers, ours, answer)
        agrees &= verdict.agrees
        compared += 1
        theirs = format_size(answer.out) if answer.out is not None else f"rejects it ({answer.error})"
        notes.append(f"torch {theirs}, convcalc {format_size(ours) if ours else 'rejects it'}")
    if field is not None and field.rejected is None:
        try:
            measured = measure_field(layers)
        except ConvcalcError as exc:
            notes.append(f"field not measured: {exc}")
        else:
            agrees &= measured.agrees
            compared += 1
            notes.append(f"gradient field {format_size(tuple(f.receptive_field for f in measured.measured))} with "
                         f"{format_size(tuple(f.holes for f in measured.measured))} holes, convcalc "
                         f"{format_size(tuple(f.receptive_field for f in measured.predicted))} with "
                         f"{format_size(tuple(f.holes for f in measured.predicted))}")
    return CheckVerify(agrees if compared else None, "; ".join(notes))
