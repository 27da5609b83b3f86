"""``convcalc rf``: the per-layer table, the totals, the holes, the unit box and torch's checks; and the
``convcalc.rf/1`` document (docs/architecture.md, "JSON")."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from rich.console import Group
from rich.text import Text

from ..spec import format_layer
from .common import (
    MAX_TABLE_ROWS,
    PlainTable,
    byte_size,
    json_number,
    line,
    measured_document,
    measured_lines,
    per_dim_text,
    sizes,
    verify_document,
    verify_lines,
)

if TYPE_CHECKING:
    from ..cost import LayerCost
    from ..gridding import Coverage
    from ..receptive import LayerField, StackField, UnitBox
    from ..reports import RfReport


def rf_view(report: RfReport) -> Group:
    """The table, the totals, the holes, the unit box and the torch checks, for a terminal."""
    field = report.field
    parts: list[Any] = [rf_table(field, report.costs)]
    if field.rejected is not None:
        parts.append(line(f"the stack stops before layer {field.rejected[0]}, which PyTorch rejects on this "
                          f"input; the totals are those of the layers above", "yellow"))
    parts.append(line(f"receptive field {per_dim_text(field.receptive_field)}, jump {per_dim_text(field.jump)}, "
                      f"start {per_dim_text(field.start)}", "bold"))
    if field.varies:
        parts.append(line("* transposed convolutions: the receptive field differs between output positions; the "
                          "largest is shown (exact), jump and start are the average placement", "dim"))
    if field.rejected is None:  # the holes of a stack torch stops would describe layers it never reaches
        parts += coverage_lines(report.coverage)
    if report.costs:
        parts.append(line(f"parameters {report.params:,}, MACs {report.macs:,} for one forward pass of the batch (fvcore's "
                          f"count; FLOPs = 2 x MACs), output {sizes(report.costs[-1].out_shape)} "
                          f"({byte_size(report.costs[-1].out_bytes)} as float32)"))
    if report.unit is not None and report.boxes is not None:
        parts += unit_lines(report.unit, report.boxes)
    if report.answer is not None and report.verdict is not None:
        ours = sizes(field.out) if field.out is not None else "rejects it"
        parts += verify_lines(report.answer, report.verdict, ours)
    if report.measured is not None:
        parts += measured_lines(report.measured)
    return Group(*parts)


def rf_table(field: StackField, costs: Sequence[LayerCost] | None = None) -> PlainTable:
    """One row per layer: spec, op, effective kernel, stride, jump, receptive field, start (and out);
    with ``costs`` the full output shape, parameters and MACs instead of the output size."""
    table = PlainTable("receptive field, layer by layer")
    columns = ["#", "spec", "op", "eff. kernel", "stride", "jump", "rf", "start"]
    if costs is not None:
        columns += ["out shape", "params", "MACs"]
    elif field.in_size is not None:
        columns.append("out")
    for name in columns:
        text = name in ("spec", "op")
        table.add_column(name, justify="left" if text else "right", style="bold" if name == "rf" else None,
                         no_wrap=True)
    if costs is not None and costs:
        table.add_row("", "input", "", "", "", "1", "1", "0", sizes(costs[0].shape), "", "")
    elif field.in_size is not None:
        table.add_row("", "input", "", "", "", "1", "1", "0", sizes(field.in_size))
    rows: list[LayerField | None] = list(field.layers)
    hidden = len(rows) - MAX_TABLE_ROWS  # the JSON document keeps every layer
    if hidden > 0:
        head = MAX_TABLE_ROWS * 3 // 4
        rows = rows[:head] + [None] + rows[head + hidden:]
    for f in rows:
        if f is None:
            table.add_row("...", f"{hidden} more layers", *[""] * (len(columns) - 2))
            continue
        row = [str(f.index), format_layer(f.layer), f.layer.torch_name, per_dim_text(f.layer.effective_kernel_size),
               per_dim_text(f.layer.stride), per_dim_text(f.jump), per_dim_text(f.receptive_field),
               per_dim_text(f.start)]
        if costs is not None:
            cost = costs[f.index - 1]
            row += [sizes(cost.out_shape), f"{cost.params:,}", f"{cost.macs:,}"]
        elif field.in_size is not None:
            row.append(sizes(f.out))
        table.add_row(*row)
    return table


def coverage_lines(coverage: Sequence[Coverage] | str) -> list[Text]:
    """How many positions inside the field are never seen, per distinct dimension."""
    if isinstance(coverage, str):
        return [line(f"holes: not counted: {coverage}", "yellow")]
    texts = []
    for c in coverage:
        if c.holes == 0:
            texts.append(f"no holes: all {c.receptive_field} positions inside the field are seen")
        else:
            texts.append(f"holes: {c.holes} of {c.receptive_field} positions inside the field are never seen "
                         f"(largest gap {c.largest_gap}); see `convcalc gridding`")
    if len(set(texts)) == 1:
        return [line(texts[0], "yellow" if coverage[0].holes else "green")]
    return [line(f"dim {i + 1}: {t}", "yellow" if c.holes else "green")
            for i, (t, c) in enumerate(zip(texts, coverage))]


def unit_lines(unit: tuple[int, ...], boxes: Sequence[UnitBox | None]) -> list[Text]:
    """The input box one output unit sees, per dimension, and how much of it is padding."""
    lines = [line(f"output unit {', '.join(map(str, unit))} sees:")]
    for i, box in enumerate(boxes, 1):
        if box is None:
            lines.append(line(f"  dim {i}: no input at all (strides skip it, or every path runs through padding)"))
            continue
        padding = f"{box.padding} of its {box.last - box.first + 1} positions are padding" if box.padding \
            else "no padding"
        holes = f"; {box.holes} position{'s' if box.holes != 1 else ''} between never read" if box.holes else ""
        lines.append(line(f"  dim {i}: input [{box.clipped_first}, {box.clipped_last}] (unclipped "
                          f"[{box.first}, {box.last}]); {padding}{holes}"))
    return lines


def rf_document(report: RfReport) -> dict[str, Any]:
    """The ``convcalc.rf/1`` JSON document (docs/architecture.md)."""
    field = report.field
    layers = []
    for f in field.layers:
        entry: dict[str, Any] = {
            "spec": format_layer(f.layer), "op": f.layer.op,
            "effective_kernel_size": list(f.layer.effective_kernel_size), "stride": list(f.layer.stride),
            "jump": [json_number(j) for j in f.jump], "receptive_field": list(f.receptive_field),
            "start": [json_number(s) for s in f.start]}
        if field.in_size is not None:
            entry["out"] = list(f.out) if f.out is not None else None
        if report.costs is not None:
            cost = report.costs[f.index - 1]
            entry.update(out_shape=list(cost.out_shape), params=cost.params, macs=cost.macs)
        layers.append(entry)
    doc: dict[str, Any] = {
        "schema": "convcalc.rf/1",
        "dims": field.dims,
        "layers": layers,
        "receptive_field": list(field.receptive_field),
        "jump": [json_number(j) for j in field.jump],
        "start": [json_number(s) for s in field.start],
        "varies": field.varies,
        "coverage": _coverage_json(report.coverage),
    }
    if field.in_size is not None:
        doc["in"] = list(field.in_size)
        doc["out"] = list(field.out) if field.out is not None else None
    if report.costs is not None:
        doc.update(shape=list(report.costs[0].shape) if report.costs else None,
                   params=report.params, macs=report.macs)
    if field.rejected is not None:
        doc["error"] = field.rejected[1]
        doc["rejected_layer"] = field.rejected[0]
    if report.expected_rf is not None:
        doc["expected_rf"] = list(report.expected_rf)
    if report.unit is not None and report.boxes is not None:
        doc["unit"] = [[b.clipped_first, b.clipped_last] if b else None for b in report.boxes]
        doc["unit_index"] = list(report.unit)
        doc["unit_padding"] = [b.padding if b else None for b in report.boxes]
        doc["unit_holes"] = [b.holes if b else None for b in report.boxes]
    if report.answer is not None and report.verdict is not None:
        doc["verify"] = verify_document(report.answer, report.verdict)
    if report.measured is not None:
        doc["verify_field"] = measured_document(report.measured)
    return doc


def _coverage_json(coverage: Sequence[Coverage] | str) -> dict[str, Any]:
    if isinstance(coverage, str):
        return {"covered": None, "holes": None, "largest_gap": None, "not_counted": coverage}
    return {"covered": [c.covered for c in coverage], "holes": [c.holes for c in coverage],
            "largest_gap": [c.largest_gap for c in coverage]}
