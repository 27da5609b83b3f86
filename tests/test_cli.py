"""convcalc.cli: every option of `convcalc out`, its exit codes, its JSON, and its errors."""

from __future__ import annotations

import json
from pathlib import Path
import shutil
import subprocess
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from convcalc import __version__
from convcalc.cli import app
from convcalc.cli.typer_app import COMMANDS

runner = CliRunner()
EXAMPLE_FILE = str(Path(__file__).parent.parent / "examples" / "shapes.convcalc.toml")

OUT_KEYS = {"schema", "op", "dims", "in", "kernel_size", "effective_kernel_size", "stride", "padding",
            "dilation", "output_padding", "ceil_mode", "out"}


def invoke(*args: str):
    return runner.invoke(app, list(args))


def out_json(*args: str) -> dict:
    result = invoke("out", *args, "--json")
    return json.loads(result.stdout)


def assert_one_error_line(result, *needles: str) -> None:
    """Exit 2, no traceback, one red 'error:' line naming the problem."""
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    lines = result.stderr.splitlines()
    assert lines[0].startswith("error: ")
    assert len([line for line in lines if line.startswith("error")]) == 1
    for needle in needles:
        assert needle in lines[0]


# -- the table, the formula, the padding that keeps the size --------------------------------------

def test_out_shows_table_formula_and_size_keeping_padding():
    result = invoke("out", "--in", "256", "-k", "3", "-d", "2", "-p", "2")
    assert result.exit_code == 0
    text = result.stdout
    assert "Conv2d(kernel_size=3, padding=2, dilation=2)" in text
    assert "out = floor((256 + 2 + 2 - 5) / 1) + 1 = 256" in text
    assert "padding 2 keeps the size" in text
    rows = [line for line in text.splitlines() if line.startswith("│")]
    assert len(rows) == 2  # one per spatial dimension
    assert [cell.strip() for cell in rows[0].split("│")[1:-1]] == ["1", "256", "3", "5", "1", "2/2", "2", "256"]


def test_per_dimension_values_and_their_formulas():
    result = invoke("out", "--in", "224x320", "-k", "1x7", "-p", "0x3", "-s", "1,2")
    assert result.exit_code == 0
    assert "dim 1: out = floor((224 + 0 + 0 - 1) / 1) + 1 = 224" in result.stdout
    assert "dim 2: out = floor((320 + 3 + 3 - 7) / 2) + 1 = 160" in result.stdout
    assert out_json("--in", "224x320", "-k", "1x7", "-p", "0x3", "-s", "1,2")["out"] == [224, 160]


def test_no_symmetric_padding_keeps_an_even_kernel():
    result = invoke("out", "--in", "32", "-k", "4")
    assert "no symmetric padding keeps the size: it would need 3 in total" in result.stdout
    assert "no padding keeps every input size at stride 2" in invoke("out", "--in", "32", "-k", "3", "-s",
                                                                     "2").stdout


@pytest.mark.parametrize("args, out, title", [
    (["--op", "tconv", "-k", "4", "-s", "2", "-p", "1"], [128, 128], "ConvTranspose2d"),
    (["--op", "conv_transpose", "-k", "3", "-s", "2", "-p", "1", "--output-padding", "1"], [128, 128],
     "ConvTranspose2d"),
    (["--op", "max", "-k", "3", "-s", "2", "-p", "1"], [32, 32], "MaxPool2d"),
    (["--op", "avg", "-k", "2"], [32, 32], "AvgPool2d"),
    (["--op", "MAX", "-k", "3", "-s", "2", "--ceil"], [32, 32], "MaxPool2d"),
    (["-k", "4", "-p", "same"], [64, 64], "Conv2d"),
    (["-k", "3", "-p", "valid"], [62, 62], "Conv2d"),
    (["-k", "3", "--dims", "3"], [62, 62, 62], "Conv3d"),
    (["-k", "3", "--dims", "1"], [62], "Conv1d"),
])
def test_ops_and_options(args, out, title):
    result = invoke("out", "--in", "64", *args)
    assert result.exit_code == 0, result.output
    assert title in result.stdout
    assert out_json("--in", "64", *args)["out"] == out


def test_ceil_mode_formula_explains_the_dropped_window():
    result = invoke("out", "--in", "5", "-k", "2", "-s", "2", "-p", "1", "--op", "max", "--ceil", "--dims", "1")
    assert "out = floor((5 + 2*1 - 2 + (2 - 1)) / 2) + 1 = 4" in result.stdout
    assert "so it is dropped: out = 3" in result.stdout


def test_transposed_formula():
    result = invoke("out", "--in", "64", "-k", "4", "-s", "2", "-p", "1", "--op", "tconv")
    assert "out = (64 - 1) * 2 - 2*1 + 4 + 0 = 128" in result.stdout


# -- --expect, --json -------------------------------------------------------------------------------

def test_expect_passes_and_fails():
    assert invoke("out", "--in", "256", "-k", "3", "-s", "2", "-p", "1", "--expect", "128").exit_code == 0
    result = invoke("out", "--in", "256", "-k", "3", "-s", "2", "-p", "1", "--expect", "127x128")
    assert result.exit_code == 1
    assert result.stderr.strip() == "error: expected output 127x128, got 128x128"


def test_expect_with_wrong_dimensions_is_bad_input():
    assert_one_error_line(invoke("out", "--in", "8", "-k", "3", "--expect", "6x6x6"), "--expect has 3")


def test_json_is_the_only_thing_on_stdout():
    result = invoke("out", "--in", "256", "-k", "3", "-d", "2", "-p", "2", "--json")
    document = json.loads(result.stdout)
    assert set(document) == OUT_KEYS
    assert document == {
        "schema": "convcalc.out/1", "op": "conv", "dims": 2, "in": [256, 256], "kernel_size": [3, 3],
        "effective_kernel_size": [5, 5], "stride": [1, 1], "padding": [[2, 2], [2, 2]], "dilation": [2, 2],
        "output_padding": [0, 0], "ceil_mode": False, "out": [256, 256]}
    assert result.stderr == ""


def test_json_when_rejected_and_when_expectation_fails():
    result = invoke("out", "--in", "3", "-k", "5", "--json")
    assert result.exit_code == 2
    document = json.loads(result.stdout)
    assert document["out"] is None and "padded input 3" in document["error"]
    failed = invoke("out", "--in", "8", "-k", "3", "--expect", "7", "--json")
    assert failed.exit_code == 1
    assert json.loads(failed.stdout)["expected"] == [7, 7]


def test_json_for_bad_input_is_an_error_document():
    result = invoke("out", "--in", "8", "-k", "3x", "--json")
    assert result.exit_code == 2
    assert json.loads(result.stdout) == {"schema": "convcalc.error/1", "exit_code": 2, "text": "3x",
                                         "position": 2, "error": "--kernel-size: expected a number at the end"}


def test_huge_sizes_still_compute():
    n = 10**30
    assert out_json("--in", str(n), "-k", "3", "-d", "2", "-p", "2")["out"] == [n, n]
    assert out_json("--in", "10**30", "-k", "3")["out"] == [n - 2, n - 2]


# -- bad input: one red line, exit 2, never a traceback --------------------------------------------

@pytest.mark.parametrize("args, needles", [
    (["--in", "0", "-k", "3"], ["input size must be positive, got 0"]),
    (["--in", "-3", "-k", "3"], ["--in: negative numbers are not allowed"]),
    (["--in", "8", "-k", "0"], ["kernel_size must be positive"]),
    (["--in", "8", "-k", "3", "-s", "0"], ["stride must be positive"]),
    (["--in", "8.5", "-k", "3"], ["--in: expected a whole number, got '8.5'"]),
    (["--in", "8", "-k", "3", "-d", "two"], ["--dilation: expected a number, got 't'"]),
    (["--in", "8x8", "-k", "3x3x3"], ["disagree on the number of dimensions"]),
    (["--in", "8x8", "-k", "3", "--dims", "3"], ["input size has 2 dimensions but dims is 3"]),
    (["--in", "8", "-k", "3", "--dims", "4"], ["dims must be 1, 2 or 3"]),
    (["--in", "8", "-k", "3", "--op", "deconv"], ["unknown --op 'deconv'"]),
    (["--in", "8", "-k", "3", "--ceil"], ["ceil_mode applies only to pooling"]),
    (["--in", "8", "-k", "3", "--output-padding", "1"], ["output_padding applies only to conv_transpose"]),
    (["--in", "8", "-k", "3", "-s", "2", "-p", "same"], ["padding='same' is not supported for strided"]),
    (["--in", "3", "-k", "3", "-d", "2"], ["Conv2d rejects input 3x3", "dim 1: padded input 3 is smaller than "
                                           "the effective kernel 5 (kernel 3, dilation 2)"]),
    (["--in", "8", "-k", "3", "-p", "2", "--op", "max"], ["pad 2 should be at most half of kernel size 3"]),
    (["--in", "8", "-k", "3", "--op", "tconv", "--output-padding", "1"], ["output_padding 1 must be smaller"]),
    (["--in", "8", "-k", "3", "-d", "2", "--op", "avg"], ["avg_pool has no dilation"]),
    (["--in", "8", "-k", "3", "--device", "cuda"], ["--device applies only with --verify"]),
    (["--in", "8"], ["Missing option '-k' / '--kernel-size'"]),
    (["--in", "8", "-k", "3", "--frobnicate"], ["No such option: --frobnicate"]),
])
def test_bad_input(args, needles):
    assert_one_error_line(invoke("out", *args), *needles)


def test_spec_errors_show_a_caret():
    result = invoke("out", "--in", "256x2y6", "-k", "3")
    assert_one_error_line(result, "--in: expected 'x' or ','")
    assert result.stderr.splitlines()[1:] == ["  256x2y6", "       ^"]


OUT_VOCABULARY = ["--in", "-k", "--kernel-size", "-s", "-p", "-d", "--op", "--output-padding", "--ceil",
                  "--dims", "--expect", "--json", "--stride", "--padding", "--dilation"]
VOCABULARY = {
    "check": ["--json", "--junit-xml", "shapes.convcalc.toml", "/dev/null", "pyproject.toml"],  # copies in tmp_path
    "out": OUT_VOCABULARY + ["--shape", "--out-channels", "--groups", "--no-bias", "--dtype"],
    "rf": ["--layers", "-l", "--in", "--pad", "--unit", "--expect-rf", "--dims", "--json", "--shape", "--channels",
           "--no-bias"],
    "gridding": ["-k", "--exit-zero", "--json"],
    "aspp": ["--in", "--rates", "-k", "--json"],
    "inspect": ["--input", "--kwargs", "--all", "--node", "--json", "models:TinyInception", "models:SEBlock",
                "nosuch:X", "models:nope", "1x3x32x32", "1x3", "{}", '{"x": 1}', "head", "add"],
}
VALUES = st.one_of(
    st.integers(-3, 40).map(str),
    st.sampled_from(["3x3", "1x7", "2,2", "3x3x3", "same", "valid", "tconv", "max", "avg", "conv", "x", "",
                     "10**30", "2**3", "3.5", "-1", "1e3", "0x0", "3x", "abc", "--in", "SAME", "é", "1,2,5",
                     "2,2,2", "6,12,18"]),
    st.text(max_size=6),
)
SPEC_PIECES = st.sampled_from(["3x3", "3", "d2", "p1", "s2", "psame", "tconv4", "max2", "avg3", "c", "o1", "*3",
                               ",", "x", "q", " ", "1x7", "*0", "p", "conv", "-1"])


@pytest.mark.parametrize("command", VOCABULARY)
@settings(max_examples=250)
@given(data=st.data())
def test_fuzzed_arguments_never_raise(command, data, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # --junit-xml may write whatever file name it is given: over copies, never
    shutil.copy(EXAMPLE_FILE, tmp_path)  # the repository's own files
    shutil.copy(Path(EXAMPLE_FILE).parent.parent / "pyproject.toml", tmp_path)
    pieces = st.one_of(st.sampled_from(VOCABULARY[command]), VALUES,
                       st.lists(SPEC_PIECES, min_size=1, max_size=6).map("".join))
    arguments = data.draw(st.lists(pieces, max_size=12))
    result = invoke(command, *arguments)
    assert result.exit_code in (0, 1, 2), (arguments, result.output)
    assert result.exception is None or isinstance(result.exception, SystemExit), (arguments, result.exception)
    assert "Traceback" not in result.output


# -- --verify ---------------------------------------------------------------------------------------

def test_verify_agrees():
    pytest.importorskip("torch")
    result = invoke("out", "--in", "64", "-k", "4", "-s", "2", "-p", "1", "--op", "tconv", "--verify")
    assert result.exit_code == 0
    assert "(cpu, eager): 128x128\nconvcalc: 128x128 -> agrees" in result.stdout
    document = out_json("--in", "64", "-k", "4", "-s", "2", "-p", "1", "--op", "tconv", "--verify")
    torch = pytest.importorskip("torch")
    assert document["verify"] == {"torch": torch.__version__, "device": "cpu", "eager": True, "out": [128, 128],
                                  "error": None, "agrees": True, "note": None}


def test_verify_of_a_rejection_shows_what_torch_says():
    pytest.importorskip("torch")
    result = invoke("out", "--in", "3", "-k", "5", "--verify")
    assert result.exit_code == 2
    assert "rejects it: RuntimeError: Calculated padded input size per channel: (3 x 3)" in result.stdout
    assert "convcalc: rejects it -> agrees" in result.stdout
    pool = out_json("--in", "9", "-k", "2", "-d", "3", "-p", "2", "--op", "max", "--verify")
    assert pool["verify"]["error"].startswith("RuntimeError: pad should be smaller than or equal to half")
    assert pool["verify"]["agrees"] is True


def test_verify_disagreement_exits_3(monkeypatch):
    from convcalc import torchcheck

    monkeypatch.setattr(torchcheck, "run_layer", lambda layer, size, out, device, channels, output_size=None: torchcheck.TorchAnswer(
        "9.9", "cpu", (7, 7), None))
    result = invoke("out", "--in", "8", "-k", "3", "--verify")
    assert result.exit_code == 3
    assert "PyTorch 9.9 (cpu, eager): 7x7\nconvcalc: 6x6 -> DISAGREES" in result.stdout
    rejected = invoke("out", "--in", "2", "-k", "3", "--verify")
    assert rejected.exit_code == 3


def test_verify_falls_back_to_meta_for_huge_inputs():
    pytest.importorskip("torch")
    document = out_json("--in", "100000", "-k", "3", "--verify")
    assert document["verify"]["device"] == "meta" and document["verify"]["eager"] is False
    assert "limit 256 MiB" in document["verify"]["note"]
    assert document["verify"]["agrees"] is True


def test_verify_on_cuda_without_cuda():
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    assert_one_error_line(invoke("out", "--in", "8", "-k", "3", "--verify", "--device", "cuda"),
                          "no CUDA device available")


def test_verify_without_torch_says_how_to_install():
    code = ("import sys; sys.modules['torch'] = None\n"
            "from convcalc.cli import main\n"
            "sys.argv = ['convcalc', 'out', '--in', '8', '-k', '3', '--verify']\n"
            "main()\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 2
    assert result.stderr.strip() == ('error: --verify needs PyTorch, which is not installed: '
                                     'pip install "convcalc[torch]" (from a checkout: pip install ".[torch]"; without a GPU, '
                                     'first the CPU build: pip install torch --index-url '
                                     'https://download.pytorch.org/whl/cpu)')


# -- the program itself -----------------------------------------------------------------------------

@pytest.mark.parametrize("command", COMMANDS)
def test_version_and_help_with_examples(command):
    assert invoke("--version").stdout.strip() == f"convcalc {__version__}"
    help_text = invoke(command, "--help").stdout
    assert "Examples" in help_text and f"convcalc {command} " in help_text
    assert command in invoke("--help").stdout


def test_installed_command_runs():
    command = shutil.which("convcalc")
    assert command is not None, "the convcalc console script is not installed"
    result = subprocess.run([command, "out", "--in", "256", "-k", "3", "-d", "2", "-p", "2", "--json"],
                            capture_output=True, text=True)
    assert result.returncode == 0
    assert json.loads(result.stdout)["out"] == [256, 256]
    bad = subprocess.run([command, "out", "--in", "-3", "-k", "x"], capture_output=True, text=True)
    assert bad.returncode == 2 and "Traceback" not in bad.stderr


def test_python_dash_m():
    result = subprocess.run([sys.executable, "-m", "convcalc", "out", "--in", "7", "-k", "3", "--json"],
                            capture_output=True, text=True)
    assert result.returncode == 0
    assert json.loads(result.stdout)["out"] == [5, 5]


def test_calculator_path_imports_neither_torch_nor_numpy():
    code = ("import sys\n"
            "from convcalc.cli import app\n"
            "from typer.testing import CliRunner\n"
            "for args in (['out', '--in', '256', '-k', '3', '-d', '2', '-p', '2'],\n"
            "             ['out', '--in', '256', '-k', '3', '--json', '--expect', '3'],\n"
            "             ['out', '--in', '3', '-k', '5'],\n"
            "             ['rf', '--layers', '3x3d2*3,tconv4s2p1', '--in', '64', '--unit', '3,3'],\n"
            "             ['rf', '--layers', '3x3d2*3', '--json'],\n"
            "             ['gridding', '2,2,2'], ['gridding', '1,2,5', '--json'],\n"
            "             ['aspp', '--in', '65', '--rates', '6,12,18'],\n"
            "             ['design', '--rf', '1000'], ['design', '--depth', '8', '--map', '65', '--json'],\n"
            "             ['erf', '--layers', '3x3*8'], ['erf', '--layers', '3x3d2*3,max2', '--json'],\n"
            "             ['solve', '--in', '224', '--out', '112'], ['solve', '--in', '7', '--out', '14', '--json'],\n"
            "             ['sizes', '--layers', '3x3p1,max2', '--range', '1..64', '--same-size', '--json'],\n"
            "             ['sizes', '--layers', '3x3p1,max2', '--range', '1..64'],\n"
            "             ['check', 'examples/shapes.convcalc.toml', '--json']):\n"
            "    CliRunner().invoke(app, args)\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'numpy')))\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                            cwd=Path(__file__).parent.parent)
    assert result.stdout.strip() == "[]"


# == convcalc rf =========================================================================================

RF_KEYS = {"schema", "dims", "layers", "receptive_field", "jump", "start", "varies", "coverage"}
RF_LAYER_KEYS = {"spec", "op", "effective_kernel_size", "stride", "jump", "receptive_field", "start"}


def rf_json(*args: str) -> dict:
    result = invoke("rf", *args, "--json")
    assert result.exit_code in (0, 1), result.output
    return json.loads(result.stdout)


def table_rows(text: str) -> list[list[str]]:
    return [[cell.strip() for cell in line.split("│")[1:-1]] for line in text.splitlines() if line.startswith("│")]


def test_rf_table_one_row_per_layer_and_totals():
    result = invoke("rf", "--layers", "3x3d1,3x3d2,3x3d5")
    assert result.exit_code == 0
    assert table_rows(result.stdout) == [
        ["1", "3x3", "Conv2d", "3", "1", "1", "3", "1"],
        ["2", "3x3d2", "Conv2d", "5", "1", "1", "7", "3"],
        ["3", "3x3d5", "Conv2d", "11", "1", "1", "17", "8"]]
    assert "receptive field 17, jump 1, start 8" in result.stdout
    assert "no holes: all 17 positions inside the field are seen" in result.stdout


def test_rf_vgg16_matches_the_published_value():
    vgg = "3x3p1*2,max2,3x3p1*2,max2,3x3p1*3,max2,3x3p1*3,max2,3x3p1*3,max2"
    assert "receptive field 212, jump 32, start 15.5" in invoke("rf", "--layers", vgg).stdout
    document = rf_json("--layers", vgg, "--in", "224")
    assert document["receptive_field"] == [212, 212] and document["jump"] == [32, 32]
    assert document["out"] == [7, 7] and document["layers"][-1]["out"] == [7, 7]


def test_rf_json_document():
    document = rf_json("--layers", "3x3d2*3")
    assert set(document) == RF_KEYS
    assert document["schema"] == "convcalc.rf/1"
    assert all(set(layer) == RF_LAYER_KEYS for layer in document["layers"])
    assert document["coverage"] == {"covered": [7, 7], "holes": [6, 6], "largest_gap": [1, 1]}
    assert document["start"] == [6, 6]
    with_in = rf_json("--layers", "3x3d2p2*3", "--in", "32", "--unit", "0,5")
    assert set(with_in) == RF_KEYS | {"in", "out", "unit", "unit_index", "unit_padding", "unit_holes"}
    assert with_in["unit"] == [[0, 6], [1, 11]] and with_in["unit_padding"] == [6, 1]  # 0 is never read: odd only
    assert with_in["unit_holes"] == [3, 5]


def test_rf_holes_line():
    result = invoke("rf", "--layers", "3x3d2*3")
    assert "holes: 6 of 13 positions inside the field are never seen (largest gap 1)" in result.stdout


def test_rf_with_input_sizes_each_row():
    result = invoke("rf", "--layers", "7x7s2p3,max3s2p1", "--in", "224")
    rows = table_rows(result.stdout)
    assert rows[0][1] == "input" and rows[0][-1] == "224x224"
    assert [row[-1] for row in rows[1:]] == ["112x112", "56x56"]


def test_rf_rejected_layer_stops_the_table():
    result = invoke("rf", "--layers", "3x3d2,3x3d2,3x3", "--in", "8")
    assert result.exit_code == 2
    assert len(table_rows(result.stdout)) == 2  # the input row and layer 1
    assert "the stack stops before layer 2" in result.stdout
    assert result.stderr.startswith("error: layer 2 (3x3d2) rejects input 4x4: dim 1: padded input 4 is smaller")
    document = json.loads(invoke("rf", "--layers", "3x3d2,3x3d2", "--in", "8", "--json").stdout)
    assert document["rejected_layer"] == 2 and document["out"] is None


def test_rf_unit_box():
    result = invoke("rf", "--layers", "7x7s2p3,max3s2p1", "--in", "224", "--unit", "0,0")
    assert "dim 1: input [0, 5] (unclipped [-5, 5]); 5 of its 11 positions are padding" in result.stdout


def test_rf_expect_rf():
    assert invoke("rf", "--layers", "3x3d1,3x3d2,3x3d5", "--expect-rf", "17").exit_code == 0
    failed = invoke("rf", "--layers", "3x3d1,3x3d2,3x3d5", "--expect-rf", "17x15")
    assert failed.exit_code == 1
    assert failed.stderr.strip() == "error: expected receptive field 17x15, got 17x17"


def test_rf_pad_same_and_dims():
    document = rf_json("--layers", "3,5,max2", "--pad", "same", "--in", "10", "--dims", "1")
    assert document["out"] == [5] and document["dims"] == 1
    assert [layer["spec"] for layer in document["layers"]] == ["3psame", "5psame", "max2"]


def test_rf_transposed_footnote():
    result = invoke("rf", "--layers", "3s2,tconv3s2", "--dims", "1")
    assert "the receptive field differs between output positions; the largest is shown" in result.stdout
    document = rf_json("--layers", "tconv4s2p1,tconv4s2p1", "--dims", "1")
    assert document["jump"] == [0.25]


@pytest.mark.parametrize("args, needles", [
    (["--layers", "3x3q"], ["expected an option (s, d, p, o, c)"]),
    (["--layers", ""], ["the layer spec is empty"]),
    (["--layers", "3", "--unit", "0,0"], ["--unit needs --in"]),
    (["--layers", "3", "--in", "8", "--unit", "9,0"], ["--unit index 9 is outside the output"]),
    (["--layers", "3", "--in", "8", "--unit", "1,1,1"], ["--unit has 3 dimensions, the stack has 2"]),
    (["--layers", "3", "--expect-rf", "3x3x3"], ["--expect-rf has 3 dimensions"]),
    (["--layers", "3x3", "--in", "8x8x8"], ["kernel_size has 2 dimensions where the stack has 3"]),
    (["--layers", "3,max3p2"], ["layer 2 (max3x3p2): dim 1: pad 2 should be at most half"]),
    (["--layers", "3s2", "--pad", "same"], ["padding='same' is not supported for strided convolutions"]),
    (["--layers", "3", "--pad", "-1"], ["--pad: negative numbers are not allowed"]),
    (["--layers", "3", "--in", "0"], ["input size must be positive"]),
    (["--in", "8"], ["Missing option '--layers'"]),
])
def test_rf_bad_input(args, needles):
    assert_one_error_line(invoke("rf", *args), *needles)


def test_rf_spec_error_shows_a_caret():
    result = invoke("rf", "--layers", "3x3d2,max3o1")
    assert result.stderr.splitlines()[1:] == ["  3x3d2,max3o1", "            ^"]


def test_rf_verify_agrees_on_holes():
    pytest.importorskip("torch")
    result = invoke("rf", "--layers", "3x3d2*3", "--verify")
    assert result.exit_code == 0, result.output
    assert "rf 13, 6 holes, out 9x9 -> agrees" in result.stdout
    document = rf_json("--layers", "3x3d2*3", "--in", "20", "--verify")
    assert document["verify"]["agrees"] and document["verify"]["out"] == [8, 8]
    assert document["verify_field"]["measured"]["holes"] == [6, 6]
    assert document["verify_field"]["agrees"] is True


def test_rf_verify_confirms_a_rejection():
    pytest.importorskip("torch")
    result = invoke("rf", "--layers", "3x3d2,3x3d2", "--in", "8", "--verify")
    assert result.exit_code == 2
    assert "rejects it: RuntimeError: Calculated padded input size per channel: (4 x 4)" in result.stdout
    assert "convcalc: rejects it -> agrees" in result.stdout


def test_rf_verify_disagreement_exits_3(monkeypatch):
    from convcalc import torchmeasure
    from convcalc.periodic import UnitField

    wrong = torchmeasure.MeasuredField("9.9", (21,), (4,), (UnitField(4, 16, 0),), (UnitField(4, 16, 6),), (9,), (9,))
    monkeypatch.setattr(torchmeasure, "measure_field", lambda layers: wrong)
    result = invoke("rf", "--layers", "3d2*3", "--dims", "1", "--verify")
    assert result.exit_code == 3
    assert "-> DISAGREES" in result.stdout


def test_rf_help_has_examples_and_the_spec_language():
    text = invoke("rf", "--help").stdout
    assert "convcalc rf --layers 3x3d1,3x3d2,3x3d5" in text and "Layer specs" in text


# == convcalc gridding and aspp ==========================================================================

GRIDDING_KEYS = {"schema", "rates", "kernel_size", "gcd", "hdc", "coverage", "gridding", "suggestions", "paths"}


def test_gridding_grids_exits_1_and_suggests():
    result = invoke("gridding", "2,2,2")
    assert result.exit_code == 1
    assert "gcd 2: every tap lands on a multiple of 2" in result.stdout
    assert "M_2 = 2 <= K = 3: passes" in result.stdout
    assert "receptive field 13, covered 7, holes 6, largest gap 1" in result.stdout
    assert "verdict: GRIDDING" in result.stdout
    assert "1,2,3 (field 13)" in result.stdout
    assert result.stderr.strip() == "error: the rates 2,2,2 grid: 6 holes per dimension"


def test_gridding_clean_exit_0_and_map():
    result = invoke("gridding", "1,2,5")
    assert result.exit_code == 0
    assert "verdict: no gridding: every offset of the 17-wide field is reached" in result.stdout
    grid = [line for line in result.stdout.splitlines() if line and set(line) <= {"█", "·"}]
    assert len(grid) == 17 and all(len(row) == 34 for row in grid)


def test_gridding_map_shows_holes():
    grid = [line for line in invoke("gridding", "2,3").stdout.splitlines() if line and set(line) <= {"█", "·"}]
    assert grid[1] == "··" * 11  # offset 1 is never reached
    assert grid[0] == "██··" + "██" * 7 + "··██"


def test_gridding_exit_zero():
    assert invoke("gridding", "2,2,2", "--exit-zero").exit_code == 0


def test_gridding_json():
    result = invoke("gridding", "1,2,9", "--json")
    assert result.exit_code == 1
    document = json.loads(result.stdout)
    assert set(document) == GRIDDING_KEYS
    assert document["hdc"] == {"M": [3, 5, 9], "M2": 5, "ok": False}
    assert document["coverage"] == {"receptive_field": [25, 25], "covered": [21, 21], "holes": [4, 4],
                                    "largest_gap": [2, 2]}
    assert document["gridding"] is True and document["suggestions"][0] == [1, 3, 9]


def test_gridding_binary_rates_with_two_taps():
    document = json.loads(invoke("gridding", ",".join(str(2**i) for i in range(10)), "-k", "2", "--json").stdout)
    assert document["coverage"]["receptive_field"] == [1024, 1024] and document["coverage"]["holes"] == [0, 0]


def test_gridding_long_stacks_get_a_strip_and_a_sawtooth():
    result = invoke("gridding", ",".join(["2"] * 300))
    assert "offsets reached along one dimension: 0-1200 step 2" in result.stdout
    assert "sawtooth (HDC): 1,2,3,1,2,3" in result.stdout
    assert "2,2,2,2,2,2,... (300 rates) grid" in result.stderr


def test_gridding_without_a_possible_repair_says_why():
    assert "the largest hole-free field of 2 layers is 9 (rates 1,3)" in invoke("gridding", "2,3").stdout


@pytest.mark.parametrize("args, needles", [
    (["0,1"], ["the first rate must be an integer from 1 to 1,000,000, got 0"]),
    (["1,-2"], ["RATES: negative numbers are not allowed"]),
    (["1.5"], ["RATES: expected a whole number, got '1.5'"]),
    ([""], ["RATES: no rates given"]),
    (["1,,2"], ["RATES: expected a number, got ','"]),
    ([",".join(["1"] * 10_001)], ["10,001 rates given; at most 10,000"]),
    (["1,2", "-k", "0"], ["kernel_size must be an integer from 1 to 101"]),
    (["1,2", "-k", "x"], ["'x' is not a valid int"]),
    ([], ["Missing argument 'RATES'"]),
])
def test_gridding_bad_input(args, needles):
    assert_one_error_line(invoke("gridding", *args), *needles)


def test_gridding_verify():
    pytest.importorskip("torch")
    result = invoke("gridding", "1,2,9", "--verify")
    assert result.exit_code == 1
    assert "rf 25, 4 holes, out 9 -> agrees" in result.stdout
    document = json.loads(invoke("gridding", "2,2,2", "--verify", "--json", "--exit-zero").stdout)
    assert document["verify_field"]["measured"]["holes"] == [6] and document["verify_field"]["agrees"]


ASPP_KEYS = {"schema", "in", "kernel_size", "branches"}
BRANCH_KEYS = {"rate", "padding", "out", "receptive_field", "all_taps_valid", "only_center_valid", "valid_weights",
               "degenerate"}


def test_aspp_table():
    result = invoke("aspp", "--in", "65", "--rates", "1,6,12,18,24,65")
    assert result.exit_code == 0
    rows = table_rows(result.stdout)
    assert [row[4] for row in rows] == ["93.9%", "66.5%", "39.8%", "19.9%", "6.8%", "0%"]
    assert rows[-1][5] == "100%" and rows[-1][-1] == "degenerate"
    assert all(row[2] == "65x65" for row in rows)


def test_aspp_json():
    document = json.loads(invoke("aspp", "--in", "65", "--rates", "6,12,18", "--json").stdout)
    assert set(document) == ASPP_KEYS and document["in"] == [65, 65]
    assert all(set(b) == BRANCH_KEYS for b in document["branches"])
    assert [round(b["all_taps_valid"], 3) for b in document["branches"]] == [0.665, 0.398, 0.199]
    assert all(0 <= b["only_center_valid"] <= 1 for b in document["branches"])


def test_aspp_per_dimension_and_kernel():
    document = json.loads(invoke("aspp", "--in", "33x65", "--rates", "12", "-k", "5", "--json").stdout)
    assert document["branches"][0]["out"] == [33, 65] and document["branches"][0]["padding"] == 24


def test_aspp_verify():
    pytest.importorskip("torch")
    result = invoke("aspp", "--in", "65", "--rates", "6,12,18,65", "--verify")
    assert result.exit_code == 0
    assert "66.5%, 39.8%, 19.9%, 0% all valid -> agrees" in result.stdout
    assert json.loads(invoke("aspp", "--in", "33", "--rates", "6,40", "--verify", "--json").stdout)["verify"][
        "agrees"] is True


@pytest.mark.parametrize("args, needles", [
    (["--in", "65", "--rates", "6", "-k", "4"], ["odd kernels"]),
    (["--in", "65", "--rates", "0"], ["the first rate must be an integer"]),
    (["--in", "0", "--rates", "6"], ["must be positive"]),
    (["--in", "65"], ["no rates given: give the branches' rates, e.g. convcalc aspp --in 65 6,12,18"]),
    (["--in", "65", "--rates", "a"], ["--rates: expected a number"]),
    (["--in", "65", "6,a"], ["RATES: expected a number"]),
    (["--in", "65", "6", "--rates", "6"], ["rates given twice: 6 and --rates 6: give one"]),
])
def test_aspp_bad_input(args, needles):
    assert_one_error_line(invoke("aspp", *args), *needles)


# == convcalc check ======================================================================================

def write_checks(tmp_path, text: str) -> str:
    path = tmp_path / "shapes.toml"
    path.write_text(text)
    return str(path)


FAILING = ('[[check]]\nname = "keeps size"\nin = 256\nlayers = "3x3d2p2"\nout = 256\n'
           '[[check]]\nname = "off by two"\nin = 256\nlayers = "3x3d2p1"\nout = 256\nrf = 5\n')


def test_check_example_passes():
    result = invoke("check", EXAMPLE_FILE)
    assert result.exit_code == 0, result.output
    assert "5 passed, 0 failed" in result.stdout
    assert [row[-1] for row in table_rows(result.stdout) if row[-1]] == ["pass"] * 5


def test_check_failure_exits_1_and_names_it(tmp_path):
    path = write_checks(tmp_path, FAILING)
    result = invoke("check", path)
    assert result.exit_code == 1
    assert f"FAIL {path}:10: off by two: out: expected 256x256, got 254x254" in result.stdout  # the 'out' line
    assert "1 passed, 1 failed" in result.stdout
    assert result.stderr.strip() == "error: 1 of 2 checks failed"


def test_check_json(tmp_path):
    path = write_checks(tmp_path, FAILING)
    document = json.loads(invoke("check", path, "--json").stdout)
    assert document["schema"] == "convcalc.check/1" and (document["passed"], document["failed"]) == (1, 1)
    assert document["results"][0]["line"] == 1 and document["results"][0]["file"] == path
    assert document["results"][1] == {"name": "off by two", "ok": False, "file": path, "line": 10,
                                      "expected": {"out": [256, 256], "rf": [5, 5]},
                                      "actual": {"out": [254, 254], "rf": [5, 5]},
                                      "message": "out: expected 256x256, got 254x254"}


def test_check_junit_xml_parses_back(tmp_path):
    from xml.etree import ElementTree

    report = tmp_path / "junit.xml"
    result = invoke("check", write_checks(tmp_path, FAILING), "--junit-xml", str(report))
    assert result.exit_code == 1
    suite = ElementTree.parse(report).getroot().find("testsuite")
    assert (suite.get("tests"), suite.get("failures")) == ("2", "1")
    cases = suite.findall("testcase")
    assert [c.get("name") for c in cases] == ["keeps size", "off by two"]
    assert cases[0].find("failure") is None
    failure = cases[1].find("failure")
    assert failure.get("message") == "out: expected 256x256, got 254x254"
    assert "layers: 3x3d2p1" in failure.text


def test_check_junit_xml_unwritable(tmp_path):
    assert_one_error_line(invoke("check", EXAMPLE_FILE, "--junit-xml", str(tmp_path / "no" / "such" / "x.xml")),
                          "cannot write")


@pytest.mark.parametrize("text, needles", [
    ("[[check]]\nname = 'a'\nlayers = '3'\nrf = 3\noutt = 3\n", ["check 'a' (#1): unknown key 'outt'"]),
    ("[[check]]\nname = 'a'\nlayers = 3\nrf = 3\n", ["check 'a' (#1): key 'layers' must be a string"]),
    ("[[check]\n", ["is not valid TOML"]),
    ("[[check]]\nname = 'a'\nlayers = '3x3q'\nrf = 3\n", ["check 'a' (#1), key 'layers': expected an option"]),
])
def test_check_wrong_files_exit_2(tmp_path, text, needles):
    assert_one_error_line(invoke("check", write_checks(tmp_path, text)), *needles)


def test_check_paths_with_a_nul_byte():
    assert_one_error_line(invoke("check", "a\x00b"), "cannot read the check file")
    assert_one_error_line(invoke("check", EXAMPLE_FILE, "--junit-xml", "a\x00b"), "cannot write")


def test_check_missing_file():
    assert_one_error_line(invoke("check", "no-such-file.toml"), "cannot read the check file 'no-such-file.toml'")


def test_check_verify(tmp_path):
    pytest.importorskip("torch")
    result = invoke("check", EXAMPLE_FILE, "--verify")
    assert result.exit_code == 0, result.output
    assert "PyTorch cross-check of 5 checks -> agrees on every check" in result.stdout
    document = json.loads(invoke("check", write_checks(tmp_path, FAILING), "--verify", "--json").stdout)
    assert all(r["verify"]["agrees"] for r in document["results"])
    assert "torch 254x254, convcalc 254x254" in document["results"][1]["verify"]["detail"]


def test_check_verify_disagreement_exits_3(monkeypatch):
    pytest.importorskip("torch")  # check --verify asks for torch before it runs a check
    from convcalc import torchmeasure

    monkeypatch.setattr(torchmeasure, "verify_check", lambda result: torchmeasure.CheckVerify(False, "made up"))
    result = invoke("check", EXAMPLE_FILE, "--verify")
    assert result.exit_code == 3
    assert "PyTorch cross-check of 5 checks -> DISAGREES" in result.stdout


# == channels, groups and cost (out --shape) ==============================================================

COST_KEYS = {"shape", "out_shape", "groups", "bias", "params", "macs", "torchinfo_mult_adds", "dtype", "out_bytes"}


@pytest.mark.parametrize("shape", ["1x3x256x256", "[1, 3, 256, 256]", "torch.Size([1, 3, 256, 256])",
                                   "(1,3,256,256)"])
def test_shape_as_pasted(shape):
    document = out_json("--shape", shape, "-k", "3", "-p", "2", "-d", "2", "--out-channels", "64")
    assert set(document) == OUT_KEYS | COST_KEYS
    assert document["out_shape"] == [1, 64, 256, 256] and document["in"] == [256, 256]
    assert (document["params"], document["macs"]) == (1792, 113_246_208)
    assert document["out_bytes"] == 64 * 256 * 256 * 4


def test_shape_table_lines():
    result = invoke("out", "--shape", "1x3x256x256", "-k", "3", "-p", "2", "-d", "2", "--out-channels", "64")
    assert result.exit_code == 0
    for text in ("shape 1x3x256x256 -> 1x64x256x256",
                 "groups=1 on 3 -> 64 channels: 1 group of 3 input channels, each producing 64",
                 "parameters 1,792 (weight 1,728 + bias 64)",
                 "MACs 113,246,208 for one forward pass of the batch (fvcore's count; FLOPs = 2 x MACs = "
                 "226,492,416; torchinfo's mult-adds 117,440,512)",
                 "output activations 16.0 MiB (16,777,216 bytes) as float32"):
        assert text in result.stdout


def test_out_channels_default_to_the_input_and_no_bias():
    document = out_json("--shape", "2x16x32x32", "-k", "3", "-p", "1", "--no-bias")
    assert document["out_shape"] == [2, 16, 32, 32] and document["params"] == 16 * 16 * 9
    assert document["bias"] is False


def test_grouped_and_depthwise():
    result = invoke("out", "--shape", "1x10x8x8", "-k", "3", "--groups", "2", "--out-channels", "20")
    assert "groups=2 on 10 -> 20 channels: 2 groups of 5 input channels, each producing 10" in result.stdout
    depthwise = invoke("out", "--shape", "8x32x56x56", "-k", "3", "-p", "1", "--groups", "32", "--out-channels", "64")
    assert "32 groups of 1 input channel, each producing 2; depthwise, depth multiplier 2" in depthwise.stdout


def test_transposed_and_pooled_shapes():
    tconv = out_json("--shape", "2x8x16x16", "-k", "4", "-s", "2", "-p", "1", "--op", "tconv", "--groups", "2",
                     "--out-channels", "4")
    assert tconv["out_shape"] == [2, 4, 32, 32] and (tconv["params"], tconv["macs"]) == (260, 131_072)
    assert tconv["torchinfo_mult_adds"] == 532_480
    pool = out_json("--shape", "4x16x32x32", "-k", "3", "-s", "2", "-p", "1", "--op", "max")
    assert pool["out_shape"] == [4, 16, 16, 16] and (pool["params"], pool["macs"]) == (0, 0)


def test_dtype_and_expect_with_full_shapes():
    document = out_json("--shape", "1x3x64x64", "-k", "3", "-p", "1", "--dtype", "float16", "--out-channels", "8")
    assert document["out_bytes"] == 8 * 64 * 64 * 2 and document["dtype"] == "float16"
    assert invoke("out", "--shape", "1x3x64x64", "-k", "3", "--expect", "1x3x62x62").exit_code == 0
    assert invoke("out", "--shape", "1x3x64x64", "-k", "3", "--expect", "62").exit_code == 0
    failed = invoke("out", "--shape", "1x3x64x64", "-k", "3", "--expect", "1x4x62x62")
    assert failed.exit_code == 1 and "expected output 1x4x62x62, got 1x3x62x62" in failed.stderr


@pytest.mark.parametrize("args, needles", [
    (["--shape", "1x10x8x8", "-k", "3", "--groups", "3", "--out-channels", "12"],
     ["Conv2d rejects input 1x10x8x8: in_channels must be divisible by groups"]),
    (["--shape", "1x12x8x8", "-k", "3", "--groups", "3", "--out-channels", "10"],
     ["out_channels must be divisible by groups"]),
    (["--shape", "1x0x8x8", "-k", "3"], ["channels C must be a positive integer"]),
    (["--shape", "1x3x8x8", "-k", "3x3x3"], ["disagree on the number of dimensions"]),
    (["--shape", "1x3x8x8", "-k", "3", "--dims", "3"], ["input size has 2 dimensions but dims is 3"]),
    (["--shape", "3x8", "-k", "3"], ["--shape 3x8 has rank 2"]),
    (["--shape", "1x3x8x8", "--in", "9", "-k", "3"], ["--in 9 disagrees with the spatial sizes"]),
    (["--in", "8", "-k", "3", "--out-channels", "4"], ["--out-channels needs --shape"]),
    (["--in", "8", "-k", "3", "--no-bias"], ["--no-bias needs --shape"]),
    (["--shape", "1x3x8x8", "-k", "3", "--dtype", "int8"], ["unknown dtype 'int8'"]),
    (["--shape", "1x3x8x8", "-k", "2", "--op", "max", "--out-channels", "4"], ["pooling keeps the channels"]),
    (["--shape", "[1, 3, x]", "-k", "3"], ["--shape: expected a number, got 'x'"]),
    (["-k", "3"], ["give the input size: --in SIZE"]),
])
def test_shape_bad_input(args, needles):
    assert_one_error_line(invoke("out", *args), *needles)


def test_shape_verify_compares_shape_and_parameters():
    pytest.importorskip("torch")
    result = invoke("out", "--shape", "8x32x56x56", "-k", "3", "-p", "1", "--groups", "32", "--out-channels", "64",
                    "--verify")
    assert result.exit_code == 0
    assert "PyTorch 2" in result.stdout and ": 8x64x56x56, 640 parameters" in result.stdout
    assert "convcalc: 8x64x56x56, 640 parameters -> agrees" in result.stdout
    document = out_json("--shape", "2x8x16x16", "-k", "4", "-s", "2", "-p", "1", "--op", "tconv", "--verify")
    assert document["verify"]["out_shape"] == [2, 8, 32, 32] and document["verify"]["params"] == 8 * 8 * 16 + 8
    rejected = invoke("out", "--shape", "1x10x8x8", "-k", "3", "--groups", "3", "--out-channels", "12", "--verify")
    assert rejected.exit_code == 2
    assert "rejects it: ValueError: in_channels must be divisible by groups" in rejected.stdout


def test_rf_with_shape_and_channels():
    vgg_start = "3x3p1*2,max2,3x3p1*2,max2"
    document = rf_json("--layers", vgg_start, "--shape", "1x3x224x224", "--channels", "64,64,128,128")
    assert [layer["params"] for layer in document["layers"]] == [1792, 36928, 0, 73856, 147584, 0]
    assert document["layers"][-1]["out_shape"] == [1, 128, 56, 56]
    assert document["params"] == 260_160 and document["shape"] == [1, 3, 224, 224]
    result = runner.invoke(app, ["rf", "--layers", vgg_start, "--shape", "1x3x224x224", "--channels",
                                 "64,64,128,128"], env={"COLUMNS": "160"})
    assert "parameters 260,160, MACs 4,710,924,288 for one forward pass of the batch" in result.stdout
    assert table_rows(result.stdout)[2][-3:] == ["1x64x224x224", "36,928", "1,849,688,064"]


def test_rf_shape_without_channels_keeps_them():
    document = rf_json("--layers", "3x3p1,max2", "--shape", "2x16x32x32", "--no-bias")
    assert document["layers"][-1]["out_shape"] == [2, 16, 16, 16] and document["params"] == 16 * 16 * 9


@pytest.mark.parametrize("args, needles", [
    (["--layers", "3,max2,3", "--shape", "1x3x32x32", "--channels", "8"],
     ["--channels has 1 values for the stack's 2 convolutions"]),
    (["--layers", "3", "--channels", "8"], ["--channels needs --shape"]),
    (["--layers", "3", "--no-bias"], ["--no-bias needs --shape"]),
    (["--layers", "3", "--shape", "1x3x32x32", "--channels", "0"], ["out_channels must be a positive integer"]),
])
def test_rf_channels_bad_input(args, needles):
    assert_one_error_line(invoke("rf", *args), *needles)


def test_internal_errors_are_one_line_exit_4_and_traceback_on_request(monkeypatch):
    from convcalc import layer

    def broken(self, size):
        raise TypeError("simulated bug")

    monkeypatch.setattr(layer.Layer, "output_size", broken)
    result = invoke("out", "--in", "8", "-k", "3")
    assert result.exit_code == 4
    assert result.stderr.startswith("error: internal error: TypeError: simulated bug (a bug in convcalc")
    assert "Traceback" not in result.output
    monkeypatch.setenv("CONVCALC_DEBUG", "1")
    assert isinstance(invoke("out", "--in", "8", "-k", "3").exception, TypeError)


def test_entry_point_registers_only_the_command_run():
    code = ("from convcalc.cli.typer_app import app, app_for\n"
            "narrowed = app_for(['gridding', '2,2,2'])\n"
            "print([c.callback.__name__ for c in narrowed.registered_commands])\n"
            "print(app_for(['nonsense']) is app, [c.callback.__name__ for c in app.registered_commands])\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.splitlines() == [
        "['gridding']", "True ['gridding', 'out', 'rf', 'solve', 'sizes', 'aspp', 'design', 'check', 'inspect', 'memory', 'erf']"]
    assert [c.callback.__name__ for c in app.registered_commands] == [
        "out", "rf", "solve", "sizes", "gridding", "aspp", "design", "check", "inspect", "memory", "erf"]  # every command, in help's order


# -- what the independent review found -------------------------------------------------------------------

def test_rf_and_check_take_three_dimensional_specs(tmp_path):
    assert rf_json("--layers", "3x3x3")["receptive_field"] == [3, 3, 3]
    assert rf_json("--layers", "3x3x3", "--in", "16")["out"] == [14, 14, 14]
    path = write_checks(tmp_path, '[[check]]\nname = "3-d"\nin = 16\nlayers = "3x3x3"\nout = 14\n')
    assert invoke("check", path).exit_code == 0


@pytest.mark.parametrize("args, needle", [
    (["out", "--in", "2**" + "9" * 400, "-k", "3"], "numbers are limited to 1000 digits"),
    (["out", "--in", "2**99999999", "-k", "3"], "numbers are limited to 1000 digits"),
])
def test_huge_exponents_are_bad_input(args, needle):
    assert_one_error_line(invoke(*args), needle)


def test_products_of_huge_sizes_print():
    n = "9" * 900
    document = out_json("--shape", f"{n}x{n}x{n}x{n}x{n}", "-k", "1", "--dims", "3")
    assert document["out_shape"] == [int(n)] * 5 and document["out_bytes"] == int(n) ** 5 * 4


def test_fields_too_wide_to_count_holes_say_so():
    result = invoke("rf", "--layers", "3s10000*4", "--dims", "1")
    assert result.exit_code == 0
    assert "holes: not counted: the field spans 2,000,200,020,003 positions" in result.stdout
    assert rf_json("--layers", "3s10000*4", "--dims", "1")["coverage"]["holes"] is None
    assert_one_error_line(invoke("gridding", ",".join(["999983", "1000000"] * 100)), "holes are counted exactly up to")


@pytest.mark.parametrize("toml, needle", [
    ('[[check]]\nname = "a"\nlayers = "3"\njump = inf\n', "key 'jump' must be a positive number"),
    ('[[check]]\nname = "a"\nlayers = "3"\njump = 0\n', "key 'jump' must be a positive number"),
    ('[[check]]\nname = "a"\nlayers = "3"\njump = -1\n', "key 'jump' must be a positive number"),
    ('[[check]]\nname = "a\\u0001b"\nlayers = "3"\nrf = 3\n', "key 'name' must not contain control characters"),
])
def test_check_values_out_of_range(tmp_path, toml, needle):
    assert_one_error_line(invoke("check", write_checks(tmp_path, toml)), needle)


def test_check_verify_without_torch_says_how_to_install(tmp_path):
    path = write_checks(tmp_path, '[[check]]\nname = "a"\nlayers = "3"\nrf = 3\n')
    code = ("import sys; sys.modules['torch'] = None\n"
            "from convcalc.cli import main\n"
            f"sys.argv = ['convcalc', 'check', {path!r}, '--verify']\n"
            "main()\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 2
    assert 'needs PyTorch, which is not installed: pip install "convcalc[torch]"' in result.stderr


def test_verify_beyond_int64_is_not_a_disagreement():
    pytest.importorskip("torch")
    document = out_json("--in", "10**30", "-k", "3", "--verify")
    assert document["verify"]["agrees"] is True and "2**63 - 1" in document["verify"]["note"]


def test_verify_builds_huge_weights_on_the_meta_device():
    pytest.importorskip("torch")
    document = out_json("--shape", "1x512x64x64", "-k", "31", "-p", "15", "--verify")
    assert document["verify"]["agrees"] and document["verify"]["params"] == 512 * 512 * 31 * 31 + 512
    assert "the weights would take 961 MiB" in document["verify"]["note"]


def test_python_dash_m_without_its_dependencies_says_so(tmp_path):
    shim = tmp_path / "typer.py"
    shim.write_text("raise ModuleNotFoundError('No module named typer', name='typer')\n")
    code = "import runpy; runpy.run_module('convcalc', run_name='__main__')"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            env={"PYTHONPATH": f"{tmp_path}:{Path(__file__).parent.parent}", "PATH": "/usr/bin"})
    assert result.returncode == 2
    assert result.stderr.startswith("error: convcalc needs typer, which is not installed")


def test_shell_completion_is_offered(monkeypatch):
    assert "--install-completion" in invoke("--help").stdout
    # Typer detects the shell from the process tree unless told: name it, as a machine without one would.
    monkeypatch.setenv("_TYPER_COMPLETE_TEST_DISABLE_SHELL_DETECTION", "1")
    script = invoke("--show-completion", "bash")
    assert script.exit_code == 0 and "complete" in script.stdout and "convcalc" in script.stdout.lower()


def test_check_points_at_the_line_for_github(tmp_path, monkeypatch):
    path = write_checks(tmp_path, FAILING)
    result = invoke("check", path, "--format", "github")
    assert f"::error file={path},line=10,title=convcalc check::off by two: out: expected 256x256, got 254x254" \
        in result.stdout.splitlines()
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    assert "::error file=" in invoke("check", path).stdout
    assert "::error file=" not in invoke("check", path, "--format", "text").stdout
    assert "::error file=" in invoke("check", path, "--json").stderr  # stdout keeps its one JSON document
    assert invoke("check", path, "--format", "xml").exit_code == 2


def test_check_takes_several_files(tmp_path):
    path = write_checks(tmp_path, FAILING)
    result = invoke("check", EXAMPLE_FILE, path, "--json")
    document = json.loads(result.stdout)
    assert result.exit_code == 1 and (document["passed"], document["failed"]) == (6, 1)
    assert {r["file"] for r in document["results"]} == {EXAMPLE_FILE, path}


def test_review_findings_stay_fixed(tmp_path):
    """Found by an independent review: each of these misreported or crashed."""
    pytest.importorskip("torch")
    # --output-size torch refuses: torch is asked with output_size= and refuses too (exit 2, not 3)
    assert invoke("out", "--in", "7", "-k", "3", "-s", "2", "--op", "tconv", "--output-size", "14", "--verify").exit_code == 2
    # TensorFlow 'valid' pools run in torch with padding 0
    assert invoke("out", "--in", "9", "-k", "3", "-s", "2", "--op", "max", "-p", "valid", "--convention", "tf",
                  "--verify").exit_code == 0
    assert invoke("rf", "--layers", "3x3,max3s2pvalid", "--convention", "tf", "--verify").exit_code == 0
    # a rejected stack is named as such, not as a missing --in
    result = invoke("rf", "--layers", "3,3", "--in", "3", "--unit", "0", "--dims", "1")
    assert result.exit_code == 2 and "needs a stack that PyTorch accepts" in result.stderr
    # a check convcalc cannot compute is not run in torch (it had no size to bound the work by)
    path = tmp_path / "big.toml"
    path.write_text('[[check]]\nname = "tconv big"\nin = 10\nlayers = "tconv3s16*8"\nout = 7\n')
    document = json.loads(invoke("check", str(path), "--verify", "--json").stdout)
    assert "verify" not in document["results"][0] and document["failed"] == 1


def test_a_narrow_terminal_gets_names_and_numbers_whole():
    """Cells are never wrapped mid-name or mid-number: a table wider than the terminal is printed whole."""
    from io import StringIO

    from rich.console import Console

    from convcalc.checks import parse_checks, run_checks
    from convcalc.render.check import check_view
    from convcalc.render.common import print_view
    from convcalc.reports import CheckReport

    name = "stage [4] (a [/] b)"
    results = tuple(run_checks(parse_checks({"check": [{"name": name, "layers": "3x3", "rf": 2049004}]})))
    buffer = StringIO()
    print_view(check_view(CheckReport("shapes.convcalc.toml", results)), Console(file=buffer, width=30, force_terminal=True,
                                                                       color_system=None))
    text = buffer.getvalue()
    assert f"│ {name} │" in text and "│ rf 2049004 " in text and "expected" in text
