"""MACs from what actually runs: the aten ops a node dispatches, counted as ``torch.utils.flop_counter``
counts them, halved (docs/inspect.md, "Which MACs"). torch is imported on use.

The formulas are flop_counter's own registry (convolutions, ``mm``, ``addmm``, ``bmm``, ``baddbmm``,
attention kernels), so the ``aten`` convention equals flop_counter/2 by construction, with two kernels
added that flop_counter leaves at 0 on the CPU: attention is counted in its math form (``q @ k^T`` and
``attn @ v``) where it runs fused (``_scaled_dot_product_flash_attention_for_cpu``, and
``nn.MultiheadAttention``'s fast path ``_native_multi_head_attention``, its projections too). The mode
skips torch._dynamo's wrapper: no second of imports to pay.

Beside it, for a node without a closed-form rule (an opaque module, an unfamiliar function), the same ops
in fvcore's terms, by the handles fvcore keeps for them (docs/references.md, "Counting conventions").
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from ..torchcheck import import_torch
from .costs import torchinfo_macs, torchinfo_size


def _shape(value: Any) -> tuple[int, ...]:
    return tuple(int(d) for d in value.shape)


def _attention_macs(query: Any, key: Any, value: Any) -> int:
    """``q @ k^T`` then ``attn @ v``: batch x heads x L x S x (E + Ev), as flop_counter's ``sdpa_flop``
    (its FLOPs are twice these)."""
    q, k, v = _shape(query), _shape(key), _shape(value)
    return math.prod(q[:-1]) * k[-2] * (q[-1] + v[-1])


def _native_mha(args: tuple[Any, ...]) -> int:
    """nn.MultiheadAttention's fast path: the three input projections, the attention and the output
    projection, as its slow path (linear, bmm, linear) is counted."""
    query, key, value, embed_dim, heads = args[:5]
    batch, length, _ = _shape(query)
    source = _shape(key)[1]
    head = embed_dim // heads
    projections = batch * (length + 2 * source) * embed_dim * embed_dim + batch * length * embed_dim * embed_dim
    attention = batch * heads * length * source * 2 * head
    return projections + attention


class OpCounter:
    """A dispatch mode (``with counter:``) adding each op's MACs to ``counter.macs[counter.current]``, and
    its fvcore MACs to ``counter.fvcore[counter.current]``."""

    def __init__(self) -> None:
        self.torch = torch = import_torch("counting multiply-accumulates")
        from torch.utils import flop_counter
        from torch.overrides import TorchFunctionMode
        from torch.utils._python_dispatch import TorchDispatchMode

        aten = torch.ops.aten
        self.registry = dict(flop_counter.flop_registry)
        self.extra: dict[Any, Callable[[tuple[Any, ...]], int]] = {}
        cpu_flash = getattr(aten, "_scaled_dot_product_flash_attention_for_cpu", None)
        if cpu_flash is not None:
            self.extra[cpu_flash] = lambda args: _attention_macs(*args[:3])
        native_mha = getattr(aten, "_native_multi_head_attention", None)
        if native_mha is not None:
            self.extra[native_mha] = _native_mha
        self.fvcore_rules = _fvcore_rules(aten)
        self.current: str | None = None
        self.macs: dict[str, int] = {}
        self.fvcore: dict[str, int] = {}
        self.torchinfo: dict[str, int] = {}
        self._hook: Any = None
        counter = self

        class Mode(TorchDispatchMode):
            @classmethod
            def _should_skip_dynamo(cls) -> bool:
                return False

            def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
                out = func(*args, **(kwargs or {}))
                counter.count(func, args, kwargs or {}, out)
                return out

        class Fused(TorchFunctionMode):
            """Two functions fvcore sees as one jit op, whatever they dispatch: ``scaled_dot_product_attention``,
            which it has no handle for (0: the products of its math form are not fvcore's to count), and
            ``einsum``, which it counts from numpy's path (graph/einsum_count.py), not from the ``bmm`` it
            becomes."""

            def __torch_function__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
                if func is not sdpa and func is not einsum:
                    return func(*args, **(kwargs or {}))
                if func is einsum and not counter.fvcore_paused:
                    counter.add_fvcore(_einsum_fvcore(args))
                counter.fvcore_paused += 1
                try:
                    return func(*args, **(kwargs or {}))
                finally:
                    counter.fvcore_paused -= 1

        sdpa, einsum = torch.nn.functional.scaled_dot_product_attention, torch.einsum
        self.fvcore_paused = 0
        self.mode = Mode()
        self.functions = Fused()

    def __enter__(self) -> OpCounter:
        self.functions.__enter__()
        self.mode.__enter__()
        self._hook = self.torch.nn.modules.module.register_module_forward_hook(self._module_called)
        return self

    def __exit__(self, *exc: Any) -> None:
        self._hook.remove()
        self.mode.__exit__(*exc)
        self.functions.__exit__(*exc)

    def _module_called(self, module: Any, args: Any, output: Any) -> None:
        """torchinfo's count for every call of a module without children, as its forward hooks count:
        inside an opaque module, or inside a leaf that has children of its own."""
        if self.current is None or next(module.children(), None) is not None:
            return
        size = torchinfo_size(_shapes(output, self.torch))
        if size is not None:
            macs = torchinfo_macs(type(module).__name__, ((n, p.numel()) for n, p in module.named_parameters()), size)
            self.torchinfo[self.current] = self.torchinfo.get(self.current, 0) + macs

    def count(self, func: Any, args: tuple[Any, ...], kwargs: dict[str, Any], out: Any) -> None:
        if self.current is None:
            return
        packet = func.overloadpacket
        flops = 0
        if packet in self.extra:
            flops = 2 * self.extra[packet](args)
        elif packet in self.registry:
            flops = self.registry[packet](*args, **kwargs, out_val=out)
        if flops:
            self.macs[self.current] = self.macs.get(self.current, 0) + flops // 2
        rule = self.fvcore_rules.get(packet)
        if rule is not None and not self.fvcore_paused:
            self.add_fvcore(rule(args, out))

    def add_fvcore(self, macs: int) -> None:
        if self.current is not None:
            self.fvcore[self.current] = self.fvcore.get(self.current, 0) + macs


def _einsum_fvcore(args: tuple[Any, ...]) -> int:
    """fvcore's count of ``torch.einsum(equation, *operands)`` (or with the operands in one list)."""
    from .einsum_count import fvcore_einsum

    if not args or not isinstance(args[0], str):
        return 0
    operands = args[1] if len(args) == 2 and isinstance(args[1], (list, tuple)) else args[1:]
    return fvcore_einsum(args[0], [_shape(o) for o in operands])


def _shapes(value: Any, torch: Any) -> Any:
    """A module's output with each tensor replaced by its shape."""
    if isinstance(value, torch.Tensor):
        return _shape(value)
    if isinstance(value, dict):
        return {k: _shapes(v, torch) for k, v in value.items()}
    if isinstance(value, (tuple, list)):
        return [_shapes(v, torch) for v in value]
    return None


def _fvcore_rules(aten: Any) -> dict[Any, Callable[[tuple[Any, ...], Any], int]]:
    """fvcore's handles (fvcore/nn/jit_handles.py), for the aten ops they become at dispatch: matrix
    products over the product of the output and the contracted size, convolutions as flop_counter has
    them, the normalisations per element, 2-d nearest and bilinear upsampling per output element."""

    def product(args: tuple[Any, ...], out: Any) -> int:
        a = _shape(args[-2]) if len(args) > 2 else _shape(args[0])
        return math.prod(_shape(out)) * a[-1]

    def convolution(args: tuple[Any, ...], out: Any) -> int:
        x, w = _shape(args[0]), _shape(args[1])
        transposed = bool(args[6]) if len(args) > 6 else False
        return x[0] * math.prod(w) * math.prod((x if transposed else _shape(out))[2:])

    def per_element(factor: int) -> Callable[[tuple[Any, ...], Any], int]:
        return lambda args, out: factor * math.prod(_shape(args[0]))

    def norm(weight_index: int) -> Callable[[tuple[Any, ...], Any], int]:
        return lambda args, out: math.prod(_shape(args[0])) * (5 if len(args) > weight_index and
                                                               args[weight_index] is not None else 4)

    def batch_norm(training_index: int | None) -> Callable[[tuple[Any, ...], Any], int]:
        """fvcore's ``batchnorm_flop_jit``: in training as the other norms, else 2 per element (1 without
        an affine weight)."""
        def rule(args: tuple[Any, ...], out: Any) -> int:
            affine = len(args) > 1 and args[1] is not None
            if training_index is not None and len(args) > training_index and args[training_index]:
                return norm(1)(args, out)
            return math.prod(_shape(args[0])) * (2 if affine else 1)
        return rule

    return {
        aten.mm: product, aten.addmm: product, aten.bmm: product,  # not baddbmm: fvcore has no handle for it
        aten.convolution: convolution,
        aten.native_group_norm: norm(1), aten.native_layer_norm: norm(2),
        aten.upsample_nearest2d: lambda args, out: math.prod(_shape(out)),
        aten.upsample_bilinear2d: lambda args, out: 4 * math.prod(_shape(out)),
        aten._adaptive_avg_pool2d: per_element(1),
        aten.native_batch_norm: batch_norm(5),  # what BatchNorm runs at dispatch on the CPU
        aten._native_batch_norm_legit_no_training: batch_norm(None),
    }
