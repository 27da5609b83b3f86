"""The way out of a rejection, in the CLI's words: what the user most likely meant, and the command or
flag that answers it. Hints name flags and commands, so they live here, not in the core."""

from __future__ import annotations

from collections.abc import Sequence

from ..layer import Layer, format_size


def strided_same(stack: Sequence[Layer], in_size: Sequence[int] | None) -> str | None:
    """For ``padding='same'`` at a stride above 1, which torch refuses: TensorFlow's SAME is the tf
    convention, and ``convcalc solve`` gives the torch padding for the size SAME would give."""
    for index, layer in enumerate(stack):
        if layer.padding == "same" and layer.convention == "torch" and any(s != 1 for s in layer.stride):
            break
    else:
        return None
    dilation = "" if set(layer.dilation) == {1} else f" -d {_short(layer.dilation)}"
    if in_size is not None and index == 0:
        out = tuple(-(-n // s) for n, s in zip(in_size, layer.stride))
        sizes = f"--in {_short(in_size)} --out {_short(out)}"
        same, wanted = f" (out = ceil(in / stride) = {_short(out)})", _short(out)
    else:
        sizes, same, wanted = "--in SIZE --out SIZE", " (out = ceil(in / stride))", "a size"
    return (f"TensorFlow's SAME{same} is --convention tf (or tensorflow, keras, jax); for the torch padding "
            f"that gives {wanted}: convcalc solve {sizes} -k {_short(layer.kernel_size)} -s {_short(layer.stride)}"
            f"{dilation} --op conv")


def channels_last(size: object, command: str) -> str | None:
    """An input size whose last value is 1, 3 or 4 and at most an eighth of the others (224x224x3) is
    most likely an image with its channels last, not a 3-d input: say so, and give the 2-d reading."""
    if not isinstance(size, tuple) or len(size) < 3 or size[-1] not in (1, 3, 4) or size[-1] * 8 > min(size[:-1]):
        return None
    spatial, channels = size[:-1], size[-1]
    return (f"--in {format_size(size)} is read as a {len(size)}-d input; it looks like a {len(spatial)}-d image "
            f"with {channels} channel{'s' if channels > 1 else ''} last: for that, give convcalc {command} --shape "
            f"1x{channels}x{format_size(spatial)} (N x C x H x W) instead of --in")


def _short(values: Sequence[int]) -> str:
    """One number where every dimension agrees (``224``), else ``224x320``."""
    return str(values[0]) if len(set(values)) == 1 else format_size(tuple(values))
