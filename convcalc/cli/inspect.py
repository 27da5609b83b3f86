"""``convcalc inspect``: shapes and receptive fields of a real torch model, node by node."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from ..reports import InspectReport
from ..render.inspect import inspect_document, inspect_view
from ..spec import parse_shape
from .typer_app import Command, app, finish
from .options import JsonOpt, VerifyOpt, parse_kwargs

INSPECT_EXAMPLES = """\
[b]Examples[/b]

  convcalc inspect torchvision.models:resnet50 --input 1x3x224x224

  convcalc inspect torchvision.models.segmentation:deeplabv3_resnet50 --input 1x3x512x512 \\
      --kwargs '{"weights": null, "weights_backbone": null}' --node backbone.layer4

  convcalc inspect torch.nn:Conv2d --input "torch.Size([1, 3, 64, 64])" --all --json \\
      --kwargs '{"in_channels": 3, "out_channels": 8, "kernel_size": 3, "dilation": 2}'

  convcalc inspect torch.nn:MaxPool2d --input 1x1x32x32 --kwargs '{"kernel_size": 3, "stride": 2}' --verify

A file works as well as a module: path/to/model.py:Net.

Importing MODULE runs its code, as pytest and uvicorn do.
"""

TargetArg = Annotated[str, typer.Argument(metavar="MODULE:ATTR", show_default=False, help=(
    "A model: package.module:attribute or path/to/model.py:Name (an nn.Module, or a class or function "
    "returning one)."))]
InputOpt = Annotated[str, typer.Option("--input", help="Input shape N x C x spatial, e.g. 1x3x224x224.")]
KwargsOpt = Annotated[Optional[str], typer.Option("--kwargs", help="JSON keyword arguments for the class or "
                                                                    "factory, e.g. '{\"num_classes\": 10}'.")]
AllOpt = Annotated[bool, typer.Option("--all", help="Show every node, not only those that change geometry.")]
NodeOpt = Annotated[Optional[str], typer.Option("--node", help="Only the path up to this node (and verify it).")]
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
    verify: VerifyOpt = False,
    json_: JsonOpt = False,
) -> int:
    """Shapes and receptive fields of a real torch model, node by node through its traced graph."""
    from .. import graph

    from ..cost import element_size

    shape = parse_shape(input_shape, "--input")
    element_size(dtype.lower())  # an unknown dtype is refused before the model is loaded
    model = graph.load_model(target, parse_kwargs(kwargs))
    inspection = graph.inspect_model(model, shape, target)
    nodes = graph.shown_nodes(inspection, all_nodes, node)
    measurements = None
    if verify:
        measurements = (graph.verify_nodes(inspection, [node]) if node is not None
                        else graph.verify_default(inspection))
    report = InspectReport(inspection, nodes, inspection.totals(dtype.lower()), measurements)
    return finish(report, json_, inspect_document, inspect_view)
