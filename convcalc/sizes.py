"""Which input sizes a stack of layers (or a model) accepts, and the rule they follow
(docs/architecture.md, "Sizes a model accepts").

A size is accepted when every layer gives an output of at least 1 (``Layer.output_of`` raises
ShapeError where PyTorch raises). Each layer's answers are cached by input size: after a stride-s layer
only about 1/s as many distinct sizes reach the next one, so a 4,096-size sweep of a deep stack costs
little more than its first layers. The rule is found, not assumed: one run, or a periodic pattern
that holds over the whole range after its first accepted size, or else the runs listed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property

from .errors import ConvcalcError, ShapeError
from .layer import Layer, format_size
from .spec import format_layer

MAX_STACK_SIZES = 100_000  # sizes per `convcalc sizes` run
MAX_STACK_WORK = 1_000_000  # sizes x layers x distinct dimensions, before caching (about 2 s)
MAX_MODEL_SIZES = 4_096  # sizes per `inspect --sizes` sweep (each is a pass over the graph)
MAX_SIZE = 10**9


@dataclass(frozen=True)
class SizeResult:
    """One input size: the output it gives, or the first layer (node) that fails and why."""

    size: int
    out: tuple[int, ...] | None  # spatial output (stacks) or the whole output shape (models)
    node: str | None = None
    reason: str | None = None

    @property
    def ok(self) -> bool:
        return self.out is not None


@dataclass(frozen=True)
class SizeSweep:
    """Every size of a range, what each gives, and the rule the accepted ones follow."""

    low: int
    high: int
    results: tuple[SizeResult, ...]
    same_size: bool = False  # --same-size: only sizes whose output equals the input are wanted

    @cached_property
    def accepted(self) -> list[int]:
        return [r.size for r in self.results if r.ok]

    @cached_property
    def wanted(self) -> list[int]:
        """The accepted sizes, or under --same-size those whose output keeps the size."""
        if not self.same_size:
            return self.accepted
        return [r.size for r in self.results if r.ok and all(n == r.size for n in (r.out or ()))]

    @cached_property
    def rule(self) -> str:
        """The accepted sizes in words."""
        return size_rule(self.accepted, self.low, self.high)

    @cached_property
    def same_size_rule(self) -> str:
        return size_rule(self.wanted, self.low, self.high)


def parse_range(text: str, parameter: str = "size_range", limit: int = MAX_STACK_SIZES,
                label: str | None = None) -> tuple[int, int]:
    """``A..B`` (inclusive; ``A-B`` too), at least 1, at most ``limit`` sizes. Errors name ``parameter``
    (each front end words it: the CLI as its flag), or ``label`` where the text is not a parameter."""
    def error(message: str) -> ConvcalcError:
        if label is not None:
            return ConvcalcError(f"{label} {text!r}{message}")
        return ConvcalcError(f"{{{parameter}}} {text!r}{message}", parameters=(parameter,))

    separator = ".." if ".." in text else "-" if "-" in text.strip()[1:] else None
    parts = text.split(separator, 1) if separator else []
    if len(parts) != 2 or not all(p.strip().isdigit() for p in parts):
        raise error(": expected a range of sizes such as 1..512")
    low, high = (int(p) for p in parts)
    if low < 1 or high < low:
        raise error(": expected 1 <= A <= B in A..B")
    if high > MAX_SIZE:
        raise error(f": sizes go up to {MAX_SIZE:,} here")
    if high - low + 1 > limit:
        raise error(f" holds {high - low + 1:,} sizes; at most {limit:,} per run")
    return low, high


def stack_sizes(layers: Sequence[Layer], low: int, high: int, dims: int, same_size: bool = False) -> SizeSweep:
    """Each square size ``n`` (``n`` along every dimension) in ``low..high`` through the stack. Where
    every layer is the same along every dimension, one dimension is computed for all."""
    alike = all(layer.along(d) == layer.along(0) for layer in layers for d in range(dims))
    distinct = 1 if alike else dims
    if (high - low + 1) * max(len(layers), 1) * distinct > MAX_STACK_WORK:
        raise ConvcalcError(f"{high - low + 1:,} sizes through {len(layers):,} layers"
                            f"{'' if alike else f' in {dims} different dimensions'} is beyond {MAX_STACK_WORK:,} "
                            f"layer evaluations; narrow {{size_range}}", parameters=("size_range",))
    for index, layer in enumerate(layers):
        try:
            layer.check()
        except ShapeError as exc:
            raise ConvcalcError(f"layer {index + 1} ({layer.torch_name}) is refused on every input: {exc}") from None
    caches: list[dict[tuple[int, int], int | ShapeError]] = [{} for _ in layers]
    results = []
    for n in range(low, high + 1):
        result = _through(layers, caches, n, distinct)
        if alike and result.out is not None:
            result = SizeResult(n, result.out * dims)
        results.append(result)
    return SizeSweep(low, high, tuple(results), same_size)


def _through(layers: Sequence[Layer], caches: list[dict[tuple[int, int], int | ShapeError]], n: int, dims: int
             ) -> SizeResult:
    out = []
    for d in range(dims):
        size = n
        for index, (layer, cache) in enumerate(zip(layers, caches)):
            answer = cache.get((d, size))
            if answer is None:
                try:
                    answer = layer.output_dim(d, size)
                except ShapeError as exc:
                    answer = exc
                cache[(d, size)] = answer
            if isinstance(answer, ShapeError):
                return SizeResult(n, None, f"layer {index + 1} ({format_layer(layer)})",
                                  f"{layer.torch_name}: {answer}")
            size = answer
        out.append(size)
    return SizeResult(n, tuple(out))


def size_rule(sizes: Sequence[int], low: int, high: int) -> str:
    """The accepted sizes of ``low..high`` in words: ``none``, ``all``, ``32..35``, ``multiples of 16
    from 16``, ``sizes = 1 mod 8 from 9``, else the runs (the first 8, then how many more)."""
    if not sizes:
        return "none"
    if len(sizes) == high - low + 1:
        return f"all of {low}..{high}"
    runs = _runs(sizes)
    if len(runs) == 1:
        first, last = runs[0]
        return f"{first}..{last}" if first != last else str(first)
    for skipped in range(min(4, len(runs) - 1)):  # a pattern may start after a few small exceptions
        periodic = _periodic([n for n in sizes if n >= runs[skipped][0]], high)
        if periodic is not None:
            before = ", ".join(f"{a}..{b}" if a != b else str(a) for a, b in runs[:skipped])
            return periodic + (f", and {before}" if before else "")
    shown = ", ".join(f"{a}..{b}" if a != b else str(a) for a, b in runs[:8])
    return shown + (f" and {len(runs) - 8:,} more runs" if len(runs) > 8 else "")


def _runs(sizes: Sequence[int]) -> list[tuple[int, int]]:
    runs: list[tuple[int, int]] = []
    for n in sizes:
        if runs and runs[-1][1] == n - 1:
            runs[-1] = (runs[-1][0], n)
        else:
            runs.append((n, n))
    return runs


def _periodic(sizes: Sequence[int], high: int) -> str | None:
    """The smallest period p such that, from the first accepted size to ``high``, a size is accepted
    exactly when its residue mod p is, with at least two whole periods seen. The smallest period of the
    accept/reject string is its length minus its longest proper border (the KMP prefix function)."""
    start = sizes[0]
    accepted = set(sizes)
    bits = [n in accepted for n in range(start, high + 1)]
    border = [0] * len(bits)
    for i in range(1, len(bits)):
        k = border[i - 1]
        while k and bits[i] != bits[k]:
            k = border[k - 1]
        border[i] = k + (bits[i] == bits[k])
    period = len(bits) - border[-1]
    if period < 2 or 2 * period > len(bits):
        return None
    residues = sorted({n % period for n in range(start, start + period) if n in accepted})
    if residues == [0]:
        return f"multiples of {period} from {start}"
    return f"sizes = {', '.join(map(str, residues))} mod {period} from {start}"


def nearest_sizes(accepted: Sequence[int], size: int) -> tuple[int | None, int | None]:
    """The accepted sizes nearest below and above ``size``."""
    below = max((n for n in accepted if n < size), default=None)
    above = min((n for n in accepted if n > size), default=None)
    return below, above


def describe_shape(shape: Sequence[int]) -> str:
    return format_size(tuple(shape))
