"""``convcalc inspect``: shapes and receptive fields of a real torch model, node by node."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from ..errors import ConvcalcError
from ..reports import InspectReport, SizesReport
from ..render.inspect import inspect_document, inspect_view
from ..render.sizes import sizes_document, sizes_view
from ..spec import parse_shape
from .typer_app import Command, app, examples, finish
from .options import JsonOpt, VerifyOpt, parse_kwargs

INSPECT_EXAMPLES = examples(
    "convcalc inspect torchvision.models:resnet50 --input 1x3x224x224",
    ("convcalc inspect torchvision.models.segmentation:deeplabv3_resnet50 \\\n"
     "    --input 1x3x512x512 --node backbone.layer4 \\\n"
     "    --kwargs '{\"weights\": null, \"weights_backbone\": null}'"),
    ("convcalc inspect torch.nn:Conv2d --input 1x3x64x64 --all --json \\\n"
     "    --kwargs '{\"in_channels\": 3, \"out_channels\": 8, \"kernel_size\": 3}'"),
    ("convcalc inspect torch.nn:MaxPool2d --input 1x1x32x32 --verify \\\n"
     "    --kwargs '{\"kernel_size\": 3, \"stride\": 2}'"),
    "convcalc inspect tests/models.py:TinyUNet --input 1x1x32x32 --sizes 1..512",
    "convcalc inspect tests/models.py:LeNet --input 1x1x32x32 \\\n    --sizes 1..256 --vary-dim 3",
    notes=("A file works as well as a module: path/to/model.py:Net. Importing MODULE runs its code, as "
           "pytest and uvicorn do.\n\n"
           "[b]MACs[/b] in three conventions, each equal to its tool's total: aten (torch.utils.flop_counter's "
           "FLOPs / 2: convolutions, matrix products, attention), fvcore (FlopCountAnalysis: those plus "
           "norms, upsampling, adaptive pooling; only ops the output uses) and torchinfo (summary's "
           "total_mult_adds: per module call, each weight and bias element once per output position for "
           "convolutions, once per sample otherwise)."),
)

TargetArg = Annotated[str, typer.Argument(metavar="MODULE:ATTR", show_default=False, help=(
    "A model: package.module:attribute or path/to/model.py:Name (an nn.Module, or a class or function "
    "returning one)."))]
InputOpt = Annotated[str, typer.Option("--input", help="Input shape N x C x spatial, e.g. 1x3x224x224.")]
KwargsOpt = Annotated[Optional[str], typer.Option("--kwargs", help="JSON keyword arguments for the class or "
                                                                    "factory, e.g. '{\"num_classes\": 10}'.")]
AllOpt = Annotated[bool, typer.Option("--all", help="Show every node, not only those that change geometry.")]
NodeOpt = Annotated[Optional[str], typer.Option("--node", help="Only the path up to this node (and verify it).")]
SizesOpt = Annotated[Optional[str], typer.Option("--sizes", help=(
    "Which input sizes A..B the model accepts (square: every spatial dimension; see --vary-dim), through "
    "the traced graph by convcalc's shape rules."))]
VaryDimOpt = Annotated[Optional[int], typer.Option("--vary-dim", help=(
    "With --sizes: the one tensor axis to vary (2 is the first spatial one); the others as in --input."))]
DtypeOpt = Annotated[str, typer.Option("--dtype", help=(
    "float32, float16, bfloat16 or float64: the element size of the parameter and activation bytes."))]

@app.command(cls=Command, epilog=INSPECT_EXAMPLES)
def inspect(
    target: TargetArg,
    input_shape: InputOpt,
    kwargs: KwargsOpt = None,
    all_nodes: AllOpt = False,
    node: NodeOpt = None,
    dtype: DtypeOpt = "float32",
    sizes: SizesOpt = None,
    vary_dim: VaryDimOpt = None,
    verify: VerifyOpt = False,
    json_: JsonOpt = False,
) -> int:
    """Shapes, receptive fields, parameters and MACs of a real torch model, node by node through its traced
    graph; or, with --sizes, which input sizes it accepts."""
    from .. import graph
    from ..graph.costs import inspection_totals
    from ..cost import element_size

    shape = parse_shape(input_shape, "--input")
    element_size(dtype.lower())  # an unknown dtype is refused before the model is loaded
    if sizes is not None:
        if verify or all_nodes or node is not None:
            raise ConvcalcError("--sizes sweeps input sizes: it does not combine with --verify, --all or --node")
        return _sweep(target, shape, parse_kwargs(kwargs), sizes, vary_dim, json_)
    if vary_dim is not None:
        raise ConvcalcError("--vary-dim applies to --sizes")
    model = graph.load_model(target, parse_kwargs(kwargs))
    inspection = graph.inspect_model(model, shape, target)
    nodes = graph.shown_nodes(inspection, all_nodes, node)
    measurements = None
    if verify:
        measurements = (graph.verify_nodes(inspection, [node]) if node is not None
                        else graph.verify_default(inspection))
    report = InspectReport(inspection, nodes, inspection_totals(inspection, dtype.lower()), measurements)
    return finish(report, json_, inspect_document, inspect_view)


def _sweep(target: str, shape: tuple[int, ...], kwargs: dict | None, sizes: str, vary_dim: int | None,
           json_: bool) -> int:
    from ..graph import load_model
    from ..graph.sizes import sweep_sizes
    from ..sizes import MAX_MODEL_SIZES, parse_range

    low, high = parse_range(sizes, "sizes", MAX_MODEL_SIZES)
    if len(shape) < 3:
        raise ConvcalcError(f"--input has rank {len(shape)}: expected N x C and 1 to 3 spatial sizes")
    if vary_dim is not None and not 2 <= vary_dim < len(shape):
        raise ConvcalcError(f"--vary-dim {vary_dim}: the spatial axes of a {len(shape)}-d input are "
                            f"2..{len(shape) - 1}")
    axes = (vary_dim,) if vary_dim is not None else tuple(range(2, len(shape)))
    sweep, notes = sweep_sizes(load_model(target, kwargs), shape, low, high, axes)
    report = SizesReport(sweep, target, input_shape=shape, axes=axes, warnings=tuple(notes))
    return finish(report, json_, sizes_document, sizes_view)
