"""convcalc erf on models (graph/erf.py, cli/erf.py, render/erf.py): maps known exactly, the tests' own
gradient computation, models whose theoretical field is global, pictures, and bad input."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from typer.testing import CliRunner

torch = pytest.importorskip("torch")

import models  # noqa: E402

from convcalc.cli import app  # noqa: E402
from convcalc.erf import AREA_THRESHOLDS, centred_squares, stack_erf  # noqa: E402

runner = CliRunner()
MODELS = str(Path(__file__).parent / "models.py")


def erf(*args: str):
    return runner.invoke(app, ["erf", *args])


def erf_json(*args: str) -> dict:
    result = erf(*args, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_a_linear_stack_with_unit_weights_gives_the_analytic_profile(tmp_path):
    """UnitStack's map (absolute gradient, any input: the stack is linear) is the outer product of the
    exact profiles of its spec, placed around the centre unit; RepLKNet's relus give the same map where
    the centre unit is positive (inputs of ones)."""
    profile = stack_erf("3x3,3x3s2,3x3d2").profiles[0].counts
    ones = tmp_path / "ones.pt"
    torch.save(torch.ones(2, 1, 41, 41), ones)
    for args in (["--abs", "--samples", "2"], ["--inputs", str(ones)]):
        document = erf_json(f"{MODELS}:UnitStack", "--input", "1x1x41x41", *args)
        grid = document["map"]
        rows = [y for y, row in enumerate(grid) if any(row)]
        cols = [x for x in range(41) if any(row[x] for row in grid)]
        assert len(rows) == len(cols) == len(profile)
        window = [[grid[y][x] for x in cols] for y in rows]
        assert window == [[a * b for b in profile] for a in profile]  # exact: small integers in float64
        assert document["receptive_field"] == [len(profile)] * 2


def test_replknet_method_matches_the_tests_own_gradient(tmp_path):
    """A seeded nonlinear model given --inputs: the map equals relu(grad of relu(centre).sum()) summed over
    channels and averaged over samples, computed here directly."""
    torch.manual_seed(0)
    inputs = torch.randn(5, 3, 32, 32)
    path = tmp_path / "inputs.pt"
    torch.save(inputs, path)
    document = erf_json(f"{MODELS}:TinyResNet", "--input", "1x3x32x32", "--inputs", str(path), "--node", "layer2")
    from convcalc.graph import inspect_model
    from convcalc.graph.erf import Samples, measure_erf

    torch.manual_seed(0)
    model = models.TinyResNet().eval()
    inspection = inspect_model(model, (1, 3, 32, 32), "m")
    ours = measure_erf(model, inspection, "layer2", Samples("inputs", path=str(path)), "replknet")
    x = inputs.clone().requires_grad_(True)
    y = model.layer2(model.layer1(model.stem(x)))
    h, w = y.shape[-2] // 2, y.shape[-1] // 2
    (grad,) = torch.autograd.grad(torch.relu(y[:, :, h, w]).sum(), x)
    expected = torch.relu(grad).sum(1).to(torch.float64).mean(0)
    assert torch.allclose(torch.tensor(ours.map, dtype=torch.float64), expected, rtol=1e-6, atol=1e-12)
    assert document["samples"] == 5 and document["node"] == "layer2" and document["unit"] == [h, w]


def test_npy_inputs_and_area_ratios_of_the_document(tmp_path):
    numpy = pytest.importorskip("numpy")
    path = tmp_path / "x.npy"
    numpy.save(path, numpy.random.default_rng(1).standard_normal((3, 3, 32, 32)).astype("float32"))
    document = erf_json(f"{MODELS}:TinyResNet", "--input", "1x3x32x32", "--inputs", str(path))
    found = centred_squares(document["map"], AREA_THRESHOLDS)
    assert document["area_ratio"] == {f"{t:g}": found[t][1] if found[t] else None for t in AREA_THRESHOLDS}
    raw = centred_squares(document["map"], AREA_THRESHOLDS, log_scale=False)
    assert document["mass_window"] == {f"{t:g}": raw[t][0] if raw[t] else None for t in AREA_THRESHOLDS}


@pytest.mark.parametrize("model", ["TinyAttention", "SEBlock", "ASPPWithPooling"])
def test_models_whose_theoretical_field_is_global(model):
    """Attention, an SE gate, an ASPP image-pooling branch: the theoretical field says 'global', the
    effective one is still measured, and it is concentrated around the unit."""
    document = erf_json(f"{MODELS}:{model}", "--input", "1x3x32x32", "--samples", "4")
    assert document["receptive_field"] == "global"
    grid = document["map"]
    assert len(grid) == 32 and all(len(row) == 32 for row in grid) and sum(map(sum, grid)) > 0


def test_a_classifier_is_measured_at_its_last_spatial_node():
    result = erf(f"{MODELS}:TinyResNet", "--input", "1x3x64x64", "--samples", "2")
    assert result.exit_code == 0, result.output
    assert "(the output has no spatial map: the last node that has one)" in result.stdout
    document = erf_json(f"{MODELS}:TinyResNet", "--input", "1x3x64x64", "--samples", "2")
    assert document["node"] == "relu_9" and document["unit"] == [2, 2]


def test_samples_go_through_in_batches_and_the_seed_repeats():
    """UnitStack's weights are fixed, so only the noise (and RepLKNet's relu of the centre unit) differs."""
    a = erf_json(f"{MODELS}:UnitStack", "--input", "1x1x32x32", "--samples", "9", "--seed", "7")
    b = erf_json(f"{MODELS}:UnitStack", "--input", "1x1x32x32", "--samples", "9", "--seed", "7")
    c = erf_json(f"{MODELS}:UnitStack", "--input", "1x1x32x32", "--samples", "9", "--seed", "8")
    assert a["map"] == b["map"] != c["map"] and a["samples"] == 9


def test_images_and_png(tmp_path):
    from PIL import Image

    folder = tmp_path / "images"
    folder.mkdir()
    for i in range(3):
        Image.new("RGB", (40 + i, 30), (40 * i, 100, 200)).save(folder / f"{i}.png")
    (folder / "notes.txt").write_text("not an image")
    png = tmp_path / "erf.png"
    result = erf(f"{MODELS}:TinyResNet", "--input", "1x3x32x32", "--images", str(folder), "--png", str(png))
    assert result.exit_code == 0, result.output
    assert "3 images" in result.stdout and f"heatmap written to {png}" in result.stdout
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    capped = erf_json(f"{MODELS}:TinyResNet", "--input", "1x3x32x32", "--images", str(folder), "--samples", "2")
    assert capped["samples"] == 2 and capped["source"] == "images"


@pytest.mark.parametrize("args, needle", [
    (["--images", "{empty}"], "holds no images"),
    (["--inputs", "{wrong}"], "has shape 2x3x8x8; expected N x 3x32x32"),
    (["--inputs", "{txt}"], "expected a .pt or .npy file"),
    (["--node", "nowhere"], "no node named 'nowhere'"),
    (["--samples", "0"], "--samples must be from 1"),
    (["--images", "{empty}", "--inputs", "{wrong}"], "give --images or --inputs, not both"),
    (["--png", "x.jpg"], "expected a file name ending in .png"),
    (["--node", "fc"], "its centre unit needs an N x C x H x W output"),
])
def test_bad_input_is_one_line_and_exit_2(args, needle, tmp_path):
    (tmp_path / "empty").mkdir()
    torch.save(torch.zeros(2, 3, 8, 8), tmp_path / "wrong.pt")
    (tmp_path / "x.txt").write_text("x")
    paths = {"empty": str(tmp_path / "empty"), "wrong": str(tmp_path / "wrong.pt"), "txt": str(tmp_path / "x.txt")}
    result = erf(f"{MODELS}:TinyResNet", "--input", "1x3x32x32", *[a.format(**paths) for a in args])
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0], result.stderr


@pytest.mark.parametrize("args, needle", [
    (["--layers", "3x3", "--input", "1x3x8x8"], "--input applies to a model, not to --layers"),
    ([f"{MODELS}:TinyResNet", "--layers", "3x3"], "give a model or --layers, not both"),
    ([], "give a model (MODULE:ATTR with --input) or --layers SPEC"),
    ([f"{MODELS}:TinyResNet"], "give the model's input: --input 1xCxHxW"),
    (["--layers", "3x3q"], "expected an option"),
])
def test_wrong_combinations(args, needle):
    result = erf(*args)
    assert result.exit_code == 2 and needle in result.stderr, result.output


def test_a_run_beyond_the_budget_is_refused_up_front():
    result = erf(f"{MODELS}:TinyUNet", "--input", "1x1x2048x2048")
    assert result.exit_code == 2 and "limit 512 MiB" in result.stderr and "smaller --input" in result.stderr


def test_stack_json_and_text():
    document = json.loads(erf("--layers", "3x3*4", "--json").stdout)
    assert document["receptive_field"] == [9, 9] and document["profile"][0] == [1, 4, 10, 16, 19, 16, 10, 4, 1]
    assert document["std"][0] == pytest.approx(math.sqrt(8 / 3)) and document["variance"] == ["8/3", "8/3"]
    assert set(document["mass_window"]) == {"0.2", "0.3", "0.5", "0.95", "0.99"}
    text = erf("--layers", "3x3*4").stdout
    assert "sqrt(8/3)" in text and "contribution per offset from the centre, every dimension:" in text


def test_batches_change_nothing(monkeypatch):
    """Samples go through in batches sized to the memory budget; a budget of two samples at a time gives
    the map of one batch of all (the noise is drawn sample by sample)."""
    from convcalc.graph import erf as graph_erf
    from convcalc.graph import inspect_model

    torch.manual_seed(3)
    model = models.TinyUNet().eval()
    inspection = inspect_model(model, (1, 1, 32, 32), "m")
    whole = graph_erf.measure_erf(model, inspection, None, graph_erf.Samples("noise", 5, 1), "replknet")
    per_sample = graph_erf._bytes_per_sample(inspection, whole.node_info.name)
    monkeypatch.setattr(graph_erf, "MEASURE_LIMIT_BYTES", 2 * per_sample)
    batched = graph_erf.measure_erf(model, inspection, None, graph_erf.Samples("noise", 5, 1), "replknet")
    assert whole.batch >= 5 and batched.batch == 2 and batched.samples == 5
    assert torch.allclose(torch.tensor(whole.map), torch.tensor(batched.map), rtol=1e-5, atol=1e-9)
