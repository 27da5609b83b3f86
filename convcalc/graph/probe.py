"""Proving an op acts per position: run it on a small real tensor, change the input at one position, and
see which outputs change (docs/inspect.md, "Fields"). Used for ops convcalc has no rule for: an unfamiliar
function or module, an opaque leaf. torch is imported on use.

The op runs at batch 1 on values drawn from [0.5, 1.5) (no zero, no negative), with its parameters and
buffers as they are; the input changes by 1 at one position (every channel at once), at the first, the
last and two random positions, and each time no output at another position may change. A op that passes
is per position at those positions, on those values: the proof is by example, which is why the note says
"probed". An op that raises, returns something else than one tensor of its input's size, or needs
values convcalc did not record, cannot be probed: its field is unknown.
"""

from __future__ import annotations

import math
import operator
from typing import Any

from ..torchcheck import import_torch
from .fields import Flow

PROBE_LIMIT_BYTES = 64 * 2**20  # the largest tensor a probe may hold
TRIALS = 4


class PositionProbe:
    """``probe(node, source)``: True where the node's op is per position on ``source``'s positions, False
    where a change at one position reaches another, None where it cannot be run."""

    def __init__(self, graph: Any):
        self.torch = import_torch("probing an op")
        self.graph = graph
        self.verdicts: dict[str, bool | None] = {}

    def __call__(self, node: Any, source: Flow) -> bool | None:
        if node.name not in self.verdicts:
            try:
                self.verdicts[node.name] = self._probe(node, source)
            except (Exception, SystemExit):
                self.verdicts[node.name] = None
        return self.verdicts[node.name]

    def _probe(self, node: Any, source: Flow) -> bool | None:
        torch = self.torch
        shape = source.shape
        if shape is None or source.layout is None or math.prod(shape) * 4 > PROBE_LIMIT_BYTES:
            return None
        axes = [a for a, axis in enumerate(source.layout) if any(f[0] is not None and f[1] > 1 for f in axis)]
        if not axes:
            return True
        generator = torch.Generator().manual_seed(0)

        def value(arg: Any) -> Any:
            if not (hasattr(arg, "op") and hasattr(arg, "meta")):
                return arg
            if arg.op == "get_attr":
                return operator.attrgetter(arg.target)(self.graph)
            recorded = arg.meta.get("convcalc_shape")
            if not isinstance(recorded, tuple):
                raise LookupError(f"{arg.name} is not a tensor convcalc recorded")
            return torch.rand(recorded, generator=generator) + 0.5

        args = torch.fx.node.map_aggregate(node.args, value)
        kwargs = torch.fx.node.map_aggregate(node.kwargs, value)
        function = self._function(node)
        with torch.no_grad():
            base = function(*args, **kwargs)
            if not isinstance(base, torch.Tensor) or tuple(base.shape) != tuple(shape):
                return None
            positions = [tuple(0 for _ in axes), tuple(shape[a] - 1 for a in axes)]
            positions += [tuple(int(torch.randint(shape[a], (1,), generator=generator)) for a in axes)
                          for _ in range(TRIALS - 2)]
            for position in positions:
                index = [slice(None)] * len(shape)
                for a, i in zip(axes, position):
                    index[a] = i
                changed = [self._changed(arg, index, shape) for arg in args]
                kwargs_changed = {k: self._changed(v, index, shape) for k, v in kwargs.items()}
                out = function(*changed, **kwargs_changed)
                moved = (out != base) & ~(torch.isnan(out) & torch.isnan(base))
                others = [a for a in range(len(shape)) if a not in axes]
                where = moved.any(dim=others) if others else moved
                where[position] = False
                if bool(where.any()):
                    return False
        return True

    def _changed(self, value: Any, index: list[Any], shape: tuple[int, ...]) -> Any:
        if isinstance(value, self.torch.Tensor) and tuple(value.shape) == tuple(shape) and \
                not isinstance(value, self.torch.nn.Parameter):
            changed = value.clone()
            changed[tuple(index)] += 1.0
            return changed
        return value

    def _function(self, node: Any) -> Any:
        if node.op == "call_module":
            return self.graph.get_submodule(node.target)
        if node.op == "call_method":
            return lambda this, *args, **kwargs: getattr(this, node.target)(*args, **kwargs)
        return node.target
