"""Cross-checks against real torch layers: the only module (with inspect.py) that imports torch.

torch is imported inside functions, when a check is asked for, so the calculator never pays for it.
The oracle is eager execution on zero tensors (1 batch, 1 channel): the meta device accepts some
configurations that CPU rejects (see docs/references.md), so it is used only for inputs too large to run.
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

EAGER_LIMIT_BYTES = 256 * 2**20
EAGER_LIMIT_MACS = 2**30
FLOAT32_BYTES = 4
INSTALL_HINT = 'pip install "convcalc[torch]"'


@dataclass(frozen=True)
class TorchAnswer:
    """What torch said about one layer on one input: an output size or the error it raised."""

    version: str
    device: str
    out: tuple[int, ...] | None
    error: str | None
    eager: bool = True
    note: str | None = None
    out_shape: tuple[int, ...] | None = None
    params: int | None = None


@dataclass(frozen=True)
class Channels:
    """The channel side of the torch layers built: batch, channels in and out, groups, bias."""

    batch: int = 1
    in_channels: int = 1
    out_channels: int = 1
    groups: int = 1
    bias: bool = False

    def scale(self, op: str) -> int:
        """Multiply-accumulates per output (input, for a transposed conv) position and tap."""
        if op in POOLS:
            return self.batch * self.in_channels
        return self.batch * self.in_channels * (self.out_channels // self.groups)


@dataclass(frozen=True)
class Verdict:
    """Whether torch agrees with convcalc; ``caveat`` says why a difference is not a disagreement."""

    agrees: bool
    caveat: str | None = None


def import_torch(needed_by: str = "{verify}") -> Any:
    """torch, or a ConvcalcError that says what needs it (``{verify}`` by default) and how to install it."""
    try:
        import torch
    except ImportError as exc:
        raise ConvcalcError(f"{needed_by} needs PyTorch, which is not installed: {INSTALL_HINT}",
                            parameters=("verify",) if "{verify}" in needed_by else ()) from exc
    return torch


def resolve_device(name: str) -> str:
    """``cpu``, ``cuda`` or ``cuda:N``, checked against what this machine has."""
    torch = import_torch()
    kind, _, index = name.partition(":")
    if kind not in ("cpu", "cuda") or (index and (kind == "cpu" or not index.isdigit())):
        raise ConvcalcError(f"device must be cpu, cuda or cuda:N, got {name!r}")
    if kind == "cuda":
        if not torch.cuda.is_available():
            raise ConvcalcError(f"device {name!r} asked for, but this PyTorch ({torch.__version__}) "
                                f"has no CUDA device available")
        if index and int(index) >= torch.cuda.device_count():
            raise ConvcalcError(f"device {name!r} asked for, but only {torch.cuda.device_count()} "
                                f"CUDA device(s) exist")
    return name


def build_module(layer: Layer, channels: Channels = Channels(), device: str | None = None) -> Any:
    """The torch.nn layer matching ``layer``: by default 1 channel in and out, no bias; its weights are
    made on ``device`` (the meta device allocates nothing)."""
    torch = import_torch()
    nn = torch.nn
    n = layer.dims
    c = channels
    if layer.op == "conv":
        return getattr(nn, f"Conv{n}d")(c.in_channels, c.out_channels, layer.kernel_size, layer.stride,
                                        layer.padding, layer.dilation, groups=c.groups, bias=c.bias, device=device)
    if layer.op == "conv_transpose":
        return getattr(nn, f"ConvTranspose{n}d")(c.in_channels, c.out_channels, layer.kernel_size, layer.stride,
                                                 layer.padding, layer.output_padding, groups=c.groups, bias=c.bias,
                                                 dilation=layer.dilation, device=device)
    if layer.op == "max_pool":
        return getattr(nn, f"MaxPool{n}d")(layer.kernel_size, layer.stride, layer.padding, layer.dilation,
                                           ceil_mode=layer.ceil_mode)
    return getattr(nn, f"AvgPool{n}d")(layer.kernel_size, layer.stride, layer.padding, ceil_mode=layer.ceil_mode)


def eager_refusal(layers: Sequence[Layer], in_size: tuple[int, ...], sizes: Sequence[tuple[int, ...]] = (),
                  channels: Channels = Channels()) -> str | None:
    """Why running ``layers`` eagerly on ``in_size`` would be too big (None when small enough).

    ``sizes`` are convcalc's output sizes of the layers (as far as it accepts them); ``channels``
    scale the tensors and the work.
    """
    tensors = [in_size, *sizes]
    per_position = [channels.batch * channels.in_channels] + [channels.batch * channels.out_channels] * len(sizes)
    elements = [math.prod(t) * c for t, c in zip(tensors, per_position)]
    biggest = max(elements) * FLOAT32_BYTES
    if biggest > EAGER_LIMIT_BYTES:
        which = "input" if elements[0] * FLOAT32_BYTES == biggest else "output"
        return (f"the {which} tensor would take {_mib(biggest)} (limit {_mib(EAGER_LIMIT_BYTES)}): "
                f"checked on the meta device, shape only (the meta device accepts some layers CPU rejects)")
    macs = sum(math.prod(inp if layer.op == "conv_transpose" else out) * math.prod(layer.kernel_size)
               * channels.scale(layer.op) for layer, inp, out in zip(layers, tensors, tensors[1:]))
    if macs > EAGER_LIMIT_MACS:
        return (f"running it would take {macs:.3g} multiply-accumulates (limit {EAGER_LIMIT_MACS:.3g}): "
                f"checked on the meta device, shape only (the meta device accepts some layers CPU rejects)")
    return None


def run_stack(layers: Sequence[Layer], in_size: tuple[int, ...], sizes: Sequence[tuple[int, ...]] = (),
              device: str = "cpu", channels: Channels = Channels()) -> TorchAnswer:
    """Run the torch layers for ``layers`` in turn on zeros of ``in_size``; report the final size or error.

    ``sizes`` (convcalc's output sizes) size the work: tensors over 256 MiB, or more than 2**30
    multiply-accumulates, go to the meta device instead. ``channels`` apply to every layer (one
    layer with ``--shape``; a stack is run with one channel); weights over 256 MiB are built on the
    meta device for their count and checks, while the spatial sizes run eagerly with one channel.
    """
    torch = import_torch()
    device = resolve_device(device)
    if max((n for size in [in_size, *sizes] for n in size), default=0) >= 2**63:
        return TorchAnswer(torch.__version__, "none", None, None, False,
                           "sizes beyond 2**63 - 1: torch cannot hold them, so it was not asked")
    weights = sum(_weight_count(layer, channels) for layer in layers) * FLOAT32_BYTES
    if weights > EAGER_LIMIT_BYTES:
        return _with_large_weights(torch, layers, in_size, sizes, device, channels, weights)
    refusal = eager_refusal(layers, in_size, sizes, channels)
    where = "meta" if refusal else device
    try:
        shape, params = _run_on(torch, layers, in_size, where, channels)
    except (RuntimeError, ValueError, TypeError) as exc:
        return TorchAnswer(torch.__version__, where, None, error_line(exc), not refusal, refusal)
    return TorchAnswer(torch.__version__, where, shape[2:], None, not refusal, refusal, shape, params)


def _run_on(torch: Any, layers: Sequence[Layer], in_size: tuple[int, ...], device: str,
            channels: Channels) -> tuple[tuple[int, ...], int]:
    """The output shape and parameter count of the torch layers run on zeros; raises what torch raises."""
    model = torch.nn.Sequential(*(build_module(layer, channels, device) for layer in layers))
    params = sum(p.numel() for p in model.parameters())
    x = torch.zeros(channels.batch, channels.in_channels, *in_size, device=device)
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # e.g. 'same' with an even kernel copies the input
        return tuple(model(x).shape), params


def _weight_count(layer: Layer, channels: Channels) -> int:
    if layer.op in POOLS or channels.out_channels % max(channels.groups, 1):
        return 0
    return channels.in_channels * (channels.out_channels // channels.groups) * math.prod(layer.kernel_size)


def _with_large_weights(torch: Any, layers: Sequence[Layer], in_size: tuple[int, ...],
                        sizes: Sequence[tuple[int, ...]], device: str, channels: Channels,
                        weights: int) -> TorchAnswer:
    """Spatial sizes eagerly with one channel; the full layers on the meta device for construction checks
    (groups), the parameter count and the full shape."""
    spatial = run_stack(layers, in_size, sizes, device)
    note = (f"the weights would take {_mib(weights)} (limit {_mib(EAGER_LIMIT_BYTES)}): the layer ran eagerly "
            f"with one channel, and with its channels on the meta device")
    try:
        shape, params = _run_on(torch, layers, in_size, "meta", channels)
    except (RuntimeError, ValueError, TypeError) as exc:
        return TorchAnswer(spatial.version, spatial.device, None, spatial.error or error_line(exc), spatial.eager,
                           note)
    if spatial.out is None:
        return TorchAnswer(spatial.version, spatial.device, None, spatial.error, spatial.eager, note)
    return TorchAnswer(spatial.version, spatial.device, spatial.out, None, spatial.eager, note,
                       (shape[0], shape[1], *spatial.out), params)


def run_layer(layer: Layer, in_size: tuple[int, ...], out: tuple[int, ...] | None = None,
              device: str = "cpu", channels: Channels = Channels()) -> TorchAnswer:
    """:func:`run_stack` for one layer; ``out`` is convcalc's output size, if it has one."""
    return run_stack([layer], in_size, [out] if out else [], device, channels)


def judge(layers: Sequence[Layer], ours: tuple[int, ...] | None, answer: TorchAnswer, cost: Any = None) -> Verdict:
    """Agreement of our final size (None: we reject) with torch's, accept/reject included; with a
    ``cost`` (convcalc.cost.LayerCost) the full output shape and the parameter count too.

    Two differences are not disagreements: eager conv_transpose in 2-d/3-d returns an empty tensor
    when one output dimension is exactly 0 and another is positive (convcalc rejects every size
    below 1), and the meta device, used for inputs too large to run, does not make every check.
    """
    if answer.out is None and answer.error is None:  # torch was not asked (sizes it cannot hold)
        return Verdict(True, answer.note)
    if ours == answer.out:
        if cost is not None and ours is not None and (cost.out_shape, cost.params) != (answer.out_shape,
                                                                                      answer.params):
            return Verdict(False, f"torch: shape {answer.out_shape}, {answer.params} parameters; convcalc: "
                                  f"shape {cost.out_shape}, {cost.params} parameters")
        return Verdict(True)
    if ours is None and answer.out is not None:
        if not answer.eager:
            return Verdict(True, "the meta device does not make every check eager torch makes, so it "
                                 "cannot confirm this rejection")
        if any(layer.op == "conv_transpose" for layer in layers) and 0 in answer.out:
            return Verdict(True, "torch returned an empty tensor for an output dimension of exactly 0 "
                                 "(a known eager conv_transpose quirk); convcalc rejects sizes below 1")
    return Verdict(False)


def error_line(exc: BaseException) -> str:
    """``RuntimeError: <the first line of its message>``."""
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"


def _mib(n_bytes: int) -> str:
    return f"{n_bytes / 2**20:,.0f} MiB" if n_bytes < 2**60 else f"{n_bytes:.3g} bytes"


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
    if layer.op in POOLS and all(d == 1 for d in layer.dilation):
        return getattr(torch.nn, f"AvgPool{n}d")(layer.kernel_size, layer.stride, layer.padding,
                                                 ceil_mode=layer.ceil_mode)
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


def measure_field(layers: Sequence[Layer]) -> MeasuredField:
    """Backpropagate from one output unit away from the borders and read the field off the gradient.

    The input is made large enough that the unit's computed field keeps a margin from every border;
    a measured field that reaches a border therefore also disagrees with the computed one.
    """
    torch = import_torch()
    in_size, unit, predicted, predicted_out = measurement_setup(layers)
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

    whole = receptive_field(layers)
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


def _central_unit(field: Any, phases: int) -> tuple[int, ...]:
    """An output unit near the centre that reads some input along every dimension (see NO_FIELD)."""
    from .receptive import NO_FIELD, unit_field

    chosen: list[int | None] = [None] * len(field.out)
    for shift in range(phases):
        candidate = tuple((n // 2 + shift) % n for n in field.out)
        for dim, predicted in enumerate(unit_field(field, candidate)):
            if chosen[dim] is None and predicted != NO_FIELD:
                chosen[dim] = candidate[dim]
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
            k, s, d, (p, _) = layer.kernel_size[dim], layer.stride[dim], layer.dilation[dim], layer.pads[dim]
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
    output counts its taps on the map. Maps above 2**22 positions are counted one dimension at a
    time (the shares multiply); above that per dimension too, the count is refused."""
    torch = import_torch()
    if math.prod(in_size) <= MASK_LIMIT_ELEMENTS:
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

    agrees: bool
    detail: str


def verify_check(result: Any) -> CheckVerify:
    """Run the check's stack in torch on its input (shape, or rejection) and measure its field."""
    layers = list(result.check.stack)
    notes = []
    agrees = True
    field = result.field
    if result.check.in_size is not None:
        size = tuple(result.check.in_size) if isinstance(result.check.in_size, tuple) else \
            (result.check.in_size,) * layers[0].dims
        ours = field.out if field is not None else None
        answer = run_stack(layers, size, [f.out for f in field.layers] if field is not None else [])
        verdict = judge(layers, ours, answer)
        agrees &= verdict.agrees
        theirs = format_size(answer.out) if answer.out is not None else f"rejects it ({answer.error})"
        notes.append(f"torch {theirs}, convcalc {format_size(ours) if ours else 'rejects it'}")
    if field is not None and field.rejected is None:
        try:
            measured = measure_field(layers)
        except ConvcalcError as exc:
            notes.append(f"field not measured: {exc}")
        else:
            agrees &= measured.agrees
            notes.append(f"gradient field {format_size(tuple(f.receptive_field for f in measured.measured))} with "
                         f"{format_size(tuple(f.holes for f in measured.measured))} holes, convcalc "
                         f"{format_size(tuple(f.receptive_field for f in measured.predicted))} with "
                         f"{format_size(tuple(f.holes for f in measured.predicted))}")
    return CheckVerify(agrees, "; ".join(notes))
