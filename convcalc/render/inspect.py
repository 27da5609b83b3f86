"""``convcalc inspect``: a model's nodes with their shapes, parameters and fields, and the gradient
measurements; and the ``convcalc.inspect/1`` document (docs/design.md, "JSON")."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from rich.console import Group

from ..graph.fields import GLOBAL, FieldState
from .common import PlainTable, agreement, collapsed, json_number, line, number, sizes, spans

if TYPE_CHECKING:
    from ..graph import Field, NodeInfo
    from ..reports import InspectReport


def inspect_view(report: InspectReport) -> Group:
    """The node table, the output's field, warnings and the gradient measurements."""
    inspection, nodes, measurements = report.inspection, report.nodes, report.measurements
    parts: list[Any] = [inspect_table(inspection, nodes)]
    out = inspection.output
    parts.append(line(f"output {sizes(out.shape) if out.shape else '-'}: receptive field "
                      f"{_field_text(out.fields, 'rf')}, jump {_field_text(out.fields, 'jump')}, start "
                      f"{_field_text(out.fields, 'start')}", "bold"))
    if any(not isinstance(f, FieldState) and f.varies for n in nodes for f in n.fields):
        parts.append(line("* transposed convolutions or upsampling: fields differ between output positions; the "
                          "largest is shown, jump and start are the average placement", "dim"))
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
    """A node's receptive field, jump or start per dimension: numbers, ``global``, ``flat`` or ``?`` (unknown)."""
    if not fields:
        return "-"
    texts = []
    for f in fields:
        if isinstance(f, FieldState):
            texts.append((f.value if what == "rf" else "-") if f is not FieldState.UNKNOWN else "?")
        else:
            texts.append(number({"rf": f.receptive_field, "jump": f.jump, "start": f.start,
                                 "holes": f.coverage.holes}[what]))
    return collapsed(texts)


def inspect_table(inspection: Any, nodes: Sequence[NodeInfo]) -> PlainTable:
    """One row per node shown: name, op, output shape, parameters, receptive field, jump, start (holes)."""
    holes = any(not isinstance(f, FieldState) and f.coverage.holes for n in nodes for f in n.fields)
    title = f"{inspection.model} on {sizes(inspection.input_shape)}" + ("" if inspection.traced else
                                                                        " (forward hooks, call order)")
    table = PlainTable(title)
    columns = ["node", "op", "shape", "params", "rf", "jump", "start"] + (["holes"] if holes else [])
    for name in columns:
        table.add_column(name, justify="left" if name in ("node", "op") else "right",
                         style="bold" if name == "rf" else None, overflow="fold", no_wrap=name != "node")
    for n in nodes:
        row = [n.name, n.op, sizes(n.shape) if n.shape else "-", f"{n.params:,}" if n.params else "",
               _field_text(n.fields, "rf"), _field_text(n.fields, "jump"), _field_text(n.fields, "start")]
        if holes:
            row.append(_field_text(n.fields, "holes"))
        table.add_row(*row)
    return table


def _field_json(fields: Sequence[Field]) -> dict[str, Any]:
    if fields and all(f in (FieldState.GLOBAL, FieldState.FLAT) for f in fields) and GLOBAL in fields:
        return {"receptive_field": "global", "jump": None, "start": None, "holes": None}
    if not fields or any(isinstance(f, FieldState) for f in fields):
        return {"receptive_field": None, "jump": None, "start": None, "holes": None}
    return {"receptive_field": [f.receptive_field for f in fields], "jump": [json_number(f.jump) for f in fields],
            "start": [json_number(f.start) for f in fields], "holes": [f.coverage.holes for f in fields]}


def _node_json(node: NodeInfo) -> dict[str, Any]:
    return {"name": node.name, "op": node.op, "shape": list(node.shape) if node.shape else None,
            "params": node.params, **_field_json(node.fields)}


def inspect_document(report: InspectReport) -> dict[str, Any]:
    """The ``convcalc.inspect/1`` JSON document (docs/design.md)."""
    inspection, nodes, measurements = report.inspection, report.nodes, report.measurements
    doc: dict[str, Any] = {
        "schema": "convcalc.inspect/1",
        "model": inspection.model,
        "input": list(inspection.input_shape),
        "traced": "fx" if inspection.traced else "forward hooks",
        "nodes": [_node_json(n) for n in nodes],
        "output": _node_json(inspection.output),
        "warnings": list(inspection.warnings),
    }
    if measurements is not None:
        doc["verify"] = [{"node": m.node, "agrees": m.agrees, "skipped": m.skipped, "in": list(m.in_size),
                          "unit": list(m.unit), "measured": [[f.first, f.last, f.holes] for f in m.measured],
                          "computed": [[f.first, f.last, f.holes] for f in m.predicted]}
                         for m in measurements]
    return doc
