"""Proving an op acts per position, or measuring the window it reads: run it on a real tensor, change the
input at one position, and see which outputs change (docs/inspect.md, "Fields"). Used for ops convcalc has
no rule for: an unfamiliar function or module, an opaque leaf. torch is imported on use.

The op runs at batch 1 on values drawn from [0.5, 1.5) (no zero, no negative), with its parameters and
buffers as they are; the input changes by 1 at one position (every channel at once), at the first, the
last and two random positions, and each time no output at another position may change. A op that passes
is per position at those positions, on those values: the proof is by example. An op that is not per
position, keeps the size and holds each dimension on one axis gets its window measured the same way: the
outputs a change at an inner position reaches, which must be the same offsets at three inner positions
and stay clear of the borders (a convolution with zero padding, say); where they are not, the field is
unknown. An op that changes the size (an opaque convolution with TensorFlow's padding) gets its stride and
window measured along each dimension in turn: every input position within reach of three inner output
units is changed (a whole slice at once), and the units must read the same offsets, one stride apart.
Inputs within 4 of the guessed reach are looked at first (2 x stride + 9 runs per dimension), within 12
where the window runs to that edge; it is made only where the first look's runs fit in 10^10
multiply-accumulates. An op that raises, returns something else than one tensor, or needs values convcalc
did not record, cannot be probed: its field is unknown.
"""

from __future__ import annotations

import math
import operator
from typing import Any

from ..torchcheck import import_torch
from .fields import Flow

PROBE_LIMIT_BYTES = 64 * 2**20  # the largest tensor a probe may hold
TRIALS = 4
SPANS = (4, 12)  # how far past its stride's guess a size-changing op's window is looked for, in turn
STRIDED_MACS_BUDGET = 10**10  # the most multiply-accumulates the first look's runs may take


class PositionProbe:
    """``probe(node, source)``: True where the node's op is per position on ``source``'s positions, False
    where a change at one position reaches another, None where it cannot be run. ``probe.window(node,
    source)``: the offsets each output reads per dimension, where measured."""

    def __init__(self, graph: Any):
        self.torch = import_torch("probing an op")
        self.graph = graph
        self.everywhere: dict[str, bool] = {}  # every probed change reached every output position
        self._found: dict[tuple[str, str], Any] = {}  # (what, node name): each measurement made once

    def _once(self, what: str, node: Any, measure: Any, *args: Any) -> Any:
        """``measure(node, *args)``, made once per node; None where the op raised."""
        key = (what, node.name)
        if key not in self._found:
            try:
                self._found[key] = measure(node, *args)
            except (Exception, SystemExit):
                self._found[key] = None
        return self._found[key]

    def __call__(self, node: Any, source: Flow) -> bool | None:
        return self._once("per position", node, self._probe, source)

    def reads_everything(self, node: Any, source: Flow) -> bool:
        """Whether a change at each probed position reached every output position (attention over every
        token, say): the field is global, shown the way per position is, by example."""
        self(node, source)
        return self.everywhere.get(node.name, False)

    def window(self, node: Any, source: Flow) -> list[tuple[int, ...]] | None:
        """Per dimension, the offsets an output reads (output u reads input u + o), measured at three inner
        positions; None where they differ, reach a border, or the op cannot be run."""
        return self._once("window", node, self._window, source)

    def strided(self, node: Any, source: Flow, shape: tuple[int, ...]) -> list[tuple[int, tuple[int, ...]]] | None:
        """For an op that changes the size (a convolution with TensorFlow's padding, opaque): per dimension,
        its stride and the offsets unit 0 reads (unit u reads u * stride + offset), measured at three inner
        units; None where they differ, reach past what was probed, or the op cannot be run."""
        return self._once("strided", node, self._strided, source, shape)

    def _strided(self, node: Any, source: Flow, out: tuple[int, ...]) -> list[tuple[int, tuple[int, ...]]] | None:
        torch = self.torch
        shape = source.shape
        whole = {d: a for a, d in source.axes.items()}
        run = self._run(node, source)
        if run is None or shape is None or len(out) != len(shape) or sorted(whole) != list(range(len(source.fields))):
            return None
        function, args, kwargs = run
        dispatched = node.meta.get("convcalc_dispatched")
        runs = sum(2 * max(1, round(shape[a] / max(out[a], 1))) + 2 * SPANS[0] + 1 for a in whole.values())
        if dispatched is not None and dispatched[0] * runs > STRIDED_MACS_BUDGET:
            return None  # a whole encoder, say: too costly to run this often
        measured = []
        with torch.no_grad():
            base = self._call(function, args, kwargs)
            if not isinstance(base, torch.Tensor) or tuple(base.shape) != tuple(out):
                return None
            for axis in (whole[d] for d in range(len(source.fields))):
                if out[axis] < 5:
                    return None
                found = None
                for span in SPANS:  # a near look first; further only where the window reached its edge
                    found = self._along(function, args, kwargs, base, shape, out, axis, span)
                    if found != "wider":
                        break
                if not isinstance(found, tuple):
                    return None
                measured.append(found)
        return measured

    def _along(self, function: Any, args: Any, kwargs: Any, base: Any, shape: tuple[int, ...], out: tuple[int, ...],
               axis: int, span: int) -> tuple[int, tuple[int, ...]] | str | None:
        """The stride and unit 0's offsets along ``axis``, from the inputs within ``span`` of three inner
        units' guessed reach; "wider" where the reads run to the edge of what was looked at."""
        torch = self.torch
        size, units = shape[axis], out[axis]
        guess, centre = max(1, round(size / units)), units // 2
        low, high = max(0, (centre - 1) * guess - span), min(size, (centre + 1) * guess + span + 1)
        reads: dict[int, list[int]] = {u: [] for u in (centre - 1, centre, centre + 1)}
        others = [a for a in range(len(out)) if a != axis]
        for p in range(low, high):
            index: list[Any] = [slice(None)] * len(shape)
            index[axis] = p
            changed = self._call(function, args, kwargs, index, shape)
            moved = (changed != base) & ~(torch.isnan(changed) & torch.isnan(base))
            along = moved.any(dim=others) if others else moved
            for u in reads:
                if bool(along[u]):
                    reads[u].append(p)
        if any(not r for r in reads.values()):
            return None
        if any((r[0] == low and low > 0) or (r[-1] == high - 1 and high < size) for r in reads.values()):
            return "wider"
        stride = reads[centre][0] - reads[centre - 1][0]
        offsets = {tuple(p - u * stride for p in r) for u, r in reads.items()}
        if stride < 1 or len(offsets) != 1:
            return None
        return stride, offsets.pop()

    def _run(self, node: Any, source: Flow) -> tuple[Any, Any, Any] | None:
        """The op as a function, and its arguments: recorded tensors drawn at random, parameters as they are."""
        torch = self.torch
        shape = source.shape
        if shape is None or source.layout is None or math.prod(shape) * 4 > PROBE_LIMIT_BYTES:
            return None
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
        return self._function(node), args, kwargs

    def _probe(self, node: Any, source: Flow) -> bool | None:
        torch = self.torch
        shape = source.shape
        run = self._run(node, source)
        if run is None or shape is None or source.layout is None:
            return None
        axes = [a for a, axis in enumerate(source.layout) if any(f[0] is not None and f[1] > 1 for f in axis)]
        if not axes:
            return True
        function, args, kwargs = run
        generator = torch.Generator().manual_seed(1)
        with torch.no_grad():
            base = self._call(function, args, kwargs)
            if not isinstance(base, torch.Tensor) or tuple(base.shape) != tuple(shape):
                return None
            positions = [tuple(0 for _ in axes), tuple(shape[a] - 1 for a in axes)]
            positions += [tuple(int(torch.randint(shape[a], (1,), generator=generator)) for a in axes)
                          for _ in range(TRIALS - 2)]
            local = everywhere = True
            for position in positions:
                index = [slice(None)] * len(shape)
                for a, i in zip(axes, position):
                    index[a] = i
                where = self._reached(function, args, kwargs, base, index, shape, axes)
                everywhere &= bool(where.all())
                where[position] = False
                local &= not bool(where.any())
        self.everywhere[node.name] = everywhere and not local
        return local

    def _reached(self, function: Any, args: Any, kwargs: Any, base: Any, index: list[Any],
                 shape: tuple[int, ...], axes: list[int]) -> Any:
        """Over the positional axes, the outputs that change when the inputs change at ``index``."""
        torch = self.torch
        out = self._call(function, args, kwargs, index, shape)
        moved = (out != base) & ~(torch.isnan(out) & torch.isnan(base))
        others = [a for a in range(len(shape)) if a not in axes]
        return moved.any(dim=others) if others else moved

    def _window(self, node: Any, source: Flow) -> list[tuple[int, ...]] | None:
        torch = self.torch
        shape = source.shape
        whole = {d: a for a, d in source.axes.items()}
        run = self._run(node, source)
        if run is None or shape is None or sorted(whole) != list(range(len(source.fields))):
            return None
        axes = [whole[d] for d in range(len(source.fields))]
        function, args, kwargs = run
        with torch.no_grad():
            base = self._call(function, args, kwargs)
            if not isinstance(base, torch.Tensor) or tuple(base.shape) != tuple(shape):
                return None
            found = None
            centre = [shape[a] // 2 for a in axes]
            for shift in (0, 1, -1):
                position = [c + shift for c in centre]
                if any(not 0 <= p < shape[a] for p, a in zip(position, axes)):
                    return None
                index: list[Any] = [slice(None)] * len(shape)
                for a, p in zip(axes, position):
                    index[a] = p
                where = self._reached(function, args, kwargs, base, index, shape, axes)
                reached = where.nonzero().tolist()
                if not reached or any(r[i] in (0, shape[a] - 1) for r in reached for i, a in enumerate(axes)):
                    return None  # nothing reached, or the borders: the window is not seen whole
                offsets = {tuple(r[i] - position[i] for i in range(len(axes))) for r in reached}
                if found is not None and offsets != found:
                    return None
                found = offsets
        assert found is not None
        return [tuple(sorted({-o[d] for o in found})) for d in range(len(axes))]

    def _call(self, function: Any, args: Any, kwargs: Any, index: list[Any] | None = None,
              shape: tuple[int, ...] | None = None) -> Any:
        """The op on fresh copies of its tensor arguments (an in-place op must not change the next run's
        input), changed by 1 at ``index`` where given, with the same random draws every run (noise or
        dropout reads no position)."""
        torch = self.torch
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            return function(*[self._changed(a, index, shape) for a in args],
                            **{k: self._changed(v, index, shape) for k, v in kwargs.items()})

    def _changed(self, value: Any, index: list[Any] | None, shape: tuple[int, ...] | None) -> Any:
        torch = self.torch
        if not isinstance(value, torch.Tensor) or isinstance(value, torch.nn.Parameter):
            return value
        changed = value.clone()
        if index is not None and shape is not None and tuple(value.shape) == tuple(shape):
            changed[tuple(index)] += 1.0
        return changed

    def _function(self, node: Any) -> Any:
        if node.op == "call_module":
            return self.graph.get_submodule(node.target)
        if node.op == "call_method":
            return lambda this, *args, **kwargs: getattr(this, node.target)(*args, **kwargs)
        return node.target
