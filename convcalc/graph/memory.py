"""One training step (or one inference) simulated on fake tensors, every tensor storage followed from its
creation to its release (docs/memory.md).

The model's parameters and buffers are swapped for fake ones (``FakeTensorMode``: shapes, dtypes and
storages, no data, no memory) and the step runs as PyTorch runs it: ``zero_grad(set_to_none=True)``,
forward in train mode (under CPU autocast with ``amp``), the loss ``sum`` of every output tensor, backward,
the optimizer's step, its state created by a first step beforehand (steady state). A dispatch mode sees
every op's outputs; a storage is counted from the op that creates it until Python or autograd drops its
last reference (a weak reference's callback), so what autograd saves and when things are freed is
PyTorch's own decision, not a per-op model. Kinds: parameters, buffers, gradients (tagged by
``register_post_accumulate_grad_hook``), optimizer state, the input, activations (what autograd saves,
seen by ``saved_tensors_hooks``), and everything else (temporaries). Kernel-internal scratch that no
dispatcher sees (oneDNN workspaces, im2col columns) is outside what this predicts.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from ..errors import ConvcalcError
from ..memory import KINDS, Breakdown, NodeMemory, StepMemory
from ..torchcheck import error_line, import_torch

ROOT = "(model)"
AMP_DTYPES = {"bf16": "bfloat16", "fp16": "float16"}


class _Tracker:
    """Live storages (by identity), their bytes and kind; the peak and what was alive at it."""

    def __init__(self) -> None:
        self.live: dict[int, list[Any]] = {}  # id -> [bytes, kind, weakref]
        self.totals = dict.fromkeys(KINDS, 0)
        self.current = 0
        self.peak = -1
        self.peak_breakdown = Breakdown()
        self.peak_where: tuple[str, Any] = ("", None)
        self.where: tuple[str, Any] = ("", None)

    def add(self, storage: Any, kind: str, size: int | None = None) -> bool:
        key = id(storage)
        if key in self.live:
            return False
        size = int(storage.nbytes()) if size is None else size
        self.live[key] = [size, kind, weakref.ref(storage, lambda _, key=key: self._gone(key))]
        self.totals[kind] += size
        self.current += size
        return True

    def _gone(self, key: int) -> None:
        size, kind, _ = self.live.pop(key)
        self.totals[kind] -= size
        self.current -= size

    def retag(self, storage: Any, kind: str) -> None:
        entry = self.live.get(id(storage))
        if entry is not None and entry[1] != kind:
            self.totals[entry[1]] -= entry[0]
            self.totals[kind] += entry[0]
            entry[1] = kind

    def kind_of(self, storage: Any) -> str | None:
        entry = self.live.get(id(storage))
        return entry[1] if entry else None

    def size_of(self, storage: Any) -> int:
        entry = self.live.get(id(storage))
        return entry[0] if entry else int(storage.nbytes())

    def check_peak(self) -> None:
        if self.current > self.peak:
            self.peak = self.current
            self.peak_breakdown = Breakdown(**self.totals)
            self.peak_where = self.where


class Simulator:
    """A model with fake parameters, buffers and optimizer state in place of its own, ready to simulate
    steps at any batch size (``with Simulator(...) as sim: sim.step(shape)``); the model's own tensors
    are put back on exit. The optimizer's state is made as a first step makes it (a step on zero
    gradients), so every simulated step is a steady-state one."""

    def __init__(self, model: Any, mode: str = "train", optimizer: str = "adam", amp: str | None = None,
                 backend: str | None = None):
        self.torch = import_torch("computing memory")
        self.model, self.mode, self.optimizer_name, self.amp = model, mode, optimizer, amp
        self.backend = backend or ("fake" if amp else "meta")
        if self.backend == "fake":
            from torch._subclasses.fake_tensor import FakeTensorMode

            self.fake_mode: Any = FakeTensorMode(allow_non_fake_inputs=True)
        else:
            self.fake_mode = _MetaMode(self.torch)
        self.names = {id(m): name or ROOT for name, m in model.named_modules()}
        self._swap: Any = None

    def __enter__(self) -> Simulator:
        torch = self.torch
        self._swap = _fake_state(self.model, self.fake_mode, torch)
        self.params, self.buffers = self._swap.__enter__()
        self.optimizer = None
        if self.mode == "train":
            self.optimizer = _optimizer(self.optimizer_name, [p for p in self.params if p.requires_grad], torch)
            with self.fake_mode:  # the state a first step creates (its lists of ops: the same tensors, faster)
                for p in self.params:
                    if p.requires_grad:
                        p.grad = torch.zeros_like(p)
                for group in self.optimizer.param_groups:
                    group["foreach"] = True
                self.optimizer.step()
                for group in self.optimizer.param_groups:
                    group["foreach"] = None  # as constructed: torch picks the single-tensor loop on CPU
                self.optimizer.zero_grad(set_to_none=True)
        return self

    def __exit__(self, *exc: Any) -> None:
        self._swap.__exit__(*exc)

    def step(self, input_shape: tuple[int, ...]) -> StepMemory:
        """The memory of one step on an input of ``input_shape`` (float32), nothing allocated."""
        torch, model, opt, mode = self.torch, self.model, self.optimizer, self.mode
        tracker = _Tracker()
        nodes: dict[str, NodeMemory] = {}
        saved: dict[int, tuple[int, bool]] = {}
        with self.fake_mode:
            x = torch.empty(*input_shape)
        model.train(mode == "train")
        for p in self.params:
            tracker.add(p.untyped_storage(), "parameters")
        for b in self.buffers:
            tracker.add(b.untyped_storage(), "buffers")
        for value in _state_tensors(opt, torch):
            tracker.add(value.untyped_storage(), "optimizer_state")
        tracker.add(x.untyped_storage(), "inputs")
        tracker.check_peak()
        stack = _ModuleStack(self.names, model, torch)
        recorder = _recorder(tracker, stack, nodes, torch)
        hooks = [p.register_post_accumulate_grad_hook(lambda p: tracker.retag(p.grad.untyped_storage(), "gradients"))
                 for p in self.params if p.requires_grad and mode == "train"]
        try:
            with self.fake_mode, recorder, stack:
                if mode == "train":
                    with torch.autograd.graph.saved_tensors_hooks(*_saving(tracker, stack, nodes, saved,
                                                                           self.params)):
                        grads = _train_step(model, opt, x, self.amp, torch, (tracker, stack))
                else:
                    grads = 0
                    with torch.inference_mode(), _autocast(self.amp, torch):
                        stack.phase = "forward"
                        model(x)
        except ConvcalcError:
            raise
        except (Exception, SystemExit) as exc:
            where = stack.top() or ROOT
            raise ConvcalcError(f"the model does not run on fake tensors at {where} ({error_line(exc)}): an op "
                                f"that depends on the values (nonzero, .item(), a Python branch on a tensor) "
                                f"cannot be simulated") from None
        finally:
            for handle in hooks:
                handle.remove()
            model.train(mode == "train")
        phase, where = tracker.peak_where
        return StepMemory(
            mode=mode, batch=input_shape[0], peak_bytes=tracker.peak, peak_phase=phase or "before the step",
            peak_node=stack.describe(where), breakdown=tracker.peak_breakdown,
            parameter_bytes=sum(int(p.untyped_storage().nbytes()) for p in self.params),
            buffer_bytes=sum(int(b.untyped_storage().nbytes()) for b in self.buffers),
            gradient_bytes=grads,
            optimizer_state_bytes=sum(int(v.untyped_storage().nbytes()) for v in _state_tensors(opt, torch)),
            saved_bytes=sum(size for size, _ in saved.values()),
            saved_parameter_bytes=sum(size for size, is_param in saved.values() if is_param),
            input_bytes=int(x.untyped_storage().nbytes()),
            nodes=list(nodes.values()))


def inference_peak(model: Any, input_shape: tuple[int, ...], eager: bool = True) -> int:
    """``memory --infer``'s peak: one forward in eval mode under ``torch.inference_mode()``, float32, every
    storage followed as the simulation follows it; run for real on zeros where the input is small enough
    to run eagerly (``inspect`` has just run it), else simulated on fake tensors."""
    torch = import_torch("computing memory")
    if not eager:
        return simulate(model, input_shape, "infer").peak_bytes
    tracker = _Tracker()
    for p in model.parameters():
        tracker.add(p.untyped_storage(), "parameters")
    for b in model.buffers():
        tracker.add(b.untyped_storage(), "buffers")
    x = torch.zeros(*input_shape)
    tracker.add(x.untyped_storage(), "inputs")
    tracker.check_peak()
    stack = _ModuleStack({}, model, torch)
    stack.phase = "forward"
    model.eval()
    with torch.inference_mode(), _recorder(tracker, stack, {}, torch):
        model(x)
    return tracker.peak


def simulate(model: Any, input_shape: tuple[int, ...], mode: str = "train", optimizer: str = "adam",
             amp: str | None = None) -> StepMemory:
    """The memory of one step of ``model`` on an input of ``input_shape`` (float32), without allocating it."""
    with Simulator(model, mode, optimizer, amp) as simulator:
        return simulator.step(tuple(input_shape))


def _state_tensors(optimizer: Any, torch: Any) -> list[Any]:
    """Every tensor in the optimizer's state (Adam's step counters included)."""
    if optimizer is None:
        return []
    return [v for state in optimizer.state.values() for v in state.values() if isinstance(v, torch.Tensor)]


def _train_step(model: Any, opt: Any, x: Any, amp: str | None, torch: Any, tracking: Any) -> int:
    """zero_grad(set_to_none=True), forward (autocast with ``amp``), the sum of every output tensor,
    backward, step; returns the gradients' bytes. ``tracking`` marks the phases for the tracker."""
    tracker, stack = tracking if tracking is not None else (None, None)

    def phase(name: str) -> None:
        if stack is not None:
            stack.phase = name

    opt.zero_grad(set_to_none=True)
    phase("forward")
    with _autocast(amp, torch):
        output = model(x)
        tensors = [t for t in _tensors(output, torch) if t.is_floating_point() and t.requires_grad]
        if not tensors:
            raise ConvcalcError("the model's output has no tensor that requires a gradient: nothing to train")
        loss = tensors[0].sum()
        for t in tensors[1:]:
            loss = loss + t.sum()
    del output, tensors
    phase("backward")
    loss.backward()
    del loss
    grads = sum(p.grad.untyped_storage().nbytes() for group in opt.param_groups for p in group["params"]
                if p.grad is not None)
    phase("optimizer step")
    opt.step()
    if tracker is not None:
        tracker.check_peak()
    return grads


def _tensors(value: Any, torch: Any) -> Iterator[Any]:
    """Every tensor of a model's output: a tensor, or tuples, lists and dicts of them (in order)."""
    if isinstance(value, torch.Tensor):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _tensors(item, torch)
    elif isinstance(value, (tuple, list)):
        for item in value:
            yield from _tensors(item, torch)


@contextmanager
def _autocast(amp: str | None, torch: Any) -> Iterator[None]:
    if amp is None:
        yield
        return
    with torch.autocast("cpu", dtype=getattr(torch, AMP_DTYPES[amp])):
        yield


def _optimizer(name: str, params: list[Any], torch: Any) -> Any:
    """The optimizers with their defaults on CPU (``foreach`` and ``fused`` as torch picks for CPU)."""
    if not params:
        raise ConvcalcError("the model has no trainable parameters: nothing to train (--infer measures inference)")
    if name == "sgd":
        return torch.optim.SGD(params, lr=0.01)
    if name == "momentum":
        return torch.optim.SGD(params, lr=0.01, momentum=0.9)
    return (torch.optim.Adam if name == "adam" else torch.optim.AdamW)(params)


class _MetaMode:
    """What a FakeTensorMode is to the simulation, for the meta device: a context that changes nothing
    (meta tensors dispatch to meta kernels by themselves) and makes tensors of the same shape and dtype."""

    def __init__(self, torch: Any):
        self.torch = torch

    def __enter__(self) -> _MetaMode:
        self._device = self.torch.device("meta")
        self._previous = self.torch.get_default_device()
        self.torch.set_default_device("meta")
        return self

    def __exit__(self, *exc: Any) -> None:
        self.torch.set_default_device(self._previous)

    def from_tensor(self, tensor: Any) -> Any:
        return self.torch.empty_strided(tensor.shape, tensor.stride(), dtype=tensor.dtype, device="meta")


@contextmanager
def _fake_state(model: Any, fake_mode: Any, torch: Any) -> Iterator[tuple[list[Any], list[Any]]]:
    """The model with fake parameters and buffers in place of its own (restored afterwards): a copy of
    neither is made, so a model of any size costs nothing here."""
    swapped: list[tuple[Any, str, str, Any]] = []
    params: dict[int, Any] = {}
    buffers: dict[int, Any] = {}
    try:
        for module in model.modules():
            for name, value in list(module._parameters.items()):
                if value is None:
                    continue
                if id(value) not in params:
                    params[id(value)] = torch.nn.Parameter(fake_mode.from_tensor(value.detach()),
                                                           requires_grad=value.requires_grad)
                swapped.append((module, "_parameters", name, value))
                module._parameters[name] = params[id(value)]
            for name, value in list(module._buffers.items()):
                if value is None:
                    continue
                if id(value) not in buffers:
                    buffers[id(value)] = fake_mode.from_tensor(value)
                swapped.append((module, "_buffers", name, value))
                module._buffers[name] = buffers[id(value)]
        yield list(params.values()), list(buffers.values())
    finally:
        for module, where, name, value in swapped:
            getattr(module, where)[name] = value
        model.eval()


class _ModuleStack:
    """The modules running now, by forward hooks on every module; in backward, the module whose forward
    created the autograd node running now, by the nodes' sequence numbers (each module call's forward
    creates the nodes numbered from its start to its end)."""

    def __init__(self, names: dict[int, str], model: Any, torch: Any):
        self.names, self.torch = names, torch
        self.stack: list[str] = []
        self.calls: list[tuple[int, int, str]] = []  # (first sequence number, end, module)
        self.phase = ""
        self.handles: list[Any] = []
        self._open: list[int] = []

    def __enter__(self) -> _ModuleStack:
        hooks = self.torch.nn.modules.module
        self.handles = [hooks.register_module_forward_pre_hook(self._enter),
                        hooks.register_module_forward_hook(self._exit, always_call=True)]
        return self

    def __exit__(self, *exc: Any) -> None:
        for handle in self.handles:
            handle.remove()

    def _sequence(self) -> int:
        return int(self.torch._C._autograd._get_sequence_nr())

    def _enter(self, module: Any, args: Any) -> None:
        name = self.names.get(id(module))
        if name is not None:
            self.stack.append(name)
            self._open.append(self._sequence())

    def _exit(self, module: Any, args: Any, output: Any) -> None:
        name = self.names.get(id(module))
        if name is not None and self.stack and self.stack[-1] == name:
            self.stack.pop()
            self.calls.append((self._open.pop(), self._sequence(), name))

    def top(self) -> str | None:
        return self.stack[-1] if self.stack else None

    def where(self) -> tuple[str, Any]:
        """The phase, and the module (forward) or the autograd node's sequence number (backward) now."""
        if self.phase == "backward":
            node = self.torch._C._current_autograd_node()
            return self.phase, (node.name(), node._sequence_nr()) if node is not None else None
        return self.phase, self.top() or (ROOT if self.phase == "forward" else None)

    def describe(self, where: Any) -> str | None:
        """A module's name, or in backward the module whose forward made the node, with the node."""
        if where is None or isinstance(where, str):
            return where
        function, sequence = where
        inside = [(end - start, name) for start, end, name in self.calls if start <= sequence < end]
        return f"{min(inside)[1]} ({function})" if inside else function


def _recorder(tracker: _Tracker, stack: _ModuleStack, nodes: dict[str, NodeMemory], torch: Any) -> Any:
    """A dispatch mode that counts every new storage an op creates (and in forward, for the module that
    runs it), then checks the peak."""
    from torch.utils._python_dispatch import TorchDispatchMode
    from torch.utils._pytree import tree_flatten

    batch_norm = torch.ops.aten.native_batch_norm.default

    class Recorder(TorchDispatchMode):
        @classmethod
        def _should_skip_dynamo(cls) -> bool:
            return False  # nothing here is compiled: no wrapper, and no torch._dynamo to import (1.5 s)

        def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
            out = func(*args, **(kwargs or {}))
            tracker.where = stack.where()
            sizes = _cpu_sizes(func, args, out, batch_norm, torch)
            for i, value in enumerate(tree_flatten(out)[0]):
                if isinstance(value, torch.Tensor) and tracker.add(value.untyped_storage(), "temporaries",
                                                                   sizes.get(i)):
                    if stack.phase == "forward":
                        node = _node(nodes, stack.top() or ROOT)
                        node.out_bytes += tracker.size_of(value.untyped_storage())
            tracker.check_peak()
            return out

    return Recorder()


def _cpu_sizes(func: Any, args: Any, out: Any, batch_norm: Any, torch: Any) -> dict[int, int]:
    """Bytes of outputs where the meta kernel a fake tensor runs and the CPU kernel disagree: CPU's
    ``native_batch_norm`` keeps its saved mean and inverse std in float32 for a bfloat16 or float16 input
    (the accumulation type), where the meta kernel gives them the input's dtype (tested against the
    profiler and saved_tensors_hooks)."""
    if func is batch_norm and args[0].dtype in (torch.bfloat16, torch.float16) and isinstance(out, tuple):
        return {i: out[i].numel() * 4 for i in (1, 2) if out[i].numel()}
    return {}


def _node(nodes: dict[str, NodeMemory], name: str) -> NodeMemory:
    if name not in nodes:
        nodes[name] = NodeMemory(name)
    return nodes[name]


def _saving(tracker: _Tracker, stack: _ModuleStack, nodes: dict[str, NodeMemory], saved: dict[int, tuple[int, bool]],
            params: list[Any]) -> tuple[Any, Any]:
    """saved_tensors_hooks that see every tensor autograd saves: its storage counts once in the total,
    once per node that saves it, and a temporary becomes an activation. The hook hands autograd a
    detached view of the same storage (no reference from the saved value back to its own graph, which
    would keep it alive until the garbage collector runs), so lifetimes are those of a plain run."""
    param_ids = {id(p.untyped_storage()) for p in params}
    per_node: dict[str, set[int]] = {}

    def pack(tensor: Any) -> Any:
        storage = tensor.untyped_storage()
        key, size = id(storage), tracker.size_of(storage)
        if key not in saved:
            saved[key] = (size, key in param_ids)
        name = stack.top() or ROOT
        if key not in per_node.setdefault(name, set()):
            per_node[name].add(key)
            _node(nodes, name).saved_bytes += size
        if tracker.kind_of(storage) == "temporaries":
            tracker.retag(storage, "activations")
        return tensor.detach()

    return pack, lambda tensor: tensor
