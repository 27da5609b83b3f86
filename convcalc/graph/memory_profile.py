"""``memory --verify``: one real CPU step under PyTorch's memory profiler, the oracle the simulation
(graph/memory.py) is held to (docs/memory.md, "How it is checked").

``torch.profiler.profile(profile_memory=True, record_shapes=True, with_stack=True)`` and the timeline of
``torch.profiler._memory_profiler`` (a private module: what this relies on is tested) give every
allocation the profiler ties to a tensor, with its category. The measured peak is the largest sum of
those alive at once, allocations with no tensor behind them (backend workspaces) left out. Beside it,
the peak of the tensors the ops exchange, which leaves out the tensors an op creates and frees inside
itself (kernel scratch that no dispatch mode sees, so that the simulation cannot).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from ..torchcheck import import_torch
from .memory import _autocast, _optimizer, _tensors

TOLERANCE = 0.03  # the predicted peak agrees within 3% of the measured one (tensors the ops exchange)


@dataclass(frozen=True)
class MeasuredStep:
    """What the profiler saw in one real step."""

    peak_bytes: int  # every allocation tied to a tensor
    exchanged_peak_bytes: int  # without the tensors an op creates and frees inside itself
    parameter_bytes: int
    gradient_bytes: int
    optimizer_state_bytes: int

    @property
    def scratch_bytes(self) -> int:
        """How much higher the peak is with the kernels' own tensors."""
        return self.peak_bytes - self.exchanged_peak_bytes


def agrees(predicted: int, measured: MeasuredStep) -> bool:
    return abs(predicted - measured.exchanged_peak_bytes) <= TOLERANCE * measured.exchanged_peak_bytes


def measure_step(model: Any, input_shape: tuple[int, ...], mode: str = "train", optimizer: str = "adam",
                 amp: str | None = None, seed: int = 0) -> MeasuredStep:
    """Run one step for real (after a first step that creates the optimizer's state) under the profiler."""
    torch = import_torch("--verify")
    from torch.profiler import ProfilerActivity, profile
    from torch.profiler._memory_profiler import Action, Category, TensorKey

    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(*input_shape, generator=generator)
    model.train(mode == "train")
    opt = _optimizer(optimizer, [p for p in model.parameters() if p.requires_grad], torch) if mode == "train" \
        else None

    def step() -> None:
        if opt is None:
            with torch.inference_mode(), _autocast(amp, torch):
                model(x)
            return
        opt.zero_grad(set_to_none=True)
        with _autocast(amp, torch):
            output = model(x)
            tensors = [t for t in _tensors(output, torch) if t.is_floating_point() and t.requires_grad]
            loss = tensors[0].sum()
            for t in tensors[1:]:
                loss = loss + t.sum()
        del output, tensors
        loss.backward()
        del loss
        opt.step()

    if opt is not None:
        step()
    with _quiet_stderr(), profile(activities=[ProfilerActivity.CPU], profile_memory=True, record_shapes=True,
                                  with_stack=True) as prof:
        step()
    with _quiet_stderr():
        memory = prof._memory_profile()
    inside = {key for node in memory._data_flow_graph.flow_nodes for key in node.intermediates}
    total = exchanged = peak = exchanged_peak = 0
    for _, action, (key, _), size in memory.timeline:
        if not isinstance(key, TensorKey):
            continue
        change = size if action in (Action.PREEXISTING, Action.CREATE) else -size if action == Action.DESTROY else 0
        total += change
        if key not in inside:
            exchanged += change
        peak, exchanged_peak = max(peak, total), max(exchanged_peak, exchanged)
    by_category: dict[Any, int] = {}
    counted = set()
    for (key, _), category in memory._category_snapshot().items():
        if key not in counted:
            counted.add(key)
            by_category[category] = by_category.get(category, 0) + memory._size_map[key]
    model.eval()
    return MeasuredStep(peak, exchanged_peak, by_category.get(Category.PARAMETER, 0),
                        by_category.get(Category.GRADIENT, 0), by_category.get(Category.OPTIMIZER_STATE, 0))


@contextmanager
def _quiet_stderr() -> Iterator[None]:
    """The profiler's C++ side writes start and stop lines and allocator warnings to stderr: hidden here,
    so that a convcalc command's stderr holds only its own lines."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
