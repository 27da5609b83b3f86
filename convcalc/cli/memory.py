"""``convcalc memory``: will it fit? The exact memory of a training step or of inference, and the largest
batch that fits a budget."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from ..errors import ConvcalcError
from ..memory import AMP, OPTIMIZERS
from ..reports import MemoryReport
from ..render.memory import memory_document, memory_view
from .options import JsonOpt, VerifyOpt, parse_kwargs
from .typer_app import Command, app, examples, finish

MEMORY_EXAMPLES = examples(
    "convcalc memory tests/models.py:TinyUNet --input 16x1x64x64",
    "convcalc memory tests/models.py:TinyResNet --input 32x3x64x64 --infer",
    "convcalc memory tests/models.py:DepthwiseNet --input 8x3x64x64 --amp bf16",
    "convcalc memory tests/models.py:TinyResNet --input 1x3x224x224 --budget 2GiB",
    "convcalc memory tests/models.py:FrozenBackbone --input 4x3x32x32 --verify",
    "convcalc memory torchvision.models:resnet50 --input 64x3x224x224 --json",
    notes=("One step as it runs on the CPU: zero_grad(set_to_none=True), forward in train mode, the loss sum() "
           "of every output tensor, backward, the optimizer's step (its state already made by an earlier "
           "step). Simulated on fake tensors: nothing is allocated, so a 64x3x1024x1024 input answers on a "
           "laptop. Exit 1 when even batch 1 does not fit --budget; 3 when --verify disagrees."),
)

TargetArg = Annotated[str, typer.Argument(metavar="MODULE:ATTR", show_default=False, help=(
    "A model, as inspect takes it."))]
InputOpt = Annotated[str, typer.Option("--input", show_default=False, help="Input shape N x C x spatial: the batch.")]
KwargsOpt = Annotated[Optional[str], typer.Option("--kwargs", show_default=False, help=(
    "JSON keyword arguments for the class or factory."))]
OptimizerOpt = Annotated[str, typer.Option("--optimizer", help="sgd, momentum (SGD, 0.9), adam or adamw.")]
AmpOpt = Annotated[Optional[str], typer.Option("--amp", show_default=False, help=(
    "bf16 or fp16: CPU autocast over the forward pass."))]
InferOpt = Annotated[bool, typer.Option("--infer", help="One forward in eval mode under torch.inference_mode().")]
BudgetOpt = Annotated[Optional[str], typer.Option("--budget", show_default=False, help=(
    "A memory size (24GiB, 16GB, 512MiB, bytes): the largest batch whose peak fits."))]
AllOpt = Annotated[bool, typer.Option("--all", help="List every node, not only the 10 that save the most.")]


@app.command(cls=Command, epilog=MEMORY_EXAMPLES)
def memory(
    target: TargetArg,
    input_shape: InputOpt,
    kwargs: KwargsOpt = None,
    optimizer: OptimizerOpt = "adam",
    amp: AmpOpt = None,
    infer: InferOpt = False,
    budget: BudgetOpt = None,
    all_nodes: AllOpt = False,
    verify: VerifyOpt = False,
    json_: JsonOpt = False,
) -> int:
    """Will it fit? The exact memory of a training step (or of inference): the peak, when it happens, what
    is alive at it, and the largest batch that fits a budget."""
    from ..memory import largest_batch, parse_budget
    from ..spec import parse_shape

    shape = parse_shape(input_shape, "--input")
    if len(shape) < 3:
        raise ConvcalcError(f"--input {input_shape} has rank {len(shape)}: expected N x C and 1 to 3 spatial sizes")
    if optimizer.lower() not in OPTIMIZERS:
        raise ConvcalcError(f"unknown --optimizer {optimizer!r}: expected {', '.join(OPTIMIZERS)}")
    if amp is not None and amp.lower() not in AMP:
        raise ConvcalcError(f"unknown --amp {amp!r}: expected bf16 or fp16")
    budget_bytes = parse_budget(budget, "budget") if budget is not None else None
    mode = "infer" if infer else "train"
    if infer and optimizer.lower() != "adam":
        raise ConvcalcError("--optimizer applies to a training step, not to --infer")
    from ..graph import load_model
    from ..graph.memory import Simulator

    model = load_model(target, parse_kwargs(kwargs))
    amp_name = amp.lower() if amp else None
    with Simulator(model, mode, optimizer.lower(), amp_name) as simulator:
        step = simulator.step(shape)
        search = None
        if budget_bytes is not None:
            cached = {shape[0]: step.peak_bytes}

            def peak(batch: int) -> int:
                if batch not in cached:
                    cached[batch] = simulator.step((batch, *shape[1:])).peak_bytes
                return cached[batch]

            search = largest_batch(peak, budget_bytes, shape[0])
    measured = None
    if verify:
        measured = _verify(model, shape, mode, optimizer.lower(), amp_name, step.peak_bytes)
    report = MemoryReport(target, shape, step, optimizer.lower() if mode == "train" else None, amp_name, search,
                          measured, all_nodes)
    return finish(report, json_, memory_document, memory_view)


def _verify(model: object, shape: tuple[int, ...], mode: str, optimizer: str, amp: str | None, peak: int) -> object:
    from ..graph.measure import MEASURE_LIMIT_BYTES
    from ..graph.memory_profile import measure_step

    if peak > MEASURE_LIMIT_BYTES:
        raise ConvcalcError(f"--verify runs the step for real: its predicted peak of {peak / 2**20:,.0f} MiB is over "
                            f"the {MEASURE_LIMIT_BYTES // 2**20} MiB that --verify may use; verify a smaller batch")
    return measure_step(model, shape, mode, optimizer, amp)
