"""Tracing what can be traced: torch.fx over the whole model, and a submodule fx cannot trace (a Python
branch on a shape, an iteration over a tensor) made an opaque leaf, called whole, so that the rest of the
graph keeps its structure (docs/inspect.md, "How a model is traced").

The tracer tries each submodule's forward as fx does; where it raises, the nodes that forward had added are
erased, the tracer's module stack and parameter cache are put back, and the submodule becomes one
``call_module`` node. Submodules inside it that trace are traced on the next call of it, never: an opaque
module is seen whole. The innermost module that fails is the one made opaque, so a failure deep inside a
block costs that block's smallest failing part only. A failure in the model's own forward cannot be
contained that way: the model is traced again with the functions its library registers as not traceable
kept whole (timm's), and where that fails too, it raises and the caller falls back to forward hooks.
torch is imported on use.
"""

from __future__ import annotations

from typing import Any

from ..torchcheck import error_line, import_torch
from .fx import trace_failure

MAX_OPAQUE = 200


def partial_trace(model: Any) -> tuple[Any, dict[str, str]]:
    """The model's GraphModule, and the submodules made opaque with the reason fx gave for each."""
    torch = import_torch("tracing a model")
    fx = torch.fx

    class Tracer(fx.Tracer):
        def __init__(self, kept_whole: tuple[Any, ...] = ()) -> None:
            super().__init__(autowrap_functions=kept_whole)
            self.opaque: dict[str, str] = {}
            self._cache: dict[str, Any] | None = None

        def is_leaf_module(self, m: Any, module_qualified_name: str) -> bool:
            return module_qualified_name in self.opaque or super().is_leaf_module(m, module_qualified_name)

        def getattr(self, attr: str, attr_val: Any, parameter_proxy_cache: dict[str, Any]) -> Any:
            self._cache = parameter_proxy_cache  # a local of trace(): kept to undo what a failed forward cached
            return super().getattr(attr, attr_val, parameter_proxy_cache)

        def call_module(self, m: Any, forward: Any, args: Any, kwargs: Any) -> Any:
            name = self.path_of_module(m)
            if not name or self.is_leaf_module(m, name) or len(self.opaque) >= MAX_OPAQUE:
                return super().call_module(m, forward, args, kwargs)
            mark = self.graph._root.prev  # the last node before this forward
            stack = dict(self.module_stack)
            cached = dict(self._cache) if self._cache is not None else None
            try:
                return super().call_module(m, forward, args, kwargs)
            except (Exception, SystemExit) as exc:
                node = self.graph._root.prev
                while node is not mark:  # newest first: each node's users are gone before it
                    previous = node.prev
                    self.graph.erase_node(node)
                    node = previous
                self.module_stack.clear()
                self.module_stack.update(stack)
                if cached is not None and self._cache is not None:
                    self._cache.clear()
                    self._cache.update(cached)
                self.opaque[name] = _reason(exc)
                return super().call_module(m, forward, args, kwargs)

    tracer = Tracer()
    try:
        graph = tracer.trace(model, concrete_args=_defaults(model))
    except (Exception, SystemExit):
        registered = _registered_functions()
        if not registered:
            raise
        tracer = Tracer(registered)  # only then: a function kept whole hides the layout moves inside it
        graph = tracer.trace(model, concrete_args=_defaults(model))
    name = model.__class__.__name__
    return fx.GraphModule(tracer.root, graph, name), dict(tracer.opaque)


def _registered_functions() -> tuple[Any, ...]:
    """The functions a model library has registered as not traceable, kept whole as its own feature
    extractor keeps them (timm's ``register_notrace_function``: crossvit's ``scale_image`` branches on a
    shape in the model's own forward), where the model cannot be traced otherwise. Read only from a library
    the model has already imported."""
    import sys

    registry = sys.modules.get("timm.layers._fx")
    functions = getattr(registry, "get_notrace_functions", lambda: [])()
    return tuple(f for f in functions if callable(f) and hasattr(f, "__globals__"))


def _defaults(model: Any) -> dict[str, Any] | None:
    """The forward's arguments after the input that have defaults (``mask=None``), fixed at them: the
    model is inspected as ``model(x)`` calls it, not with every optional argument an input."""
    import inspect

    try:
        parameters = list(inspect.signature(model.forward).parameters.values())
    except (TypeError, ValueError):
        return None
    fixed = {p.name: p.default for p in parameters[1:]
             if p.default is not inspect.Parameter.empty and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)}
    return fixed or None


def _reason(exc: BaseException) -> str:
    """fx's words for why a forward could not be traced, with the user's line."""
    text = trace_failure(exc)
    return text.removeprefix("torch.fx could not trace the model").strip() or error_line(exc)
