"""Formatting, kept apart from computation (as torchinfo does): rich tables and JSON documents."""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from rich.console import Console, Group
from rich.table import Table
from rich.text import Text

from .layer import POOLS, Layer, size_keeping_padding

if TYPE_CHECKING:
    from .torchcheck import TorchAnswer, Verdict


def console(stderr: bool = False) -> Console:
    """A console on the current stdout/stderr (so that test runners capturing them see the output)."""
    return Console(stderr=stderr, highlight=False)


def print_json(document: dict[str, Any]) -> None:
    """Exactly one JSON object on stdout, nothing else."""
    sys.stdout.write(dumps(document) + "\n")


def dumps(value: Any, indent: str = "") -> str:
    """JSON indented by two spaces, with lists of plain values kept on one line (``[256, 256]``)."""
    inner = indent + "  "
    if isinstance(value, dict) and value:
        items = [f"{inner}{json.dumps(str(k))}: {dumps(v, inner)}" for k, v in value.items()]
        return "{\n" + ",\n".join(items) + f"\n{indent}}}"
    if isinstance(value, list) and any(isinstance(v, dict) for v in value):
        items = [inner + dumps(v, inner) for v in value]
        return "[\n" + ",\n".join(items) + f"\n{indent}]"
    return json.dumps(value)


def print_error(message: str, detail: str | None = None) -> None:
    """One red line on stderr naming the problem, and for bad text the text with a caret under it."""
    err = console(stderr=True)
    err.print(Text(f"error: {message}", style="bold red"), soft_wrap=True)
    if detail:
        err.print(Text(detail), soft_wrap=True)


def sizes(values: tuple[int, ...] | None) -> str:
    """``(256, 256)`` -> ``256x256``: sizes written the way they are typed."""
    return "x".join(map(str, values)) if values is not None else "rejected"


@dataclass(frozen=True)
class OutReport:
    """Everything ``convcalc out`` found: our answer (or rejection), and torch's when asked."""

    layer: Layer
    in_size: tuple[int, ...]
    out: tuple[int, ...] | None
    error: str | None = None
    expected: tuple[int, ...] | None = None
    answer: TorchAnswer | None = None
    verdict: Verdict | None = None


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
    lines = [_formula(layer, i, in_size[i], out[i]) for i in range(layer.dims)]
    if len(set(lines)) == 1:
        return lines[:1]
    return [f"dim {i + 1}: {line}" for i, line in enumerate(lines)]


def _formula(layer: Layer, i: int, n: int, out: int) -> str:
    k, s, e = layer.kernel_size[i], layer.stride[i], layer.effective_kernel_size[i]
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
    pads = size_keeping_padding(layer)
    lines = [_keep_size(layer, i, p) for i, p in enumerate(pads)]
    if len(set(lines)) == 1:
        return lines[:1]
    return [f"dim {i + 1}: {line}" for i, line in enumerate(lines)]


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
    word = "agrees" if verdict.agrees else "DISAGREES"
    lines = [line(f"PyTorch {answer.version} ({answer.device}, {how}): {theirs}"),
             line(f"convcalc: {ours} -> {word}", "green" if verdict.agrees else "bold red")]
    lines += [line(f"note: {note}", "yellow") for note in (answer.note, verdict.caveat) if note]
    return lines


def out_view(report: OutReport) -> Group:
    """The table, the formula, the size-keeping padding and the verification, for a terminal."""
    parts: list[Any] = [out_table(report)]
    if report.out is not None:
        parts += [line(text) for text in formula_lines(report.layer, report.in_size, report.out)]
        parts += [line(text, "dim") for text in keep_size_lines(report.layer)]
    ours = sizes(report.out) if report.out is not None else "rejects it"
    parts += verify_lines(report.answer, report.verdict, ours)
    return Group(*parts)


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
    if report.answer is not None and report.verdict is not None:
        doc["verify"] = verify_document(report.answer, report.verdict)
    return doc


def verify_document(answer: TorchAnswer, verdict: Verdict) -> dict[str, Any]:
    """The ``verify`` object: torch's version, device and answer, and whether it agrees."""
    return {
        "torch": answer.version,
        "device": answer.device,
        "eager": answer.eager,
        "out": list(answer.out) if answer.out is not None else None,
        "error": answer.error,
        "agrees": verdict.agrees,
        "note": " ".join(n for n in (answer.note, verdict.caveat) if n) or None,
    }
