"""Which layers map an input size to an output size (``convcalc solve``): every one, within bounds.

Per dimension, for input ``n`` and output ``m`` (docs/architecture.md, "Shape rules"; e = d*(k-1) + 1):

- conv: every kernel, stride and dilation within the bounds, and every (left, right) padding in
  ``0..e-1`` each (a larger pad puts a whole window in the padding; a padding the user fixes is taken
  as given) with
  ``floor((n + left + right - e) / s) + 1 = m``: the total ``T = left + right`` must lie in
  ``[(m-1)*s + e - n, (m-1)*s + e - n + s - 1]`` and be at least ``e - n``. Unequal pads are
  ``F.pad`` then the conv with padding 0.
- conv_transpose: symmetric padding ``p`` in ``0..e-1`` and ``output_padding`` below the stride or the
  dilation (torch's rule), ``(n-1)*s - 2p + e + output_padding = m``.
- max / avg pool: symmetric padding ``p <= k // 2`` (torch's limit), ceil_mode off and on, through
  Pool.h's formula; avg pooling has no dilation; AvgPool3d rejects an input below the kernel.
- ``convention="tf"``: conv and pools with TensorFlow's 'SAME' (``ceil(n / s)``) or 'VALID'
  (``floor((n - e) / s) + 1``) padding instead.

Each distinct layer is its own solution (k=1 with dilation 2 is not k=1 with dilation 1; a pool with
ceil_mode on is not the same pool with it off). Several dimensions: equal sizes give square layers;
unequal ones combine the solutions of each dimension that share the op, ceil_mode and the kernel size,
stride and dilation not given per dimension (one kernel shape, padding per dimension, as people write
layers; ``-k 1x7`` asks for a non-square kernel). tests compare the solution sets with brute force
through :meth:`Layer.output_size`, both ways.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from .errors import ConvcalcError
from .layer import POOLS, Layer, format_size, lazy, pooled_size
from .padding import tf_same_padding
from .snippets import layer_code, pad_code

OPS = ("conv", "conv_transpose", "max_pool", "avg_pool")
MAX_BOUND = 16  # largest --max-kernel, --max-stride, --max-dilation (and fixed values)
MAX_SIZE = 10**9
MAX_SOLUTIONS = 50_000  # more are refused up front, with the reason: JSON lists every solution


@dataclass(frozen=True)
class Bounds:
    """The search's maxima: kernel size, stride and dilation, each from 1."""

    kernel_size: int = 7
    stride: int = 4
    dilation: int = 4


@dataclass(frozen=True, order=True)
class Option:
    """One layer along one dimension."""

    op: str
    kernel_size: int
    stride: int
    dilation: int
    pads: tuple[int, int]
    output_padding: int = 0
    ceil_mode: bool = False
    tf: str = ""  # 'same' or 'valid' under the tf convention


@dataclass(frozen=True)
class Solution:
    """A layer that maps the input to the output, and how to write it in torch."""

    options: tuple[Option, ...]  # one per dimension
    in_size: tuple[int, ...]

    @lazy
    def layer(self) -> Layer:
        return _layer(self.options)

    @property
    def symmetric(self) -> bool:
        return all(o.pads[0] == o.pads[1] for o in self.options)

    @property
    def torch(self) -> str:
        return layer_code(self.layer, self.in_size)

    @property
    def pad(self) -> str | None:
        return pad_code(self.layer, self.in_size)

    @property
    def scales(self) -> bool:
        """A transposed convolution whose output is ``stride x input`` for every input size, not for this
        one only: ``(in - 1)*s - 2p + e + output_padding = s*in`` exactly when ``e + output_padding = s + 2p``."""
        return all(o.op == "conv_transpose" and o.dilation * (o.kernel_size - 1) + 1 + o.output_padding ==
                   o.stride + 2 * o.pads[0] for o in self.options)

    @property
    def leaves_gaps(self) -> bool:
        """A transposed convolution some of whose output positions no input reaches (even away from the
        borders): its taps ``t*d`` (t < k) miss a residue modulo the stride, so those positions get only
        the bias (k=1 with stride 2, say)."""
        return any(o.op == "conv_transpose" and len({t * o.dilation % o.stride for t in range(o.kernel_size)})
                   < o.stride for o in self.options)

    @lazy
    def rank(self) -> tuple[object, ...]:
        """Within an op (:func:`op_order` ranks the ops): transposed convolutions that scale every input
        size before those that fit this size only, and those that reach every output position before
        those that leave gaps; then symmetric padding first, fewer taps, dilation 1, smaller stride,
        smaller padding, output_padding 0 (then ceil_mode, for a fixed order)."""
        o = self.options
        return (not self.scales, self.leaves_gaps, not self.symmetric, math.prod(x.kernel_size for x in o),
                any(x.dilation != 1 for x in o), sum(x.stride for x in o), sum(sum(x.pads) for x in o),
                any(x.output_padding for x in o), o[0].ceil_mode, o)


@dataclass(frozen=True)
class SolveResult:
    in_size: tuple[int, ...]
    out_size: tuple[int, ...]
    op: str | None
    bounds: Bounds
    convention: str
    count: int
    solutions: tuple[Solution, ...]  # best first; all of them up to MAX_LISTED
    reason: str | None = None  # why none fits


Fixed = tuple[int, ...] | int | None


def solve(in_size: tuple[int, ...], out_size: tuple[int, ...], op: str | None = None,
          kernel_size: Fixed = None, stride: Fixed = None, dilation: Fixed = None, padding: Fixed = None,
          bounds: Bounds = Bounds(), convention: str = "torch") -> SolveResult:
    """Every layer (of ``op``, or of any op) mapping ``in_size`` to ``out_size``, the given values fixed
    (a scalar, or one value per dimension) and the others searched within ``bounds``; ranked (see
    :attr:`Solution.rank`)."""
    dims = len(in_size)
    fixed = {name: _per_dim(name, value, dims) for name, value in
             (("kernel_size", kernel_size), ("stride", stride), ("dilation", dilation), ("padding", padding))}
    _check(in_size, out_size, op, fixed, bounds, convention)
    ops = (op,) if op is not None else tuple(o for o in OPS if convention == "torch" or o != "conv_transpose")
    per_dim = []
    for i, (n, m) in enumerate(zip(in_size, out_size)):
        found = itertools.islice(options_1d(n, m, ops, {k: v[i] if v else None for k, v in fixed.items()}, bounds,
                                            convention, dims), MAX_SOLUTIONS + 1)
        per_dim.append(_at_most(list(found), f"dimension {i + 1} alone"))
    shared = [name for name in ("kernel_size", "stride", "dilation") if fixed[name] is None]
    square = len(set(zip(in_size, out_size))) == 1 and all(len(set(v)) == 1 for v in fixed.values() if v)
    solutions = [Solution(combo, in_size) for combo in _combinations(per_dim, square, shared)
                 if not (combo[0].tf == "same" and all(o.pads == (0, 0) for o in combo))]
    order = op_order(in_size, out_size)
    solutions.sort(key=lambda s: (order.index(s.options[0].op), s.rank))
    reason = None if solutions else _why_none(in_size, out_size, ops, fixed, bounds, convention)
    return SolveResult(in_size, out_size, op, bounds, convention, len(solutions), tuple(solutions), reason)


def op_order(in_size: tuple[int, ...], out_size: tuple[int, ...]) -> tuple[str, ...]:
    """The ops in the order their layers are listed: transposed convolutions first where the output is
    larger than the input (what people enlarge with), else convolutions first; pools last."""
    if any(m > n for n, m in zip(in_size, out_size)):
        return ("conv_transpose", "conv", "max_pool", "avg_pool")
    return ("conv", "conv_transpose", "max_pool", "avg_pool")


def _at_most(items: list[Any], where: str) -> list[Any]:
    if len(items) > MAX_SOLUTIONS:
        raise ConvcalcError(f"more than {MAX_SOLUTIONS:,} layers fit ({where}): fix {{kernel_size}}, {{stride}} or "
                            f"{{dilation}}, choose {{op}}, or lower the bounds", parameters=(
                                "kernel_size", "stride", "dilation", "op"))
    return items


def _per_dim(name: str, value: Fixed, dims: int) -> tuple[int, ...] | None:
    if value is None:
        return None
    values = value if isinstance(value, tuple) else (value,) * dims
    if len(values) != dims:
        raise ConvcalcError(f"{{{name}}} has {len(values)} dimensions, the sizes have {dims}", parameters=(name,))
    return values


def _check(in_size: tuple[int, ...], out_size: tuple[int, ...], op: str | None,
           fixed: dict[str, tuple[int, ...] | None], bounds: Bounds, convention: str) -> None:
    if len(in_size) != len(out_size):
        raise ConvcalcError(f"{{in_size}} has {len(in_size)} dimensions, {{out_size}} has {len(out_size)}",
                            parameters=("in_size", "out_size"))
    for name, values in (("in_size", in_size), ("out_size", out_size)):
        if any(not 1 <= v <= MAX_SIZE for v in values):
            raise ConvcalcError(f"{{{name}}} must be from 1 to {MAX_SIZE:,} per dimension, got "
                                f"{format_size(values)}", parameters=(name,))
    if op is not None and op not in OPS:
        raise ConvcalcError(f"unknown op {op!r}: expected one of {', '.join(OPS)}")
    values = [("max_kernel", bounds.kernel_size), ("max_stride", bounds.stride), ("max_dilation", bounds.dilation)]
    values += [(name, v) for name in ("kernel_size", "stride", "dilation") for v in fixed[name] or ()]
    for name, value in values:
        if not 1 <= value <= MAX_BOUND:
            raise ConvcalcError(f"{{{name}}} must be from 1 to {MAX_BOUND}, got {value}", parameters=(name,))
    if any(not 0 <= p <= MAX_BOUND for p in fixed["padding"] or ()):
        raise ConvcalcError(f"{{padding}} must be from 0 to {MAX_BOUND} per dimension", parameters=("padding",))
    padding, dilation = fixed["padding"], fixed["dilation"]
    if convention not in ("torch", "tf"):
        raise ConvcalcError(f"convention must be 'torch' or 'tf', got {convention!r}")
    if convention == "tf" and op == "conv_transpose":
        raise ConvcalcError("the tf convention solves conv and pools ('SAME' or 'VALID'); transposed "
                            "convolutions are solved under the torch convention")
    if convention == "tf" and padding is not None:
        raise ConvcalcError("the tf convention pads 'SAME' or 'VALID': a fixed {padding} does not apply",
                            parameters=("padding",))
    if op == "avg_pool" and dilation is not None and set(dilation) != {1}:
        raise ConvcalcError("avg_pool has no dilation")


def options_1d(n: int, m: int, ops: tuple[str, ...], fixed: dict[str, int | None], bounds: Bounds,
               convention: str = "torch", dims: int = 2) -> Iterator[Option]:
    """Every layer along one dimension mapping ``n`` to ``m`` (the module docstring gives the rules)."""
    for op in ops:
        kernels = [fixed["kernel_size"]] if fixed["kernel_size"] else range(1, bounds.kernel_size + 1)
        strides = [fixed["stride"]] if fixed["stride"] else range(1, bounds.stride + 1)
        dilations = [1] if op == "avg_pool" else [fixed["dilation"]] if fixed["dilation"] else \
            range(1, bounds.dilation + 1)
        for k, s, d in itertools.product(kernels, strides, dilations):
            e = d * (k - 1) + 1
            if convention == "tf":
                valid = n >= e and (n - e) // s + 1 == m
                if -(-n // s) == m:  # (a SAME layer that pads no dimension is dropped later: it is VALID)
                    yield Option(op, k, s, d, tf_same_padding(n, k, s, d), tf="same")
                if valid:
                    yield Option(op, k, s, d, (0, 0), tf="valid")
                continue
            p = fixed["padding"]
            if op == "conv":
                if p is not None:  # a padding the user fixes is taken as given
                    if n + 2 * p >= e and (n + 2 * p - e) // s + 1 == m:
                        yield Option(op, k, s, d, (p, p))
                    continue
                low = max((m - 1) * s + e - n, e - n, 0)
                high = min((m - 1) * s + e - n + s - 1, 2 * (e - 1))
                for total in range(low, high + 1):
                    for left in range(max(0, total - (e - 1)), min(e - 1, total) + 1):
                        yield Option(op, k, s, d, (left, total - left))
            elif op == "conv_transpose":
                for pad in ([p] if p is not None else range(e)):
                    for extra in range(max(s, d)):
                        if (n - 1) * s - 2 * pad + e + extra == m >= 1:
                            yield Option(op, k, s, d, (pad, pad), extra)
            else:
                for pad in ([p] if p is not None else range(k // 2 + 1)):
                    if pad > k // 2:
                        continue
                    for ceil in (False, True):
                        if op == "avg_pool" and dims == 3 and n < k:
                            continue  # AvgPool3d checks the unpadded input (Pool.h)
                        if pooled_size(n, k, pad, s, d, ceil) == m:
                            yield Option(op, k, s, d, (pad, pad), ceil_mode=ceil)


def _combinations(per_dim: list[list[Option]], square: bool, shared: list[str]) -> Iterator[tuple[Option, ...]]:
    """Square layers from one dimension's options, or the options of each dimension that agree on
    the op, ceil_mode, tf padding and the ``shared`` values (those not fixed per dimension)."""
    if square:
        for option in per_dim[0]:
            yield (option,) * len(per_dim)
        return

    def key(o: Option) -> tuple[object, ...]:
        return (o.op, o.ceil_mode, o.tf, *(getattr(o, name) for name in shared))

    groups: list[dict[tuple[object, ...], list[Option]]] = []
    for options in per_dim:
        grouped: dict[tuple[object, ...], list[Option]] = {}
        for o in options:
            grouped.setdefault(key(o), []).append(o)
        groups.append(grouped)
    shared_keys = [common for common in groups[0] if all(common in g for g in groups[1:])]
    _at_most([None] * min(sum(math.prod(len(g[c]) for g in groups) for c in shared_keys), MAX_SOLUTIONS + 1),
             "combining the dimensions")
    for common in shared_keys:
        yield from itertools.product(*(g[common] for g in groups))


def _layer(combo: tuple[Option, ...]) -> Layer:
    first = combo[0]
    n = len(combo)
    common = dict(op=first.op, dims=n, ceil_mode=first.ceil_mode)
    kernel = tuple(o.kernel_size for o in combo)
    stride = tuple(o.stride for o in combo)
    dilation = tuple(o.dilation for o in combo)
    if first.tf:
        return Layer.build(kernel, stride, first.tf, dilation, convention="tf", **common)
    if all(o.pads[0] == o.pads[1] for o in combo):
        padding: object = tuple(o.pads[0] for o in combo)
    else:
        padding = tuple(o.pads for o in combo)
    return Layer.build(kernel, stride, padding, dilation, output_padding=tuple(o.output_padding for o in combo),
                       **common)


def _why_none(in_size: tuple[int, ...], out_size: tuple[int, ...], ops: tuple[str, ...],
              fixed: dict[str, tuple[int, ...] | None], bounds: Bounds, convention: str) -> str:
    words = {"conv": "conv", "conv_transpose": "transposed conv", "max_pool": "max pool", "avg_pool": "avg pool"}
    given = [f"{name.replace('_size', '')} {format_size(value)}" for name, value in fixed.items() if value is not None]
    what = " or ".join(words[o] for o in ops)
    if given:
        what = f"{what} with {', '.join(given)}"
    sizes = f"{format_size(in_size)} to {format_size(out_size)}"
    limits = (f"kernel <= {bounds.kernel_size}, stride <= {bounds.stride}, dilation <= {bounds.dilation}"
              f"{', tf padding' if convention == 'tf' else ''}")
    hint = ""
    if all(o in POOLS for o in ops) and any(m > n + 1 for n, m in zip(in_size, out_size)):
        hint = "; pooling grows a size by at most 1: use tconv to enlarge"
    elif ops == ("conv",) and any(m > n for n, m in zip(in_size, out_size)) and fixed["padding"] is None:
        hint = ("; searching pads up to e - 1 per side, a conv grows a size by at most e - 1: fix a larger "
                "padding with -p, or use tconv to enlarge")
    elif ops == ("conv_transpose",) and any(m < n for n, m in zip(in_size, out_size)):
        hint = "; a transposed conv does not shrink a size within these bounds: use conv or pooling"
    return f"no {what} within the bounds ({limits}) maps {sizes}{hint}"
