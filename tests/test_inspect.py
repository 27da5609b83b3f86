"""convcalc.inspect: graph-correct fields of real torch models, each checked by gradient measurement."""

from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from typer.testing import CliRunner  # noqa: E402

import models  # noqa: E402
from convcalc import ConvcalcError  # noqa: E402
from convcalc.cli import app  # noqa: E402
from convcalc.graph import (GLOBAL, UNKNOWN, inspect_model, load_model, shown_nodes, verify_nodes)

MODELS_FILE = str(Path(__file__).parent / "models.py")
CASES = {
    "vgg16": (models.vgg16_features, (1, 3, 224, 224)),
    "resnet": (models.TinyResNet, (1, 3, 64, 64)),
    "inception": (models.TinyInception, (1, 3, 32, 32)),
    "unet": (models.TinyUNet, (1, 1, 32, 32)),
    "se": (models.SEBlock, (1, 3, 16, 16)),
    "aspp": (models.ASPPHead, (1, 3, 64, 64)),
}


def inspected(name: str):
    factory, shape = CASES[name]
    return inspect_model(factory(), shape, name)


def rf(inspection, node: str):
    fields = inspection.node(node).fields
    return GLOBAL if fields[0] == GLOBAL else fields[0].receptive_field


@pytest.mark.parametrize("name", CASES)
def test_every_shown_node_equals_the_gradient_measurement(name):
    inspection = inspected(name)
    names = [n.name for n in shown_nodes(inspection) if n.op != "input"]
    results = verify_nodes(inspection, names)
    assert results and all(r.skipped is None for r in results)
    disagreements = [(r.node, r.measured, r.predicted) for r in results if not r.agrees]
    assert disagreements == []


def test_vgg16_published_field():
    inspection = inspected("vgg16")
    last_pool = [n for n in inspection.nodes if n.op == "MaxPool2d"][-1]
    assert last_pool.fields[0].receptive_field == 212 and last_pool.fields[0].jump == 32


def test_residual_merges_take_the_union_not_the_call_order():
    inspection = inspected("resnet")
    # layer2.0: the main path (two 3x3 convs, the first strided) reaches 67; the 1x1 projection 43.
    assert (rf(inspection, "layer2.0.conv2"), rf(inspection, "layer2.0.shortcut.0"), rf(inspection, "add_2")) == \
        (67, 43, 67)
    # Composing modules in call order would put the shortcut after conv2 and get 67 + 0 * 8 + ... instead.
    assert rf(inspection, "layer2.1.conv1") == 83  # continues from the merge, not from the shortcut
    assert rf(inspection, "pool") == GLOBAL and inspection.output.fields == [GLOBAL, GLOBAL]


def test_inception_concat_and_dilated_head():
    inspection = inspected("inception")
    assert rf(inspection, "cat") == 11  # the 5x5 branch after the stride-2 stem: 3 + 4 * 2
    assert rf(inspection, "head") == 19 and inspection.node("head").fields[0].jump == 2


def test_unet_decoder_is_exact():
    inspection = inspected("unet")
    assert rf(inspection, "bottom.0") == 24 and inspection.node("bottom.0").fields[0].jump == 4
    assert inspection.node("up2").fields[0].jump == 2 and inspection.node("up1").fields[0].jump == 1
    assert rf(inspection, "out") == 32


def test_se_gate_makes_everything_after_it_global():
    inspection = inspected("se")
    assert rf(inspection, "conv") == 3
    assert rf(inspection, "mul") == GLOBAL and rf(inspection, "after") == GLOBAL


def test_aspp_holes_and_upsampling():
    inspection = inspected("aspp")
    branch = inspection.node("branches.3").fields[0]
    assert branch.coverage.holes > 0  # rate 6 on the dilated backbone leaves holes
    up = inspection.node("interpolate").fields[0]
    assert up.jump == 1 and up.receptive_field == 75


def test_merge_warns_when_branches_disagree_on_centre():
    class Offset(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.a = torch.nn.Conv2d(1, 1, 3, padding=1)
            self.b = torch.nn.Conv2d(1, 1, 2, padding="same")

        def forward(self, x):
            return self.a(x) + self.b(x)

    inspection = inspect_model(Offset(), (1, 1, 16, 16))
    assert any("disagree on centre (0 vs 1/2)" in w for w in inspection.warnings)
    assert inspection.output.fields[0].receptive_field == 3


def test_untraceable_models_fall_back_to_hooks():
    inspection = inspect_model(models.DataDependent(), (1, 3, 16, 16))
    assert not inspection.traced
    assert "models.py:" in inspection.warnings[0] and "if y.sum() > 0:" in inspection.warnings[0]
    assert "fell back to forward hooks" in inspection.warnings[1]
    assert inspection.output.fields[0].receptive_field == 5 and inspection.output.shape == (1, 4, 8, 8)
    [result] = verify_nodes(inspection, ["b"])
    assert result.skipped.startswith("the model could not be traced")


def test_normalisation_over_positions_skips_the_measurement():
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.GroupNorm(2, 4), torch.nn.Conv2d(4, 4, 3))
    inspection = inspect_model(model, (1, 3, 16, 16))
    [result] = verify_nodes(inspection, ["2"])
    assert result.skipped.startswith("GroupNorm (1) lies before it") and result.agrees is None  # skipped, not agreed


def test_batch_size_is_reported_but_a_batch_of_one_runs():
    inspection = inspect_model(models.TinyInception(), (8, 3, 32, 32))
    assert inspection.node("head").shape == (8, 4, 16, 16)


@pytest.mark.parametrize("target, kwargs, message", [
    ("nosuch.module:X", None, "cannot import nosuch.module: ModuleNotFoundError"),
    (f"{MODELS_FILE}:Nope", None, "has no attribute 'Nope'"),
    (f"{MODELS_FILE}:F", None, "is not a model"),
    (f"{MODELS_FILE}:TinyResNet", {"nope": 1}, "raised TypeError"),
    ("no/such/file.py:Net", None, "no such file"),
    ("json", None, "expected MODULE:ATTR"),
])
def test_loading_errors(target, kwargs, message):
    with pytest.raises(ConvcalcError, match=message):
        load_model(target, kwargs)


def test_a_model_that_raises_on_the_input():
    with pytest.raises(ConvcalcError) as caught:  # the failing node in the model's terms, not torch's message
        inspect_model(models.TinyResNet(), (1, 1, 16, 16))
    assert str(caught.value) == "the model fails on 1x1x16x16 at stem.0: Conv2d expects 3 channels, x gives 1"
    with pytest.raises(ConvcalcError, match="has rank 2"):
        inspect_model(models.TinyResNet(), (1, 3))


# -- the command ----------------------------------------------------------------------------------------

INSPECT_KEYS = {"schema", "model", "input", "traced", "opaque", "nodes", "output", "totals", "warnings"}
NODE_KEYS = {"name", "op", "shape", "params", "macs", "out_bytes", "receptive_field", "receptive_field_min", "jump",
             "start", "holes", "local_receptive_field"}


def invoke(*args):
    return CliRunner().invoke(app, ["inspect", *args], env={"COLUMNS": "140"})


def test_cli_table_and_json():
    result = invoke(f"{MODELS_FILE}:TinyResNet", "--input", "1x3x64x64")
    assert result.exit_code == 0, result.output
    assert "layer2.0.shortcut.0" in result.stdout and "output 1x10: receptive field global" in result.stdout
    document = json.loads(invoke(f"{MODELS_FILE}:TinyResNet", "--input", "1x3x64x64", "--json").stdout)
    assert set(document) == INSPECT_KEYS and document["traced"] == "fx"
    assert all(set(node) == NODE_KEYS for node in document["nodes"])
    add = next(n for n in document["nodes"] if n["name"] == "add_2")
    assert add["receptive_field"] == [67, 67] and add["jump"] == [8, 8] and add["shape"] == [1, 16, 8, 8]
    assert document["output"]["receptive_field"] == "global"


def test_cli_kwargs_all_and_node():
    document = json.loads(invoke(f"{MODELS_FILE}:TinyResNet", "--input", "2x3x64x64", "--kwargs",
                                 '{"num_classes": 3}', "--json").stdout)
    assert document["output"]["shape"] == [2, 3]
    every = json.loads(invoke("models:TinyResNet", "--input", "1x3x64x64", "--all", "--json").stdout)
    assert len(every["nodes"]) > len(document["nodes"])
    path = json.loads(invoke("models:TinyUNet", "--input", "1x1x32x32", "--node", "up2", "--json").stdout)
    assert path["nodes"][-1]["name"] == "up2" and "dec1.0" not in {n["name"] for n in path["nodes"]}


def test_cli_verify():
    result = invoke("models:TinyUNet", "--input", "1x1x32x32", "--verify")
    assert result.exit_code == 0, result.output
    assert "-> agrees" in result.stdout
    document = json.loads(invoke("models:SEBlock", "--input", "1x3x16x16", "--verify", "--node", "after",
                                 "--json").stdout)
    assert document["verify"][0]["agrees"] is True and document["verify"][0]["skipped"] is None


def test_cli_verify_disagreement_exits_3(monkeypatch):
    from convcalc.graph import measure as inspector

    real = inspector._measure

    def wrong(inspection, name):
        m = real(inspection, name)
        return inspector.NodeMeasurement(m.node, m.in_size, m.unit, m.measured,
                                         tuple(type(f)(f.first, f.last + 1, f.holes) for f in m.predicted))

    monkeypatch.setattr(inspector, "_measure", wrong)
    assert invoke("models:TinyUNet", "--input", "1x1x32x32", "--verify").exit_code == 3
    assert invoke("models:TinyUNet", "--input", "1x1x32x32", "--verify", "--node", "up2").exit_code == 3


@pytest.mark.parametrize("args, needle", [
    (["nosuch.module:X", "--input", "1x3x8x8"], "cannot import nosuch.module"),
    (["models:TinyResNet", "--input", "1x3"], "has rank 2"),
    (["models:TinyResNet", "--input", "1x1x16x16"], "the model fails on 1x1x16x16 at stem.0: Conv2d expects 3"),
    (["models:TinyResNet", "--input", "1x3x64x64", "--kwargs", "{nope"], "--kwargs is not valid JSON"),
    (["models:TinyResNet", "--input", "1x3x64x64", "--node", "nope"], "no node named 'nope'"),
    (["models:TinyResNet", "--input", "1x3xq"], "--input: expected a number"),
])
def test_cli_bad_input(args, needle):
    result = invoke(*args)
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert result.stderr.startswith("error: ") and needle in result.stderr.splitlines()[0]


# -- torchvision's models, where torchvision is installed -------------------------------------------------

@pytest.mark.parametrize("name, deep, expected_rf, expected_jump, measured_at", [
    ("resnet50", "add_15", 427, 32, "layer1.2.conv3"),
    ("vgg16", "features.30", 212, 32, "features.5"),
    ("googlenet", None, None, None, "cat_1"),
    ("mobilenet_v2", None, None, None, "add_2"),
])
def test_torchvision_models(name, deep, expected_rf, expected_jump, measured_at):
    """Skipped in CI (torchvision does not import beside its CPU torch); benchmarks/zoo.py --tests runs it.
    The deepest fields are known values; the gradient measures a node whose measurement fits the 512 MiB
    limit (a deep one needs an input past 1000x1000 in float64)."""
    tv = pytest.importorskip("torchvision")
    kwargs = {"weights": None}
    if name == "googlenet":
        kwargs.update(aux_logits=False, init_weights=False)
    inspection = inspect_model(getattr(tv.models, name)(**kwargs), (1, 3, 224, 224), name)
    if deep is not None:
        field = inspection.node(deep).fields[0]
        assert (field.receptive_field, field.jump) == (expected_rf, Fraction(expected_jump))
    [measured] = verify_nodes(inspection, [measured_at])
    assert measured.skipped is None and measured.agrees is True, (measured.skipped, measured.measured,
                                                                  measured.predicted)


# -- what the independent review found -------------------------------------------------------------------

class AdaptiveSeven(torch.nn.Module):
    """A VGG-like head: an adaptive pool to a fixed 7x7 makes the windows depend on the input size."""

    def __init__(self):
        super().__init__()
        self.features = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.MaxPool2d(2),
                                            torch.nn.Conv2d(4, 4, 3, padding=1), torch.nn.MaxPool2d(2))
        self.pool = torch.nn.AdaptiveAvgPool2d((7, 7))
        self.fc = torch.nn.Linear(4 * 49, 10)

    def forward(self, x):
        return self.fc(torch.flatten(self.pool(self.features(x)), 1))


class Resizes(torch.nn.Module):
    def __init__(self, mode, factor, antialias=False):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 3, 3, padding=1)
        self.mode, self.factor, self.antialias = mode, factor, antialias

    def forward(self, x):
        return torch.nn.functional.interpolate(self.conv(x), scale_factor=self.factor, mode=self.mode,
                                               antialias=self.antialias)


class DilatedMax(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 4, 3, padding=1)
        self.pool = torch.nn.MaxPool2d(3, 1, 1, dilation=2)

    def forward(self, x):
        return self.pool(self.conv(x)) + torch.nn.functional.max_pool2d(self.conv(x), 3, 1, 1, 2)


@pytest.mark.parametrize("model, shape", [
    (AdaptiveSeven(), (1, 3, 28, 28)),
    (Resizes("area", 1 / 3), (1, 3, 24, 24)),
    (Resizes("area", 2), (1, 3, 24, 24)),
    (Resizes("bilinear", 2, antialias=True), (1, 3, 24, 24)),
    (Resizes("bicubic", 3), (1, 3, 24, 24)),
    (Resizes("nearest", 0.5), (1, 3, 24, 24)),
    (DilatedMax(), (1, 3, 24, 24)),
])
def test_size_dependent_windows_interpolation_and_multichannel_dilated_pools(model, shape):
    inspection = inspect_model(model, shape)
    names = [n.name for n in shown_nodes(inspection) if n.op != "input"]
    results = [r for r in verify_nodes(inspection, names) if r.skipped is None]
    assert results and all(r.agrees for r in results), [(r.node, r.measured, r.predicted) for r in results]


def test_antialiased_downsampling_is_unknown_not_wrong():
    inspection = inspect_model(Resizes("bilinear", 0.5, antialias=True), (1, 3, 24, 24))
    assert inspection.output.fields[0] == UNKNOWN
    assert any("antialiased downsampling" in w for w in inspection.warnings)


def test_user_code_that_exits_is_bad_input(tmp_path):
    module = tmp_path / "exits.py"
    module.write_text("import sys\nimport torch\nclass Net(torch.nn.Module):\n"
                      "    def __init__(self):\n        sys.exit(5)\n")
    with pytest.raises(ConvcalcError, match="raised SystemExit: 5"):
        load_model(f"{module}:Net")
    (tmp_path / "exits_on_import.py").write_text("import sys\nsys.exit('bye')\n")
    result = invoke(f"{tmp_path / 'exits_on_import.py'}:Net", "--input", "1x3x8x8", "--json")
    assert result.exit_code == 2 and "SystemExit: bye" in result.stderr
    assert json.loads(result.stdout)["schema"] == "convcalc.error/1"
