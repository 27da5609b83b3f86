"""``convcalc inspect``: a model's nodes with their shapes, parameters and fields, and the gradient
measurements; and the ``convcalc.inspect/1`` document (docs/architecture.md, "JSON")."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from rich.console import Group

from ..cost import element_size
from ..graph.costs import ModelTotals, per_batch
from ..graph.fields import GLOBAL, FieldState
from .common import PlainTable, byte_size, agreement, collapsed, json_number, line, number, sizes, spans

if TYPE_CHECKING:
    from ..graph import Field, NodeInfo
    from ..reports import InspectReport


def inspect_view(report: InspectReport) -> Group:
    """The node table, the output's field, the totals, warnings and the gradient measurements."""
    inspection, nodes, measurements = report.inspection, report.nodes, report.measurements
    parts: list[Any] = [inspect_table(inspection, nodes)]
    out = inspection.output
    parts.append(line(f"output {sizes(out.shape) if out.shape else '-'}: receptive field "
                      f"{_field_text(out.fields, 'rf')}{_local_text(out)}, jump {_field_text(out.fields, 'jump')}, start "
                      f"{_field_text(out.fields, 'start')}{_holes_text(out.fields)}", "bold"))
    if any(not isinstance(f, FieldState) and f.varies for n in nodes for f in n.fields):
        parts.append(line("rf a..b: the field differs between output positions (transposed convolutions or "
                          "upsampling), from a to b; jump and start are the average placement", "dim"))
    parts += totals_lines(report)
    parts += [line(f"warning: {w}", "yellow") for w in inspection.warnings]
    for m in measurements or ():
        if m.skipped:
            parts.append(line(f"not measured at {m.node}: {m.skipped}", "yellow"))
            continue
        word, style = agreement(m.agrees)
        where = f"unit {', '.join(map(str, m.unit))}" if m.unit else "one output value"
        parts.append(line(f"PyTorch gradient at {m.node} ({where}, {sizes(m.in_size)} input): {spans(m.measured)}"))
        parts.append(line(f"convcalc: {spans(m.predicted)} -> {word}", style))
    return Group(*parts)


def _field_text(fields: Sequence[Field], what: str) -> str:
    """A node's receptive field (``28..32`` where it differs between positions), jump or start per
    dimension: numbers, ``global``, ``flat`` or ``?`` (unknown)."""
    if not fields:
        return "-"
    texts = []
    for f in fields:
        if isinstance(f, FieldState):
            texts.append((f.value if what == "rf" else "-") if f is not FieldState.UNKNOWN else "?")
        elif what == "rf" and f.varies:
            texts.append(f"{f.receptive_field_min}..{f.receptive_field}")
        else:
            texts.append(number({"rf": f.receptive_field, "jump": f.jump, "start": f.start,
                                 "holes": f.coverage.holes}[what]))
    return collapsed(texts)


def _local_text(node: NodeInfo) -> str:
    """`` (local 851)`` where the local field (the paths that skip every op mixing a whole dimension:
    fields.py, :class:`~convcalc.graph.fields.Flow`) is a set of positions and differs from the field."""
    local = local_field(node)
    if local is None or local == [f.receptive_field for f in node.fields if not isinstance(f, FieldState)]:
        return ""
    return f" (local {collapsed([str(n) for n in local])})"


def local_field(node: NodeInfo) -> list[int] | None:
    """The local receptive field per dimension, or None where some dimension has no positions."""
    fields = node.local_fields
    if not fields or any(isinstance(f, FieldState) for f in fields):
        return None
    return [f.receptive_field for f in fields]  # type: ignore[union-attr]


def _holes_text(fields: Sequence[Field]) -> str:
    """``; the field has holes: 2 positions inside it unseen`` where the output's largest field has holes."""
    holes = [f.coverage.holes for f in fields if not isinstance(f, FieldState)]
    if not any(holes):
        return ""
    return f"; the field has holes: {collapsed([str(h) for h in holes])} positions inside it unseen"


def totals_lines(report: InspectReport) -> list[Any]:
    """Parameters (all of them, not only the rows shown), bytes, and MACs in each convention."""
    t, inspection = report.totals, report.inspection
    if t is None:
        return []
    shown, every = sum(n.params for n in report.nodes), sum(n.params for n in inspection.nodes)
    hidden = "" if shown == t.params or every == shown else f"; the rows shown hold {shown:,} (--all shows every node)"
    return [
        line(f"params {t.params:,} (trainable {t.trainable_params:,}, non-trainable {t.non_trainable_params:,}), "
             f"{byte_size(t.param_bytes)} as {t.dtype}{hidden}"),
        line(f"MACs {macs_text(t.macs.aten)} aten, {macs_text(t.macs.fvcore)} fvcore, "
             f"{macs_text(t.macs.torchinfo)} torchinfo (what each counts: convcalc inspect --help); activations "
             f"{byte_size(t.activation_bytes)} as {t.dtype}"),
        *([line(f"inference peak {byte_size(t.peak_bytes)} (float32: parameters, the input and the activations alive "
                f"at once; training: convcalc memory)")] if t.peak_bytes is not None else []),
    ]


def macs_text(value: int) -> str:
    """``4.09 G``, ``118.0 M``, ``36.9 k``, ``12``: three significant figures at least."""
    for unit, size in (("T", 10**12), ("G", 10**9), ("M", 10**6), ("k", 10**3)):
        if value >= size:
            return f"{value / size:.{2 if value < 10 * size else 1}f} {unit}"
    return str(value)


def inspect_table(inspection: Any, nodes: Sequence[NodeInfo]) -> PlainTable:
    """One row per node shown: name, op, output shape, parameters, receptive field, jump, start (holes)."""
    holes = any(not isinstance(f, FieldState) and f.coverage.holes for n in nodes for f in n.fields)
    title = f"{inspection.model} on {sizes(inspection.input_shape)}" + (
        " (forward hooks, call order)" if not inspection.traced else
        f" (traced: {inspection.traced_as})" if inspection.opaque else "")
    table = PlainTable(title)
    columns = ["node", "op", "shape", "params", "macs", "rf", "jump", "start"] + (["holes"] if holes else [])
    for name in columns:
        table.add_column(name, justify="left" if name in ("node", "op") else "right",
                         style="bold" if name == "rf" else None, overflow="fold", no_wrap=name != "node")
    batch = inspection.input_shape[0]
    for n in nodes:
        row = [n.name, n.op, sizes(n.shape) if n.shape else "-", f"{n.params:,}" if n.params else "",
               macs_text(n.macs.aten * per_batch(n, batch)) if n.macs.aten else "", _field_text(n.fields, "rf") + _local_text(n),
               _field_text(n.fields, "jump"), _field_text(n.fields, "start")]
        if holes:
            row.append(_field_text(n.fields, "holes"))
        table.add_row(*row)
    return table


def _field_json(fields: Sequence[Field]) -> dict[str, Any]:
    if fields and all(f in (FieldState.GLOBAL, FieldState.FLAT) for f in fields) and GLOBAL in fields:
        return {"receptive_field": "global", "receptive_field_min": "global", "jump": None, "start": None,
                "holes": None}
    if not fields or any(isinstance(f, FieldState) for f in fields):
        return {"receptive_field": None, "receptive_field_min": None, "jump": None, "start": None, "holes": None}
    return {"receptive_field": [f.receptive_field for f in fields],
            "receptive_field_min": [f.receptive_field_min for f in fields],
            "jump": [json_number(f.jump) for f in fields], "start": [json_number(f.start) for f in fields],
            "holes": [f.coverage.holes for f in fields]}


def _node_json(node: NodeInfo, batch: int, element_bytes: int) -> dict[str, Any]:
    return {"name": node.name, "op": node.op, "shape": list(node.shape) if node.shape else None,
            "params": node.params, "macs": node.macs.aten * per_batch(node, batch),
            "out_bytes": node.out_numel * element_bytes if node.shape else None, **_field_json(node.fields),
            "local_receptive_field": local_field(node)}


def totals_json(totals: ModelTotals) -> dict[str, Any]:
    return {"params": totals.params, "trainable_params": totals.trainable_params, "dtype": totals.dtype,
            "param_bytes": totals.param_bytes, "activation_bytes": totals.activation_bytes,
            "peak_bytes": totals.peak_bytes,
            "macs": dict(totals.macs._asdict())}


def inspect_document(report: InspectReport) -> dict[str, Any]:
    """The ``convcalc.inspect/1`` JSON document (docs/architecture.md)."""
    inspection, nodes, measurements, totals = report.inspection, report.nodes, report.measurements, report.totals
    batch, element_bytes = inspection.input_shape[0], element_size(totals.dtype)
    doc: dict[str, Any] = {
        "schema": "convcalc.inspect/1",
        "model": inspection.model,
        "input": list(inspection.input_shape),
        "traced": inspection.traced_as,
        "opaque": [{"module": name, "reason": reason} for name, reason in inspection.opaque.items()],
        "nodes": [_node_json(n, batch, element_bytes) for n in nodes],
        "output": _node_json(inspection.output, batch, element_bytes),
        "totals": totals_json(totals),
        "warnings": list(inspection.warnings),
    }
    if measurements is not None:
        doc["verify"] = [{"node": m.node, "agrees": m.agrees, "skipped": m.skipped, "in": list(m.in_size),
                          "unit": list(m.unit), "measured": [[f.first, f.last, f.holes] for f in m.measured],
                          "computed": [[f.first, f.last, f.holes] for f in m.predicted]}
                         for m in measurements]
    return doc
