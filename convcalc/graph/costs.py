"""What a model costs: multiply-accumulates per node under three named conventions, parameters and bytes
(docs/references.md, "Counting conventions").

- ``aten``: what ``torch.utils.flop_counter`` counts, halved: convolutions (over output positions; a
  transposed one over its input positions), matrix products and attention, no bias, nothing else;
- ``fvcore``: fvcore's ``FlopCountAnalysis``: the same convolutions (not those with ``padding='same'``
  or ``'valid'``, which trace as an op it has no handler for) and products, and only ops the output
  uses (its jit trace drops the rest), plus BatchNorm
  (2 per element in eval, 1 without affine), GroupNorm, LayerNorm and InstanceNorm (5 or 4 per element),
  2-d nearest (1 per output) and bilinear (4 per output) upsampling, 2-d adaptive average pooling (1 per
  input element) and grid sampling (4 per output);
- ``torchinfo``: ``summary().total_mult_adds``: per call of a module without children, for each of its
  ``weight`` and ``bias``: a convolution's (transposed too) numel times the output positions (batch
  included), any other module's numel times the output's first size.

Rules read a module's attributes, an fx node's arguments and the recorded shapes, so this module imports
no torch and is tested with stand-ins. Shapes here are at batch 1 (the shape pass runs one sample);
every count is linear in the batch, and :func:`model_totals` scales by it.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from ..cost import element_size
from .fields import NO_MACS, Macs, node_argument

Shape = tuple[int, ...]

CONVENTIONS = ("aten", "fvcore", "torchinfo")

# Ops that return their input, a view of it, or write into it: no new activation memory.
VIEWS = {"view", "reshape", "flatten", "Flatten", "unflatten", "Unflatten", "squeeze", "unsqueeze", "permute",
         "transpose", "swapaxes", "movedim", "t", "expand", "expand_as", "view_as", "getitem", "chunk", "split",
         "unbind", "narrow", "select", "detach", "contiguous", "Identity", "Dropout", "Dropout1d", "Dropout2d",
         "Dropout3d", "AlphaDropout", "FeatureAlphaDropout", "dropout", "to", "type_as", "float", "size"}
IN_PLACE_FUNCTIONS = {"iadd", "isub", "imul", "itruediv"}

# fvcore's closed forms: the ops its jit handles count (docs/references.md, "Counting conventions"), and
# torch.nn modules fvcore sees as one op it has no handle for (0). Every other function is counted by the
# aten ops it dispatches, in fvcore's terms (graph/dispatch.py).
FVCORE_FUNCTIONS = {"conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d", "conv_transpose3d",
                    "linear", "matmul", "mm", "bmm", "addmm", "baddbmm", "scaled_dot_product_attention",
                    "batch_norm", "group_norm", "layer_norm", "instance_norm", "interpolate", "upsample",
                    "upsample_nearest", "upsample_bilinear", "adaptive_avg_pool2d", "grid_sample", "einsum"}


def fvcore_closed_form(label: str, module: bool) -> bool:
    """Whether fvcore's count for a call of ``label`` has a closed form here: every torch.nn module, and
    the functions fvcore has handles for."""
    return module or label.lower() in FVCORE_FUNCTIONS


def multihead_fvcore(module: Any, query: Shape, key: Shape, need_weights: bool, masked: bool) -> int:
    """fvcore's count for ``nn.MultiheadAttention``, whose slow path its jit trace sees: the input and output
    projections (``aten::linear``), and where ``need_weights`` the attention's ``bmm``s (``q @ k^T`` is a
    ``baddbmm``, which fvcore does not count, under a mask). Without weights the slow path runs
    ``scaled_dot_product_attention``, which fvcore does not count either."""
    if len(query) != 3 or len(key) != 3:
        return 0
    first = bool(getattr(module, "batch_first", False))
    (batch, length), source = (query[:2] if first else query[1::-1]), key[1 if first else 0]
    embed, heads = int(module.embed_dim), int(module.num_heads)
    projections = batch * (length * embed * embed + source * (int(module.kdim) + int(module.vdim)) * embed)
    projections += batch * length * embed * embed
    products = 0 if not need_weights else (1 if masked else 2) * batch * heads * length * source * (embed // heads)
    return projections + products




def _numel(shape: Sequence[int] | None) -> int:
    return math.prod(shape) if shape is not None else 0


def convolution_macs(x: Shape, weight: Shape, out: Shape, transposed: bool) -> int:
    """Batch x prod(weight) x positions: the output's, or the input's for a transposed convolution
    (torch.utils.flop_counter.conv_flop_count and fvcore's conv_flop_count agree)."""
    return x[0] * math.prod(weight) * math.prod((x if transposed else out)[2:])


def module_macs(label: str, module: Any, x: Shape | None, out: Shape | None) -> Macs:
    """A module call's MACs by closed form (``label``: the torch.nn class it is, rules.torch_class)."""
    if x is None or out is None:
        return NO_MACS
    aten = fvcore = 0
    weight = getattr(module, "weight", None)
    if label.startswith("Conv") and hasattr(module, "kernel_size") and weight is not None:
        aten = fvcore = convolution_macs(x, tuple(weight.shape), out, label.startswith("ConvTranspose"))
        if isinstance(getattr(module, "padding", 0), str):  # 'same'/'valid' trace as aten::_convolution_mode,
            fvcore = 0                                     # which fvcore has no handler for
    elif label in ("Linear", "LazyLinear", "NonDynamicallyQuantizableLinear") and weight is not None:
        aten = fvcore = _numel(x) * int(weight.shape[0])
    elif label.startswith(("BatchNorm", "SyncBatchNorm")):
        training = bool(getattr(module, "training", False)) or getattr(module, "running_mean", None) is None
        fvcore = _norm(x, weight is not None, training)
    elif label in ("GroupNorm", "LayerNorm") or label.startswith("InstanceNorm"):
        fvcore = _numel(x) * (5 if weight is not None else 4)
    elif label in ("Upsample", "UpsamplingNearest2d", "UpsamplingBilinear2d"):
        mode = "bilinear" if label == "UpsamplingBilinear2d" else getattr(module, "mode", "nearest")
        fvcore = _upsample(mode, out)
    elif label == "AdaptiveAvgPool2d":
        fvcore = _numel(x)
    return Macs(aten, fvcore, _torchinfo(module, out))


def _norm(x: Shape, affine: bool, training: bool) -> int:
    """fvcore's batch_norm: 2 per element in eval (1 without affine); in training, as GroupNorm."""
    if training:
        return _numel(x) * (5 if affine else 4)
    return _numel(x) * (2 if affine else 1)


def _upsample(mode: str, out: Shape) -> int:
    """fvcore counts only aten::upsample_nearest2d (1 per output) and upsample_bilinear2d (4)."""
    if len(out) != 4:
        return 0
    return {"nearest": 1, "bilinear": 4}.get(mode, 0) * _numel(out)


def _torchinfo(module: Any, out: Shape) -> int:
    """torchinfo's LayerInfo.calculate_macs, for a module without children (one with children is counted
    by the calls of those inside it: graph/dispatch.py)."""
    if next(iter(module.children()), None) is not None:
        return 0
    return torchinfo_macs(type(module).__name__, ((name, p.numel()) for name, p in module.named_parameters()), out)


def torchinfo_macs(class_name: str, params: Iterable[tuple[str, int]], out: Shape) -> int:
    """torchinfo's ``LayerInfo.calculate_macs`` for one call of a module without children: each ``weight``
    and ``bias`` element once per output position where the class name holds "Conv", once per sample
    otherwise; other weights (an RNN's ``weight_ih_l0``) once per element of the output's first two sizes.
    ``out`` is the output's size as torchinfo takes it (:func:`torchinfo_size`)."""
    total = 0
    for name, count in params:
        if name in ("weight", "bias"):
            total += count * (out[0] * math.prod(out[2:]) if "Conv" in class_name else out[0])
        elif "weight" in name or "bias" in name:
            total += math.prod(out[:2]) * count
    return total


def torchinfo_size(shapes: Any) -> Shape | None:
    """The output size torchinfo's ``calculate_size`` takes: a tensor's, the first tensor's of a tuple or
    list, the last value's of a dict (``shapes`` holds tuples where the output holds tensors)."""
    if isinstance(shapes, tuple) and all(isinstance(d, int) for d in shapes):
        return shapes
    if isinstance(shapes, dict):
        return torchinfo_size(list(shapes.values())[-1]) if shapes else None
    if isinstance(shapes, (tuple, list)) and shapes:
        return torchinfo_size(shapes[0])
    return None


def function_macs(label: str, node: Any, shapes: Sequence[Shape | None], out: Shape | None
                  ) -> Macs:
    """A function or method call's MACs; ``shapes`` are its tensor arguments' shapes, in order."""
    name = label.lower()
    if out is None or not shapes or shapes[0] is None:
        return NO_MACS
    x = shapes[0]
    second = shapes[1] if len(shapes) > 1 else None
    if name in ("conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d", "conv_transpose3d"):
        if second is None:
            return NO_MACS
        macs = convolution_macs(x, second, out, "transpose" in name)
        string_padding = isinstance(node_argument(node, "padding", 4, 0), str)  # fvcore: _convolution_mode
        return Macs(macs, 0 if string_padding else macs)
    if name == "linear" and second is not None:
        macs = _numel(x) * (second[0] if len(second) > 1 else 1)
        return Macs(macs, macs)
    if name in ("matmul", "mm", "bmm") and second is not None:
        fvcore = _numel(x) * (second[-1] if len(second) > 1 else 1)
        return Macs(_numel(out) * x[-1], fvcore)
    if name in ("addmm", "baddbmm") and len(shapes) > 2 and shapes[1] is not None:
        aten = _numel(out) * shapes[1][-1]
        return Macs(aten, aten if name == "addmm" else 0)
    if name == "scaled_dot_product_attention" and len(shapes) > 2 and None not in shapes[:3]:
        q, k, v = shapes[0], shapes[1], shapes[2]  # type: ignore[misc]
        return Macs(_numel(q[:-1]) * k[-2] * (q[-1] + v[-1]))
    if name == "batch_norm":
        training = bool(node_argument(node, "training", 5, False))
        return Macs(fvcore=_norm(x, node_argument(node, "weight", 3, None) is not None, training))
    if name in ("group_norm", "layer_norm"):
        return Macs(fvcore=_numel(x) * (5 if node_argument(node, "weight", 2, None) is not None else 4))
    if name == "instance_norm":
        return Macs(fvcore=_numel(x) * (5 if node_argument(node, "weight", 3, None) is not None else 4))
    if name in ("interpolate", "upsample"):
        return Macs(fvcore=_upsample(str(node_argument(node, "mode", 3, "nearest")), out))
    if name in ("upsample_nearest", "upsample_bilinear"):
        return Macs(fvcore=_upsample(name.removeprefix("upsample_"), out))
    if name == "adaptive_avg_pool2d":
        return Macs(fvcore=_numel(x))
    if name == "grid_sample":
        return Macs(fvcore=4 * _numel(out))
    if name == "einsum":
        equation = node.args[0] if node.args and isinstance(node.args[0], str) else node.kwargs.get("equation")
        from .einsum_count import fvcore_einsum  # numpy, loaded only when a model has an einsum
        return Macs(fvcore=fvcore_einsum(equation, shapes) if isinstance(equation, str) else 0)
    return NO_MACS


def aliases(label: str, module: Any, target: Any) -> bool:
    """Whether a node's output is its input, a view of it, or written into it (no new memory)."""
    if label in VIEWS or label in IN_PLACE_FUNCTIONS:
        return True
    if module is not None:
        return bool(getattr(module, "inplace", False))
    return isinstance(target, str) and target.endswith("_") and not target.endswith("__")


@dataclass(frozen=True)
class ModelTotals:
    """A model's totals (torchinfo's ModelStatistics, with the MAC convention named)."""

    params: int
    trainable_params: int
    dtype: str
    param_bytes: int
    activation_bytes: int
    macs: Macs
    peak_bytes: int | None = None  # the inference peak, float32 (memory --infer)

    @property
    def non_trainable_params(self) -> int:
        return self.params - self.trainable_params


def inspection_totals(inspection: Any, dtype: str = "float32") -> ModelTotals:
    """Parameters, bytes and MACs of a whole inspected model, every node counted (not only those shown)."""
    totals = model_totals(inspection.nodes, inspection.params, inspection.trainable_params,
                          inspection.input_shape[0], dtype)
    return replace(totals, peak_bytes=inspection.peak_bytes)


def per_batch(node: Any, batch: int) -> int:
    """How many times a node runs for a batch: once per sample, or once where it does not read the input
    (its flow is constant: graph/fields.py)."""
    flow = getattr(node, "flow", None)
    return 1 if flow is not None and flow.constant else batch


def model_totals(nodes: Sequence[Any], params: int, trainable_params: int, batch: int, dtype: str = "float32"
                 ) -> ModelTotals:
    """Totals over every traced node (``nodes`` carry ``macs``, ``out_numel`` and ``aliases``): MACs at
    the input's batch (ops on parameters alone, a weight standardised, run once whatever the batch);
    activation bytes: each node's new output, views and in-place results excepted."""
    size = element_size(dtype)
    macs = Macs(*(sum(n.macs[i] * per_batch(n, batch) for n in nodes) for i in range(len(CONVENTIONS))))
    activations = sum(n.out_numel for n in nodes if n.out_numel and not n.aliases and n.op not in ("input",
                                                                                                    "get_attr"))
    return ModelTotals(params, trainable_params, dtype, params * size, activations * size, macs)
