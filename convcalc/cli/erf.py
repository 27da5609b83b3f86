"""``convcalc erf``: the effective receptive field, exact for a stack of layers, measured for a model."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from ..errors import ConvcalcError
from ..reports import ErfReport
from ..render.erf import erf_document, erf_view
from .options import DimsOpt, JsonOpt, parse_kwargs
from .typer_app import Command, app, examples, finish

ERF_EXAMPLES = examples(
    ("convcalc erf --layers 3x3*8", "std sqrt(16/3) in a 17-wide field"),
    ("convcalc erf --layers 3x3d1,3x3d2,3x3d5", "dilation widens it"),
    ("convcalc erf --layers 3x3d2*3", "gridding punches holes in it"),
    "convcalc erf --layers 7x7s2p3,max3s2p1,3x3p1*4 --json",
    "convcalc erf tests/models.py:TinyResNet --input 1x3x64x64 --samples 8",
    "convcalc erf tests/models.py:TinyUNet --input 1x1x32x32 --node dec2.0 --abs",
    "convcalc erf tests/models.py:SEBlock --input 1x3x32x32 --png erf.png",
    notes=("For a stack, every tap weighs 1 and the contribution of an offset is the number of paths from it "
           "to the unit: exact. For a model, the input gradient of the centre unit of --node (default: the "
           "output, or the last node with a spatial map), averaged over the samples (RepLKNet's procedure; "
           "--abs: Luo et al.'s). --png needs matplotlib, --images Pillow."),
)

TargetArg = Annotated[Optional[str], typer.Argument(metavar="[MODULE:ATTR]", show_default=False, help=(
    "A model, as inspect takes it (or give --layers for a stack)."))]
LayersOpt = Annotated[Optional[str], typer.Option("--layers", "-l", show_default=False, help=(
    "A stack of layers, e.g. 3x3*8 (see convcalc rf): its exact effective field."))]
InputOpt = Annotated[Optional[str], typer.Option("--input", show_default=False, help=(
    "The model's input shape 1 x C x H x W."))]
KwargsOpt = Annotated[Optional[str], typer.Option("--kwargs", show_default=False, help=(
    "JSON keyword arguments for the class or factory."))]
NodeOpt = Annotated[Optional[str], typer.Option("--node", show_default=False, help=(
    "The node whose centre unit is measured \\[default: the output, or the last node with a spatial map]."))]
SamplesOpt = Annotated[Optional[int], typer.Option("--samples", show_default=False, help=(
    "Samples of standard normal noise \\[default: 16]; with --images, at most this many images."))]
SeedOpt = Annotated[int, typer.Option("--seed", help="Seed of the noise.")]
ImagesOpt = Annotated[Optional[str], typer.Option("--images", metavar="DIR", show_default=False, help=(
    "A folder of images: resized to the input, ImageNet-normalised (needs Pillow)."))]
InputsOpt = Annotated[Optional[str], typer.Option("--inputs", metavar="FILE", show_default=False, help=(
    "A .pt or .npy tensor of N x C x H x W samples, used as is."))]
AbsOpt = Annotated[bool, typer.Option("--abs", help="Luo et al.'s absolute gradient instead of RepLKNet's relus.")]
PngOpt = Annotated[Optional[str], typer.Option("--png", metavar="FILE", show_default=False, help=(
    "Also write the heatmap, log scale, with the theoretical field's box (needs matplotlib)."))]

DEFAULT_SAMPLES = 16
MODEL_OPTIONS = ("--input", "--kwargs", "--node", "--samples", "--images", "--inputs", "--abs", "--png", "--seed")


@app.command(cls=Command, epilog=ERF_EXAMPLES)
def erf(
    target: TargetArg = None,
    layers: LayersOpt = None,
    dims: DimsOpt = None,
    input_shape: InputOpt = None,
    kwargs: KwargsOpt = None,
    node: NodeOpt = None,
    samples: SamplesOpt = None,
    seed: SeedOpt = 0,
    images: ImagesOpt = None,
    inputs: InputsOpt = None,
    abs_: AbsOpt = False,
    png: PngOpt = None,
    json_: JsonOpt = False,
) -> int:
    """The effective receptive field: how much each input position contributes to one unit, exact for a
    stack of layers (pure Python), measured by gradient for a model."""
    given = [name for name, value in zip(MODEL_OPTIONS, (input_shape, kwargs, node, samples, images, inputs, abs_,
                                                         png, seed)) if value not in (None, False, 0)]
    if layers is not None:
        if target is not None:
            raise ConvcalcError("give a model or --layers, not both")
        if given:
            raise ConvcalcError(f"{given[0]} applies to a model, not to --layers")
        from ..erf import stack_erf

        return finish(ErfReport(stack=stack_erf(layers, dims), spec=layers), json_, erf_document, erf_view)
    if target is None:
        raise ConvcalcError("give a model (MODULE:ATTR with --input) or --layers SPEC, e.g. convcalc erf --layers "
                            "3x3*8")
    if dims is not None:
        raise ConvcalcError("--dims applies to --layers; a model's dimensions come from --input")
    if input_shape is None:
        raise ConvcalcError("give the model's input: --input 1xCxHxW, e.g. --input 1x3x224x224")
    return finish(_model_report(target, input_shape, kwargs, node, samples, seed, images, inputs, abs_, png),
                  json_, erf_document, erf_view)


def _model_report(target: str, input_shape: str, kwargs: str | None, node: str | None, samples: int | None,
                  seed: int, images: str | None, inputs: str | None, abs_: bool, png: str | None) -> ErfReport:
    from ..erf import AREA_THRESHOLDS, centred_squares
    from ..graph import inspect_model, load_model
    from ..graph.erf import MAX_SAMPLES, Samples, measure_erf
    from ..spec import parse_shape

    shape = parse_shape(input_shape, "--input")
    if images is not None and inputs is not None:
        raise ConvcalcError("give --images or --inputs, not both")
    if samples is not None and not 1 <= samples <= MAX_SAMPLES:
        raise ConvcalcError(f"--samples must be from 1 to {MAX_SAMPLES:,}, got {samples}")
    if inputs is not None and samples is not None:
        raise ConvcalcError("--samples does not apply to --inputs: the file's samples are used, every one")
    if png is not None and not png.lower().endswith(".png"):
        raise ConvcalcError(f"--png {png!r}: expected a file name ending in .png")
    source = Samples("images", samples, path=images) if images is not None else \
        Samples("inputs", path=inputs) if inputs is not None else Samples("noise", samples or DEFAULT_SAMPLES, seed)
    model = load_model(target, parse_kwargs(kwargs))
    inspection = inspect_model(model, shape, target)
    measured = measure_erf(model, inspection, node, source, "abs" if abs_ else "replknet")
    report = ErfReport(measured=measured, model=target, input_shape=shape,
                       area_ratio=centred_squares(measured.map, AREA_THRESHOLDS),
                       mass_window=centred_squares(measured.map, AREA_THRESHOLDS, log_scale=False), png=png)
    if png is not None:
        from ..render.erf import write_png

        write_png(report, png)
    return report
