"""Formatting, kept apart from computation (as torchinfo does): rich tables and JSON documents."""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Iterable, Sequence
from fractions import Fraction
from typing import TYPE_CHECKING, Any, NamedTuple

from rich.console import Console, Group
from rich.table import Table
from rich.text import Text

from .layer import POOLS, Layer, format_size, size_keeping_padding
from .spec import format_layer

if TYPE_CHECKING:  # the out path loads none of these: they are imported where they are used
    from .aspp import Branch
    from .checks import CheckResult
    from .cost import LayerCost
    from .gridding import Coverage, GriddingReport
    from .receptive import LayerField, StackField, UnitBox, UnitField
    from .torchcheck import CheckVerify, MeasuredField, TapCount, TorchAnswer, Verdict


def console(stderr: bool = False) -> Console:
    """A console on the current stdout/stderr (so that test runners capturing them see the output)."""
    return Console(stderr=stderr, highlight=False)


def print_json(document: dict[str, Any]) -> None:
    """Exactly one JSON object on stdout, nothing else."""
    sys.stdout.write(dumps(document) + "\n")


def dumps(value: Any, indent: str = "") -> str:
    """JSON indented by two spaces, with lists of plain values and flat objects kept on one line."""
    inner = indent + "  "
    if isinstance(value, dict) and value and not all(map(_flat, value.values())) or \
            isinstance(value, dict) and indent == "":
        items = [f"{inner}{json.dumps(str(k))}: {dumps(v, inner)}" for k, v in value.items()]
        return "{\n" + ",\n".join(items) + f"\n{indent}}}"
    if isinstance(value, list) and not all(map(_flat, value)):
        items = [inner + dumps(v, inner) for v in value]
        return "[\n" + ",\n".join(items) + f"\n{indent}]"
    return json.dumps(value)


def _flat(value: Any) -> bool:
    """A value that fits on one line: no objects inside, or an object of plain values and lists."""
    if isinstance(value, dict):
        return all(not isinstance(v, (dict, list)) or (isinstance(v, list) and all(map(_plain, v)))
                   for v in value.values())
    if isinstance(value, list):
        return all(map(_plain, value))
    return True


def _plain(value: Any) -> bool:
    return not isinstance(value, dict) and (not isinstance(value, list) or all(map(_plain, value)))


def print_error(message: str, detail: str | None = None) -> None:
    """One red line on stderr naming the problem, and for bad text the text with a caret under it."""
    err = console(stderr=True)
    err.print(Text(f"error: {message}", style="bold red"), soft_wrap=True)
    if detail:
        err.print(Text(detail), soft_wrap=True)


def sizes(values: tuple[int, ...] | None) -> str:
    """``(256, 256)`` -> ``256x256``: sizes written the way they are typed."""
    return format_size(values) if values is not None else "rejected"


class OutReport(NamedTuple):
    """Everything ``convcalc out`` found: our answer (or rejection), and torch's when asked."""

    layer: Layer
    in_size: tuple[int, ...]
    out: tuple[int, ...] | None
    error: str | None = None
    expected: tuple[int, ...] | None = None
    answer: TorchAnswer | None = None
    verdict: Verdict | None = None
    cost: LayerCost | None = None
    shape: tuple[int, ...] | None = None  # N x C x spatial, with --shape


def out_table(report: OutReport) -> Table:
    """One row per spatial dimension: input, kernel, effective kernel, stride, padding, dilation, out."""
    layer = report.layer
    table = Table(title=layer_title(layer), title_justify="left")
    columns = ["dim", "in", "kernel", "effective", "stride", "pad l/r", "dilation"]
    if layer.op == "conv_transpose":
        columns.append("output_padding")
    columns.append("out")
    for name in columns:
        table.add_column(name, justify="right", style="bold" if name == "out" else None)
    for i in range(layer.dims):
        left, right = layer.pads[i]
        row = [str(i + 1), str(report.in_size[i]), str(layer.kernel_size[i]),
               str(layer.effective_kernel_size[i]), str(layer.stride[i]), f"{left}/{right}",
               str(layer.dilation[i])]
        if layer.op == "conv_transpose":
            row.append(str(layer.output_padding[i]))
        row.append(str(report.out[i]) if report.out else "-")
        table.add_row(*row)
    return table


def layer_title(layer: Layer) -> str:
    """The torch call this layer stands for, e.g. ``Conv2d(kernel_size=3, padding=2, dilation=2)``."""
    args = [f"kernel_size={_arg(layer.kernel_size)}"]
    default_stride = layer.kernel_size if layer.op in POOLS else (1,) * layer.dims
    if layer.stride != default_stride:
        args.append(f"stride={_arg(layer.stride)}")
    if layer.padding != (0,) * layer.dims:
        args.append(f"padding={_arg(layer.padding)}")
    if layer.dilation != (1,) * layer.dims:
        args.append(f"dilation={_arg(layer.dilation)}")
    if any(layer.output_padding):
        args.append(f"output_padding={_arg(layer.output_padding)}")
    if layer.ceil_mode:
        args.append("ceil_mode=True")
    return f"{layer.torch_name}({', '.join(args)})"


def _arg(value: tuple[int, ...] | str) -> str:
    if isinstance(value, str):
        return repr(value)
    return str(value[0]) if len(set(value)) == 1 else str(value)


def formula_lines(layer: Layer, in_size: tuple[int, ...], out: tuple[int, ...]) -> list[str]:
    """The output-size formula with its numbers, once per distinct dimension."""
    return _once_per_distinct_dim([_formula(layer, i, in_size[i], out[i]) for i in range(layer.dims)])


def _once_per_distinct_dim(lines: list[str]) -> list[str]:
    """One line when every dimension says the same, else each line labelled with its dimension."""
    if len(set(lines)) == 1:
        return lines[:1]
    return [f"dim {i + 1}: {line}" for i, line in enumerate(lines)]


def _formula(layer: Layer, i: int, n: int, out: int) -> str:
    s, e = layer.stride[i], layer.effective_kernel_size[i]
    left, right = layer.pads[i]
    if layer.op == "conv":
        return f"out = floor(({n} + {left} + {right} - {e}) / {s}) + 1 = {out}"
    if layer.op == "conv_transpose":
        return (f"out = ({n} - 1) * {s} - 2*{left} + {e} + {layer.output_padding[i]} = {out}"
                "   [(in - 1)*stride - 2*padding + effective kernel + output_padding]")
    if not layer.ceil_mode:
        return f"out = floor(({n} + 2*{left} - {e}) / {s}) + 1 = {out}"
    raw = (n + 2 * left - e + s - 1) // s + 1
    text = f"out = floor(({n} + 2*{left} - {e} + ({s} - 1)) / {s}) + 1 = {raw}"
    if raw != out:
        text += (f"; the last window would start at ({raw} - 1)*{s} = {(raw - 1) * s} >= in + padding = "
                 f"{n + left}, so it is dropped: out = {out}")
    return text


def keep_size_lines(layer: Layer) -> list[str]:
    """Which padding keeps every input size (stride 1 only), per distinct dimension."""
    return _once_per_distinct_dim([_keep_size(layer, i, p) for i, p in enumerate(size_keeping_padding(layer))])


def _keep_size(layer: Layer, i: int, pad: int | None) -> str:
    k, s, d = layer.kernel_size[i], layer.stride[i], layer.dilation[i]
    if pad is not None:
        extra = f" + {layer.output_padding[i]}" if layer.op == "conv_transpose" else ""
        return f"padding {pad} keeps the size: p = (d*(k-1){extra})/2 = ({d}*({k}-1){extra})/2 = {pad}"
    if s != 1:
        return f"no padding keeps every input size at stride {s}"
    total = d * (k - 1) + (layer.output_padding[i] if layer.op == "conv_transpose" else 0)
    if total % 2:
        same = " (padding='same' pads it asymmetrically)" if layer.op == "conv" else ""
        return f"no symmetric padding keeps the size: it would need {total} in total, an odd number{same}"
    return f"no padding keeps the size: it would need {total // 2} > kernel_size // 2 = {k // 2}"


def line(text: str, style: str | None = None) -> Text:
    """A line that is never wrapped (terminals wrap it; pipes and tests see it whole)."""
    return Text(text, style=style or "", no_wrap=True, overflow="ignore")


def verify_lines(answer: TorchAnswer | None, verdict: Verdict | None, ours: str) -> list[Text]:
    """What torch said, then our answer and the verdict, then any notes."""
    if answer is None or verdict is None:
        return []
    how = "eager" if answer.eager else "meta device"
    theirs = sizes(answer.out) if answer.out is not None else f"rejects it: {answer.error}"
    if answer.out_shape is not None and "parameters" in ours:
        theirs = f"{sizes(answer.out_shape)}, {answer.params:,} parameters"
    word, style = _agreement(verdict.agrees)
    lines = [line(f"PyTorch {answer.version} ({answer.device}, {how}): {theirs}"),
             line(f"convcalc: {ours} -> {word}", style)]
    return lines + [line(f"note: {note}", "yellow") for note in _notes(answer, verdict)]


def _notes(answer: TorchAnswer, verdict: Verdict) -> list[str]:
    """torch's note on the run and the verdict's caveat, each once."""
    return list(dict.fromkeys(note for note in (answer.note, verdict.caveat) if note))


def _agreement(agrees: bool, word: str = "agrees") -> tuple[str, str]:
    """The word and style of a torch cross-check's verdict."""
    return (word, "green") if agrees else ("DISAGREES", "bold red")


def out_view(report: OutReport) -> Group:
    """The table, the formula, the size-keeping padding and the verification, for a terminal."""
    parts: list[Any] = [out_table(report)]
    if report.out is not None:
        parts += [line(text) for text in formula_lines(report.layer, report.in_size, report.out)]
        parts += [line(text, "dim") for text in keep_size_lines(report.layer)]
    if report.cost is not None:
        parts += cost_lines(report.cost)
    ours = sizes(report.out) if report.out is not None else "rejects it"
    if report.cost is not None and report.answer is not None and report.answer.out_shape is not None:
        ours = f"{sizes(report.cost.out_shape)}, {report.cost.params:,} parameters"
    parts += verify_lines(report.answer, report.verdict, ours)
    return Group(*parts)


def cost_lines(cost: LayerCost) -> list[Text]:
    """The channel side: full shapes, what each group sees, parameters, MACs and output memory."""
    from .cost import describe_groups

    lines = [line(f"shape {sizes(cost.shape)} -> {sizes(cost.out_shape)}", "bold")]
    if cost.layer.op in POOLS:
        lines.append(line("pooling keeps the channels; no parameters, no multiply-accumulates (as torchinfo and "
                          "fvcore count)"))
    else:
        lines.append(line(describe_groups(cost.in_channels, cost.out_channels, cost.groups)))
        weight = cost.params - (cost.out_channels if cost.bias else 0)
        bias = f" + bias {cost.out_channels:,}" if cost.bias else ", no bias"
        lines.append(line(f"parameters {cost.params:,} (weight {weight:,}{bias})"))
        lines.append(line(f"MACs {cost.macs:,} for one forward pass of the batch (fvcore's count; FLOPs = 2 x MACs "
                          f"= {2 * cost.macs:,}; torchinfo's mult-adds {cost.torchinfo_mult_adds:,})"))
    lines.append(line(f"output activations {_bytes(cost.out_bytes)} as {cost.dtype}"))
    return lines


def _bytes(n: int) -> str:
    if n.bit_length() > 900:  # beyond what a float holds: the exact count only
        return f"{n:,} bytes"
    for unit, size in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= size:
            return f"{n / size:,.1f} {unit} ({n:,} bytes)"
    return f"{n:,} bytes"


def out_document(report: OutReport) -> dict[str, Any]:
    """The ``convcalc.out/1`` JSON document (DESIGN.md)."""
    layer = report.layer
    doc: dict[str, Any] = {
        "schema": "convcalc.out/1",
        "op": layer.op,
        "dims": layer.dims,
        "in": list(report.in_size),
        "kernel_size": list(layer.kernel_size),
        "effective_kernel_size": list(layer.effective_kernel_size),
        "stride": list(layer.stride),
        "padding": [list(p) for p in layer.pads],
        "dilation": list(layer.dilation),
        "output_padding": list(layer.output_padding),
        "ceil_mode": layer.ceil_mode,
        "out": list(report.out) if report.out is not None else None,
    }
    if report.error is not None:
        doc["error"] = report.error
    if report.expected is not None:
        doc["expected"] = list(report.expected)
    if report.cost is not None:
        cost = report.cost
        doc.update(shape=list(cost.shape), out_shape=list(cost.out_shape), groups=cost.groups, bias=cost.bias,
                   params=cost.params, macs=cost.macs, torchinfo_mult_adds=cost.torchinfo_mult_adds,
                   dtype=cost.dtype, out_bytes=cost.out_bytes)
    if report.answer is not None and report.verdict is not None:
        doc["verify"] = verify_document(report.answer, report.verdict, report.cost is not None)
    return doc


def verify_document(answer: TorchAnswer, verdict: Verdict, channels: bool = False) -> dict[str, Any]:
    """The ``verify`` object: torch's version, device and answer, and whether it agrees; with
    ``channels`` also torch's full output shape and parameter count."""
    doc = {
        "torch": answer.version,
        "device": answer.device,
        "eager": answer.eager,
        "out": list(answer.out) if answer.out is not None else None,
        "error": answer.error,
        "agrees": verdict.agrees,
        "note": " ".join(_notes(answer, verdict)) or None,
    }
    if channels:
        doc["out_shape"] = list(answer.out_shape) if answer.out_shape is not None else None
        doc["params"] = answer.params
    return doc


MAX_TABLE_ROWS = 200

# -- convcalc rf --------------------------------------------------------------------------------------

def number(value: Fraction | int) -> str:
    """An exact number for people: ``8``, ``15.5``, ``1/3``."""
    value = Fraction(value)
    if value.denominator == 1:
        return str(value.numerator)
    if 1000 % value.denominator == 0 or 10**6 % value.denominator == 0:
        return format(float(value), "g")
    return f"{value.numerator}/{value.denominator}"


def json_number(value: Fraction | int) -> int | float:
    """An int where the value is whole, else the nearest float (the text view keeps exact fractions)."""
    value = Fraction(value)
    return value.numerator if value.denominator == 1 else float(value)


def per_dim_text(values: Sequence[Fraction | int]) -> str:
    """One value when every dimension agrees, else ``a x b``."""
    return _collapsed([number(v) for v in values])


def _collapsed(texts: Sequence[str]) -> str:
    return texts[0] if len(set(texts)) == 1 else "x".join(texts)


class RfReport(NamedTuple):
    """What ``convcalc rf`` found: the stack's fields, and the extras asked for."""

    field: StackField
    unit: tuple[int, ...] | None = None
    boxes: tuple[UnitBox | None, ...] | None = None
    expected_rf: tuple[int, ...] | None = None
    answer: TorchAnswer | None = None
    verdict: Verdict | None = None
    measured: MeasuredField | None = None
    costs: tuple[LayerCost, ...] | None = None


def rf_table(field: StackField, costs: Sequence[LayerCost] | None = None) -> Table:
    """One row per layer: spec, op, effective kernel, stride, jump, receptive field, start (and out);
    with ``costs`` the full output shape, parameters and MACs instead of the output size."""
    table = Table(title="receptive field, layer by layer", title_justify="left")
    columns = ["#", "spec", "op", "eff. kernel", "stride", "jump", "rf", "start"]
    if costs is not None:
        columns += ["out shape", "params", "MACs"]
    elif field.in_size is not None:
        columns.append("out")
    for name in columns:
        text = name in ("spec", "op")
        table.add_column(name, justify="left" if text else "right", style="bold" if name == "rf" else None,
                         overflow="fold", no_wrap=text)
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


def counted_coverage(field: StackField) -> tuple[Coverage, ...] | str:
    """The stack's holes per dimension, or why they were not counted (a field too wide)."""
    from .gridding import FieldTooWide

    try:
        return field.coverage
    except FieldTooWide as exc:
        return str(exc)


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
            lines.append(line(f"  dim {i}: no input at all (the transposed convolution's stride skips it)"))
            continue
        padding = f"{box.padding} of its {box.last - box.first + 1} positions are padding" if box.padding \
            else "no padding"
        lines.append(line(f"  dim {i}: input [{box.clipped_first}, {box.clipped_last}] (unclipped "
                          f"[{box.first}, {box.last}]); {padding}"))
    return lines


def _spans(fields: Sequence[UnitField]) -> str:
    """Where a unit's field lies and its holes: one text when every dimension agrees, else one per dimension."""
    texts = [f"[{f.first}, {f.last}] rf {f.receptive_field}, {f.holes} holes" for f in fields]
    return texts[0] if len(set(texts)) == 1 else "; ".join(f"dim {i}: {t}" for i, t in enumerate(texts, 1))


def measured_lines(measured: MeasuredField) -> list[Text]:
    """The gradient measurement beside the computed field."""
    word, style = _agreement(measured.agrees)
    return [line(f"PyTorch {measured.version} gradient of output unit {', '.join(map(str, measured.unit))} on a "
                 f"{sizes(measured.in_size)} input: {_spans(measured.measured)}, out {sizes(measured.measured_out)}"),
            line(f"convcalc: {_spans(measured.predicted)}, out {sizes(measured.predicted_out)} -> {word}", style)]


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
    parts += coverage_lines(counted_coverage(field))
    if report.costs:
        params, macs = sum(c.params for c in report.costs), sum(c.macs for c in report.costs)
        parts.append(line(f"parameters {params:,}, MACs {macs:,} for one forward pass of the batch (fvcore's "
                          f"count; FLOPs = 2 x MACs), output {sizes(report.costs[-1].out_shape)} "
                          f"({_bytes(report.costs[-1].out_bytes)} as float32)"))
    if report.unit is not None and report.boxes is not None:
        parts += unit_lines(report.unit, report.boxes)
    if report.answer is not None and report.verdict is not None:
        ours = sizes(field.out) if field.out is not None else "rejects it"
        parts += verify_lines(report.answer, report.verdict, ours)
    if report.measured is not None:
        parts += measured_lines(report.measured)
    return Group(*parts)


def rf_document(report: RfReport) -> dict[str, Any]:
    """The ``convcalc.rf/1`` JSON document (DESIGN.md)."""
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
        "coverage": _coverage_json(counted_coverage(field)),
    }
    if field.in_size is not None:
        doc["in"] = list(field.in_size)
        doc["out"] = list(field.out) if field.out is not None else None
    if report.costs is not None:
        doc.update(shape=list(report.costs[0].shape) if report.costs else None,
                   params=sum(c.params for c in report.costs), macs=sum(c.macs for c in report.costs))
    if field.rejected is not None:
        doc["error"] = field.rejected[1]
        doc["rejected_layer"] = field.rejected[0]
    if report.expected_rf is not None:
        doc["expected_rf"] = list(report.expected_rf)
    if report.unit is not None and report.boxes is not None:
        doc["unit"] = [[b.clipped_first, b.clipped_last] if b else None for b in report.boxes]
        doc["unit_index"] = list(report.unit)
        doc["unit_padding"] = [b.padding if b else None for b in report.boxes]
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


def measured_document(measured: MeasuredField) -> dict[str, Any]:
    """The gradient measurement as JSON: what torch's gradient showed, what convcalc computed."""
    def fields(values: Sequence[UnitField]) -> dict[str, list[int]]:
        return {"first": [f.first for f in values], "last": [f.last for f in values],
                "receptive_field": [f.receptive_field for f in values], "holes": [f.holes for f in values]}

    return {"torch": measured.version, "in": list(measured.in_size), "unit": list(measured.unit),
            "measured": fields(measured.measured), "computed": fields(measured.predicted),
            "agrees": measured.agrees}


# -- convcalc gridding -------------------------------------------------------------------------------

MAP_LIMIT = 61
HDC_ROWS = 24
STRIP_LIMIT = 120
PALETTE = ("blue", "cyan", "green", "yellow", "red")


class GriddingView(NamedTuple):
    """What ``convcalc gridding`` found, and the torch measurement when asked."""

    report: GriddingReport
    runs: tuple[int, list[tuple[int, int]], int, list[tuple[int, int]]]
    measured: MeasuredField | None = None


def short_rates(rates: Sequence[int]) -> str:
    """A rate list for a message: in full up to 12 rates, else its start and its length."""
    return _rates(rates) if len(rates) <= 12 else f"{_rates(rates[:6])},... ({len(rates):,} rates)"


def _rates(rates: Iterable[int]) -> str:
    return ",".join(map(str, rates))


def hdc_table(report: GriddingReport) -> Table:
    table = Table(title="2. HDC criterion", title_justify="left")
    for name in ("i", "r_i", "M_i"):
        table.add_column(name, justify="right")
    rows = list(enumerate(zip(report.rates, report.hdc.M), 1))
    hidden = len(rows) - HDC_ROWS
    if hidden > 0:  # long stacks: the first rows and the last, which hold M_2's recursion
        rows = rows[:HDC_ROWS // 2] + [None] + rows[-HDC_ROWS // 2:]  # type: ignore[list-item]
    for row in rows:
        if row is None:
            table.add_row("...", f"{hidden} more", "")
            continue
        i, (rate, m) = row
        table.add_row(str(i), str(rate), str(m) if i > 1 else "-")
    return table


def coverage_map(paths: Sequence[int]) -> list[Text]:
    """The 2-D coverage of a k x k stack: each cell coloured by its number of paths, holes as dots.

    Cells are two characters wide (about square) for fields up to 40, one beyond.
    """
    top = max(paths)
    width = 2 if len(paths) <= 40 else 1
    rows = []
    for y in paths:
        row = Text(no_wrap=True, overflow="ignore")
        for x in paths:
            count = x * y
            if count == 0:
                row.append("·" * width, style="dim")
            else:
                level = 0 if top == 1 else min(len(PALETTE) - 1, int(len(PALETTE) * math.log(count) /
                                                                     (2 * math.log(top) + 1e-9)))
                row.append("█" * width, style=PALETTE[level])
        rows.append(row)
    legend = Text("paths per offset: ", no_wrap=True)
    for colour in PALETTE:
        legend.append("█", style=colour)
    legend.append(f" 1 .. {top * top:,}   · never reached", style="dim")
    return rows + [legend]


def coverage_strip(view: GriddingView) -> list[Text]:
    """One dimension: every offset for fields up to 120, else the runs of reached offsets."""
    common, head, hidden, tail = view.runs
    field = view.report.coverage.receptive_field
    if field <= STRIP_LIMIT and view.report.paths is not None:
        strip = Text(no_wrap=True, overflow="ignore")
        for count in view.report.paths:
            strip.append("█" if count else "·", style="green" if count else "dim")
        return [strip]

    def show(runs: list[tuple[int, int]]) -> str:
        step = f" step {common}" if common > 1 else ""
        return ", ".join(str(common * a) if a == b else f"{common * a}-{common * b}{step}" for a, b in runs)

    text = f"offsets reached along one dimension: {show(head)}"
    if hidden:
        text += f", ... {hidden:,} more runs ..., {show(tail)}"
    return [line(text)]


def gridding_view(view: GriddingView) -> Group:
    r = view.report
    k, c = r.kernel_size, r.coverage
    parts: list[Any] = [line(f"rates {short_rates(r.rates)} with {k}x{k} kernels (stride 1)", "bold")]
    common = (f"gcd {r.gcd}: every tap lands on a multiple of {r.gcd}, so the stack grids" if r.gcd > 1
              else "gcd 1: no common factor")
    parts.append(line(f"1. common factor: {common}", "yellow" if r.gcd > 1 else None))
    parts.append(hdc_table(r))
    if r.hdc.ok is None:
        parts.append(line("   M_2 needs at least two rates: the criterion says nothing here", "dim"))
    else:
        verdict = "passes" if r.hdc.ok else "FAILS"
        parts.append(line(f"   M_2 = {r.hdc.M2} {'<=' if r.hdc.ok else '>'} K = {k}: {verdict} "
                          f"(Wang et al. 2018, section 3.2)",
                          "green" if r.hdc.ok else "yellow"))
    parts.append(line("   note: the recursion never looks at r_1 (so 2,3 passes it yet has holes), and 2,2,2 passes "
                      "it yet grids", "dim"))
    parts.append(line(f"3. exact coverage (per dimension): receptive field {c.receptive_field:,}, covered "
                      f"{c.covered:,}, holes {c.holes:,}, largest gap {c.largest_gap:,}"))
    if r.paths is not None and c.receptive_field <= MAP_LIMIT:
        parts += coverage_map(r.paths)
    else:
        parts += coverage_strip(view)
    if r.gridding:
        parts.append(line(f"verdict: GRIDDING: {c.holes:,} of {c.receptive_field:,} offsets per dimension are never "
                          f"reached ({c.receptive_field ** 2 - c.covered ** 2:,} of {c.receptive_field ** 2:,} in "
                          f"2-D)", "bold red"))
        parts += repair_lines(r)
    else:
        parts.append(line(f"verdict: no gridding: every offset of the {c.receptive_field:,}-wide field is reached",
                          "bold green"))
    if view.measured is not None:
        parts += measured_lines(view.measured)
    return Group(*parts)


def repair_lines(r: GriddingReport) -> list[Text]:
    field = r.coverage.receptive_field
    lines = []
    if r.suggestions:
        listed = "; ".join(f"{_rates(s)} (field {1 + (r.kernel_size - 1) * sum(s)})" for s in r.suggestions)
        lines.append(line(f"repairs: the closest {len(r.rates)} rates that cover without holes and keep a field "
                          f">= {field}: {listed}", "green"))
    if r.sawtooth is not None:
        lines.append(line(f"sawtooth (HDC): {_rates(r.sawtooth[:24])}{',...' if len(r.sawtooth) > 24 else ''} "
                          f"(field {1 + (r.kernel_size - 1) * sum(r.sawtooth):,})", "green"))
    if not lines:
        k, n = r.kernel_size, len(r.rates)
        best = _rates(k**i for i in range(n)) if n <= 4 else f"1,{k},{k}^2,...,{k}^{n - 1}"
        lines.append(line(f"no {n} rates with {k}-tap kernels cover a field of {field:,} without holes: the "
                          f"largest hole-free field of {n} layers is {r.largest_hole_free_field:,} (rates {best})",
                          "yellow"))
    return lines


def gridding_document(view: GriddingView) -> dict[str, Any]:
    """The ``convcalc.gridding/1`` JSON document (DESIGN.md); per-dimension lists for the k x k kernel."""
    r = view.report
    c = r.coverage
    doc: dict[str, Any] = {
        "schema": "convcalc.gridding/1",
        "rates": list(r.rates),
        "kernel_size": [r.kernel_size, r.kernel_size],
        "gcd": r.gcd,
        "hdc": {"M": list(r.hdc.M), "M2": r.hdc.M2, "ok": r.hdc.ok},
        "coverage": {"receptive_field": [c.receptive_field] * 2, "covered": [c.covered] * 2,
                     "holes": [c.holes] * 2, "largest_gap": [c.largest_gap] * 2},
        "gridding": r.gridding,
        "suggestions": [list(s) for s in r.suggestions] + ([list(r.sawtooth)] if r.sawtooth else []),
    }
    if r.paths is not None:
        doc["paths"] = list(r.paths)
    if view.measured is not None:
        doc["verify_field"] = measured_document(view.measured)
    return doc


# -- convcalc aspp -------------------------------------------------------------------------------------

def percent(share: Fraction) -> str:
    """``Fraction(61, 65) ** 2`` -> ``93.9%``; 0 and 1 exactly as ``0%`` and ``100%``."""
    return "0%" if share == 0 else "100%" if share == 1 else f"{float(share) * 100:.1f}%"


class AsppView(NamedTuple):
    branches: tuple[Branch, ...]
    counts: tuple[TapCount, ...] | None = None

    @property
    def agrees(self) -> bool:
        return self.counts is None or all(
            (t.all_taps_valid, t.only_center_valid, t.out) == (b.all_taps_valid, b.only_center_valid, b.out)
            for b, t in zip(self.branches, self.counts))


def aspp_view(view: AsppView) -> Group:
    first = view.branches[0]
    k = first.kernel_size
    table = Table(title=f"ASPP on a {sizes(first.in_size)} map, {k}x{k} atrous branches, padding = rate*(k-1)/2",
                  title_justify="left")
    flagged = any(b.degenerate for b in view.branches)
    for name in ["rate", "pad", "out", "rf", "all taps", "centre only", "weights"] + ([""] if flagged else []):
        table.add_column(name, justify="right")
    for b in view.branches:
        flag = ["degenerate" if b.degenerate else ""] if flagged else []
        table.add_row(str(b.rate), str(b.padding), sizes(b.out), str(b.receptive_field), percent(b.all_taps_valid),
                      percent(b.only_center_valid), percent(b.valid_weights), *flag)
    parts: list[Any] = [table, line("all taps / centre only: shares of output positions where every tap, or only "
                                    "the centre tap, lands on the map; weights: the mean share of filter weights "
                                    "applied to the map; degenerate: only the centre tap ever lands on the map, so "
                                    "the branch is a 1x1 conv (DeepLabv3, section 3.3 and Figure 4)", "dim")]
    if view.counts is not None:
        word, style = _agreement(view.agrees)
        how = view.counts[0].how
        parts.append(line(f"PyTorch {view.counts[0].version}, a ones mask convolved with a ones filter ({how}): "
                          f"{', '.join(percent(t.all_taps_valid) for t in view.counts)} all valid -> {word}", style))
    return Group(*parts)


def aspp_document(view: AsppView) -> dict[str, Any]:
    """The ``convcalc.aspp/1`` JSON document (DESIGN.md); shares are fractions in [0, 1]."""
    first = view.branches[0]
    doc: dict[str, Any] = {
        "schema": "convcalc.aspp/1",
        "in": list(first.in_size),
        "kernel_size": [first.kernel_size] * len(first.in_size),
        "branches": [{"rate": b.rate, "padding": b.padding, "out": list(b.out), "receptive_field": b.receptive_field,
                      "all_taps_valid": float(b.all_taps_valid), "only_center_valid": float(b.only_center_valid),
                      "valid_weights": float(b.valid_weights), "degenerate": b.degenerate}
                     for b in view.branches],
    }
    if view.counts is not None:
        doc["verify"] = {"torch": view.counts[0].version, "how": view.counts[0].how, "agrees": view.agrees,
                         "all_taps_valid": [float(t.all_taps_valid) for t in view.counts],
                         "only_center_valid": [float(t.only_center_valid) for t in view.counts]}
    return doc


# -- convcalc check ------------------------------------------------------------------------------------

class CheckView(NamedTuple):
    """The results of a check file, with torch's cross-checks when asked (one per result, or None)."""

    source: str
    results: tuple[CheckResult, ...]
    verdicts: tuple[CheckVerify | None, ...] | None = None

    @property
    def failed(self) -> int:
        return sum(not r.ok for r in self.results)

    @property
    def agrees(self) -> bool:
        return self.verdicts is None or all(v is None or v.agrees for v in self.verdicts)


def _expectations(values: dict[str, Any]) -> str:
    """``out 256x256, rf 5, jump 0.25``: sizes in full, fields and jumps once when every dimension agrees."""
    def show(key: str, value: Any) -> str:
        if key in ("rf", "jump") and isinstance(value, tuple):
            return per_dim_text(value)
        from .checks import format_value

        return format_value(value)

    return ", ".join(f"{key} {show(key, value)}" for key, value in values.items()) or "-"


def check_table(view: CheckView) -> Table:
    """One row per check: name, what was expected, what came out, pass or fail (failures first beyond 200)."""
    table = Table(title=f"convcalc check {view.source}", title_justify="left")
    for name in ("check", "expected", "actual", "result"):
        table.add_column(name, overflow="fold")
    results = list(view.results)
    hidden = 0
    if len(results) > MAX_TABLE_ROWS:  # a large file: its failures (every result is in --json)
        shown = [r for r in results if not r.ok][:MAX_TABLE_ROWS]
        hidden, results = len(results) - len(shown), shown
    for result in results:
        verdict = Text("pass", style="green") if result.ok else Text("FAIL", style="bold red")
        actual = _expectations(result.actual) if result.actual else result.message
        table.add_row(result.check.name, _expectations(result.expected), actual, verdict)
    if hidden:
        table.add_row("...", f"{hidden:,} more checks not shown (every one is in --json)", "", "")
    return table


def check_view(view: CheckView) -> Group:
    parts: list[Any] = [check_table(view)]
    for result in view.results:
        if not result.ok and result.actual:
            parts.append(line(f"FAIL {result.check.name}: {result.message}", "red"))
    passed = len(view.results) - view.failed
    parts.append(line(f"{passed:,} passed, {view.failed:,} failed", "bold green" if not view.failed else "bold red"))
    if view.verdicts is not None:
        checked = [v for v in view.verdicts if v is not None]
        word, style = _agreement(view.agrees, "agrees on every check")
        parts.append(line(f"PyTorch cross-check of {len(checked):,} checks -> {word}", style))
        for result, verdict in zip(view.results, view.verdicts):
            if verdict is not None and not verdict.agrees:
                parts.append(line(f"  {result.check.name}: {verdict.detail}", "bold red"))
    return Group(*parts)


def _json_value(value: Any) -> Any:
    if isinstance(value, tuple):
        return [_json_value(v) for v in value]
    if isinstance(value, Fraction):
        return json_number(value)
    return value


def check_document(view: CheckView) -> dict[str, Any]:
    """The ``convcalc.check/1`` JSON document (DESIGN.md)."""
    results = []
    for i, result in enumerate(view.results):
        entry = {"name": result.check.name, "ok": result.ok,
                 "expected": {k: _json_value(v) for k, v in result.expected.items()},
                 "actual": {k: _json_value(v) for k, v in result.actual.items()}, "message": result.message}
        if view.verdicts is not None and view.verdicts[i] is not None:
            entry["verify"] = {"agrees": view.verdicts[i].agrees, "detail": view.verdicts[i].detail}
        results.append(entry)
    return {"schema": "convcalc.check/1", "passed": len(view.results) - view.failed, "failed": view.failed,
            "results": results}


def junit_xml(view: CheckView) -> str:
    """A JUnit XML report: one testcase per check, a failure element for each failing one."""
    from xml.etree import ElementTree

    suites = ElementTree.Element("testsuites")
    suite = ElementTree.SubElement(suites, "testsuite", name="convcalc check", tests=str(len(view.results)),
                                   failures=str(view.failed), errors="0", skipped="0")
    for result in view.results:
        case = ElementTree.SubElement(suite, "testcase", classname=view.source, name=result.check.name)
        if not result.ok:
            failure = ElementTree.SubElement(case, "failure", message=result.message, type="ShapeCheckFailed")
            failure.text = (f"layers: {result.check.layers}\nexpected: {_expectations(result.expected)}\n"
                            f"actual: {_expectations(result.actual)}\n{result.message}")
    ElementTree.indent(suites)
    return ElementTree.tostring(suites, encoding="unicode", xml_declaration=True) + "\n"


# -- convcalc inspect ------------------------------------------------------------------------------------

def _field_text(fields: Sequence[Any], what: str) -> str:
    """A node's receptive field, jump or start per dimension: numbers, ``global`` or ``?`` (unknown)."""
    if not fields:
        return "-"
    texts = []
    for f in fields:
        if isinstance(f, str):
            texts.append((f if what == "rf" else "-") if f in ("global", "flat") else "?")
        else:
            texts.append(number({"rf": f.receptive_field, "jump": f.jump, "start": f.start,
                                 "holes": f.coverage.holes}[what]))
    return _collapsed(texts)


def inspect_table(inspection: Any, nodes: Sequence[Any]) -> Table:
    """One row per node shown: name, op, output shape, parameters, receptive field, jump, start (holes)."""
    holes = any(not isinstance(f, str) and f.coverage.holes for n in nodes for f in n.fields)
    title = f"{inspection.model} on {sizes(inspection.input_shape)}" + ("" if inspection.traced else
                                                                        " (forward hooks, call order)")
    table = Table(title=title, title_justify="left")
    columns = ["node", "op", "shape", "params", "rf", "jump", "start"] + (["holes"] if holes else [])
    for name in columns:
        table.add_column(name, justify="left" if name in ("node", "op") else "right",
                         style="bold" if name == "rf" else None, overflow="fold", no_wrap=name == "op")
    for n in nodes:
        row = [n.name, n.op, sizes(n.shape) if n.shape else "-", f"{n.params:,}" if n.params else "",
               _field_text(n.fields, "rf"), _field_text(n.fields, "jump"), _field_text(n.fields, "start")]
        if holes:
            row.append(_field_text(n.fields, "holes"))
        table.add_row(*row)
    return table


def inspect_view(inspection: Any, nodes: Sequence[Any], measurements: Sequence[Any] | None) -> Group:
    parts: list[Any] = [inspect_table(inspection, nodes)]
    out = inspection.output
    parts.append(line(f"output {sizes(out.shape) if out.shape else '-'}: receptive field "
                      f"{_field_text(out.fields, 'rf')}, jump {_field_text(out.fields, 'jump')}, start "
                      f"{_field_text(out.fields, 'start')}", "bold"))
    if any(not isinstance(f, str) and f.varies for n in nodes for f in n.fields):
        parts.append(line("* transposed convolutions or upsampling: fields differ between output positions; the "
                          "largest is shown, jump and start are the average placement", "dim"))
    parts += [line(f"warning: {w}", "yellow") for w in inspection.warnings]
    for m in measurements or ():
        if m.skipped:
            parts.append(line(f"not measured at {m.node}: {m.skipped}", "yellow"))
            continue
        word, style = _agreement(m.agrees)
        where = f"unit {', '.join(map(str, m.unit))}" if m.unit else "one output value"
        parts.append(line(f"PyTorch gradient at {m.node} ({where}, {sizes(m.in_size)} input): {_spans(m.measured)}"))
        parts.append(line(f"convcalc: {_spans(m.predicted)} -> {word}", style))
    return Group(*parts)


def _field_json(fields: Sequence[Any]) -> dict[str, Any]:
    if fields and all(f in ("global", "flat") for f in fields) and "global" in fields:
        return {"receptive_field": "global", "jump": None, "start": None, "holes": None}
    if not fields or any(isinstance(f, str) for f in fields):
        return {"receptive_field": None, "jump": None, "start": None, "holes": None}
    return {"receptive_field": [f.receptive_field for f in fields], "jump": [json_number(f.jump) for f in fields],
            "start": [json_number(f.start) for f in fields], "holes": [f.coverage.holes for f in fields]}


def _node_json(node: Any) -> dict[str, Any]:
    return {"name": node.name, "op": node.op, "shape": list(node.shape) if node.shape else None,
            "params": node.params, **_field_json(node.fields)}


def inspect_document(inspection: Any, nodes: Sequence[Any], measurements: Sequence[Any] | None) -> dict[str, Any]:
    """The ``convcalc.inspect/1`` JSON document (DESIGN.md)."""
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
