"""One layer and its output size, with PyTorch's shape rules.

Sources (pytorch/pytorch): ``aten/src/ATen/native/ConvUtils.h`` (``conv_output_size``),
``Convolution.cpp`` (``check_shape_forward``), ``NaiveConvolutionTranspose2d.cpp`` (output padding),
``aten/src/ATen/native/Pool.h`` (``pooling_output_shape_pad_lr``, ``pool2d_shape_check``,
``pool3d_shape_check``) and ``torch/nn/modules/conv.py`` (``padding='same'``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import InitVar, dataclass
from typing import Any, Union

from .errors import ConvcalcError, ShapeError
from .padding import (CONVENTIONS, PADDING_MODES, PADDING_STRINGS, causal_padding, check_padding_mode, same_padding,
                      tf_same_padding)

OPS = ("conv", "conv_transpose", "max_pool", "avg_pool")
POOLS = ("max_pool", "avg_pool")
TORCH_NAMES = {"conv": "Conv", "conv_transpose": "ConvTranspose", "max_pool": "MaxPool", "avg_pool": "AvgPool"}
DEFAULT_DIMS = 2
MAX_DIMS = 3

IntOrTuple = Union[int, Sequence[int]]
Pads = tuple[tuple[int, int], ...]  # (left, right) per spatial dimension


class lazy:
    """A computed attribute stored on first use, like functools.cached_property without its lock
    (Python 3.11 takes one on every first access, which shows in 10,000-check files). Works on
    frozen dataclasses: it writes the instance's __dict__ directly."""

    def __init__(self, function: Callable[[Any], Any]):
        self.function = function
        self.name = function.__name__
        self.__doc__ = function.__doc__

    def __get__(self, instance: Any, owner: type | None = None) -> Any:
        if instance is None:
            return self
        value = self.function(instance)
        instance.__dict__[self.name] = value
        return value


def effective_kernel_size(kernel_size: int, dilation: int) -> int:
    """``d*(k-1)+1``: how many input positions a dilated kernel spans (torch.nn.Conv2d docs)."""
    return dilation * (kernel_size - 1) + 1


def _pairs(padding: Any) -> tuple[Any, ...] | None:
    """``padding`` as a tuple of (left, right) pairs, if it is one."""
    if isinstance(padding, (tuple, list)) and padding and all(isinstance(p, (tuple, list)) for p in padding):
        return tuple(padding)
    return None


def resolve_dims(values: dict[str, object], dims: int | None = None) -> int:
    """The number of spatial dimensions: the length of the tuples given, else ``dims``, else 2.

    Every tuple among ``values`` must have the same length (and equal ``dims`` when it is given).
    """
    lengths = {name: len(v) for name, v in values.items() if isinstance(v, (tuple, list))}
    if dims is not None and (isinstance(dims, bool) or dims not in range(1, MAX_DIMS + 1)):
        raise ConvcalcError(f"dims must be 1, 2 or 3, got {dims!r}")
    for name, length in lengths.items():
        if dims is not None and length != dims:
            raise ConvcalcError(f"{name} has {length} dimensions but dims is {dims}")
    if len(set(lengths.values())) > 1:
        given = ", ".join(f"{name} has {length}" for name, length in lengths.items())
        raise ConvcalcError(f"per-dimension values disagree on the number of dimensions: {given}")
    found = next(iter(lengths.values()), dims or DEFAULT_DIMS)
    if not 1 <= found <= MAX_DIMS:
        raise ConvcalcError(f"{found} spatial dimensions given; PyTorch layers have 1, 2 or 3")
    return found


def per_dim(name: str, value: IntOrTuple, dims: int, minimum: int) -> tuple[int, ...]:
    """``value`` as one integer >= ``minimum`` per dimension; a scalar applies to every dimension."""
    given_per_dim = isinstance(value, (tuple, list))
    values = tuple(value) if given_per_dim else (value,) * dims
    for i, v in enumerate(values, 1):
        if type(v) is not int or v < minimum:  # bool is not int here, as intended
            where = f" in dim {i}" if given_per_dim and dims > 1 else ""
            if isinstance(v, bool) or not isinstance(v, int):
                raise ConvcalcError(f"{name} must be an integer, got {v!r}{where}")
            if v < minimum:
                rule = "positive" if minimum == 1 else f">= {minimum}"
                raise ConvcalcError(f"{name} must be {rule}, got {v}{where}")
    return values


@dataclass(frozen=True)
class Layer:
    """One layer, per-dimension tuples resolved; construction rejects what PyTorch rejects on any input.

    ``padding`` is a tuple of symmetric pads, one of ``"same"``/``"valid"`` (conv, as in
    ``torch.nn.Conv2d``; pools too under ``convention="tf"``) or ``"causal"`` (conv), or a tuple of
    ``(left, right)`` pairs: explicit padding applied by ``F.pad`` before a layer whose own padding is 0.
    ``convention="tf"`` reads ``"same"`` as TensorFlow's SAME, at any stride (its pads then depend on
    the input: :meth:`pads_on`). ``padding_mode`` is torch's (conv only). Build one with
    :meth:`Layer.build`, which broadcasts scalars. Arguments that no torch layer takes raise
    ConvcalcError here; :meth:`check` raises ShapeError where PyTorch rejects the layer on every input,
    and :meth:`output_size` adds the input-dependent rules.
    """

    op: str
    kernel_size: tuple[int, ...]
    stride: tuple[int, ...]
    padding: Union[tuple[int, ...], Pads, str]
    dilation: tuple[int, ...]
    output_padding: tuple[int, ...]
    ceil_mode: bool = False
    padding_mode: str = "zeros"
    convention: str = "torch"
    _checked: InitVar[bool] = False

    @classmethod
    def build(
        cls,
        kernel_size: IntOrTuple,
        stride: IntOrTuple | None = None,
        padding: IntOrTuple | str = 0,
        dilation: IntOrTuple = 1,
        *,
        op: str = "conv",
        output_padding: IntOrTuple = 0,
        ceil_mode: bool = False,
        dims: int | None = None,
        padding_mode: str = "zeros",
        convention: str = "torch",
    ) -> Layer:
        """A layer from PyTorch-style arguments; ``stride=None`` means 1 (pools: the kernel size)."""
        pairs = _pairs(padding)
        values = {"kernel_size": kernel_size, "stride": stride, "padding": pairs if pairs is not None else padding,
                  "dilation": dilation, "output_padding": output_padding}
        n = resolve_dims(values, dims)
        kernel = per_dim("kernel_size", kernel_size, n, 1)
        if stride is None:
            stride = default_stride(op, kernel)
        if pairs is not None:
            pads: Any = tuple(tuple(per_dim("padding", pair, 2, 0)) for pair in pairs)
        else:
            pads = padding.lower() if isinstance(padding, str) else per_dim("padding", padding, n, 0)
        return cls(op, kernel, per_dim("stride", stride, n, 1), pads, per_dim("dilation", dilation, n, 1),
                   per_dim("output_padding", output_padding, n, 0), bool(ceil_mode), padding_mode.lower(),
                   convention.lower(), _checked=True)

    def __post_init__(self, _checked: bool) -> None:
        if self.op not in OPS:
            raise ConvcalcError(f"unknown op {self.op!r}: expected one of {', '.join(OPS)}")
        if not _checked:  # Layer.build has checked the numbers already
            self._check_numbers()
        # Stacks are cache keys (receptive.py): hash the fields once, not on every lookup.
        self.__dict__["_hash"] = hash((self.op, self.kernel_size, self.stride, self.padding, self.dilation,
                                       self.output_padding, self.ceil_mode, self.padding_mode, self.convention))
        if self.ceil_mode and self.op not in POOLS:
            raise ConvcalcError(f"ceil_mode applies only to pooling (max_pool, avg_pool), not {self.op}")
        if any(self.output_padding) and self.op != "conv_transpose":
            raise ConvcalcError(f"output_padding applies only to conv_transpose, not {self.op}")
        if self.op == "avg_pool" and any(d != 1 for d in self.dilation):
            raise ConvcalcError("avg_pool has no dilation (torch.nn.AvgPool has no dilation argument)")
        self._check_padding()

    def _check_padding(self) -> None:
        if self.convention not in CONVENTIONS:
            raise ConvcalcError(f"convention must be 'torch' or 'tf', got {self.convention!r}")
        if self.padding_mode not in PADDING_MODES:
            raise ConvcalcError(f"padding_mode must be one of {', '.join(PADDING_MODES)}, got {self.padding_mode!r}")
        if self.padding_mode != "zeros" and self.op != "conv":
            raise ConvcalcError(f'Only "zeros" padding mode is supported for {self.torch_name} (padding_mode='
                                f'{self.padding_mode!r})')
        if isinstance(self.padding, str):
            if self.padding not in PADDING_STRINGS:
                raise ConvcalcError(f"padding must be integers, 'same', 'valid' or 'causal', got {self.padding!r}")
            tf_pool = self.convention == "tf" and self.op in POOLS and self.padding != "causal"
            if self.op != "conv" and not tf_pool:
                where = " (under convention 'tf', 'same' and 'valid' apply to pools too)" if self.op in POOLS else ""
                raise ConvcalcError(f"padding={self.padding!r} is supported by conv only, not {self.op}{where}")
            if tf_pool and self.ceil_mode:
                raise ConvcalcError("ceil_mode does not combine with TensorFlow's 'same'/'valid' padding")
        elif self.explicit:
            if self.op == "conv_transpose" or self.ceil_mode:
                raise ConvcalcError("explicit (left, right) padding applies to conv and pools without ceil_mode")

    @property
    def explicit(self) -> bool:
        """Padding given as (left, right) pairs, applied by F.pad before the layer."""
        return isinstance(self.padding, tuple) and bool(self.padding) and isinstance(self.padding[0], tuple)

    @property
    def pads_first(self) -> bool:
        """Whether torch needs ``F.pad`` before the layer (its own ``padding`` argument cannot say it)."""
        if self.explicit or self.padding == "causal":
            return True
        return self.padding == "same" and self.convention == "tf" and (
            self.op in POOLS or any(s != 1 for s in self.stride))

    @property
    def input_dependent(self) -> bool:
        """TensorFlow's 'same' at a stride above 1: the pads depend on the input size."""
        return self.padding == "same" and self.convention == "tf" and any(s != 1 for s in self.stride)

    def __hash__(self) -> int:
        return self.__dict__["_hash"]

    def _check_numbers(self) -> None:
        fields = {"kernel_size": 1, "stride": 1, "dilation": 1, "output_padding": 0}
        if not isinstance(self.padding, str) and not self.explicit:
            fields["padding"] = 0
        for name in fields:
            if not isinstance(getattr(self, name), tuple):
                raise ConvcalcError(f"Layer.{name} must be a tuple; Layer.build() broadcasts scalars")
        n = resolve_dims({name: getattr(self, name) for name in fields})
        for name, minimum in fields.items():
            per_dim(name, getattr(self, name), n, minimum)

    def check(self) -> None:
        """Raise ShapeError where PyTorch rejects this layer whatever the input, as PyTorch words it."""
        if self._rejection is not None:
            raise ShapeError(self._rejection)

    @lazy
    def _rejection(self) -> str | None:
        if self.padding == "same" and self.convention == "torch" and any(s != 1 for s in self.stride):
            return (f"padding='same' is not supported for strided convolutions "
                    f"(stride {format_size(self.stride)}; torch/nn/modules/conv.py)")
        for i in range(self.dims):
            try:
                self._check_dim(i)
            except ShapeError as exc:
                return str(exc)
        return None

    def _check_dim(self, i: int) -> None:
        k, s, d, op = self.kernel_size[i], self.stride[i], self.dilation[i], self.output_padding[i]
        where = f"dim {i + 1}: "
        if self.op in POOLS and not isinstance(self.padding, str) and not self.explicit:
            p = self.padding[i]
            if p > k // 2:
                raise ShapeError(f"{where}pad {p} should be at most half of kernel size {k} "
                                 f"(PyTorch requires pad <= kernel_size // 2 = {k // 2}; Pool.h)")
        if self.op == "conv_transpose" and op >= s and op >= d:
            raise ShapeError(f"{where}output_padding {op} must be smaller than either stride {s} "
                             f"or dilation {d}")

    @property
    def dims(self) -> int:
        return len(self.kernel_size)

    @lazy
    def effective_kernel_size(self) -> tuple[int, ...]:
        return tuple(effective_kernel_size(k, d) for k, d in zip(self.kernel_size, self.dilation))

    @lazy
    def pads(self) -> Pads:
        """(left, right) padding per dimension; 'same' puts the odd element on the right. TensorFlow's
        'same' at a stride above 1 depends on the input: :meth:`pads_on`."""
        if self.input_dependent:
            raise ConvcalcError(f"{self.torch_name} with TensorFlow 'same' padding at stride {format_size(self.stride)}: "
                                f"its padding depends on the input size; give {{in_size}}", parameters=("in_size",))
        if self.padding == "valid":
            return ((0, 0),) * self.dims
        if self.padding == "same":
            return tuple(same_padding(k, d) for k, d in zip(self.kernel_size, self.dilation))
        if self.padding == "causal":
            return tuple(causal_padding(k, d) for k, d in zip(self.kernel_size, self.dilation))
        if self.explicit:
            return self.padding  # type: ignore[return-value]
        return tuple((p, p) for p in self.padding)  # type: ignore[union-attr]

    def pad_at(self, i: int, n: int) -> tuple[int, int]:
        """(left, right) padding of dimension ``i`` on an input of ``n`` there."""
        if self.input_dependent:
            return tf_same_padding(n, self.kernel_size[i], self.stride[i], self.dilation[i])
        return self.pads[i]

    def pads_on(self, size: Sequence[int]) -> Pads:
        """(left, right) padding per dimension on an input of ``size``."""
        if not self.input_dependent:
            return self.pads
        return tuple(self.pad_at(i, n) for i, n in enumerate(size))

    def along(self, dim: int) -> Layer:
        """This layer along one dimension, as a 1-d layer (layers act on each dimension separately)."""
        padding = self.padding if isinstance(self.padding, str) else (self.padding[dim],)
        return Layer(self.op, self.kernel_size[dim:dim + 1], self.stride[dim:dim + 1], padding,  # type: ignore[arg-type]
                     self.dilation[dim:dim + 1], self.output_padding[dim:dim + 1], self.ceil_mode, self.padding_mode,
                     self.convention, _checked=True)

    def without_padding(self) -> Layer:
        """The same layer with padding 0: what torch runs after ``F.pad`` when :attr:`pads_first`."""
        return Layer(self.op, self.kernel_size, self.stride, (0,) * self.dims, self.dilation, self.output_padding,
                     self.ceil_mode, "zeros", "torch", _checked=True)

    def resolved(self, size: Sequence[int]) -> Layer:
        """This layer on an input of ``size`` with its pads as explicit (left, right) pairs where torch
        needs ``F.pad`` first (TensorFlow's 'same', causal); else the layer itself."""
        if not self.pads_first or self.explicit:
            return self
        return Layer(self.op, self.kernel_size, self.stride, self.pads_on(size), self.dilation, self.output_padding,
                     self.ceil_mode, self.padding_mode, "torch", _checked=True)

    @property
    def default_stride(self) -> tuple[int, ...]:
        """The stride PyTorch uses when none is given (:func:`default_stride`)."""
        return per_dim("stride", default_stride(self.op, self.kernel_size), self.dims, 1)

    @property
    def torch_name(self) -> str:
        """The torch.nn class this layer stands for, e.g. ``Conv2d``."""
        return f"{TORCH_NAMES[self.op]}{self.dims}d"

    def output_size(self, in_size: IntOrTuple) -> tuple[int, ...]:
        """The output size PyTorch computes for an input of ``in_size``; ShapeError where it raises."""
        size = per_dim("input size", in_size, self.dims, 1)
        if len(size) != self.dims:
            raise ConvcalcError(f"input size has {len(size)} dimensions, the layer has {self.dims}")
        return self.output_of(size)

    def output_of(self, size: tuple[int, ...]) -> tuple[int, ...]:
        """:meth:`output_size` for a size already known to be valid (one positive int per dimension)."""
        self.check()
        return tuple([self.output_dim(i, n) for i, n in enumerate(size)])

    def output_dim(self, i: int, n: int) -> int:
        """Dimension ``i``'s output for an input of ``n`` there (:meth:`check` already passed); ShapeError
        where PyTorch raises."""
        k, s, d = self.kernel_size[i], self.stride[i], self.dilation[i]
        e = effective_kernel_size(k, d)
        left, right = self.pad_at(i, n)
        where = f"dim {i + 1}: "
        if self.padding_mode != "zeros":
            check_padding_mode(self.padding_mode, n, (left, right), i)
        if self.op in POOLS and self.pads_first:  # F.pad, then a pool without padding
            padded = n + left + right
            if padded < e or (self.op == "avg_pool" and self.dims == 3 and padded < k):
                raise ShapeError(f"{where}padded input {padded} is smaller than the effective kernel {e}")
            return (padded - e) // s + 1
        if self.op == "conv":
            if n + left + right < e:
                raise ShapeError(f"{where}padded input {n + left + right} is smaller than the effective "
                                 f"kernel {e} (kernel {k}, dilation {d})")
            return (n + left + right - e) // s + 1
        if self.op == "conv_transpose":
            out = (n - 1) * s - 2 * left + e + self.output_padding[i]
            if out < 1:
                raise ShapeError(f"{where}output size {out} is too small: (in-1)*stride - 2*padding + "
                                 f"effective kernel + output_padding = ({n}-1)*{s} - 2*{left} + {e} + "
                                 f"{self.output_padding[i]}")
            return out
        if self.op == "avg_pool" and self.dims == 3 and n < k:
            raise ShapeError(f"{where}input {n} is smaller than the kernel {k} "
                             f"(AvgPool3d checks the unpadded input; Pool.h pool3d_shape_check)")
        out = pooled_size(n, k, left, s, d, self.ceil_mode)
        if out < 1:
            raise ShapeError(f"{where}output size {out} is too small (input {n}, padding {left}, "
                             f"effective kernel {e}, stride {s})")
        return out


def pool_windows(n: int, k: int, p: int, s: int, d: int, ceil_mode: bool) -> int:
    """Windows before ceil_mode's check: ``floor((n + 2p - e + (s-1 if ceil_mode)) / s) + 1`` (Pool.h)."""
    return (n + 2 * p - effective_kernel_size(k, d) + (s - 1 if ceil_mode else 0)) // s + 1


def pooled_size(n: int, k: int, p: int, s: int, d: int, ceil_mode: bool) -> int:
    """``pooling_output_shape_pad_lr`` (Pool.h): floor, or ceil with the last window kept inside
    (a window starting at or past ``n + p`` is dropped)."""
    out = pool_windows(n, k, p, s, d, ceil_mode)
    if ceil_mode and (out - 1) * s >= n + p:
        out -= 1
    return out


def default_stride(op: str, kernel_size: IntOrTuple) -> IntOrTuple:
    """PyTorch's stride when none is given: the kernel size for pools, else 1 (torch.nn.MaxPool2d docs)."""
    return kernel_size if op in POOLS else 1


def size_keeping_padding(layer: Layer) -> tuple[int | None, ...]:
    """Per dimension, the symmetric padding that keeps every input size, or None where none does.

    Only stride 1 can keep every size: conv needs ``2p = d*(k-1)``, conv_transpose
    ``2p = d*(k-1) + output_padding``, pools ``2p = d*(k-1)`` with ``p <= k // 2``.
    """
    result: list[int | None] = []
    for i, (k, s) in enumerate(zip(layer.kernel_size, layer.stride)):
        total = size_keeping_total(layer, i)
        fits = s == 1 and total % 2 == 0 and not (layer.op in POOLS and total // 2 > k // 2)
        result.append(total // 2 if fits else None)
    return tuple(result)


def output_padding_for(layer: Layer, in_size: Sequence[int], out_size: Sequence[int]) -> tuple[int, ...]:
    """The output_padding torch picks for ``module(x, output_size=...)`` (``_ConvTransposeNd._output_padding``
    in torch/nn/modules/conv.py): per dimension ``min = (in-1)*s - 2p + d*(k-1) + 1`` and ``max = min + s - 1``
    (the stride only, not the dilation); a size outside [min, max] is refused as torch words it."""
    if layer.op != "conv_transpose":
        raise ConvcalcError(f"{{output_size}} applies only to conv_transpose, not {layer.op}", parameters=("output_size",))
    if len(out_size) != layer.dims:
        raise ConvcalcError(f"{{output_size}} has {len(out_size)} dimensions, the layer has {layer.dims}",
                            parameters=("output_size",))
    lows = [(n - 1) * s - 2 * p + d * (k - 1) + 1 for n, s, (p, _), d, k in
            zip(in_size, layer.stride, layer.pads, layer.dilation, layer.kernel_size)]
    highs = [low + s - 1 for low, s in zip(lows, layer.stride)]
    if any(not low <= size <= high for low, size, high in zip(lows, out_size, highs)):
        raise ShapeError(f"requested an output size of {format_size(out_size)}, but valid sizes range from "
                         f"{format_size(lows)} to {format_size(highs)} (for an input of {format_size(in_size)})")
    return tuple(size - low for size, low in zip(out_size, lows))


def size_keeping_total(layer: Layer, i: int) -> int:
    """The total padding that keeps the size at stride 1 in dimension ``i``: ``d*(k-1)``, plus
    ``output_padding`` for conv_transpose."""
    return layer.effective_kernel_size[i] - 1 + (layer.output_padding[i] if layer.op == "conv_transpose" else 0)


def output_size(
    in_size: IntOrTuple,
    kernel_size: IntOrTuple,
    stride: IntOrTuple | None = None,
    padding: IntOrTuple | str = 0,
    dilation: IntOrTuple = 1,
    *,
    op: str = "conv",
    output_padding: IntOrTuple = 0,
    ceil_mode: bool = False,
) -> tuple[int, ...]:
    """The output size of one PyTorch layer; ``in_size`` as a tuple fixes the number of dimensions.

    >>> output_size(256, 3, padding=2, dilation=2)
    (256, 256)
    >>> output_size((5,), 2, 2, 1, op="max_pool", ceil_mode=True)
    (3,)
    """
    dims = resolve_dims({"in_size": in_size, "kernel_size": kernel_size, "stride": stride,
                         "padding": padding, "dilation": dilation, "output_padding": output_padding})
    layer = Layer.build(kernel_size, stride, padding, dilation, op=op, output_padding=output_padding,
                        ceil_mode=ceil_mode, dims=dims)
    return layer.output_size(in_size)


def format_size(values: Sequence[object]) -> str:
    """``(1, 7)`` -> ``1x7``: a size written the way it is typed."""
    return "x".join(map(str, values))
