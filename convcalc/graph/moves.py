"""Ops that move positions without mixing them: views and reshapes, permutations, broadcasts, rolls, pads,
indexing and splitting (docs/inspect.md, "Fields"). Each follows the layout (graph/layout.py), so that a
channels-last block, a channel shuffle or a window partition keeps its positions. Pure Python.

Each rule returns ``(flow, note)``: the output flow, and a note where the field cannot be kept.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..periodic import PeriodicField, Window
from .fields import Field, Flow, node_argument, reshaped, unknown
from .layout import expanded, permuted, positional

Shape = tuple[int, ...] | None


def permute(name: str, node: Any, source: Flow, shape: Shape) -> Flow:
    """permute, transpose, swapaxes, movedim and t: the axes reordered, positions with them."""
    if source.shape is None or source.layout is None:
        return unknown(source, shape)
    rank = len(source.shape)
    order = list(range(rank))
    if name == "permute":
        dims = node.args[1:] if len(node.args) > 2 else (node.args[1] if len(node.args) > 1 else node.kwargs["dims"])
        order = [int(d) % rank for d in dims]
    elif name in ("transpose", "swapaxes", "swapdims"):
        a, b = (int(node_argument(node, "dim0", 1, 0)) % rank, int(node_argument(node, "dim1", 2, 1)) % rank)
        order[a], order[b] = order[b], order[a]
    elif name == "movedim":
        source_axes, destination = node_argument(node, "source", 1, 0), node_argument(node, "destination", 2, 0)
        sources = [int(s) % rank for s in (source_axes if isinstance(source_axes, (list, tuple)) else [source_axes])]
        targets = [int(t) % rank for t in (destination if isinstance(destination, (list, tuple)) else [destination])]
        rest = [a for a in range(rank) if a not in sources]
        order = [-1] * rank
        for s, t in zip(sources, targets):
            order[t] = s
        free = iter(rest)
        order = [o if o >= 0 else next(free) for o in order]
    elif name == "t":
        order = order[::-1]
    return source.derive(shape, layout=permuted(source.layout, order))


def expand(source: Flow, shape: Shape) -> Flow:
    """expand, expand_as, broadcast_to: the widened axes hold no position."""
    if shape is None or source.layout is None:
        return unknown(source, shape)
    return source.derive(shape, layout=expanded(source.layout, shape))


def repeat(source: Flow, shape: Shape) -> tuple[Flow, str | None]:
    """repeat and tile: copies along axes that hold positions would place one position at several
    places; along the others the positions stay."""
    if shape is None or source.layout is None or source.shape is None:
        return unknown(source, shape), None
    lead = len(shape) - len(source.shape)
    grown = [a for a in range(len(source.shape)) if shape[lead + a] != source.shape[a]]
    if positional(source.layout, grown):
        return unknown(source, shape), "repeats along an axis of positions: its field is unknown"
    return source.derive(shape, layout=expanded(source.layout, shape)), None


def roll(node: Any, source: Flow, shape: Shape) -> tuple[Flow, str | None]:
    """torch.roll along axes that each hold one dimension whole: output u is input u - shift (as a
    translation; the positions that wrap around at the border are not followed)."""
    shifts, dims = node_argument(node, "shifts", 1, 0), node_argument(node, "dims", 2, None)
    if dims is None or source.shape is None:
        return unknown(source, shape), "rolls the flattened tensor: its field is unknown"
    shifts = list(shifts) if isinstance(shifts, (list, tuple)) else [shifts]
    dims = list(dims) if isinstance(dims, (list, tuple)) else [dims]
    fields: list[Field] = list(source.fields)
    axes = source.axes
    for shift, axis in zip(shifts, dims):
        axis = int(axis) % len(source.shape)
        if axis in axes:
            d = axes[axis]
            if isinstance(fields[d], PeriodicField):
                fields[d] = fields[d].through(Window(1, 1, ((-int(shift),),)))  # type: ignore[union-attr]
        elif source.layout is not None and positional(source.layout, [axis]):
            return unknown(source, shape), "rolls an axis that holds part of a dimension: its field is unknown"
    return source.derive(shape, fields), None


def pad(node: Any, source: Flow, shape: Shape) -> tuple[Flow, str | None]:
    """F.pad: pairs from the last axis backwards; an axis that holds a dimension whole moves by its left
    pad (the padding itself reads nothing), the others only grow."""
    pads = node_argument(node, "pad", 1, ())
    if shape is None or source.shape is None or source.layout is None:
        return unknown(source, shape), None
    fields: list[Field] = list(source.fields)
    layout = list(source.layout)
    axes = source.axes
    for i in range(len(pads) // 2):
        axis = len(source.shape) - 1 - i
        left = int(pads[2 * i])
        if axis in axes:
            d = axes[axis]
            if isinstance(fields[d], PeriodicField):
                fields[d] = fields[d].through(Window(1, 1, ((-left,),)))  # type: ignore[union-attr]
            layout[axis] = ((d, shape[axis], 1),)
        elif positional(source.layout, [axis]):
            return unknown(source, shape), "pads an axis that holds part of a dimension: its field is unknown"
        else:
            layout[axis] = ((None, shape[axis], 0),)
    return source.derive(shape, fields, tuple(layout)), None


def getitem(node: Any, flows: dict[str, Flow], shape: Shape, notes: list[str]) -> Flow:
    """Indexing: a whole slice keeps an axis, ``None`` adds one, an integer drops one. A slice of an axis
    that holds a dimension whole reads every ``step``-th position from ``start`` (exact); any other cut of
    an axis of positions leaves the field unknown, unless no position there has a field to lose."""
    container = flows.get(node.args[0].name) if hasattr(node.args[0], "name") else None
    if container is None:
        return Flow(shape, constant=True)
    if container.items is not None:
        index = node.args[1]
        if isinstance(index, int) and -len(container.items) <= index < len(container.items):
            return container.items[index]
        return Flow(shape, constant=True)
    if not container.spatial() or container.layout is None or container.shape is None or shape is None:
        return Flow(shape, constant=container.constant)
    index = node.args[1] if isinstance(node.args[1], tuple) else (node.args[1],)
    consumed = sum(1 for part in index if part is not None and part is not Ellipsis)
    if Ellipsis in index:
        at = index.index(Ellipsis)
        index = index[:at] + (slice(None),) * (len(container.shape) - consumed) + index[at + 1:]
    else:
        index = index + (slice(None),) * (len(container.shape) - consumed)
    fields: list[Field] = list(container.fields)
    whole = container.axes
    layout: list[tuple] = []
    axis = 0
    periodic = any(isinstance(f, PeriodicField) for f in container.fields)
    for part in index:
        if part is None:
            layout.append(((None, 1, 0),))
            continue
        if axis >= len(container.shape):
            return _indexed_unknown(node, container, shape, notes, "indexes beyond the tensor's axes")
        holds = positional(container.layout, [axis])
        if isinstance(part, slice) and part == slice(None):
            layout.append(container.layout[axis])
        elif isinstance(part, slice) and axis in whole and all(isinstance(v, (int, type(None)))
                                                               for v in (part.start, part.stop, part.step)):
            start, _, step = part.indices(container.shape[axis])
            if step < 1:
                return _indexed_unknown(node, container, shape, notes, "reverses an axis of positions")
            d = whole[axis]
            if isinstance(fields[d], PeriodicField):
                fields[d] = fields[d].through(Window.convolution(1, step, 1, -start))  # type: ignore[union-attr]
            layout.append(None)  # filled from the output's size below
        elif holds and periodic:
            what = "indexes an axis of positions with a tensor" if hasattr(part, "op") else \
                "indexes part of an axis of positions"
            return _indexed_unknown(node, container, shape, notes, what)
        elif not isinstance(part, int):
            layout.append(((None, 0, 0),))  # a part of an axis without positions: sized below
        axis += 1
    if len(layout) != len(shape):
        return _indexed_unknown(node, container, shape, notes, "indexes in a way convcalc does not follow")
    sized = []
    for a, (axis_layout, n) in enumerate(zip(layout, shape)):
        if axis_layout is None:
            sized.append(((next(d for ax, d in whole.items() if ax == _source_axis(index, a)), n, 1),))
        elif axis_layout == ((None, 0, 0),):
            sized.append(((None, n, 0),))
        else:
            sized.append(axis_layout)
    return container.derive(shape, fields, tuple(sized))


def _source_axis(index: tuple, out_axis: int) -> int:
    """The input axis that output axis ``out_axis`` comes from, for an index without advanced parts."""
    axis = out = 0
    for part in index:
        if part is None:
            out += 1
            continue
        if not isinstance(part, int):
            if out == out_axis:
                return axis
            out += 1
        axis += 1
    return -1


def _indexed_unknown(node: Any, container: Flow, shape: Shape, notes: list[str], what: str) -> Flow:
    notes.append(f"{node.name} (getitem): {what}: its field is unknown")
    return unknown(container, shape)


def pieces(node: Any, name: str, meta: Sequence[Any], tensors: list[Flow], notes: list[str]) -> Flow:
    """chunk, split, unbind: each piece keeps the input's positions, unless it was cut along an axis
    that holds them."""
    shapes = list(meta)
    if not tensors:
        return Flow(None, constant=True, items=[Flow(s, constant=True) for s in shapes])
    source = tensors[0]
    axis = node_argument(node, "dim", 2, 0) if name in ("chunk", "split", "tensor_split") else \
        node_argument(node, "dim", 1, 0)
    if source.shape is None or source.layout is None or not isinstance(axis, int):
        return Flow(None, items=[unknown(source, s) for s in shapes])
    axis %= len(source.shape)
    if positional(source.layout, [axis]):
        notes.append(f"{node.name} ({name}): splits along an axis of positions: its fields are unknown")
        return Flow(None, items=[unknown(source, s) for s in shapes])
    items = []
    for s in shapes:
        if name == "unbind":
            items.append(source.derive(s, layout=tuple(a for i, a in enumerate(source.layout) if i != axis)))
        else:
            items.append(source.derive(s, layout=tuple(((None, s[i], 0),) if i == axis else a
                                                       for i, a in enumerate(source.layout))))
    return Flow(None, items=items)


def view(source: Flow, shape: Shape) -> Flow:
    return reshaped(source, shape)


def patch_merging(source: Flow, shape: Shape) -> tuple[Flow, str | None]:
    """torchvision Swin's ``_patch_merging_pad`` (torchvision/models/swin_transformer.py, a function fx
    keeps whole): the (..., H, W, C) input padded on the right to even sizes, and its four 2x2 phases
    concatenated on the channels, so output (i, j) reads input (2i + a, 2j + b), a, b in {0, 1}: a window
    of 2 at stride 2 on each of the two axes before the channels."""
    if shape is None or source.shape is None or source.layout is None or len(source.shape) < 3:
        return unknown(source, shape), "patch merging on an unusual layout: its field is unknown"
    axes = source.axes
    rank = len(source.shape)
    spatial = [rank - 3, rank - 2]
    if any(a not in axes for a in spatial) or positional(source.layout, [rank - 1]):
        return unknown(source, shape), "patch merging on an unusual layout: its field is unknown"
    fields: list[Field] = list(source.fields)
    layout = list(source.layout)
    for a in spatial:
        d = axes[a]
        if isinstance(fields[d], PeriodicField):
            fields[d] = fields[d].through(Window.convolution(2, 2, 1, 0))  # type: ignore[union-attr]
        layout[a] = ((d, shape[a], 1),)
    layout[rank - 1] = ((None, shape[rank - 1], 0),)
    return source.derive(shape, fields, tuple(layout)), None
