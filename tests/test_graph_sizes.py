"""convcalc.graph.sizes: the input sizes a traced model accepts equal eager torch's, size by size, with the
first failing node named in the model's terms; a failing --input names its node and the nearest inputs."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from torch import nn  # noqa: E402
from torch.nn import functional as F  # noqa: E402

import models  # noqa: E402
from convcalc import ConvcalcError  # noqa: E402
from convcalc.graph import inspect_model  # noqa: E402
from convcalc.graph.sizes import sweep_sizes  # noqa: E402


def eager(model, shape):
    """The output shape eager torch gives on zeros of ``shape``, or None where it raises."""
    try:
        with torch.no_grad():
            return tuple(model(torch.zeros(shape)).shape)
    except (RuntimeError, ValueError):
        return None


def brute_force(model, base, low, high, axes):
    return {n: eager(model, tuple(n if a in axes else s for a, s in enumerate(base))) for n in range(low, high + 1)}


CASES = {  # model, --input, range, axes
    "unet (cat skips)": (models.TinyUNet, (1, 1, 32, 32), (1, 70), (2, 3)),
    "unet, one axis": (models.TinyUNet, (1, 1, 32, 32), (1, 40), (3,)),
    "4-level unet": (models.UNet4, (1, 3, 64, 64), (1, 70), (2, 3)),
    "lenet (fixed Linear)": (models.LeNet, (1, 1, 32, 32), (1, 64), (2, 3)),
    "lenet, one axis": (models.LeNet, (1, 1, 32, 32), (1, 64), (3,)),
    "encoder-decoder (interpolate and add)": (models.StridedEncoderDecoder, (1, 3, 32, 32), (1, 70), (2, 3)),
    "resnet": (models.TinyResNet, (2, 3, 64, 64), (1, 70), (2, 3)),
    "aspp": (models.ASPPHead, (1, 3, 64, 64), (1, 40), (2, 3)),
    "se": (models.SEBlock, (1, 3, 16, 16), (1, 24), (2, 3)),
    "inception": (models.TinyInception, (1, 3, 32, 32), (1, 24), (2, 3)),
    "meta-device nodes": (models.CostZoo, (1, 3, 8, 8), (1, 24), (2, 3)),
    "counting quirks": (models.CountingQuirks, (1, 1, 16, 16), (1, 40), (2, 3)),
    "1-d, upsampling by 2.5": (lambda: nn.Sequential(
        nn.Conv1d(2, 4, 5, stride=2), nn.ReLU(), nn.MaxPool1d(3, ceil_mode=True), nn.Upsample(scale_factor=2.5),
        nn.Conv1d(4, 2, 3, padding="same", padding_mode="reflect")), (1, 2, 40), (1, 60), (2,)),
    "3-d": (lambda: nn.Sequential(nn.Conv3d(1, 2, 3, stride=2, padding=1), nn.AvgPool3d(2),
                                  nn.ConvTranspose3d(2, 1, 2, stride=2)), (1, 1, 8, 8, 8), (1, 20), (2, 3, 4)),
    "3-d, one axis": (lambda: nn.Sequential(nn.Conv3d(1, 2, 3, stride=2, padding=1), nn.AvgPool3d(2),
                                            nn.ConvTranspose3d(2, 1, 2, stride=2)), (1, 1, 8, 8, 8), (1, 20), (4,)),
}


@pytest.mark.parametrize("name", CASES)
def test_accepted_sizes_equal_brute_force(name):
    factory, base, (low, high), axes = CASES[name]
    model = factory().eval()
    sweep, _ = sweep_sizes(model, base, low, high, axes)
    expected = brute_force(model, base, low, high, axes)
    assert {r.size: r.out for r in sweep.results} == expected
    assert all((r.node is None) == r.ok for r in sweep.results)


def test_failures_in_the_models_terms():
    unet, _ = sweep_sizes(models.TinyUNet().eval(), (1, 1, 32, 32), 37, 38)
    assert unet.results[0].node == "cat_1"
    assert unet.results[0].reason == "cat: 36 vs 37 on axis 2 (up1 gives 36, enc1.3 gives 37)"
    lenet, _ = sweep_sizes(models.LeNet().eval(), (1, 1, 32, 32), 36, 36)
    assert (lenet.results[0].node, lenet.results[0].reason) == ("fc1", "fc1 expects 400 features, flatten gives 576 (on this input, Linear(in_features=576, ...) would fit)")
    assert lenet.rule == "none"


def test_rules_of_the_test_models():
    assert sweep_sizes(models.TinyUNet().eval(), (1, 1, 32, 32), 1, 512)[0].rule == "multiples of 4 from 4"
    assert sweep_sizes(models.UNet4().eval(), (1, 3, 64, 64), 1, 512)[0].rule == "multiples of 8 from 8"
    assert sweep_sizes(models.LeNet().eval(), (1, 1, 32, 32), 1, 512)[0].rule == "32..35"


def test_nodes_without_a_rule_are_named():
    _, notes = sweep_sizes(models.CostZoo().eval(), (1, 3, 8, 8), 4, 6)
    assert len(notes) == 1 and "bmm" in notes[0] and "meta device" in notes[0]


def test_untraceable_models_are_refused_with_the_line():
    with pytest.raises(ConvcalcError, match="--sizes needs a model torch.fx can trace.*y.sum"):
        sweep_sizes(models.DataDependent().eval(), (1, 3, 16, 16), 1, 4)


def test_a_failing_input_names_the_node_and_the_nearest_inputs_that_work():
    with pytest.raises(ConvcalcError) as caught:
        inspect_model(models.TinyUNet(), (1, 1, 37, 37), "unet")
    assert str(caught.value) == ("the model fails on 1x1x37x37 at cat_1: cat: 36 vs 37 on axis 2 (up1 gives 36, "
                                 "enc1.3 gives 37); nearest inputs that work: 1x1x36x36 or 1x1x40x40")
    with pytest.raises(ConvcalcError) as caught:
        inspect_model(models.LeNet(), (1, 1, 40, 40), "lenet")
    assert str(caught.value).endswith("at fc1: fc1 expects 400 features, flatten gives 784 (on this input, "
                                      "Linear(in_features=784, ...) would fit); nearest inputs that work: 1x1x35x35")


class Random(nn.Module):
    """A random 2-d stack, optionally merged with its input (a residual) and closed by a fixed Linear."""

    def __init__(self, layers, residual, linear_features):
        super().__init__()
        self.body = nn.Sequential(*layers)
        self.residual = residual
        self.head = nn.Linear(linear_features, 2) if linear_features else None

    def forward(self, x):
        y = self.body(x)
        if self.residual:
            y = y + F.interpolate(x, scale_factor=0.5) if self.residual == 2 else y + x
        return self.head(torch.flatten(y, 1)) if self.head is not None else y


@st.composite
def random_models(draw):
    layers = []
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["conv", "conv", "tconv", "max", "avg"]))
        k, s, d = draw(st.integers(1, 4)), draw(st.integers(1, 3)), draw(st.integers(1, 2))
        if op == "conv":
            layers.append(nn.Conv2d(1, 1, k, s, draw(st.integers(0, 2)), d))
        elif op == "tconv":
            layers.append(nn.ConvTranspose2d(1, 1, k, s, draw(st.integers(0, 1)), draw(st.integers(0, max(s, d) - 1)),
                                             dilation=d))
        elif op == "max":
            layers.append(nn.MaxPool2d(k, s, draw(st.integers(0, k // 2)), d, ceil_mode=draw(st.booleans())))
        else:
            layers.append(nn.AvgPool2d(k, s, draw(st.integers(0, k // 2)), ceil_mode=draw(st.booleans())))
    return Random(layers, draw(st.sampled_from([0, 0, 1, 2])), draw(st.sampled_from([0, 0, 1, 4, 9, 16])))


@settings(max_examples=300, deadline=None)
@given(random_models())
def test_random_models_equal_brute_force(model):
    model = model.eval()
    sweep, _ = sweep_sizes(model, (1, 1, 8, 8), 1, 20)
    assert {r.size: r.out for r in sweep.results} == brute_force(model, (1, 1, 8, 8), 1, 20, (2, 3))
