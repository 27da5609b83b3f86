"""Ready-to-paste PyTorch code for a Layer: ``nn.Conv2d(C_in, C_out, kernel_size=3, stride=2)``, and the
``F.pad`` call that comes first where torch's layer cannot pad as asked (TensorFlow 'same', causal,
unequal left and right pads). Text only: nothing here imports torch."""

from __future__ import annotations

from collections.abc import Sequence

from .layer import POOLS, Layer
from .padding import pad_tuple

TORCH_CLASSES = {"conv": "Conv", "conv_transpose": "ConvTranspose", "max_pool": "MaxPool", "avg_pool": "AvgPool"}


def _value(values: Sequence[int]) -> str:
    return str(values[0]) if len(set(values)) == 1 else str(tuple(values))


def symmetric_padding(layer: Layer, size: Sequence[int] | None) -> tuple[int, ...] | None:
    """The ``padding=`` torch's own layer takes where :attr:`Layer.pads_first` would need ``F.pad``, but
    the pads on this input are equal on both sides (TensorFlow's SAME, say, padding 1 and 1): None where
    they differ, or a pool would pad more than half its kernel (torch refuses that)."""
    if not layer.pads_first or size is None or layer.explicit or layer.padding == "causal":
        return None
    pads = layer.pads_on(size)
    if any(left != right for left, right in pads):
        return None
    values = tuple(left for left, _ in pads)
    if layer.op in POOLS and any(p > k // 2 for p, k in zip(values, layer.kernel_size)):
        return None
    return values


def module_code(layer: Layer, in_channels: str = "C_in", out_channels: str = "C_out",
                size: Sequence[int] | None = None) -> str:
    """The torch.nn constructor call of ``layer`` (padding 0 where :attr:`Layer.pads_first`, unless the
    pads on ``size`` are equal on both sides: then torch's own ``padding``)."""
    inner = layer.without_padding() if layer.pads_first else layer
    symmetric = symmetric_padding(layer, size)
    n = layer.dims
    args = [in_channels, out_channels] if layer.op in ("conv", "conv_transpose") else []
    args.append(f"kernel_size={_value(inner.kernel_size)}")
    if inner.stride != inner.default_stride:
        args.append(f"stride={_value(inner.stride)}")
    if isinstance(inner.padding, str):
        if layer.op == "conv":  # pools under TensorFlow's 'valid' pad nothing
            args.append(f"padding={inner.padding!r}")
    elif any(inner.padding):
        args.append(f"padding={_value(inner.padding)}")
    if symmetric is not None and any(symmetric):
        args.append(f"padding={_value(symmetric)}")
        if layer.op == "avg_pool":  # TensorFlow averages over the input positions only
            args.append("count_include_pad=False")
    if any(inner.output_padding):
        args.append(f"output_padding={_value(inner.output_padding)}")
    if any(d != 1 for d in inner.dilation):
        args.append(f"dilation={_value(inner.dilation)}")
    if inner.ceil_mode:
        args.append("ceil_mode=True")
    if layer.padding_mode != "zeros" and not layer.pads_first:
        args.append(f"padding_mode={layer.padding_mode!r}")
    return f"nn.{TORCH_CLASSES[layer.op]}{n}d({', '.join(args)})"


def pad_code(layer: Layer, size: Sequence[int] | None = None) -> str | None:
    """The ``F.pad`` call before the layer (None where torch's layer pads by itself)."""
    if not layer.pads_first or symmetric_padding(layer, size) is not None:
        return None
    pads = pad_tuple(layer.pads_on(size) if size is not None else layer.pads)
    mode = {"reflect": ", mode='reflect'", "replicate": ", mode='replicate'", "circular": ", mode='circular'"}
    extra = mode.get(layer.padding_mode, "")
    if layer.op == "max_pool":
        extra = ", value=float('-inf')"  # padding never wins a max, as TensorFlow's SAME pooling
    return f"F.pad(x, {pads}{extra})"


def layer_code(layer: Layer, size: Sequence[int] | None = None, in_channels: str = "C_in",
               out_channels: str = "C_out") -> str:
    """One line: ``F.pad(...)`` then the module where needed, else the module alone."""
    pad = pad_code(layer, size)
    module = module_code(layer, in_channels, out_channels, size)
    return f"{pad} -> {module}" if pad else module
