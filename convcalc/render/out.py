"""``convcalc out``: the layer's table, its formula with the numbers, the size-keeping padding, the
channel side and torch's answer; and the ``convcalc.out/1`` document (docs/architecture.md, "JSON")."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rich.console import Group
from rich.text import Text

from ..layer import POOLS, Layer, pool_windows, size_keeping_padding, size_keeping_total
from ..padding import pad_tuple
from ..snippets import layer_code, pad_code
from .common import PlainTable, byte_size, line, once_per_distinct_dim, sizes, verify_document, verify_lines

if TYPE_CHECKING:
    from ..cost import LayerCost
    from ..reports import OutReport


def out_view(report: OutReport) -> Group:
    """The table, the formula, the size-keeping padding and the verification, for a terminal."""
    parts: list[Any] = [out_table(report)]
    layer = report.layer
    if report.output_size is not None and report.error is None:
        parts.append(line(f"output_size {sizes(report.output_size)} -> output_padding {sizes(layer.output_padding)} "
                          f"(as ConvTranspose's _output_padding picks it)"))
    if report.out is not None:
        parts += [line(text) for text in formula_lines(layer, report.in_size, report.out)]
        if layer.pads_first:
            parts += [line(text) for text in padding_lines(layer, report.in_size)]
        else:
            parts += [line(text, "dim") for text in keep_size_lines(layer)]
    if report.cost is not None:
        parts += cost_lines(report.cost)
    ours = sizes(report.out) if report.out is not None else "rejects it"
    if report.cost is not None and report.answer is not None and report.answer.out_shape is not None:
        ours = f"{sizes(report.cost.out_shape)}, {report.cost.params:,} parameters"
    parts += verify_lines(report.answer, report.verdict, ours)
    return Group(*parts)


def out_table(report: OutReport) -> PlainTable:
    """One row per spatial dimension: input, kernel, effective kernel, stride, padding, dilation, out."""
    layer = report.layer
    table = PlainTable(layer_title(layer))
    columns = ["dim", "in", "kernel", "effective", "stride", "pad l/r", "dilation"]
    if layer.op == "conv_transpose":
        columns.append("output_padding")
    columns.append("out")
    for name in columns:
        table.add_column(name, justify="right", style="bold" if name == "out" else None)
    pads = layer.pads_on(report.in_size)
    for i in range(layer.dims):
        left, right = pads[i]
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
    if layer.stride != layer.default_stride:
        args.append(f"stride={_arg(layer.stride)}")
    if layer.padding == "same" and layer.convention == "tf":
        args.append("padding='SAME' (TensorFlow)")
    elif layer.explicit:
        args.append(f"padding={_arg(layer.padding)} (left, right) by F.pad")
    elif layer.padding != (0,) * layer.dims:
        args.append(f"padding={_arg(layer.padding)}")
    if layer.padding_mode != "zeros":
        args.append(f"padding_mode={layer.padding_mode!r}")
    if layer.dilation != (1,) * layer.dims:
        args.append(f"dilation={_arg(layer.dilation)}")
    if any(layer.output_padding):
        args.append(f"output_padding={_arg(layer.output_padding)}")
    if layer.ceil_mode:
        args.append("ceil_mode=True")
    return f"{layer.torch_name}({', '.join(args)})"


def _arg(value: Any) -> str:
    if isinstance(value, str):
        return repr(value)
    return str(value[0]) if len(set(value)) == 1 else str(value)


def formula_lines(layer: Layer, in_size: tuple[int, ...], out: tuple[int, ...]) -> list[str]:
    """The output-size formula with its numbers, once per distinct dimension."""
    return once_per_distinct_dim([_formula(layer, i, in_size[i], out[i]) for i in range(layer.dims)])


def padding_lines(layer: Layer, in_size: tuple[int, ...]) -> list[str]:
    """Where the padding comes from (TensorFlow's SAME, causal, explicit), and the torch code for it."""
    lines = []
    if layer.padding == "same" and layer.convention == "tf":
        lines += once_per_distinct_dim([_tf_same(layer, i, n) for i, n in enumerate(in_size)])
    elif layer.padding == "causal":
        lines += once_per_distinct_dim([f"causal: all d*(k-1) = {layer.dilation[i]}*({layer.kernel_size[i]}-1) = "
                                        f"{layer.pads[i][0]} on the left, none on the right"
                                        for i in range(layer.dims)])
    lines.append(f"torch: {layer_code(layer, in_size)}")
    return lines


def _tf_same(layer: Layer, i: int, n: int) -> str:
    s, e = layer.stride[i], layer.effective_kernel_size[i]
    out = -(-n // s)
    left, right = layer.pad_at(i, n)
    return (f"TensorFlow 'SAME': out = ceil({n} / {s}) = {out}; padding max(({out} - 1)*{s} + {e} - {n}, 0) = "
            f"{left + right}: {left} left, {right} right")


def _formula(layer: Layer, i: int, n: int, out: int) -> str:
    s, e = layer.stride[i], layer.effective_kernel_size[i]
    left, right = layer.pad_at(i, n)
    if layer.op == "conv" or layer.pads_first:
        return f"out = floor(({n} + {left} + {right} - {e}) / {s}) + 1 = {out}"
    if layer.op == "conv_transpose":
        return (f"out = ({n} - 1) * {s} - 2*{left} + {e} + {layer.output_padding[i]} = {out}"
                "   [(in - 1)*stride - 2*padding + effective kernel + output_padding]")
    if not layer.ceil_mode:
        return f"out = floor(({n} + 2*{left} - {e}) / {s}) + 1 = {out}"
    raw = pool_windows(n, layer.kernel_size[i], left, s, layer.dilation[i], True)
    text = f"out = floor(({n} + 2*{left} - {e} + ({s} - 1)) / {s}) + 1 = {raw}"
    if raw != out:
        text += (f"; the last window would start at ({raw} - 1)*{s} = {(raw - 1) * s} >= in + padding = "
                 f"{n + left}, so it is dropped: out = {out}")
    return text


def keep_size_lines(layer: Layer) -> list[str]:
    """Which padding keeps every input size (stride 1 only), or for a transposed convolution which scales
    every input size by its stride; per distinct dimension."""
    if layer.op == "conv_transpose":
        return once_per_distinct_dim([_scale(layer, i) for i in range(layer.dims)])
    return once_per_distinct_dim([_keep_size(layer, i, p) for i, p in enumerate(size_keeping_padding(layer))])


def _scale(layer: Layer, i: int) -> str:
    """``out = (in - 1)*s - 2p + e + output_padding = s*in + (e + output_padding - s - 2p)``: exactly
    ``s*in`` for every input when ``e + output_padding = s + 2p``."""
    s, e, p, extra = layer.stride[i], layer.effective_kernel_size[i], layer.pads[i][0], layer.output_padding[i]
    offset = e + extra - s - 2 * p
    if offset == 0:
        return f"out = {s} x in for every input size (effective kernel + output_padding = stride + 2*padding)"
    sign = "+" if offset > 0 else "-"
    text = f"out = {s} x in {sign} {abs(offset)} for every input size"
    wanted = e + extra - s
    if wanted >= 0 and wanted % 2 == 0:
        text += f"; padding {wanted // 2} would give {s} x in"
    elif wanted >= -1 and (e + 1 - s) % 2 == 0 and max(s, layer.dilation[i]) > 1:
        text += f"; padding {(e + 1 - s) // 2} with output_padding 1 would give {s} x in"
    return text


def _keep_size(layer: Layer, i: int, pad: int | None) -> str:
    k, s, d = layer.kernel_size[i], layer.stride[i], layer.dilation[i]
    if pad is not None:
        extra = f" + {layer.output_padding[i]}" if layer.op == "conv_transpose" else ""
        return f"padding {pad} keeps the size: p = (d*(k-1){extra})/2 = ({d}*({k}-1){extra})/2 = {pad}"
    if s != 1:
        return f"no padding keeps every input size at stride {s}"
    total = size_keeping_total(layer, i)
    if total % 2:
        same = " (padding='same' pads it asymmetrically)" if layer.op == "conv" else ""
        return f"no symmetric padding keeps the size: it would need {total} in total, an odd number{same}"
    return f"no padding keeps the size: it would need {total // 2} > kernel_size // 2 = {k // 2}"


def cost_lines(cost: LayerCost) -> list[Text]:
    """The channel side: full shapes, what each group sees, parameters, MACs and output memory."""
    from ..cost import describe_groups

    lines = [line(f"shape {sizes(cost.shape)} -> {sizes(cost.out_shape)}", "bold")]
    if cost.layer.op in POOLS:
        lines.append(line("pooling keeps the channels; no parameters, no multiply-accumulates (as torchinfo and "
                          "fvcore count)"))
    else:
        lines.append(line(describe_groups(cost.in_channels, cost.out_channels, cost.groups)))
        bias = f" + bias {cost.bias_params:,}" if cost.bias else ", no bias"
        lines.append(line(f"parameters {cost.params:,} (weight {cost.weight_params:,}{bias})"))
        lines.append(line(f"MACs {cost.macs:,} for one forward pass of the batch (fvcore's count; FLOPs = 2 x MACs "
                          f"= {2 * cost.macs:,}; torchinfo's mult-adds {cost.torchinfo_mult_adds:,})"))
    lines.append(line(f"output activations {byte_size(cost.out_bytes)} as {cost.dtype}"))
    return lines


def out_document(report: OutReport) -> dict[str, Any]:
    """The ``convcalc.out/1`` JSON document (docs/architecture.md)."""
    layer = report.layer
    doc: dict[str, Any] = {
        "schema": "convcalc.out/1",
        "op": layer.op,
        "dims": layer.dims,
        "in": list(report.in_size),
        "kernel_size": list(layer.kernel_size),
        "effective_kernel_size": list(layer.effective_kernel_size),
        "stride": list(layer.stride),
        "padding": [list(p) for p in layer.pads_on(report.in_size)],
        "dilation": list(layer.dilation),
        "output_padding": list(layer.output_padding),
        "ceil_mode": layer.ceil_mode,
        "out": list(report.out) if report.out is not None else None,
    }
    if layer.convention != "torch":
        doc["convention"] = layer.convention
    if layer.padding_mode != "zeros":
        doc["padding_mode"] = layer.padding_mode
    if pad_code(layer, report.in_size) is not None:
        doc["pad"] = list(pad_tuple(layer.pads_on(report.in_size)))
    if report.output_size is not None:
        doc["output_size"] = list(report.output_size)
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
