"""Where a tensor's positions are: its layout, followed through view, reshape, permute and the ops that mix
positions (docs/inspect.md, "Fields"). Pure Python.

Each tensor axis is a list of factors, outermost first (row-major). A factor is ``(dim, size, scale)``: an
index of ``size`` values that moves the position along the input's spatial dimension ``dim`` by ``scale``
per step; ``dim`` None for an index that is not a position (batch, channels, heads). The input's layout
is ``N | C | (0, H, 1) | (1, W, 1)``; NHWC is the same factors permuted; a Swin window partition splits
``(0, H, 1)`` into ``(0, H/ws, ws)`` on the batch axis and ``(0, ws, 1)`` on the token axis. A position
along ``dim`` is the sum of its factors' indices times their scales, so a field per dimension still
means what it did: a view changes where the positions are, never which. A factor ``(dims, size, 0)`` with
a tuple of dimensions marks an axis where those positions are, but not in an order convcalc follows (a
class token concatenated in front of the patches): ops that mix the whole axis see them all, nothing else
reads them.

An op that mixes a set of axes (attention over tokens, a softmax, a reduction, a linear layer over an
axis that holds positions) makes each position's field the union over the positions those axes hold,
with the other factors fixed: all of a dimension (``global``), or the window of positions that differ
only in the mixed digits (:func:`mixing_window`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from ..periodic import Window

Factor = tuple  # (dim: int | None, size: int, scale: int)
Axis = tuple  # of Factor
Layout = tuple  # of Axis, one per tensor axis


def input_layout(shape: Sequence[int], dims: int) -> Layout:
    """N x C x spatial: the spatial axes hold their dimension whole."""
    lead = len(shape) - dims
    return tuple(((None, n, 0),) if a < lead else ((a - lead, n, 1),) for a, n in enumerate(shape))


def opaque(shape: Sequence[int]) -> Layout:
    """A layout holding no positions (parameters, sizes, a tensor whose positions are lost)."""
    return tuple(((None, n, 0),) for n in shape)


def standard_dims(layout: Layout | None, dims: int) -> bool:
    """Whether the last ``dims`` axes hold dimensions 0 .. dims-1 whole, in order, and no other axis holds
    a position: what convolutions, pooling and interpolation act on."""
    if layout is None or len(layout) < dims:
        return False
    lead = len(layout) - dims
    for a, axis in enumerate(layout):
        positions = [f for f in axis if f[0] is not None]
        if a < lead and positions:
            return False
        if a >= lead and (len(axis) != 1 or axis[0][0] != a - lead or axis[0][2] != 1):
            return False
    return True


def axis_dims(layout: Layout) -> dict[int, int]:
    """Tensor axes that each hold one dimension whole: axis -> dim."""
    found = {}
    for a, axis in enumerate(layout):
        if len(axis) == 1 and axis[0][0] is not None and axis[0][2] == 1:
            found[a] = axis[0][0]
    return found


def dims_of(factor: Factor) -> tuple[int, ...]:
    """The dimensions whose positions a factor holds: none, one, or several where they are scattered."""
    dim = factor[0]
    return () if dim is None else dim if isinstance(dim, tuple) else (dim,)


def scattered(dims: Sequence[int], size: int) -> Axis:
    """An axis of ``size`` values holding the positions of ``dims`` in an order not followed."""
    return ((tuple(dims), size, 0),) if dims else ((None, size, 0),)


def positional(layout: Layout, axes: Sequence[int]) -> bool:
    return any(f[0] is not None for a in axes for f in layout[a])


def reshaped(layout: Layout, shape: Sequence[int]) -> Layout | None:
    """The layout after ``view``/``reshape`` to ``shape`` (row-major), factors split where an output axis
    needs a part of one; None where a split does not divide (the positions are lost)."""
    queue = [f for axis in layout for f in axis if f[1] != 1]
    out = []
    for size in shape:
        axis: list[Factor] = []
        need = size
        while need > 1:
            if not queue:
                return None
            dim, n, scale = queue[0]
            if n <= need:
                if need % n:
                    return None
                axis.append(queue.pop(0))
                need //= n
            else:
                if n % need or isinstance(dim, tuple):  # scattered positions follow no split
                    return None
                inner = n // need
                axis.append((dim, need, scale * inner))
                queue[0] = (dim, inner, scale)
                need = 1
        out.append(_joined(axis))
    if queue:
        return None
    return tuple(out)


def _joined(axis: list[Factor]) -> Axis:
    """Adjacent factors of one dimension that are its consecutive digits, as one factor: a window split
    undone (``(0, 4, 4), (0, 4, 1)`` is ``(0, 16, 1)``)."""
    joined: list[Factor] = []
    for factor in axis:
        if joined:
            dim, size, scale = joined[-1]
            if dim is not None and dim == factor[0] and not isinstance(dim, tuple) and \
                    scale == factor[2] * factor[1] and factor[2] > 0:
                joined[-1] = (dim, size * factor[1], factor[2])
                continue
        joined.append(factor)
    return tuple(joined)


def permuted(layout: Layout, order: Sequence[int]) -> Layout:
    return tuple(layout[a] for a in order)


def expanded(layout: Layout, shape: Sequence[int]) -> Layout:
    """Broadcast to ``shape`` (new leading axes, size-1 axes widened): the new extent holds no position."""
    lead = len(shape) - len(layout)
    out = []
    for a, n in enumerate(shape):
        if a < lead:
            out.append(((None, n, 0),))
        else:
            axis = layout[a - lead]
            out.append(axis if math.prod(f[1] for f in axis) == n else ((None, n, 0),))
    return tuple(out)


def mixed_factors(layout: Layout, axes: Sequence[int]) -> dict[int, list[tuple[int, int]]]:
    """Per dimension, the (size, scale) of its factors on ``axes``."""
    found: dict[int, list[tuple[int, int]]] = {}
    for a in axes:
        for factor in layout[a]:
            for dim in dims_of(factor):
                if factor[1] > 1:
                    found.setdefault(dim, []).append((factor[1], factor[2]))
    return found


def covers(layout: Layout, dim: int, mixed: list[tuple[int, int]]) -> bool:
    """Whether the mixed factors are every factor of ``dim`` in the layout (the whole dimension); scattered
    positions (scale 0) are all of theirs."""
    if any(scale == 0 for _, scale in mixed):
        return True
    total = math.prod(size for d_axis in layout for d, size, _ in d_axis if d == dim and size > 1)
    return math.prod(size for size, _ in mixed) == total


def mixing_window(mixed: list[tuple[int, int]]) -> Window:
    """Position p reads every position that differs from p only in the mixed digits ``(p // scale) %
    size``: repeating every ``size * scale`` of the outermost mixed factor."""
    period = max(size * scale for size, scale in mixed)

    def read(r: int) -> list[int]:
        base = r - sum(((r // scale) % size) * scale for size, scale in mixed)
        offsets = [0]
        for size, scale in mixed:
            offsets = [o + i * scale for o in offsets for i in range(size)]
        return [base + o for o in offsets]

    return Window.from_function(period, period, read)


def without_positions(layout: Layout, axes: Sequence[int]) -> Layout:
    """The layout with ``axes`` holding no position any more (their positions mixed away)."""
    return tuple(tuple((None, f[1], 0) for f in axis) if a in axes else axis for a, axis in enumerate(layout))


def dropped(layout: Layout, axes: Sequence[int]) -> Layout:
    """Without ``axes`` (a reduction that does not keep them)."""
    return tuple(axis for a, axis in enumerate(layout) if a not in axes)
