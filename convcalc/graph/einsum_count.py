"""fvcore's count of an einsum, which it reads from numpy's ``einsum_path``: the one cost that needs numpy,
kept out of the pure core (docs/architecture.md) and loaded only when a traced model calls einsum."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

Shape = tuple[int, ...]


def fvcore_einsum(equation: str, shapes: Sequence[Shape | None]) -> int:
    """fvcore's ``einsum_flop_jit``: letters renamed a, b, c... in order of appearance; ``abc,abd->acd``
    and ``abc,adc->adb`` as the batched products they are; anything else numpy's ``einsum_path``
    "Optimized FLOP count" halved, as fvcore reads it from numpy's printout: to four significant figures."""
    equation = equation.replace(" ", "")
    order = dict.fromkeys(c for c in equation if c.isalpha())
    equation = equation.translate({ord(c): 97 + i for i, c in enumerate(order)})
    if any(s is None for s in shapes):
        return 0
    if equation == "abc,abd->acd":
        n, c, t = shapes[0]  # type: ignore[misc]
        return n * c * t * shapes[-1][-1]  # type: ignore[index]
    if equation == "abc,adc->adb":
        n, t, g = shapes[0]  # type: ignore[misc]
        return n * t * g * shapes[-1][1]  # type: ignore[index]
    operands = [np.broadcast_to(np.zeros(()), s) for s in shapes]  # shapes only: nothing allocated
    printout = np.einsum_path(equation, *operands, optimize="optimal")[1]
    for line in printout.split("\n"):
        if "optimized flop" in line.lower():
            return int(np.floor(float(line.split(":")[-1]) / 2))
    return 0
