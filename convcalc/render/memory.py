"""``convcalc memory``: the peak, when it happens and what is alive at it, the totals, the nodes that save
the most for backward, the largest batch for a budget and the profiler's measurement; and the
``convcalc.memory/1`` document (docs/memory.md)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rich.console import Group

from ..memory import KINDS
from .common import PlainTable, agreement, byte_size, line, sizes

if TYPE_CHECKING:
    from ..reports import MemoryReport

SHOWN_NODES = 10
KIND_WORDS = {"parameters": "parameters", "buffers": "buffers (BatchNorm statistics, ...)", "gradients": "gradients",
              "optimizer_state": "optimizer state", "inputs": "the input batch",
              "activations": "activations saved for backward", "temporaries": "other temporaries"}
OPTIMIZER_WORDS = {"sgd": "SGD", "momentum": "SGD with momentum", "adam": "Adam", "adamw": "AdamW"}
SCRATCH_NOTE = ("not included: scratch memory the backend allocates inside a kernel (oneDNN and cuDNN workspaces, "
                "im2col columns of CPU's slow convolution, tensors a kernel creates and frees itself); "
                "memory --verify measures it")


def memory_view(report: MemoryReport) -> Group:
    s = report.step
    what = (f"one training step ({OPTIMIZER_WORDS[report.optimizer or 'adam']}, steady state: its state made by an "
            f"earlier step)" if s.mode == "train" else "inference (eval mode, torch.inference_mode)")
    amp = f", autocast {report.amp}" if report.amp else ", float32"
    parts: list[Any] = [
        line(f"memory of {what} of {report.model} on {sizes(report.input_shape)}{amp}, as it runs on the CPU",
             "dim"),
        line(f"peak {byte_size(s.peak_bytes)} during {s.peak_phase}" + (f", at {s.peak_node}" if s.peak_node else ""),
             "bold"),
    ]
    table = PlainTable("alive at the peak")
    table.add_column("kind")
    table.add_column("bytes", justify="right")
    table.add_column("", justify="right")
    table.add_column("share", justify="right")
    for kind in KINDS:
        value = getattr(s.breakdown, kind)
        if value or kind in ("parameters", "activations", "temporaries"):
            table.add_row(KIND_WORDS[kind], f"{value:,}", _binary(value), _share(value, s.peak_bytes))
    table.add_row("total", f"{s.peak_bytes:,}", _binary(s.peak_bytes), "100%")
    parts.append(table)
    parts += _totals(report)
    if s.mode == "train" and s.nodes:
        parts += _nodes(report)
    if report.search is not None:
        parts += _search(report)
    if report.measured is not None:
        parts += _measured(report)
    parts.append(line(f"note: {SCRATCH_NOTE}", "dim"))
    return Group(*parts)


def _binary(n: int) -> str:
    for unit, size in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= size:
            return f"{n / size:,.1f} {unit}"
    return ""


def _share(part: int, whole: int) -> str:
    return f"{100 * part / whole:.1f}%" if whole else "-"


def _totals(report: MemoryReport) -> list[Any]:
    s = report.step
    lines = [line(f"parameters {byte_size(s.parameter_bytes)}" + (f", buffers {byte_size(s.buffer_bytes)}"
                                                                  if s.buffer_bytes else "")
                  + f", input {byte_size(s.input_bytes)}")]
    if s.mode == "train":
        lines.append(line(f"gradients {byte_size(s.gradient_bytes)} (trainable parameters only), optimizer state "
                          f"{byte_size(s.optimizer_state_bytes)}"))
        lines.append(line(f"saved for backward {byte_size(s.saved_bytes)}, each storage once; of it parameters "
                          f"{byte_size(s.saved_parameter_bytes)}"))
    return lines


def _nodes(report: MemoryReport) -> list[Any]:
    s = report.step
    ranked = sorted(s.nodes, key=lambda n: (-n.saved_bytes, -n.out_bytes))
    shown = ranked if report.show_all else ranked[:SHOWN_NODES]
    title = "every node, most saved for backward first" if report.show_all or len(ranked) <= SHOWN_NODES else \
        f"the {SHOWN_NODES} nodes that save the most for backward (--all: all {len(ranked)})"
    table = PlainTable(title)
    table.add_column("node")
    table.add_column("saved", justify="right")
    table.add_column("output", justify="right")
    for node in shown:
        table.add_row(node.name, f"{node.saved_bytes:,}", f"{node.out_bytes:,}")
    return [table, line("saved: what autograd keeps of the tensors the node's ops read and write (a storage once per "
                        "node; parameters included); output: the new tensors its forward ops create", "dim")]


def _search(report: MemoryReport) -> list[Any]:
    search = report.search
    assert search is not None
    if search.largest_batch is None:
        return [line(f"budget {byte_size(search.budget_bytes)}: not even batch 1 fits (its peak is "
                     f"{byte_size(search.peaks[1])})", "bold red")]
    b = search.largest_batch
    lines = [line(f"budget {byte_size(search.budget_bytes)}: the largest batch that fits is {b:,} (peak "
                  f"{byte_size(search.peaks[b])})", "bold green")]
    if search.per_sample_bytes is not None:
        lines.append(line(f"batch {b + 1:,} needs {byte_size(search.peaks[b + 1])}: each further sample costs "
                          f"{byte_size(search.per_sample_bytes)} (steps simulated at batches "
                          f"{', '.join(f'{n:,}' for n in sorted(search.peaks))})"))
    return lines


def _measured(report: MemoryReport) -> list[Any]:
    m = report.measured
    assert m is not None
    word, style = agreement(bool(report.agrees))
    return [line(f"PyTorch profiler, one real CPU step: peak {byte_size(m.peak_bytes)} of tensors; "
                 f"{byte_size(m.exchanged_peak_bytes)} without the tensors kernels create and free inside "
                 f"themselves ({byte_size(m.scratch_bytes)} of such scratch at the peak)"),
            line(f"convcalc: {byte_size(report.step.peak_bytes)} -> {word} (within 3% of the tensors the ops "
                 f"exchange)", style),
            line(f"profiler's categories: parameters {m.parameter_bytes:,}, gradients {m.gradient_bytes:,}, optimizer "
                 f"state {m.optimizer_state_bytes:,} bytes", "dim")]


def memory_document(report: MemoryReport) -> dict[str, Any]:
    """The ``convcalc.memory/1`` JSON document (docs/memory.md)."""
    s = report.step
    doc: dict[str, Any] = {
        "schema": "convcalc.memory/1",
        "model": report.model,
        "input": list(report.input_shape),
        "mode": s.mode,
        "optimizer": report.optimizer if s.mode == "train" else None,
        "amp": report.amp,
        "peak_bytes": s.peak_bytes,
        "peak_at": {"phase": s.peak_phase, "node": s.peak_node},
        "breakdown": {kind: getattr(s.breakdown, kind) for kind in KINDS},
        "parameter_bytes": s.parameter_bytes,
        "buffer_bytes": s.buffer_bytes,
        "input_bytes": s.input_bytes,
        "gradient_bytes": s.gradient_bytes,
        "optimizer_state_bytes": s.optimizer_state_bytes,
        "saved_bytes": s.saved_bytes,
        "saved_parameter_bytes": s.saved_parameter_bytes,
        "nodes": [{"name": n.name, "saved_bytes": n.saved_bytes, "out_bytes": n.out_bytes} for n in s.nodes],
    }
    if report.search is not None:
        search = report.search
        doc.update(budget_bytes=search.budget_bytes, largest_batch=search.largest_batch,
                   per_sample_bytes=search.per_sample_bytes, simulations=search.simulations)
    if report.measured is not None:
        m = report.measured
        doc["verify"] = {"measured_peak_bytes": m.peak_bytes, "exchanged_peak_bytes": m.exchanged_peak_bytes,
                         "scratch_bytes": m.scratch_bytes, "parameter_bytes": m.parameter_bytes,
                         "gradient_bytes": m.gradient_bytes, "optimizer_state_bytes": m.optimizer_state_bytes,
                         "agrees": report.agrees}
    return doc
