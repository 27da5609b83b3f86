"""Padding rules beyond symmetric integers: 'same' (PyTorch and TensorFlow), causal, explicit pairs,
and the extra input checks of PyTorch's padding modes (docs/architecture.md, "Shape rules").

Sources (docs/references.md): ``torch/nn/modules/conv.py`` ('same' pads ``d*(k-1)`` with the odd
element on the right; ``padding_mode`` goes through ``F.pad``); TensorFlow's ``get_pad_shape`` and
google-research/receptive_field ``_get_padding`` ('SAME': ``out = ceil(in / s)``, total padding
``max((out - 1)*s + e - in, 0)``, the extra element on the right); WaveNet section 2.1 (causal: all
``d*(k-1)`` on the left).
"""

from __future__ import annotations

from .errors import ConvcalcError, ShapeError

PADDING_STRINGS = ("same", "valid", "causal")
PADDING_MODES = ("zeros", "reflect", "replicate", "circular")
CONVENTIONS = ("torch", "tf")
CONVENTION_NAMES = {"torch": "torch", "pytorch": "torch", "tf": "tf", "tensorflow": "tf", "keras": "tf", "jax": "tf"}


def convention_named(name: str) -> str:
    """``torch`` or ``tf`` for a convention's name: TensorFlow, Keras and JAX share TensorFlow's SAME."""
    try:
        return CONVENTION_NAMES[name.strip().lower()]
    except (KeyError, AttributeError):
        raise ConvcalcError(f"unknown convention {name!r}: expected torch, or tf (also tensorflow, keras or jax: "
                            f"they share TensorFlow's SAME)") from None


def same_padding(kernel_size: int, dilation: int) -> tuple[int, int]:
    """``padding='same'`` at stride 1: ``d*(k-1)`` in total, the odd element on the right
    (torch/nn/modules/conv.py, ``_conv_forward``)."""
    total = dilation * (kernel_size - 1)
    return total // 2, total - total // 2


def tf_same_padding(size: int, kernel_size: int, stride: int, dilation: int) -> tuple[int, int]:
    """TensorFlow 'SAME' on an input of ``size``: ``out = ceil(size / s)``; the total padding
    ``max((out - 1)*s + e - size, 0)``, ``total // 2`` left and the rest right."""
    out = -(-size // stride)
    total = max((out - 1) * stride + dilation * (kernel_size - 1) + 1 - size, 0)
    return total // 2, total - total // 2


def causal_padding(kernel_size: int, dilation: int) -> tuple[int, int]:
    """Causal: ``d*(k-1)`` on the left, none on the right, so output t sees inputs up to t only."""
    return dilation * (kernel_size - 1), 0


def check_padding_mode(mode: str, size: int, pads: tuple[int, int], dim: int) -> None:
    """PyTorch's extra rejections when ``F.pad`` pads with ``mode`` (eager CPU's wording).

    'reflect' needs each pad smaller than the input; 'circular' may not wrap around more than once
    (each pad at most the input); 'replicate' and 'zeros' take any padding.
    """
    left, right = pads
    if mode == "reflect" and max(left, right) >= size:
        raise ShapeError(f"dim {dim + 1}: padding_mode='reflect' needs padding smaller than the input: padding "
                         f"({left}, {right}) on input {size} (F.pad: 'Padding size should be less than the "
                         f"corresponding input dimension')")
    if mode == "circular" and max(left, right) > size:
        raise ShapeError(f"dim {dim + 1}: padding_mode='circular' may not wrap around more than once: padding "
                         f"({left}, {right}) on input {size} (F.pad: 'Padding value causes wrapping around more "
                         f"than once')")


def pad_tuple(pads: tuple[tuple[int, int], ...]) -> tuple[int, ...]:
    """Per-dimension (left, right) pads as ``F.pad``'s argument: the last dimension first."""
    return tuple(p for pair in reversed(pads) for p in pair)
