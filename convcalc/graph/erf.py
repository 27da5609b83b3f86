"""A model's effective receptive field, measured by gradient as the papers measure it (docs/erf.md).

RepLKNet's procedure (Ding et al., CVPR 2022, ``erf/visualize_erf.py``): in eval mode, the centre unit
``(H'//2, W'//2)`` of a node, ``relu`` of it summed over channels, its gradient with respect to the
input, ``relu``, summed over channels: one map per sample, and the mean over samples. ``abs`` is Luo et
al.'s absolute gradient of the centre unit instead, without either relu. Samples are standard normal
noise, images (Pillow, resized, ImageNet-normalised) or a tensor file used as is; they go through in
batches sized to the memory budget that ``--verify`` uses, and a run that cannot fit one sample is
refused up front. torch (and numpy, Pillow) are imported here only.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from ..errors import ConvcalcError
from ..layer import format_size
from ..periodic import PeriodicField
from ..torchcheck import error_line, import_torch
from .fields import FieldState, Inspection, NodeInfo
from .measure import MEASURE_LIMIT_BYTES
from .tracing import ancestors

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff")
IMAGENET_MEAN = (0.485, 0.456, 0.406)  # timm.data.constants.IMAGENET_DEFAULT_MEAN
IMAGENET_STD = (0.229, 0.224, 0.225)
MAX_SAMPLES = 10_000
MAX_FILE_BYTES = 2**30


@dataclass(frozen=True)
class Samples:
    """Where the samples come from: ``noise`` (count, seed), ``images`` (a folder) or ``inputs`` (a file)."""

    kind: str
    count: int | None = None
    seed: int = 0
    path: str | None = None


@dataclass(frozen=True)
class ModelErf:
    """The measured map of one node's centre unit, with what it was measured on."""

    node: str  # as asked (a module holding several graph nodes stands for its output), or as picked
    chosen: bool  # the node was picked (the output has no spatial map), not asked for
    unit: tuple[int, ...]  # the centre unit of the node's output
    samples: int
    skipped: int  # samples whose gradient had a NaN (RepLKNet skips them too)
    method: str  # "replknet" or "abs"
    source: str  # "noise", "images" or "inputs"
    map: list[list[float]]  # H x W: the mean contribution of each input position
    node_info: NodeInfo
    batch: int


def measure_erf(model: Any, inspection: Inspection, node: str | None, samples: Samples, method: str) -> ModelErf:
    """The mean input-gradient map of the centre unit of ``node`` (default: the output, or the last node
    whose every spatial size exceeds 1)."""
    torch = import_torch("measuring an effective receptive field")
    shape = inspection.input_shape
    if len(shape) != 4:
        raise ConvcalcError(f"{{input}} {format_size(shape)}: the effective field is measured on 2-d inputs "
                            f"(N x C x H x W)", parameters=("input",))
    info, chosen = _node(inspection, node)
    per_sample = _bytes_per_sample(inspection, info.name)
    if per_sample > MEASURE_LIMIT_BYTES:
        raise ConvcalcError(f"a gradient run of one sample up to {info.name} would hold about "
                            f"{per_sample / 2**20:,.0f} MiB of activations and gradients (limit "
                            f"{MEASURE_LIMIT_BYTES // 2**20} MiB): give a smaller --input or an earlier --node")
    batch = max(1, MEASURE_LIMIT_BYTES // per_sample)
    total = None
    count = skipped = 0
    unit: tuple[int, ...] = ()
    frozen = [p for p in model.parameters() if p.requires_grad]
    for p in frozen:  # gradients of the input only: autograd then keeps nothing for the weights
        p.requires_grad_(False)
    try:
        for x in _batches(samples, shape, batch, torch):
            x = x.detach().to(torch.float32).requires_grad_(True)
            value = value_at(model, inspection, info.name, x, torch)
            unit = tuple(n // 2 for n in value.shape[2:])
            centre = value[(slice(None), slice(None), *unit)]
            target = torch.relu(centre).sum() if method == "replknet" else centre.sum()
            (grad,) = torch.autograd.grad(target, x)
            grad = torch.relu(grad) if method == "replknet" else grad.abs()
            maps = grad.sum(dim=1).to(torch.float64)  # one map per sample
            finite = torch.isfinite(maps).flatten(1).all(dim=1)
            skipped += int((~finite).sum())
            maps = maps[finite]
            count += int(maps.shape[0])
            total = maps.sum(dim=0) if total is None else total + maps.sum(dim=0)
    finally:
        for p in frozen:
            p.requires_grad_(True)
    if not count:
        raise ConvcalcError(f"every sample's gradient at {info.name} had a NaN: nothing to average")
    mean = (total / count).tolist()
    return ModelErf(node or info.name, chosen, unit, count, skipped, method, samples.kind, mean, info, batch)


def _node(inspection: Inspection, name: str | None) -> tuple[NodeInfo, bool]:
    """The node asked for, else the output when it is a spatial map, else the last node whose every
    spatial size exceeds 1."""
    rank = len(inspection.input_shape)

    def spatial(info: NodeInfo) -> bool:
        return info.shape is not None and len(info.shape) == rank and all(n > 1 for n in info.shape[2:])

    if name is not None:
        info = inspection.node(name)
        if info.shape is None or len(info.shape) != rank:
            raise ConvcalcError(f"node {name!r} gives {format_size(info.shape) if info.shape else 'no tensor'}: "
                                f"its centre unit needs an N x C x H x W output")
        return info, False
    if spatial(inspection.output):
        last = next((n for n in reversed(inspection.nodes) if n.flow is inspection.output.flow), None)
        if last is not None:
            return last, False
    for info in reversed(inspection.nodes):
        if spatial(info) and info.op != "input":
            return info, True
    raise ConvcalcError("no node of the model gives a spatial map larger than 1x1: nothing has a centre unit")


def _bytes_per_sample(inspection: Inspection, name: str) -> int:
    """float32 activations up to the node, kept for the backward pass, and their gradients, per sample."""
    keep = ancestors(inspection, name)
    elements = sum(math.prod(n.shape[1:]) for n in inspection.nodes if n.name in keep and n.shape)
    return elements * 4 * 3


def value_at(model: Any, inspection: Inspection, name: str, x: Any, torch: Any) -> Any:
    """The node's output on ``x``: the traced graph run up to it, or (forward hooks) the module's output."""
    if inspection.graph is not None:
        from .measure import _value_at

        return _value_at(inspection.graph, x, name, torch)
    captured: dict[str, Any] = {}
    modules = dict(model.named_modules())
    if name not in modules:
        raise ConvcalcError(f"no module named {name!r} to measure at")
    handle = modules[name].register_forward_hook(lambda module, args, out: captured.setdefault("value", out))
    try:
        model(x)
    finally:
        handle.remove()
    value = captured["value"]
    return value[0] if isinstance(value, (tuple, list)) else value


def _batches(samples: Samples, shape: tuple[int, ...], batch: int, torch: Any) -> Iterator[Any]:
    if samples.kind == "noise":
        count = samples.count or 0
        generator = torch.Generator().manual_seed(samples.seed)
        for start in range(0, count, batch):  # one draw per sample: the same samples whatever the batch
            yield torch.cat([torch.randn(1, *shape[1:], generator=generator) for _ in range(min(batch, count - start))])
    elif samples.kind == "images":
        paths = image_paths(samples.path or "", samples.count)
        for start in range(0, len(paths), batch):
            yield torch.stack([_image(path, shape, torch) for path in paths[start:start + batch]])
    else:
        tensor = load_inputs(samples.path or "", shape, torch)
        for start in range(0, tensor.shape[0], batch):
            yield tensor[start:start + batch]


def image_paths(folder: str, count: int | None) -> list[str]:
    """The images of a folder (not its subfolders), sorted by name; at most ``count``."""
    if not os.path.isdir(folder):
        raise ConvcalcError(f"--images {folder!r} is not a folder")
    paths = sorted(os.path.join(folder, f) for f in os.listdir(folder)
                   if f.lower().endswith(IMAGE_SUFFIXES) and os.path.isfile(os.path.join(folder, f)))
    if not paths:
        raise ConvcalcError(f"--images {folder!r} holds no images ({', '.join(IMAGE_SUFFIXES)})")
    return paths[:count] if count else paths[:MAX_SAMPLES]


def _image(path: str, shape: tuple[int, ...], torch: Any) -> Any:
    """An image as RepLKNet feeds it: RGB, resized to the input size (bicubic), scaled to [0, 1] and
    normalised with the ImageNet mean and std."""
    try:
        from PIL import Image
    except ImportError:
        raise ConvcalcError('--images needs Pillow: pip install "convcalc[images]"') from None
    if shape[1] != 3:
        raise ConvcalcError(f"--images gives RGB images, 3 channels; the input has {shape[1]}")
    try:
        with Image.open(path) as image:
            rgb = image.convert("RGB").resize((shape[3], shape[2]), Image.BICUBIC)
            data = bytearray(rgb.tobytes())
    except (OSError, ValueError) as exc:
        raise ConvcalcError(f"cannot read the image {path!r}: {error_line(exc)}") from None
    pixels = torch.frombuffer(data, dtype=torch.uint8).reshape(shape[2], shape[3], 3).permute(2, 0, 1)
    mean = torch.tensor(IMAGENET_MEAN).view(3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(3, 1, 1)
    return (pixels.to(torch.float32) / 255 - mean) / std


def load_inputs(path: str, shape: tuple[int, ...], torch: Any) -> Any:
    """A ``.pt`` or ``.npy`` tensor of N x C x H x W, C, H and W those of the input, used as is."""
    if not os.path.isfile(path):
        raise ConvcalcError(f"--inputs {path!r}: no such file")
    if os.path.getsize(path) > MAX_FILE_BYTES:
        raise ConvcalcError(f"--inputs {path!r} has more than {MAX_FILE_BYTES // 2**20:,} MiB")
    try:
        if path.endswith(".npy"):
            import numpy

            tensor = torch.from_numpy(numpy.load(path, allow_pickle=False))
        elif path.endswith((".pt", ".pth")):
            tensor = torch.load(path, map_location="cpu", weights_only=True)
        else:
            raise ConvcalcError(f"--inputs {path!r}: expected a .pt or .npy file")
    except ConvcalcError:
        raise
    except Exception as exc:
        raise ConvcalcError(f"cannot read --inputs {path!r}: {error_line(exc)}") from None
    if not isinstance(tensor, torch.Tensor):
        raise ConvcalcError(f"--inputs {path!r} holds {type(tensor).__name__}, not a tensor")
    if tensor.dim() != 4 or tuple(tensor.shape[1:]) != tuple(shape[1:]) or tensor.shape[0] < 1:
        raise ConvcalcError(f"--inputs {path!r} has shape {format_size(tuple(tensor.shape))}; expected N x "
                            f"{format_size(shape[1:])} (N samples of the --input's C x H x W)")
    if tensor.shape[0] > MAX_SAMPLES:
        raise ConvcalcError(f"--inputs {path!r} holds {tensor.shape[0]:,} samples; at most {MAX_SAMPLES:,}")
    if not tensor.is_floating_point():
        tensor = tensor.to(torch.float32)
    return tensor


def unit_box(info: NodeInfo, unit: tuple[int, ...], size: tuple[int, ...]) -> tuple[tuple[int, int], ...] | str:
    """The input positions (first, last) per dimension that the node's unit can reach, clipped to the
    input; ``"global"`` or ``"unknown"`` where the field is not a set of positions."""
    if any(f is FieldState.GLOBAL for f in info.fields) and all(isinstance(f, FieldState) for f in info.fields):
        return "global"
    if not info.fields or any(not isinstance(f, PeriodicField) for f in info.fields):
        return "unknown"
    box = []
    for f, u, n in zip(info.fields, unit, size):
        seen = f.of(u)  # type: ignore[union-attr]
        box.append((max(seen.first, 0), min(seen.last, n - 1)))
    return tuple(box)
