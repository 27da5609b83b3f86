"""Tracing a model: torch.fx graph, an eager shape pass on zeros, then the field rules node by node.

Shapes come from running the traced graph eagerly on a zero tensor (CPU, eval mode, batch 1), never
from guessing. Models fx cannot trace fall back to forward hooks in call order, which give exact
shapes but fields that hold only where the model does not branch.
"""

from __future__ import annotations

import contextlib
import copy
import io
import math
import operator
import warnings
from collections.abc import Sequence
from typing import Any

from ..errors import ConvcalcError
from ..layer import format_size
from ..torchcheck import error_line, import_torch, mib
from . import moves
from .costs import (
    aliases,
    function_macs,
    fvcore_closed_form,
    module_macs,
    multihead_fvcore,
    torchinfo_macs,
    torchinfo_size,
)
from .dispatch import OpCounter
from .fields import SHOWN, UNKNOWN, Flow, Inspection, Macs, NodeInfo, input_flow, node_argument, reshaped
from .fx import shape_recorder, trace_failure
from .memory import inference_peak
from .module_rules import through_module
from .nodes import (
    Call,
    Probe,
    first_flow,
    function_name,
    meta_shape,
    node_args,
    node_key,
    torch_class,
)
from .partial import partial_trace
from .probe import PositionProbe
from .rules import through_function


def inspect_model(model: Any, input_shape: Sequence[int], name: str = "model") -> Inspection:
    """Trace ``model`` and work out every node's shape and field for an input of ``input_shape``."""
    torch = import_torch("inspecting a model")
    shape = tuple(input_shape)
    if any(n < 1 for n in shape):
        raise ConvcalcError(f"{{input}} {format_size(shape)}: every size must be at least 1, the batch too",
                            parameters=("input",))
    if len(shape) < 3:
        raise ConvcalcError(f"--input {format_size(shape)} has rank {len(shape)}: expected N x C and 1 to 3 spatial "
                            f"sizes, e.g. 1x3x224x224")
    sample = math.prod(shape[1:])
    if max(shape) >= 2**31 or sample >= 2**40:
        raise ConvcalcError(f"{{input}} {format_size(shape)} is beyond what a torch tensor can hold here",
                            parameters=("input",))
    model = model.eval()
    try:
        graph, opaque = partial_trace(model)
        graph.convcalc_opaque = opaque
        graph.convcalc_leaves = {name: (type(m).__name__, tuple((n, p.numel()) for n, p in m.named_parameters()))
                                 for name, m in model.named_modules() if name and next(m.children(), None) is None}
    except (Exception, SystemExit) as exc:
        if sample * 4 > EAGER_LIMIT_BYTES:
            raise ConvcalcError(f"the model cannot be traced ({trace_failure(exc)}), and running it on a "
                                f"{format_size(shape)} input (a {mib(sample * 4)} tensor; limit "
                                f"{mib(EAGER_LIMIT_BYTES)}) is too large") from None
        return _counted(_hook_inspection(model, torch.zeros(1, *shape[1:]), shape, name, trace_failure(exc)), model,
                        eager=sample * shape[0] * 4 <= EAGER_LIMIT_BYTES)
    notes = []
    if sample * 4 * LARGE_INPUT_FACTOR > EAGER_LIMIT_BYTES:  # shapes on the meta device first: how big is it?
        largest = _meta_shapes(graph, torch, shape)
        if largest * 4 * 3 > EAGER_LIMIT_BYTES:
            notes.append(f"shapes from the meta device: an eager run on zeros would hold tensors of "
                         f"{mib(largest * 4)} (limit {mib(EAGER_LIMIT_BYTES)} for three of them)")
            return _counted(walk(graph, shape, name, notes), model, eager=False)
    try:
        with torch.no_grad(), warnings.catch_warnings(), OpCounter() as counter:
            warnings.simplefilter("ignore")  # torch's notes (e.g. 'same' padding copies) are not ours to print
            shape_recorder(graph, torch, counter).run(torch.zeros(1, *shape[1:]))
    except (Exception, SystemExit) as exc:
        from .sizes import diagnose_input

        meant = _batch_first(graph, shape)
        diagnosis = None if meant else diagnose_input(graph, shape)
        raise (meant or (ConvcalcError(diagnosis) if diagnosis else _raised_on_zeros(exc, shape))) from None
    return _counted(walk(graph, shape, name, probe=PositionProbe(graph)), model,
                    eager=sample * shape[0] * 4 * LARGE_INPUT_FACTOR <= EAGER_LIMIT_BYTES)


def _counted(inspection: Inspection, model: Any, eager: bool = True) -> Inspection:
    """The model's parameters, each once (a GraphModule holds only those the forward pass uses). A model
    that is one leaf module (torch.nn:Conv2d) is traced into functions, but torchinfo counts it as one
    module call: its torchinfo MACs go on the node that gives the output."""
    inspection.params = sum(p.numel() for p in model.parameters())
    inspection.trainable_params = sum(p.numel() for p in model.parameters() if p.requires_grad)
    inspection.peak_bytes = inference_peak(model, inspection.input_shape, eager)
    last = next((n for n in inspection.nodes if n.flow is inspection.output.flow), None)
    if inspection.traced and next(model.children(), None) is None and last is not None and last.shape:
        batch1 = (1, *last.shape[1:])
        macs = module_macs(torch_class(model), model, (1, *inspection.input_shape[1:]), batch1)
        last.macs = last.macs._replace(torchinfo=macs.torchinfo)
    return inspection


EAGER_LIMIT_BYTES = 256 * 2**20  # the largest tensor an eager shape pass may hold (times three)
LARGE_INPUT_FACTOR = 16  # inputs above EAGER_LIMIT_BYTES / 16 are first sized on the meta device


def _meta_shapes(graph: Any, torch: Any, shape: tuple[int, ...]) -> int:
    """Run a meta-device copy of the graph (nothing allocated), record its shapes on ``graph``'s nodes,
    and return the element count of the largest tensor."""
    meta = copy.deepcopy(graph).to("meta")
    try:
        with torch.no_grad(), warnings.catch_warnings(), OpCounter() as counter:
            warnings.simplefilter("ignore")
            shape_recorder(meta, torch, counter).run(torch.zeros(1, *shape[1:], device="meta"))
    except (Exception, SystemExit) as exc:
        raise ConvcalcError(f"the model did not run on the meta device on a {format_size(shape)} input (too "
                            f"large to run eagerly): {error_line(exc)}") from None
    recorded = {node.name: node.meta.get("convcalc_shape") for node in meta.graph.nodes}
    dispatched = {node.name: node.meta.get("convcalc_dispatched") for node in meta.graph.nodes}
    largest = 1
    for node in graph.graph.nodes:
        node.meta["convcalc_shape"] = recorded.get(node.name)
        node.meta["convcalc_dispatched"] = dispatched.get(node.name)
        largest = max([largest, *(math.prod(s) for s in _tensor_shapes(recorded.get(node.name)))])
    return largest


def _tensor_shapes(recorded: Any) -> list[tuple[int, ...]]:
    """Every tensor shape in a recorded value (graph/fx.py: a tuple, or nested lists of them)."""
    if isinstance(recorded, tuple):
        return [recorded]
    return [s for item in recorded or [] for s in _tensor_shapes(item)]



def _raised_on_zeros(exc: BaseException, shape: tuple[int, ...], model: Any = None) -> ConvcalcError:
    """The model's error on the zero input, or the input the user meant (:func:`_batch_first`)."""
    meant = _batch_first(model, shape) if model is not None else None
    return meant or ConvcalcError(f"the model raised on a zero input of shape {format_size(shape)}: "
                                  f"{error_line(exc)}")


def _batch_first(model: Any, shape: tuple[int, ...]) -> ConvcalcError | None:
    """Where the model fails on ``shape`` but runs with a batch of 1 in front (3x32x32 given for
    1x3x32x32), the error that asks whether that was meant; else None."""
    if len(shape) not in (3, 4) or math.prod(shape) * 4 > EAGER_LIMIT_BYTES:
        return None
    torch = import_torch()
    try:  # a GraphModule prints its own traceback to stderr when it raises: not the user's to read
        with torch.no_grad(), warnings.catch_warnings(), contextlib.redirect_stderr(io.StringIO()):
            warnings.simplefilter("ignore")
            model(torch.zeros(1, *shape))
    except (Exception, SystemExit):
        return None
    return ConvcalcError(f"{{input}} {format_size(shape)} is read as N x C x spatial and the model fails on it; "
                         f"did you mean {format_size((1, *shape))} (the batch first)? The model runs on that",
                         parameters=("input",))


GAVE_UP = "its field grew past 2^22 input positions or a period of 4,096 units: not followed, unknown"


def walk(graph: Any, shape: tuple[int, ...], name: str, notes: list[str] | None = None,
         probe: Probe | None = None) -> Inspection:
    """Every node's shape, MACs and flow, in graph order; then the local walk (fields.py :class:`Flow`),
    whose fields go to each node's ``local_fields``."""
    modules = dict(graph.named_modules())
    flows: dict[str, Flow] = {}
    local: dict[str, Flow] = {}
    nodes: list[NodeInfo] = []
    notes = list(notes or [])
    output: NodeInfo | None = None
    live = _live(graph)
    opaque: dict[str, str] = getattr(graph, "convcalc_opaque", {})
    notes += [f"{name} ({type(modules[name]).__name__}) is an opaque leaf: torch.fx could not trace it"
              f"{' ' + reason if reason.startswith('at ') else ': ' + reason}" for name, reason in opaque.items()]
    for node in graph.graph.nodes:
        info = _node_info(node, modules, flows, shape, notes, opaque, probe)
        info.modules = tuple(node.meta.get("nn_module_stack", {}))
        if node not in live and info.macs.fvcore:  # fvcore's jit trace drops what the output does not use
            info.macs = info.macs._replace(fvcore=0)
        flows[node.name] = info.flow
        local[node.name] = _node_info(node, modules, local, shape, [], opaque, probe, local=True).flow
        info.local_fields = list(local[node.name].fields)
        if node.op == "output":
            output = info
        else:
            nodes.append(info)
    assert output is not None
    _inlined_leaf_calls(graph, {n.name: n for n in nodes})
    return Inspection(name, shape, nodes, output, notes, True, graph, opaque=dict(opaque))


def _inlined_leaf_calls(graph: Any, infos: dict[str, NodeInfo]) -> None:
    """torchinfo counts each call of a module without children; fx traces through such a module outside
    torch.nn (timm's Linear, ScaledStdConv2d, LayerNorm2d), leaving its ops, not a call. Each call is the
    run of nodes fx recorded under it (``nn_module_stack`` names each call apart: ``a``, ``a@1``), and
    its output the last of them: torchinfo's count for the call goes there."""
    leaves: dict[str, tuple[str, tuple[tuple[str, int], ...]]] = getattr(graph, "convcalc_leaves", {})
    called = {str(n.target) for n in graph.graph.nodes if n.op == "call_module"}
    last: dict[str, Any] = {}
    for fx_node in graph.graph.nodes:
        stack = fx_node.meta.get("nn_module_stack")
        if fx_node.op != "call_module" and stack:
            key, (qualified, _) = next(reversed(stack.items()))
            if qualified in leaves and qualified not in called:
                last[key] = fx_node
    for fx_node in last.values():
        qualified = next(reversed(fx_node.meta["nn_module_stack"].values()))[0]
        size = torchinfo_size(fx_node.meta.get("convcalc_shape"))
        info = infos.get(fx_node.name)
        if size is not None and info is not None:
            label, params = leaves[qualified]
            info.macs = info.macs._replace(torchinfo=info.macs.torchinfo + torchinfo_macs(label, params, size))


def _live(graph: Any) -> set[Any]:
    """The graph nodes the output depends on."""
    live: set[Any] = set()
    stack = [node for node in graph.graph.nodes if node.op == "output"]
    while stack:
        node = stack.pop()
        if node not in live:
            live.add(node)
            stack.extend(node_args(node))
    return live


def _node_info(node: Any, modules: dict[str, Any], flows: dict[str, Flow], input_shape: tuple[int, ...],
               notes: list[str], opaque: dict[str, str], probe: Probe | None, local: bool = False) -> NodeInfo:
    batch = input_shape[0]
    shape = meta_shape(node)
    shown_shape = (batch, *shape[1:]) if shape else None
    if node.op == "placeholder" and (shape is None or node.prev.op == "placeholder"):  # mask=None, fixed
        return NodeInfo(node.name, "argument", None, None, 0, Flow(None, constant=True))
    if node.op == "placeholder":
        return NodeInfo(node.name, "input", None, input_shape, 0, input_flow(shape, len(input_shape) - 2, local))
    if node.op == "get_attr":
        return NodeInfo(node.name, "get_attr", None, shape, 0, Flow(shape, constant=True))  # a parameter: no batch
    if node.op == "output":
        source = first_flow(node.args, flows)
        out_shape = source.shape if source is not None else None
        return NodeInfo("output", "output", None, (batch, *out_shape[1:]) if out_shape else None, 0,
                        source or Flow(None, constant=True))
    meta = node.meta.get("convcalc_shape")
    if node.op == "call_function" and node.target is operator.getitem:
        return NodeInfo(node.name, "getitem", None, shown_shape, 0, moves.getitem(node, flows, shape, notes),
                        aliases=True)
    inputs = [flows[a.name] for a in node_args(node) if a.name in flows]
    source_shape = next((f.shape for f in inputs if not f.constant), None) or next(
        (f.shape for f in inputs if f.shape is not None), None)  # a module on parameters alone (Swin v2's cpb_mlp)
    if node.op == "call_module":
        module = modules[node.target]
        label, shown = torch_class(module), type(module).__name__
        is_opaque = str(node.target) in opaque
        call = Call(node, label, flows, meta, probe, notes)
        kind, flow, note = through_module(module, call, is_opaque)
        note = _said(note, flow, inputs, shown)
        if note:
            notes.append(f"{node.target} ({shown}): {note}")
        macs = module_macs(label, module, source_shape, shape)
        if label == "MultiheadAttention":
            macs = macs._replace(fvcore=_multihead_fvcore(module, node))
        macs = _dispatched(node, macs, not is_opaque and fvcore_closed_form(label, module=True))
        return NodeInfo(str(node.target), shown, kind, shown_shape, sum(p.numel() for p in module.parameters()),
                        flow, note, macs, aliases(label, module, node.target))
    label = function_name(node)
    if meta is None:  # sizes, shapes, numbers: nothing positional
        return NodeInfo(node.name, label, None, None, 0, Flow(None, constant=True))
    kind, flow, note = through_function(Call(node, label, flows, meta, probe, notes))
    note = _said(note, flow, inputs, label)
    if note:
        notes.append(f"{node.name} ({label}): {note}")
    if flow.constant:  # computed from parameters alone: its shape has no batch
        shown_shape = shape
    macs = _dispatched(node, function_macs(label, node, [f.shape for f in inputs], shape),
                       fvcore_closed_form(label, module=False))
    return NodeInfo(node.name, label, kind, shown_shape if isinstance(meta, tuple) else None, 0, flow, note, macs,
                    aliases(label, None, node.target))


def _said(note: str | None, flow: Flow, inputs: list[Flow], label: str) -> str | None:
    """A node's note: its rule's; else why its field was given up (:data:`GAVE_UP`); else, for a field a
    rule lost without saying why, that the op met its positions laid out in a way it has no rule for (a
    convolution after a space-to-depth view, say). Every unknown field is named."""
    def unknown_in(f: Flow) -> bool:
        return any(x is UNKNOWN for x in f.fields) or any(unknown_in(i) for i in f.items or [])

    if note or flow.gave_up:
        return note or GAVE_UP
    if not unknown_in(flow) or any(unknown_in(f) for f in inputs if not f.constant):
        return None
    return (f"{label} meets positions laid out in a way it has no rule for (split across axes, or not where it "
            f"reads them): its field is unknown")


def _multihead_fvcore(module: Any, node: Any) -> int:
    query, key = (node_argument(node, name, i, None) for i, name in enumerate(("query", "key")))
    shapes = [meta_shape(v) if hasattr(v, "meta") else None for v in (query, key)]
    if shapes[0] is None or shapes[1] is None:
        return 0
    need_weights = bool(node_argument(node, "need_weights", 4, True))
    masked = node_argument(node, "attn_mask", 5, None) is not None
    return multihead_fvcore(module, shapes[0], shapes[1], need_weights, masked)


def _dispatched(node: Any, macs: Macs, closed_form: bool) -> Macs:
    """A node's MACs: ``aten`` from the ops it dispatched (graph/dispatch.py: flop_counter's formulas, by
    construction); fvcore's by its closed-form rule, or where there is none (an opaque module, an
    unfamiliar function), by the ops it dispatched; torchinfo's for a module call from the calls of the
    modules without children it ran."""
    dispatched = node.meta.get("convcalc_dispatched")
    if dispatched is None:
        return macs
    aten, fvcore, torchinfo = dispatched
    return Macs(aten, macs.fvcore if closed_form else fvcore,
                torchinfo if node.op == "call_module" else macs.torchinfo)


def _hook_inspection(model: Any, x: Any, shape: tuple[int, ...], name: str, failure: str) -> Inspection:
    """Shapes from forward hooks on the model's leaf modules, fields composed in call order."""
    torch = import_torch("inspecting a model")
    calls: list[tuple[str, Any, tuple[int, ...], tuple[int, ...]]] = []
    handles = []
    for module_name, module in model.named_modules():
        if next(module.children(), None) is None:  # leaves, the root too where it is one
            def hook(mod: Any, args: Any, out: Any, module_name: str = module_name) -> None:
                first = args[0] if args and hasattr(args[0], "shape") else None
                if first is not None and hasattr(out, "shape"):
                    calls.append((module_name or type(mod).__name__, mod, tuple(first.shape), tuple(out.shape)))
            handles.append(module.register_forward_hook(hook))
    try:
        with torch.no_grad():
            model(x)
    except (Exception, SystemExit) as exc:
        for handle in handles:
            handle.remove()
        handles = []
        raise _raised_on_zeros(exc, shape, model) from None
    finally:
        for handle in handles:
            handle.remove()
    flow = input_flow(tuple(x.shape), len(shape) - 2)
    nodes = [NodeInfo("input", "input", None, shape, 0, flow)]
    for module_name, module, in_shape, out_shape in calls:
        label = torch_class(module)
        source = flow.derive(in_shape) if flow.shape == in_shape else reshaped(flow, in_shape)
        kind, flow, note = through_module(module, Call(None, label, {}, out_shape, given=[source]))
        if flow.gave_up and not note:
            note = GAVE_UP
        macs = module_macs(label, module, in_shape, out_shape)
        nodes.append(NodeInfo(module_name, type(module).__name__, kind, (shape[0], *out_shape[1:]), sum(
            p.numel() for p in module.parameters()), flow, note, macs, aliases(label, module, None)))
    notes = [failure, "fell back to forward hooks: shapes are exact, but the receptive fields compose the "
                         "modules in the order they ran and cannot be guaranteed where the model branches or "
                         "calls functions between modules; functions between modules are not counted in MACs"]
    notes += [f"{n.name} ({n.op}): {n.note}" for n in nodes if n.note]
    output = NodeInfo("output", "output", None, nodes[-1].shape, 0, nodes[-1].flow)
    return Inspection(name, shape, nodes, output, notes, False, None)


def shown_nodes(inspection: Inspection, show_all: bool = False, node: str | None = None) -> list[NodeInfo]:
    """Geometry-changing nodes and merges (or all, or those on the path to ``node``)."""
    nodes = inspection.nodes
    if node is not None:
        target = inspection.node(node)
        keep = ancestors(inspection, target.name)
        nodes = [n for n in nodes if n.name in keep]
    if show_all:
        return nodes
    return [n for n in nodes if n.kind in SHOWN or n.op == "input" or (node is not None and n.name == node)]


def ancestors(inspection: Inspection, name: str) -> set[str]:
    """The names of the nodes ``name`` depends on (itself included). A module called several times (one
    ReLU reused) is one name but several graph nodes: the walk follows every node, once."""
    if inspection.graph is None:  # hooks: call order is all there is
        names = [n.name for n in inspection.nodes]
        return set(names[:names.index(name) + 1])
    by_name = {}
    for fx_node in inspection.graph.graph.nodes:
        by_name[node_key(fx_node)] = fx_node
    keep: set[str] = set()
    visited: set[Any] = set()
    stack = [by_name[name]]
    while stack:
        current = stack.pop()
        if current in visited:
            continue
        visited.add(current)
        keep.add(node_key(current))
        stack.extend(node_args(current))
    return keep
