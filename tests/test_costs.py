"""convcalc.graph.costs: MACs in three named conventions, each equal to the real tool on the same model;
parameters and bytes."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import SimpleNamespace

import pytest

from convcalc.graph.costs import Macs, convolution_macs, function_macs, inspection_totals, model_totals

ROOT = Path(__file__).parent.parent


def test_convolution_counts_output_positions_or_a_transposed_ones_input_positions():
    # 8 -> 16 channels, 3x3, on 1x8x10x10 giving 10x10: 16*8*9 weights x 100 positions.
    assert convolution_macs((1, 8, 10, 10), (16, 8, 3, 3), (1, 16, 10, 10), False) == 16 * 8 * 9 * 100
    # A transposed one from 5x5 to 10x10 applies its weights at each of the 25 input positions.
    assert convolution_macs((2, 8, 5, 5), (8, 4, 2, 2), (2, 4, 10, 10), True) == 2 * 8 * 4 * 4 * 25


def test_products_count_per_output_element_in_aten_and_as_fvcore_does():
    node = SimpleNamespace(args=(), kwargs={})
    # matmul broadcasting a 2-d left operand: aten counts every batch, fvcore only prod(a) x m.
    assert function_macs("matmul", node, [(4, 5), (3, 5, 6)], (3, 4, 6)) == Macs(3 * 4 * 6 * 5, 4 * 5 * 6)
    assert function_macs("baddbmm", node, [(2, 4, 6), (2, 4, 5), (2, 5, 6)], (2, 4, 6)) == Macs(2 * 4 * 6 * 5)
    # einsum has no closed form: its MACs come from the ops it dispatches (tests/test_dispatch.py).
    assert function_macs("einsum", node, [(2, 3)], (2, 3)) == Macs()


def test_totals_scale_by_the_batch_and_skip_views():
    node = lambda op, macs, shape, aliases=False: SimpleNamespace(  # noqa: E731
        op=op, macs=Macs(*macs), out_numel=0 if shape is None else __import__("math").prod(shape), aliases=aliases)
    nodes = [node("input", (0, 0, 0), (4, 3, 8, 8)), node("Conv2d", (10, 10, 12), (4, 8, 8, 8)),
             node("view", (0, 0, 0), (4, 512), aliases=True), node("Linear", (5, 5, 5), (4, 2))]
    totals = model_totals(nodes, params=100, trainable_params=60, batch=4, dtype="float16")
    assert totals.macs == Macs(60, 60, 68) and totals.non_trainable_params == 40
    assert totals.param_bytes == 200 and totals.activation_bytes == (4 * 8 * 8 * 8 + 4 * 2) * 2


torch = pytest.importorskip("torch")
import models  # noqa: E402

from convcalc.graph import inspect_model  # noqa: E402

CASES = {
    "vgg16": (models.vgg16_features, (1, 3, 64, 64)),
    "resnet": (models.TinyResNet, (2, 3, 64, 64)),
    "inception": (models.TinyInception, (1, 3, 32, 32)),
    "unet": (models.TinyUNet, (1, 1, 32, 32)),
    "unet4": (models.UNet4, (1, 3, 64, 64)),
    "se": (models.SEBlock, (3, 3, 16, 16)),
    "aspp": (models.ASPPHead, (1, 3, 64, 64)),
    "data-dependent (hooks)": (models.DataDependent, (1, 3, 16, 16)),
    "zoo": (models.CostZoo, (2, 3, 8, 8)),
    "lenet": (models.LeNet, (1, 1, 32, 32)),
    "encoder-decoder": (models.StridedEncoderDecoder, (1, 3, 32, 32)),
    "counting quirks": (models.CountingQuirks, (2, 1, 16, 16)),
    "one module": (lambda: torch.nn.ConvTranspose2d(2, 3, 3, stride=2, dilation=2), (2, 2, 9, 9)),
}


def resnet50():
    spec = importlib.util.spec_from_file_location("bench_resnet50", ROOT / "benchmarks" / "resnet50.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.resnet50()


def real_tools(model, shape):
    """What torch.utils.flop_counter (halved), fvcore and torchinfo report for ``model``."""
    from torch.utils.flop_counter import FlopCounterMode
    from torch_oracle import fvcore_total
    from torchinfo import summary

    x = torch.zeros(shape)
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        model(x)
    stats = summary(model, input_size=shape, verbose=0)
    return Macs(counter.get_total_flops() // 2, fvcore_total(model, x), stats.total_mult_adds), stats


@pytest.mark.parametrize("name", [*CASES, "resnet50"])
def test_each_convention_equals_its_tool(name):
    factory, shape = CASES.get(name, (resnet50, (1, 3, 224, 224)))
    model = factory().eval()
    totals = inspection_totals(inspect_model(model, shape, name))
    macs, stats = real_tools(model, shape)
    assert totals.macs == macs
    assert (totals.params, totals.trainable_params) == (stats.total_params, stats.trainable_params)
    # torchinfo's own param-bytes total leaves out parameters held by modules with children (CostZoo's
    # self.weight): ours is every parameter at --dtype's size.
    assert totals.param_bytes == 4 * stats.total_params


def test_per_node_aten_macs_equal_flop_counters_per_module():
    from torch.utils.flop_counter import FlopCounterMode

    model = models.TinyResNet().eval()
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        model(torch.zeros(2, 3, 64, 64))
    per_module = {name.removeprefix("TinyResNet."): sum(counts.values()) // 2
                  for name, counts in counter.get_flop_counts().items()}
    inspection = inspect_model(model, (2, 3, 64, 64), "resnet")
    counted = {n.name: 2 * n.macs.aten for n in inspection.nodes if n.op in ("Conv2d", "Linear")}  # batch 2
    assert len(counted) == 14 and counted == {name: per_module[name] for name in counted}


def test_resnet50_totals_include_batchnorm():
    inspection = inspect_model(resnet50().eval(), (1, 3, 224, 224), "resnet50")
    totals = inspection_totals(inspection)
    assert totals.params == 25_557_032 and totals.macs.aten == 4_089_184_256  # torchvision's 4.09 GFLOPS
    assert sum(n.params for n in inspection.nodes if n.op.startswith("BatchNorm")) == 25_557_032 - 25_503_912


def test_frozen_parameters_are_non_trainable_and_dtype_sets_the_bytes():
    model = models.CostZoo().eval()
    totals = inspection_totals(inspect_model(model, (1, 3, 8, 8), "zoo"), "bfloat16")
    frozen = model.conv.weight.numel()
    assert totals.non_trainable_params == frozen and totals.param_bytes == 2 * totals.params


def test_activation_bytes_count_each_new_tensor_once():
    class Views(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = torch.nn.Conv2d(1, 2, 3, padding=1)
            self.relu = torch.nn.ReLU(inplace=True)

        def forward(self, x):
            y = self.relu(self.conv(x))  # in place: no new tensor
            return y.flatten(1).view(1, 2, 16).mean(2)

    inspection = inspect_model(Views().eval(), (1, 1, 4, 4), "views")
    assert inspection_totals(inspection).activation_bytes == (2 * 16 + 2) * 4  # conv's output and the mean's
    assert inspection_totals(inspection, "float64").activation_bytes == (2 * 16 + 2) * 8
