"""``convcalc solve`` from the command line (the search itself: test_solve.py)."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from convcalc.cli import app

runner = CliRunner()


def invoke(*args: str):
    return runner.invoke(app, ["solve", *args])


def test_padding_for_a_stride_2_conv():
    result = invoke("--in", "224", "--out", "112", "-k", "3", "-s", "2", "--op", "conv")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].startswith("44 convs map 224x224 to 112x112")
    assert lines[2] == " 1. nn.Conv2d(C_in, C_out, kernel_size=3, stride=2, padding=1)"
    assert "F.pad(x, (0, 1, 0, 1)) -> nn.Conv2d(C_in, C_out, kernel_size=3, stride=2)" in result.stdout


def test_json_lists_every_solution():
    document = json.loads(invoke("--in", "7", "--out", "14", "--op", "tconv", "--json").stdout)
    assert document["count"] == len(document["solutions"]) == 95
    assert {"op": "conv_transpose", "kernel_size": [4, 4], "stride": [2, 2], "padding": [[1, 1], [1, 1]],
            "dilation": [1, 1], "output_padding": [0, 0], "ceil_mode": False, "symmetric": True,
            "torch": "nn.ConvTranspose2d(C_in, C_out, kernel_size=4, stride=2, padding=1)",
            "pad": None, "scales": True, "leaves_gaps": False} in document["solutions"]
    first = document["solutions"][0]  # layers that double every size first, none leaving output gaps
    assert first["scales"] and not first["leaves_gaps"] and first["kernel_size"] == [2, 2]
    assert [s["scales"] for s in document["solutions"]] == sorted((s["scales"] for s in document["solutions"]),
                                                                 reverse=True)


def test_tf_same_in_pytorch():
    document = json.loads(invoke("--in", "224", "--out", "112", "-k", "3", "-s", "2", "-d", "1", "--convention",
                                 "tf", "--op", "conv", "--json").stdout)
    assert [s["torch"] for s in document["solutions"]] == [
        "F.pad(x, (0, 1, 0, 1)) -> nn.Conv2d(C_in, C_out, kernel_size=3, stride=2)"]
    assert document["solutions"][0]["pad"] == [0, 1, 0, 1]


def test_nothing_fits_exits_1_with_the_reason():
    result = invoke("--in", "7", "--out", "14", "--op", "max")
    assert result.exit_code == 1
    assert "pooling grows a size by at most 1: use tconv to enlarge" in result.stderr
    document = json.loads(invoke("--in", "3", "--out", "20", "-k", "3", "--op", "conv", "--json").stdout)
    assert document["solutions"] == [] and document["reason"].startswith("no conv with kernel 3")


@pytest.mark.parametrize("args, needle", [
    (("--in", "8", "--out", "4", "--op", "deconv"), "unknown --op 'deconv'"),
    (("--in", "8x8", "--out", "4x4x4"), "disagree on the number of dimensions"),
    (("--in", "8", "--out", "4", "--max-kernel", "99"), "--max-kernel must be from 1 to 16, got 99"),
    (("--in", "8", "--out", "4", "--top", "0"), "--top must be at least 1"),
    (("--in", "8", "--out", "4", "--convention", "bogus"), "unknown --convention 'bogus': expected torch, or tf"),
    (("--in", "0", "--out", "4"), "--in must be from 1 to 1,000,000,000 per dimension, got 0x0"),
])
def test_bad_input_is_one_line_and_exit_2(args, needle):
    result = invoke(*args)
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0], result.stderr
