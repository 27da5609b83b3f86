"""Cross-checks against real torch layers: running a layer or a stack, and judging the answer.

With torchmeasure.py and convcalc.graph, the only code that imports torch.

torch is imported inside functions, when a check is asked for, so the calculator never pays for it.
The oracle is eager execution on zero tensors (1 batch, 1 channel): the meta device accepts some
configurations that CPU rejects (see docs/references.md), so it is used only for inputs too large to run.
"""

from __future__ import annotations

import gc
import math
import sys
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from .errors import ConvcalcError
from .layer import POOLS, Layer
from .padding import pad_tuple

EAGER_LIMIT_BYTES = 256 * 2**20
EAGER_LIMIT_MACS = 2**30
FLOAT32_BYTES = 4
INSTALL_HINT = ('pip install "convcalc[torch]" (from a checkout: pip install ".[torch]"; without a GPU, first '
                'the CPU build: pip install torch --index-url https://download.pytorch.org/whl/cpu)')


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
    first = "torch" not in sys.modules
    try:
        import torch
    except ImportError as exc:
        raise ConvcalcError(f"{needed_by} needs PyTorch, which is not installed: {INSTALL_HINT}",
                            parameters=("verify",) if "{verify}" in needed_by else ()) from exc
    if first:  # torch leaves ~10^6 long-lived objects; every later full GC pass would walk them (~70 ms each)
        gc.freeze()
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
    made on ``device`` (the meta device allocates nothing). Padding torch's layers cannot express
    (TensorFlow's 'same', causal, explicit pairs) becomes ``F.pad`` before the layer."""
    torch = import_torch()
    nn = torch.nn
    n = layer.dims
    c = channels
    if layer.pads_first:
        return padded(layer, build_module(layer.without_padding(), channels, device))
    if layer.op == "conv":
        return getattr(nn, f"Conv{n}d")(c.in_channels, c.out_channels, layer.kernel_size, layer.stride,
                                        layer.padding, layer.dilation, groups=c.groups, bias=c.bias,
                                        padding_mode=layer.padding_mode, device=device)
    if layer.op == "conv_transpose":
        return getattr(nn, f"ConvTranspose{n}d")(c.in_channels, c.out_channels, layer.kernel_size, layer.stride,
                                                 layer.padding, layer.output_padding, groups=c.groups, bias=c.bias,
                                                 dilation=layer.dilation, device=device)
    pool_padding = 0 if isinstance(layer.padding, str) else layer.padding  # TensorFlow's 'valid': none
    if layer.op == "max_pool":
        return getattr(nn, f"MaxPool{n}d")(layer.kernel_size, layer.stride, pool_padding, layer.dilation,
                                           ceil_mode=layer.ceil_mode)
    return getattr(nn, f"AvgPool{n}d")(layer.kernel_size, layer.stride, pool_padding, ceil_mode=layer.ceil_mode)


def padded(layer: Layer, inner: Any) -> Any:
    """``inner`` after ``F.pad`` with ``layer``'s pads on each input's size (and its padding mode)."""
    torch = import_torch()
    mode = {"zeros": "constant", "reflect": "reflect", "replicate": "replicate", "circular": "circular"}

    class Padded(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, x: Any) -> Any:
            pads = pad_tuple(layer.pads_on(tuple(x.shape[2:])))
            return self.inner(torch.nn.functional.pad(x, pads, mode=mode[layer.padding_mode]))

    return Padded()


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
        return (f"the {which} tensor would take {mib(biggest)} (limit {mib(EAGER_LIMIT_BYTES)}): "
                f"checked on the meta device, shape only (the meta device accepts some layers CPU rejects)")
    macs = sum(math.prod(inp if layer.op == "conv_transpose" else out) * math.prod(layer.kernel_size)
               * channels.scale(layer.op) for layer, inp, out in zip(layers, tensors, tensors[1:]))
    if macs > EAGER_LIMIT_MACS:
        return (f"running it would take {macs:.3g} multiply-accumulates (limit {EAGER_LIMIT_MACS:.3g}): "
                f"checked on the meta device, shape only (the meta device accepts some layers CPU rejects)")
    return None


def run_stack(layers: Sequence[Layer], in_size: tuple[int, ...], sizes: Sequence[tuple[int, ...]] = (),
              device: str = "cpu", channels: Channels = Channels(),
              output_size: tuple[int, ...] | None = None) -> TorchAnswer:
    """Run the torch layers for ``layers`` in turn on zeros of ``in_size``; report the final size or error.

    ``sizes`` (convcalc's output sizes) size the work: tensors over 256 MiB, or more than 2**30
    multiply-accumulates, go to the meta device instead. ``channels`` apply to every layer (one
    layer with ``--shape``; a stack is run with one channel); weights over 256 MiB are built on the
    meta device for their count and checks, while the spatial sizes run eagerly with one channel.
    ``output_size`` (one transposed conv) is passed to the module, as ``module(x, output_size=...)``.
    """
    torch = import_torch()
    device = resolve_device(device)
    if max((n for size in [in_size, *sizes] for n in size), default=0) >= 2**63:
        return TorchAnswer(torch.__version__, "none", None, None, False,
                           "sizes beyond 2**63 - 1: torch cannot hold them, so it was not asked")
    weights = sum(_weight_count(layer, channels) for layer in layers) * FLOAT32_BYTES
    if weights > EAGER_LIMIT_BYTES and channels != Channels():
        return _with_large_weights(torch, layers, in_size, sizes, device, channels, weights, output_size)
    refusal = eager_refusal(layers, in_size, sizes, channels)
    if weights > EAGER_LIMIT_BYTES:  # even one channel's kernel is too large to build eagerly
        refusal = (f"the weights would take {mib(weights)} with one channel (limit {mib(EAGER_LIMIT_BYTES)}): "
                   f"checked on the meta device, shape only (the meta device accepts some layers CPU rejects)")
    where = "meta" if refusal else device
    try:
        shape, params = _run_on(torch, layers, in_size, where, channels, output_size)
    except (RuntimeError, ValueError, TypeError) as exc:
        return TorchAnswer(torch.__version__, where, None, error_line(exc), not refusal, refusal)
    return TorchAnswer(torch.__version__, where, shape[2:], None, not refusal, refusal, shape, params)


def _run_on(torch: Any, layers: Sequence[Layer], in_size: tuple[int, ...], device: str,
            channels: Channels, output_size: tuple[int, ...] | None = None) -> tuple[tuple[int, ...], int]:
    """The output shape and parameter count of the torch layers run on zeros; raises what torch raises."""
    model = torch.nn.Sequential(*(build_module(layer, channels, device) for layer in layers))
    params = sum(p.numel() for p in model.parameters())
    x = torch.zeros(channels.batch, channels.in_channels, *in_size, device=device)
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # e.g. 'same' with an even kernel copies the input
        if output_size is not None:  # one transposed conv, asked for a size
            return tuple(model[0](x, output_size=list(output_size)).shape), params
        return tuple(model(x).shape), params


def _weight_count(layer: Layer, channels: Channels) -> int:
    if layer.op in POOLS or channels.out_channels % max(channels.groups, 1):
        return 0
    return channels.in_channels * (channels.out_channels // channels.groups) * math.prod(layer.kernel_size)


def _with_large_weights(torch: Any, layers: Sequence[Layer], in_size: tuple[int, ...],
                        sizes: Sequence[tuple[int, ...]], device: str, channels: Channels,
                        weights: int, output_size: tuple[int, ...] | None = None) -> TorchAnswer:
    """Spatial sizes eagerly with one channel; the full layers on the meta device for construction checks
    (groups), the parameter count and the full shape."""
    spatial = run_stack(layers, in_size, sizes, device, output_size=output_size)
    note = (f"the weights would take {mib(weights)} (limit {mib(EAGER_LIMIT_BYTES)}): the layer ran eagerly "
            f"with one channel, and with its channels on the meta device")
    try:
        shape, params = _run_on(torch, layers, in_size, "meta", channels, output_size)
    except (RuntimeError, ValueError, TypeError) as exc:
        return TorchAnswer(spatial.version, spatial.device, None, spatial.error or error_line(exc), spatial.eager,
                           note)
    if spatial.out is None:
        return TorchAnswer(spatial.version, spatial.device, None, spatial.error, spatial.eager, note)
    return TorchAnswer(spatial.version, spatial.device, spatial.out, None, spatial.eager, note,
                       (shape[0], shape[1], *spatial.out), params)


def run_layer(layer: Layer, in_size: tuple[int, ...], out: tuple[int, ...] | None = None,
              device: str = "cpu", channels: Channels = Channels(),
              output_size: tuple[int, ...] | None = None) -> TorchAnswer:
    """:func:`run_stack` for one layer; ``out`` is convcalc's output size, if it has one. With
    ``output_size`` (a transposed conv) torch is asked as ``module(x, output_size=...)``, so that it picks
    the output_padding (or refuses the size) itself."""
    return run_stack([layer], in_size, [out] if out else [], device, channels, output_size)


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


def mib(n_bytes: int) -> str:
    return f"{n_bytes / 2**20:,.0f} MiB" if n_bytes < 2**60 else f"{n_bytes:.3g} bytes"
