"""Cross-checks against real torch layers: the only module (with inspect.py) that imports torch.

torch is imported inside functions, when a check is asked for, so the calculator never pays for it.
The oracle is eager execution on zero tensors (1 batch, 1 channel): the meta device accepts some
configurations that CPU rejects (see REFERENCES.md), so it is used only for inputs too large to run.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Any

from .errors import ConvcalcError
from .layer import Layer

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


@dataclass(frozen=True)
class Verdict:
    """Whether torch agrees with convcalc; ``caveat`` says why a difference is not a disagreement."""

    agrees: bool
    caveat: str | None = None


def import_torch() -> Any:
    """torch, or a ConvcalcError that says how to install it."""
    try:
        import torch
    except ImportError as exc:
        raise ConvcalcError(f"--verify needs PyTorch, which is not installed: {INSTALL_HINT}") from exc
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


def build_module(layer: Layer) -> Any:
    """The torch.nn layer matching ``layer``: 1 channel in and out, no bias."""
    torch = import_torch()
    nn = torch.nn
    n = layer.dims
    padding = layer.padding
    if layer.op == "conv":
        return getattr(nn, f"Conv{n}d")(1, 1, layer.kernel_size, layer.stride, padding, layer.dilation,
                                        bias=False)
    if layer.op == "conv_transpose":
        return getattr(nn, f"ConvTranspose{n}d")(1, 1, layer.kernel_size, layer.stride, padding,
                                                 layer.output_padding, bias=False, dilation=layer.dilation)
    if layer.op == "max_pool":
        return getattr(nn, f"MaxPool{n}d")(layer.kernel_size, layer.stride, padding, layer.dilation,
                                           ceil_mode=layer.ceil_mode)
    return getattr(nn, f"AvgPool{n}d")(layer.kernel_size, layer.stride, padding, ceil_mode=layer.ceil_mode)


def eager_refusal(layer: Layer, in_size: tuple[int, ...], out: tuple[int, ...] | None) -> str | None:
    """Why running ``layer`` eagerly on ``in_size`` would be too big, or None when it is small enough."""
    in_bytes = math.prod(in_size) * FLOAT32_BYTES
    out_bytes = math.prod(out) * FLOAT32_BYTES if out else 0
    biggest = max(in_bytes, out_bytes)
    if biggest > EAGER_LIMIT_BYTES:
        which = "input" if in_bytes >= out_bytes else "output"
        return (f"the {which} tensor would take {_mib(biggest)} (limit {_mib(EAGER_LIMIT_BYTES)}): "
                f"checked on the meta device, shape only (the meta device accepts some layers CPU rejects)")
    side = in_size if layer.op == "conv_transpose" else out
    macs = math.prod(side) * math.prod(layer.kernel_size) if side else 0
    if macs > EAGER_LIMIT_MACS:
        return (f"running it would take {macs:.3g} multiply-accumulates (limit {EAGER_LIMIT_MACS:.3g}): "
                f"checked on the meta device, shape only (the meta device accepts some layers CPU rejects)")
    return None


def run_layer(layer: Layer, in_size: tuple[int, ...], out: tuple[int, ...] | None = None,
              device: str = "cpu") -> TorchAnswer:
    """Run the torch layer for ``layer`` on zeros of ``in_size``; ``out`` (ours) sizes the work.

    Inputs whose tensors exceed 256 MiB (or whose work exceeds 2**30 MACs) go to the meta device.
    """
    torch = import_torch()
    device = resolve_device(device)
    refusal = eager_refusal(layer, in_size, out)
    where = "meta" if refusal else device
    try:
        module = build_module(layer).to(where)
        x = torch.zeros(1, 1, *in_size, device=where)
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # e.g. 'same' with an even kernel copies the input
            shape = tuple(module(x).shape[2:])
    except (RuntimeError, ValueError, TypeError) as exc:
        return TorchAnswer(torch.__version__, where, None, _first_line(exc), not refusal, refusal)
    return TorchAnswer(torch.__version__, where, shape, None, not refusal, refusal)


def judge(layer: Layer, ours: tuple[int, ...] | None, answer: TorchAnswer) -> Verdict:
    """Agreement of our answer (None: we reject) with torch's, accept/reject included.

    Two differences are not disagreements: eager conv_transpose in 2-d/3-d returns an empty tensor
    when one output dimension is exactly 0 and another is positive (convcalc rejects every size
    below 1), and the meta device, used for inputs too large to run, does not make every check.
    """
    if ours == answer.out:
        return Verdict(True)
    if ours is None and answer.out is not None:
        if not answer.eager:
            return Verdict(True, "the meta device does not make every check eager torch makes, so it "
                                 "cannot confirm this rejection")
        if layer.op == "conv_transpose" and 0 in answer.out:
            return Verdict(True, "torch returned an empty tensor for an output dimension of exactly 0 "
                                 "(a known eager conv_transpose quirk); convcalc rejects sizes below 1")
    return Verdict(False)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"


def _mib(n_bytes: int) -> str:
    return f"{n_bytes / 2**20:,.0f} MiB" if n_bytes < 2**60 else f"{n_bytes:.3g} bytes"
