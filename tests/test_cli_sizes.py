"""``convcalc sizes`` and ``inspect --sizes`` from the command line (the sweeps: test_sizes.py, test_graph_sizes.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from convcalc.cli import app

runner = CliRunner()
MODELS = str(Path(__file__).parent / "models.py")


def invoke(*args: str):
    return runner.invoke(app, list(args))


def test_rule_outputs_and_rejections():
    result = invoke("sizes", "--layers", "3x3p1,max2,3x3p1,max2,3x3p1,max2", "--range", "1..512")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[1] == "accepted: 8..512 (505 of 512)"
    assert "│    8 │    1x1 │" in result.stdout and "... and 481 more (--json lists every size)" in result.stdout
    assert "layer 2 (max2x2)" in result.stdout and "Conv2d" not in result.stdout.split("rejected")[0]


def test_same_size_json():
    document = json.loads(invoke("sizes", "--layers", "3x3p1,max2,tconv2s2", "--range", "1..10", "--same-size",
                                 "--json").stdout)
    assert document["accepted"] == list(range(2, 11)) and document["rule"] == "2..10"
    assert document["same_size"] == {"sizes": [2, 4, 6, 8, 10], "rule": "multiples of 2 from 2"}
    assert document["results"][0] == {"size": 1, "ok": False, "out": None, "node": "layer 2 (max2x2)",
                                      "reason": "MaxPool2d: dim 1: output size 0 is too small (input 1, padding 0, "
                                                "effective kernel 2, stride 2)"}
    assert document["results"][2]["out"] == [2, 2]  # 3 -> 3 -> 1 -> 2


def test_none_accepted_exits_1_and_bad_input_2():
    result = invoke("sizes", "--layers", "5x5,5x5", "--range", "1..8")
    assert result.exit_code == 1 and "error: no size in 1..8 is accepted" in result.output
    result = invoke("sizes", "--layers", "3x3p1,max2,3x3", "--range", "1..8", "--same-size")
    assert result.exit_code == 1 and "no size in 1..8 gives an output of the same size" in result.output
    for args, message in [(["--range", "8..1"], "--range '8..1': expected 1 <= A <= B"),
                          (["--range", "1..100001"], "at most 100,000 per run"),
                          (["--layers", "3x3q"], "expected an option (s, d, p, o, c), '*count', ',' or the end, got 'q'")]:
        full = ["sizes", "--layers", "3x3", *args] if args[0] != "--layers" else ["sizes", *args]
        result = invoke(*full)
        assert result.exit_code == 2 and message in result.output and "Traceback" not in result.output


def test_work_beyond_the_limit_is_refused_up_front():
    result = invoke("sizes", "--layers", "3*200", "--range", "1..100000", "--dims", "3")
    assert result.exit_code == 2 and "narrow --range" in result.output


torch_needed = pytest.mark.skipif(__import__("importlib").util.find_spec("torch") is None, reason="needs torch")


@torch_needed
def test_inspect_sizes_vary_one_axis():
    result = invoke("inspect", f"{MODELS}:LeNet", "--input", "1x1x32x32", "--sizes", "1..64", "--vary-dim", "3")
    assert result.exit_code == 0, result.output
    assert "accepted: 32..35 (4 of 64)" in result.stdout
    assert "fc1 expects 400 features, flatten gives 80" in result.stdout
    document = json.loads(invoke("inspect", f"{MODELS}:LeNet", "--input", "1x1x32x32", "--sizes", "30..33",
                                 "--vary-dim", "2", "--json").stdout)
    assert document["vary_dims"] == [2] and document["accepted"] == [32, 33]
    assert document["results"][2] == {"size": 32, "ok": True, "out_shape": [1, 10], "node": None, "reason": None}


@torch_needed
@pytest.mark.parametrize("args, message", [
    (["--sizes", "1..10", "--vary-dim", "1"], "--vary-dim 1: the spatial axes of a 4-d input are 2..3"),
    (["--vary-dim", "2"], "--vary-dim applies to --sizes"),
    (["--sizes", "1..10", "--verify"], "does not combine with --verify"),
    (["--sizes", "1..5000"], "at most 4,096 per run"),
    (["--dtype", "int3"], "unknown dtype 'int3'"),
])
def test_inspect_sizes_refusals(args, message):
    result = invoke("inspect", f"{MODELS}:TinyUNet", "--input", "1x1x32x32", *args)
    assert result.exit_code == 2 and message in result.output, result.output


@torch_needed
def test_inspect_prints_totals_and_the_field_range():
    result = invoke("inspect", f"{MODELS}:TinyUNet", "--input", "2x1x32x32")
    assert result.exit_code == 0, result.output
    assert "output 2x1x32x32: receptive field 28..32, jump 1, start 0" in result.stdout
    assert "params 4,345 (trainable 4,345, non-trainable 0), 17.0 KiB (17,380 bytes) as float32" in result.stdout
    assert "MACs 2.28 M aten, 2.28 M fvcore, 2.72 M torchinfo" in result.stdout


@torch_needed
def test_inspect_says_when_the_field_has_holes():
    result = invoke("inspect", "torch.nn:Conv2d", "--input", "1x1x16x16", "--kwargs",
                    '{"in_channels": 1, "out_channels": 1, "kernel_size": 3, "dilation": 2}')
    assert "receptive field 5, jump 1, start 2; the field has holes: 2 positions inside it unseen" in result.stdout
    assert "rows shown hold" not in result.stdout  # its parameters are no node's: nothing --all would show
    assert "MACs 1.30 k aten, 1.30 k fvcore, 1.44 k torchinfo" in result.stdout  # one leaf, bias included
