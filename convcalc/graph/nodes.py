"""The fx graph's nodes as the field rules read them (graph/rules.py, graph/module_rules.py): one call with
its arguments' flows, the torch.nn class a module is, and the small readers of fx nodes. No torch.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from .fields import Flow, node_argument

Shape = tuple[int, ...] | None
class Probe(Protocol):
    """graph/probe.py's PositionProbe, as the rules call it."""

    def __call__(self, node: Any, source: Flow) -> bool | None: ...

    def reads_everything(self, node: Any, source: Flow) -> bool: ...

    def window(self, node: Any, source: Flow) -> list[tuple[int, ...]] | None: ...

    def strided(self, node: Any, source: Flow, shape: tuple[int, ...]) -> list[tuple[int, tuple[int, ...]]] | None: ...


@dataclass
class Call:
    """One node as the rules read it: its fx node, the flows so far, its recorded output shape (a tuple,
    or a list for several tensors) and the probe for ops without a rule."""

    node: Any
    name: str
    flows: dict[str, Flow]
    shape: Any
    probe: Probe | None = None
    notes: list[str] = field(default_factory=list)
    given: list[Flow] | None = None  # the inputs, where there is no fx node (forward hooks)

    @property
    def out(self) -> Shape:
        return self.shape if isinstance(self.shape, tuple) else None

    @property
    def inputs(self) -> list[Flow]:
        if self.given is not None:
            return self.given
        return [self.flows[a.name] for a in node_args(self.node) if a.name in self.flows]

    @property
    def tensors(self) -> list[Flow]:
        return [f for f in self.inputs if f.spatial()]

    def arg(self, name: str, position: int) -> Flow | None:
        """The flow of one argument (None for a constant, a number, or a missing argument)."""
        value = node_argument(self.node, name, position, None)
        flow = self.flows.get(value.name) if hasattr(value, "name") and hasattr(value, "op") else None
        return flow if flow is not None and flow.spatial() else None

    def arg_rank(self, name: str, position: int) -> int | None:
        value = node_argument(self.node, name, position, None)
        shape = meta_shape(value) if hasattr(value, "meta") else None
        return len(shape) if shape is not None else None


def torch_class(module: Any) -> str:
    """The torch.nn class a module is: its own where torch.nn defines it, else the nearest torch.nn base
    class (timm's ``Linear`` is a ``Linear``, ``ScaledStdConv2d`` a ``Conv2d``); its own name otherwise."""
    for cls in type(module).__mro__:
        home = getattr(cls, "__module__", "")
        if home.startswith("torch.nn.") and cls.__name__ != "Module" and not home.startswith("torch.nn.modules.module"):
            return cls.__name__
    return type(module).__name__


def meta_shape(node: Any) -> tuple[int, ...] | None:
    shape = node.meta.get("convcalc_shape")
    return shape if isinstance(shape, tuple) else None


def node_args(node: Any) -> list[Any]:
    """The graph nodes a node reads, in its arguments and keyword arguments."""
    return _nodes_in(node.args, node.kwargs)


def _nodes_in(*values: Any) -> list[Any]:
    """The graph nodes inside ``values`` (nested in lists, tuples and dicts), in order."""
    found: list[Any] = []

    def collect(value: Any) -> None:
        if hasattr(value, "op") and hasattr(value, "name"):
            found.append(value)
        elif isinstance(value, (list, tuple)):
            for item in value:
                collect(item)
        elif isinstance(value, dict):
            for item in value.values():
                collect(item)

    collect(values)
    return found


def first_flow(args: Any, flows: dict[str, Flow]) -> Flow | None:
    for arg in _nodes_in(args):
        flow = flows.get(arg.name)
        if flow is not None and not flow.constant:
            return flow.items[0] if flow.items else flow
    return None


def function_name(node: Any) -> str:
    target = node.target
    if isinstance(target, str):  # a method: x.mul_(2) is mul, as torch.mul_ is
        return target[:-1] if target.endswith("_") and not target.endswith("__") else target
    return getattr(target, "__name__", str(target)).rstrip("_") or str(target)


def node_key(fx_node: Any) -> str:
    """A graph node's name as shown: a module's qualified name, else fx's node name."""
    return str(fx_node.target) if fx_node.op == "call_module" else fx_node.name
