"""ASPP branches: how many of an atrous filter's taps land on the feature map rather than on padding.

Chen et al. 2017, "Rethinking Atrous Convolution for Semantic Image Segmentation" (DeepLabv3),
section 3.3 and Figure 4: as the rate grows, fewer filter weights are applied to the valid feature
region; when the rate nears the map size a 3x3 filter degenerates to its centre, a 1x1 filter.

Each branch is a k x k convolution with dilation r and padding r*(k-1)/2 (padding = rate for k = 3),
so it keeps the size. Along one dimension of size n, output o reads input ``o + (t - c) * r`` for taps
t = 0..k-1 (c = (k-1)/2, the centre), so tap t lands on the map for ``n - |t - c| * r`` outputs (when
positive). Taps of a k x k filter are pairs, so shares over the map multiply across dimensions.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction

from .errors import ConvcalcError
from .gridding import check_rates
from .layer import Layer, effective_kernel_size

MAX_ASPP_RATES = 64


@dataclass(frozen=True)
class Branch:
    """One atrous branch on one feature map: every share is exact, over all output positions."""

    rate: int
    kernel_size: int
    layer: Layer
    in_size: tuple[int, ...]
    out: tuple[int, ...]
    all_taps_valid: Fraction
    only_center_valid: Fraction
    valid_weights: Fraction

    @property
    def padding(self) -> int:
        return self.layer.pads[0][0]

    @property
    def receptive_field(self) -> int:
        return effective_kernel_size(self.kernel_size, self.rate)

    @property
    def degenerate(self) -> bool:
        """Every output sees only the centre tap: the branch is, in effect, a 1x1 convolution."""
        return self.only_center_valid == 1 and self.kernel_size > 1


def branch(rate: int, in_size: Sequence[int], kernel_size: int = 3) -> Branch:
    """The branch of rate ``rate`` on a map of ``in_size``, shares counted in closed form."""
    dims = len(in_size)
    layer = Layer.build(kernel_size, 1, rate * (kernel_size - 1) // 2, rate, dims=dims)
    out = layer.output_size(tuple(in_size))
    all_valid = only_center = weights = Fraction(1)
    for n in in_size:
        valid = [max(0, n - abs(t - (kernel_size - 1) // 2) * rate) for t in range(kernel_size)]
        # Every tap on the map: rate * (k - 1) // 2 <= o <= n - 1 - rate * (k - 1) // 2.
        all_valid *= Fraction(max(0, n - (kernel_size - 1) * rate), n)
        # Only the centre: both neighbours of the centre fall off the map, o < r and o > n - 1 - r.
        only_center *= Fraction(max(0, min(n, rate) - max(0, n - rate)), n) if kernel_size > 1 else 1
        weights *= Fraction(sum(valid), kernel_size * n)
    return Branch(rate, kernel_size, layer, tuple(in_size), out, all_valid, only_center, weights)


def aspp(in_size: Sequence[int], rates: Sequence[int], kernel_size: int = 3) -> tuple[Branch, ...]:
    """Every branch of an ASPP block (DeepLabv3 uses rates 6, 12, 18 at output stride 16)."""
    if kernel_size % 2 == 0:
        raise ConvcalcError(f"ASPP branches use odd kernels (padding = rate*(k-1)/2 keeps the size); "
                            f"got kernel_size {kernel_size}")
    check_rates(rates, kernel_size)
    if len(rates) > MAX_ASPP_RATES:
        raise ConvcalcError(f"{len(rates)} branches given; an ASPP block here has at most {MAX_ASPP_RATES}")
    if not in_size or any(isinstance(n, bool) or not isinstance(n, int) or n < 1 for n in in_size):
        raise ConvcalcError(f"the feature map size must be positive integers, got {tuple(in_size)}")
    return tuple(branch(rate, in_size, kernel_size) for rate in rates)
