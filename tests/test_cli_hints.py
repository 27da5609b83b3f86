"""The question as the user asked it (cli/hints.py and the messages around it): the way out of a
rejection, the reading of an input the user most likely meant, arguments spelled as people spell them."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from convcalc.cli import app

runner = CliRunner()
MODELS = str(Path(__file__).parent / "models.py")


def invoke(*args: str):
    return runner.invoke(app, list(args))


def test_strided_same_names_tensorflow_and_solve():
    result = invoke("out", "--in", "224", "-k", "3", "-s", "2", "-p", "same")
    assert result.exit_code == 2
    assert result.stderr.strip().endswith(
        "TensorFlow's SAME (out = ceil(in / stride) = 112) is --convention tf (or tensorflow, keras, jax); for the "
        "torch padding that gives 112: convcalc solve --in 224 --out 112 -k 3 -s 2 --op conv")
    stack = invoke("rf", "--layers", "3x3s2,3x3", "--pad", "same")
    assert stack.exit_code == 2 and "is --convention tf" in stack.stderr and "--in SIZE --out SIZE" in stack.stderr
    later = invoke("rf", "--layers", "3x3,3x3s2psame", "--in", "224")
    assert later.exit_code == 2 and "convcalc solve --in 222 --out 111 -k 3 -s 2 --op conv" in later.stderr


@pytest.mark.parametrize("name", ["tf", "tensorflow", "Keras", "JAX"])
def test_the_tf_convention_under_its_names(name):
    document = json.loads(invoke("out", "--in", "224", "-k", "3", "-s", "2", "-p", "same", "--convention", name,
                                 "--json").stdout)
    assert document["out"] == [112, 112] and document["convention"] == "tf"


def test_tf_same_with_equal_pads_is_torch_padding():
    result = invoke("out", "--in", "224", "-k", "4", "-s", "2", "-p", "same", "--convention", "tf")
    assert "torch: nn.Conv2d(C_in, C_out, kernel_size=4, stride=2, padding=1)" in result.stdout
    document = json.loads(invoke("out", "--in", "224", "-k", "4", "-s", "2", "-p", "same", "--convention", "tf",
                                 "--json").stdout)
    assert "pad" not in document  # no F.pad needed
    avg = invoke("out", "--in", "9", "-k", "3", "-s", "2", "-p", "same", "--convention", "tf", "--op", "avg")
    assert "nn.AvgPool2d(kernel_size=3, stride=2, padding=1, count_include_pad=False)" in avg.stdout


def test_channels_last_sizes_are_named():
    result = invoke("out", "--in", "224x224x3", "-k", "3")
    assert result.exit_code == 0
    assert result.stderr.strip() == ("note: --in 224x224x3 is read as a 3-d input; it looks like a 2-d image with 3 "
                                     "channels last: for that, give convcalc out --shape 1x3x224x224 (N x C x H x W) "
                                     "instead of --in")
    assert invoke("out", "--in", "32x32x16", "-k", "3").stderr == ""  # a true 3-d input says nothing
    assert "rf --shape 1x1x64x64" in invoke("rf", "--layers", "3x3", "--in", "64x64x1").stderr


def test_transposed_conv_says_how_it_scales_not_how_it_keeps_size():
    doubling = invoke("out", "--in", "7", "-k", "4", "-s", "2", "-p", "1", "--op", "tconv").stdout
    assert "out = 2 x in for every input size" in doubling and "keeps" not in doubling
    plus_one = invoke("out", "--in", "7", "-k", "3", "-s", "2", "--op", "tconv", "--dims", "1").stdout
    assert "out = 2 x in + 1 for every input size; padding 1 with output_padding 1 would give 2 x in" in plus_one


def test_rejected_stack_prints_no_holes_line():
    result = invoke("rf", "--layers", "3x3,3x3", "--in", "4")
    assert result.exit_code == 2 and "holes" not in result.stdout


def test_rates_as_words_and_positional_aspp():
    assert json.loads(invoke("gridding", "1", "2", "5", "--json").stdout)["rates"] == [1, 2, 5]
    assert json.loads(invoke("gridding", "1,", "2,", "5", "--json").stdout)["rates"] == [1, 2, 5]
    positional = json.loads(invoke("aspp", "--in", "33", "6", "12", "18", "--json").stdout)
    option = json.loads(invoke("aspp", "--in", "33", "--rates", "6,12,18", "--json").stdout)
    assert positional == option and [b["rate"] for b in option["branches"]] == [6, 12, 18]


def test_a_split_layer_spec_gets_the_fix():
    result = invoke("rf", "--layers", "3x3", "d2")
    assert result.exit_code == 2 and result.stderr.strip() == (
        "error: Got unexpected extra argument(s) (d2): the layer spec was split at its spaces; quote it "
        "(--layers \"3x3 d2\") or join it (--layers 3x3d2)")
    other = invoke("rf", "--layers", "3x3", "--in", "8", "junk")
    assert other.exit_code == 2 and "see 'convcalc rf --help'" in other.stderr


@pytest.mark.skipif(importlib.util.find_spec("torch") is None, reason="needs torch")
def test_a_missing_batch_is_asked_about():
    result = invoke("inspect", f"{MODELS}:TinyResNet", "--input", "3x64x64")
    assert result.exit_code == 2 and result.stderr.strip() == (
        "error: --input 3x64x64 is read as N x C x spatial and the model fails on it; did you mean 1x3x64x64 (the "
        "batch first)? The model runs on that")


@pytest.mark.skipif(importlib.util.find_spec("torch") is None, reason="needs torch")
def test_a_linear_that_does_not_fit_says_what_would():
    result = invoke("inspect", f"{MODELS}:LeNet", "--input", "1x1x64x64")
    assert result.exit_code == 2
    assert ("fc1 expects 400 features, flatten gives 2,704 (on this input, Linear(in_features=2704, ...) would "
            "fit); nearest inputs that work: 1x1x35x35") in result.stderr


def test_check_with_no_file_reads_pyproject(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "pyproject.toml").write_text("[project]\nname = 'x'\n")
    result = invoke("check")
    assert result.exit_code == 2 and "lists none: give FILE..., or add check-files" in result.stderr
    (tmp_path / "a.convcalc.toml").write_text('[[check]]\nname = "a"\nlayers = "3"\nrf = 3\n')
    (tmp_path / "pyproject.toml").write_text('[tool.convcalc]\ncheck-files = ["*.convcalc.toml"]\n')
    result = invoke("check", "--json")
    assert result.exit_code == 0 and json.loads(result.stdout)["passed"] == 1
    twice = invoke("check", "pyproject.toml", "a.convcalc.toml", "--json")  # each file once
    assert json.loads(twice.stdout)["passed"] == 1
    (tmp_path / "pyproject.toml").write_text('[tool.convcalc]\ncheck-files = ["missing/*.toml"]\n')
    assert "check-files pattern 'missing/*.toml' matches no file" in invoke("check").stderr


def test_check_with_no_file_and_no_pyproject(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = invoke("check")
    if result.exit_code == 2 and "lists none" in result.stderr:  # a pyproject.toml above the temporary folder
        pytest.skip("a pyproject.toml above the temporary folder")
    assert result.exit_code == 2 and "no pyproject.toml here or above" in result.stderr and "check-files" in result.stderr
