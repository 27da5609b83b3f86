"""Contractions: linear layers, matrix products, einsum and attention, read as einsum equations over the
operands' layouts (docs/inspect.md, "Fields"). Pure Python.

An output value reads, from each operand, the values that agree with it on the letters they share and run
over the letters the output drops (the contracted ones). So each operand adds its field mixed over its
contracted axes (graph/fields.py :func:`~convcalc.graph.fields.mixed`), and the output's field is the union
of those. An output axis takes its positions from the first operand that holds positions on that letter.
Where two output axes would hold the same dimension (``q @ k^T``: the query's tokens on one axis, the
keys' on the other), the later one is mixed at once: a row of attention scores sees the union over its
keys, which is what the softmax and ``@ v`` that follow it make of it.

Attention is the same rule: ``scaled_dot_product_attention(q, k, v)`` is ``q:...ld, k:...sd, v:...se ->
...le``; ``nn.MultiheadAttention`` the same over its sequence axes; torchvision's
``shifted_window_attention`` the union over the (shifted) window that holds each position.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from ..periodic import PeriodicField, Window
from .fields import (
    GLOBAL,
    NONE,
    Field,
    Flow,
    NodeKind,
    mixed,
    node_argument,
    union,
    unknown,
)
from .layout import dims_of, mixed_factors

Shape = tuple[int, ...] | None
Operand = tuple[Flow | None, str]  # the operand's flow (None: a constant) and its axes' letters


def einsum(operands: Sequence[Operand], output: str, shape: Shape) -> tuple[Flow | None, bool, str | None]:
    """The output flow of ``operands -> output`` (None where no operand holds positions), whether any
    positions were mixed, and a note where the operands disagree on which positions an axis holds."""
    flows = [(flow, letters) for flow, letters in operands
             if flow is not None and flow.spatial() and flow.layout is not None and len(flow.layout) == len(letters)]
    if not flows:
        return None, False, None
    base = flows[0][0]
    if shape is None:
        return unknown(base, shape), False, None
    held: dict[str, tuple] = {}  # letter -> the factors of the first operand holding positions on it
    for flow, letters in flows:
        for letter, axis in zip(letters, flow.layout):  # type: ignore[arg-type]
            if any(f[0] is not None and f[1] > 1 for f in axis):
                if letter in held and held[letter] != axis and letter in output:
                    return unknown(base, shape), False, "its operands hold different positions on one axis"
                held.setdefault(letter, axis)
    seen: list[tuple] = []
    doubled = set()  # output letters whose positions repeat ones an earlier output axis holds
    for letter in output:
        factors = [f for f in held.get(letter, ()) if f[0] is not None and f[1] > 1]
        if any(_overlap(f, g) for f in factors for g in seen):
            doubled.add(letter)
        seen += factors
    fields: list[list[Field]] = []
    mixing = False
    for flow, letters in flows:
        axes = [a for a, letter in enumerate(letters) if letter not in output or letter in doubled]
        if mixed_factors(flow.layout, axes):  # type: ignore[arg-type]
            mixing = True
        fields.append(mixed(flow, axes, None).fields if axes else list(flow.fields))
    layout: list[tuple] = []
    for letter, n in zip(output, shape):
        axis = held.get(letter) if letter not in doubled else None
        layout.append(axis if axis is not None and math.prod(f[1] for f in axis) == n else ((None, n, 0),))
    out = base.derive(shape, union(fields, base.local), tuple(layout))
    return out, mixing, None


def _overlap(f: tuple, g: tuple) -> bool:
    """Whether two factors hold some of the same digits of a dimension (a window's token axis and the
    axis of windows hold different digits; a query's and a key's token axes the same)."""
    if not set(dims_of(f)) & set(dims_of(g)):
        return False
    if f[2] == 0 or g[2] == 0:  # scattered: somewhere on the axis
        return True
    return f[2] < g[2] * g[1] and g[2] < f[2] * f[1]


def matmul_letters(left: int, right: int) -> tuple[str, str, str]:
    """``torch.matmul``'s broadcasting as einsum letters, for operands of ranks ``left`` and ``right``."""
    if left == 1 and right == 1:
        return "k", "k", ""
    batch = "abcdefgh"[:max(left, right) - 2] if max(left, right) > 2 else ""
    a = "k" if left == 1 else batch[len(batch) - (left - 2):] + "ik"
    b = "k" if right == 1 else batch[len(batch) - (right - 2):] + "kj"
    out = batch + ("i" if left > 1 else "") + ("j" if right > 1 else "")
    return a, b, out


def einsum_equation(equation: str, ranks: Sequence[int]) -> tuple[list[str], str] | None:
    """An einsum equation's operand and output letters, ``...`` spelled out (None where it cannot be read)."""
    equation = equation.replace(" ", "")
    inputs, arrow, output = equation.partition("->")
    terms = inputs.split(",")
    if len(terms) != len(ranks):
        return None
    spare = iter("ABCDEFGHIJKLMNOPQRSTUVWXYZ")
    ellipsis = ""
    spelled = []
    for term, rank in zip(terms, ranks):
        if "..." in term:
            count = rank - (len(term) - 3)
            while len(ellipsis) < count:
                ellipsis = next(spare) + ellipsis
            term = term.replace("...", ellipsis[len(ellipsis) - count:] if count else "")
        if len(term) != rank:
            return None
        spelled.append(term)
    if not arrow:
        counts = {c: sum(t.count(c) for t in spelled) for t in spelled for c in t}
        output = ellipsis + "".join(sorted(c for c, n in counts.items() if n == 1 and c not in ellipsis))
    else:
        output = output.replace("...", ellipsis)
    return spelled, output


def attention(query: Flow | None, key: Flow | None, value: Flow | None, ranks: tuple[int, int, int],
              shape: Shape) -> Flow | None:
    """``softmax(q k^T) v``: each query position sees its own field and every key's and value's along the
    sequence axis (the one before the last)."""
    batch = "abcdefgh"[:max(ranks) - 2]
    letters = [batch[len(batch) - (r - 2):] + pair for r, pair in zip(ranks, ("ld", "sd", "se"))]
    out, _, _ = einsum([(query, letters[0]), (key, letters[1]), (value, letters[2])], batch + "le", shape)
    return out


def multihead_attention(module: Any, node: Any, flows: dict[str, Flow], shapes: dict[str, Shape],
                        shape: Any) -> tuple[NodeKind, Flow, str | None]:
    """``nn.MultiheadAttention``: (L, N, E) or, with ``batch_first``, (N, L, E); a tuple (output, weights)."""
    names = ("query", "key", "value")
    args = [node_argument(node, name, i, None) for i, name in enumerate(names)]
    operand_flows = [flows.get(a.name) if hasattr(a, "name") else None for a in args]
    first = next((f for f in operand_flows if f is not None and f.spatial()), None)
    out_shape = shape[0] if isinstance(shape, list) and shape else None
    weights_shape = shape[1] if isinstance(shape, list) and len(shape) > 1 else None
    items: list[Flow] = []
    if first is None:
        return NodeKind.ATTENTION, Flow(None, constant=True), None
    sequence = ("nld", "nsd", "nse") if getattr(module, "batch_first", False) else ("lnd", "snd", "sne")
    ranks = [len(shapes.get(a.name) or ()) if hasattr(a, "name") else 0 for a in args]
    if ranks != [3, 3, 3]:
        out = unknown(first, out_shape)
        note: str | None = "unbatched attention: its field is unknown"
    else:
        result, _, note = einsum(list(zip(operand_flows, sequence)), sequence[0][:2] + "e", out_shape)
        out = result or unknown(first, out_shape)
    items.append(out)
    items.append(unknown(first, weights_shape) if weights_shape is not None else Flow(None, constant=True))
    return NodeKind.ATTENTION, Flow(None, items=items), note


def window_attention(node: Any, source: Flow, shape: Shape) -> tuple[Flow, str | None]:
    """torchvision's ``shifted_window_attention(input, ..., window_size, num_heads, shift_size, ...)`` on
    (B, H, W, C): a position sees the union over the window that holds it, windows tiling the map from
    ``shift_size`` on (torchvision rolls the map by -shift, partitions it, and masks the windows that wrap
    around, so the last windows are smaller; the field is that of the inner windows). A window as large as
    the padded map is not shifted (torchvision's own rule) and sees all of it."""
    window_size = node_argument(node, "window_size", 4, None)
    shift_size = node_argument(node, "shift_size", 6, None)
    if source.shape is None or shape is None or len(source.shape) != 4 or window_size is None or shift_size is None:
        return unknown(source, shape), "window attention on an unusual layout: its field is unknown"
    axes = source.axes
    if axes.get(1) != 0 or axes.get(2) != 1 or len(source.fields) != 2:
        return unknown(source, shape), "window attention on an unusual layout: its field is unknown"
    fields: list[Field] = []
    for d in range(2):
        size, ws = source.shape[1 + d], int(window_size[d])
        padded = size + (ws - size % ws) % ws
        shift = 0 if ws >= padded else int(shift_size[d])
        f = source.fields[d]
        if ws >= padded:
            fields.append(NONE if source.local else GLOBAL)
        elif isinstance(f, PeriodicField):
            fields.append(f.through(_shifted_window(ws, shift)))
        else:
            fields.append(f)
    return source.derive(shape, fields), None


def _shifted_window(size: int, shift: int) -> Window:
    """Windows of ``size`` positions starting at ``shift`` (mod size): position r reads its whole window."""
    return Window.from_function(size, size, lambda r: [((r - shift) // size) * size + shift + t for t in range(size)])


def linear_letters(rank: int) -> tuple[str, str]:
    """``F.linear(x, W)``: x's last axis contracted, a new last axis of outputs."""
    batch = "abcdefgh"[:rank - 1]
    return batch + "k", batch + "j"
