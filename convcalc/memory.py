"""The memory of a training step or of inference (``convcalc memory``; docs/memory.md): what is alive at the
peak, by kind, and the largest batch that fits a budget.

The numbers come from a simulation of the step on fake tensors (graph/memory.py): every tensor storage
followed from its creation to its release, as PyTorch itself decides them (what autograd saves, when
Python frees a value). This module holds the results, the budget's text and the batch search, and imports
no torch.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from fractions import Fraction

from .errors import ConvcalcError

OPTIMIZERS = ("sgd", "momentum", "adam", "adamw")
AMP = ("bf16", "fp16")
KINDS = ("parameters", "buffers", "gradients", "optimizer_state", "inputs", "activations", "temporaries")
UNITS = {"b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12,
         "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40}
MAX_BATCH = 2**31 - 1
_BUDGET = re.compile(r"\s*([0-9]+(?:\.[0-9]+)?)\s*([a-z]*)\s*$", re.IGNORECASE)


def parse_budget(text: str, parameter: str = "budget") -> int:
    """``24GiB``, ``24 GB``, ``1.5GiB``, ``512MiB``, ``800kB`` or plain bytes, as a whole number of bytes
    (rounded down); GiB, MiB and KiB are powers of 2, GB, MB and kB powers of 10."""
    match = _BUDGET.match(text)
    if not match or match.group(2).lower() not in UNITS and match.group(2) != "":
        raise ConvcalcError(f"{{{parameter}}} {text!r}: expected a size such as 24GiB, 16GB, 512MiB or a number of "
                            f"bytes", parameters=(parameter,))
    value = Fraction(match.group(1)) * UNITS[match.group(2).lower() or "b"]
    if value < 1:
        raise ConvcalcError(f"{{{parameter}}} {text!r}: a budget of at least 1 byte", parameters=(parameter,))
    return int(value)


@dataclass
class Breakdown:
    """Bytes alive at one moment, by kind (KINDS)."""

    parameters: int = 0
    buffers: int = 0
    gradients: int = 0
    optimizer_state: int = 0
    inputs: int = 0
    activations: int = 0  # saved for backward
    temporaries: int = 0

    @property
    def total(self) -> int:
        return sum(getattr(self, kind) for kind in KINDS)


@dataclass
class NodeMemory:
    """What one module's forward ops allocate and what autograd keeps of what they read and wrote (the
    ops run directly inside a module that has children are its own node, ``layer1.0`` for the residual
    add; the model's own forward is ``(model)``)."""

    name: str
    saved_bytes: int = 0  # storages autograd saves for backward while this node runs, each counted once
    out_bytes: int = 0  # new storages its forward ops create


@dataclass
class StepMemory:
    """One simulated step (``mode`` train or infer) at one batch size."""

    mode: str
    batch: int
    peak_bytes: int
    peak_phase: str  # forward, backward or optimizer step
    peak_node: str | None  # the module (and in backward, the autograd function) running at the peak
    breakdown: Breakdown
    parameter_bytes: int
    buffer_bytes: int
    gradient_bytes: int
    optimizer_state_bytes: int
    saved_bytes: int
    saved_parameter_bytes: int
    input_bytes: int
    nodes: list[NodeMemory] = field(default_factory=list)


@dataclass(frozen=True)
class BatchSearch:
    """The largest batch whose peak fits a budget, and how it was found."""

    budget_bytes: int
    largest_batch: int | None  # None: even batch 1 does not fit
    per_sample_bytes: int | None  # peak(B + 1) - peak(B) at the answer
    peaks: dict[int, int]  # every batch simulated and its peak
    simulations: int


def largest_batch(peak: Callable[[int], int], budget: int, start: int = 1, limit: int = MAX_BATCH) -> BatchSearch:
    """The largest batch B with ``peak(B) <= budget``, confirmed at B and B + 1, for a peak that grows with
    the batch. Memory is not assumed linear: the first guess is the straight line through ``start`` (the
    batch already simulated) and twice it (or half, where ``start`` does not fit), and each further guess
    the secant through the two simulated batches nearest the answer, kept inside the bracket of batches
    known to fit and known not to. A peak affine in the batch takes four simulations (``start``, its double,
    B and B + 1); any other converges to the same exact answer."""
    peaks: dict[int, int] = {}

    def at(batch: int) -> int:
        if batch not in peaks:
            peaks[batch] = peak(batch)
        return peaks[batch]

    fits: int | None = None  # the largest batch known to fit
    fails: int | None = None  # the smallest known not to
    guess = max(1, min(start, limit))
    while True:
        guess = min(max(guess, (fits or 0) + 1), (fails or limit + 1) - 1)
        if at(guess) <= budget:
            fits = guess
        else:
            fails = guess
        if fails == 1:
            return BatchSearch(budget, None, None, peaks, len(peaks))
        if fits is not None and (fits == limit or (fails is not None and fails - fits == 1)):
            break
        guess = _next_guess(peaks, budget, fits, fails)
    per_sample = at(fits + 1) - at(fits) if fits < limit else None
    return BatchSearch(budget, fits, per_sample, peaks, len(peaks))


def _next_guess(peaks: dict[int, int], budget: int, fits: int | None, fails: int | None) -> int:
    """Where the secant through two simulated batches reaches the budget, rounded down: the bracket's
    ends where both are known, else the two simulated batches nearest it (doubling, or halving, from a
    single one)."""
    if fits is not None and fails is not None:
        b0, b1 = fits, fails
    else:
        side = sorted(b for b in peaks if (b <= fits if fits is not None else b >= fails))  # type: ignore[operator]
        if len(side) < 2:
            return 2 * fits if fits is not None else max(1, fails // 2)  # type: ignore[operator]
        b0, b1 = (side[-2], side[-1]) if fits is not None else (side[0], side[1])
    p0, p1 = peaks[b0], peaks[b1]
    if p1 <= p0:  # no growth between them: further out
        return 2 * b1 if fails is None else b0 + 1
    return b0 + math.floor(Fraction(budget - p0) * (b1 - b0) / (p1 - p0))
