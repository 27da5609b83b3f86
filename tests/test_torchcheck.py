"""convcalc.torchcheck: the torch layers it builds, its eager/meta choice and its verdicts."""

from __future__ import annotations

import subprocess
import sys

import pytest

from convcalc import ConvcalcError, Layer
from convcalc.torchcheck import (EAGER_LIMIT_BYTES, TorchAnswer, build_module, eager_refusal, judge,
                                 resolve_device, run_layer)

torch = pytest.importorskip("torch")


@pytest.mark.parametrize("layer, expected", [
    (Layer.build((3, 5), 2, (1, 2), (2, 1)), "Conv2d(1, 1, kernel_size=(3, 5), stride=(2, 2), "
                                             "padding=(1, 2), dilation=(2, 1), bias=False)"),
    (Layer.build(4, 2, 1, op="conv_transpose", output_padding=1, dims=1),
     "ConvTranspose1d(1, 1, kernel_size=(4,), stride=(2,), padding=(1,), output_padding=(1,), bias=False)"),
    (Layer.build(3, 2, 1, 2, op="max_pool", ceil_mode=True, dims=3),
     "MaxPool3d(kernel_size=(3, 3, 3), stride=(2, 2, 2), padding=(1, 1, 1), dilation=(2, 2, 2), "
     "ceil_mode=True)"),
    (Layer.build(2, op="avg_pool", dims=2), "AvgPool2d(kernel_size=(2, 2), stride=(2, 2), padding=(0, 0))"),
    (Layer.build(4, padding="same", dims=2), "Conv2d(1, 1, kernel_size=(4, 4), stride=(1, 1), padding=same, "
                                             "bias=False)"),
])
def test_builds_the_matching_module(layer, expected):
    assert repr(build_module(layer)) == expected


def test_runs_eagerly_and_reports_version_and_device():
    answer = run_layer(Layer.build(3, padding=2, dilation=2), (20, 30), (20, 30))
    assert answer == TorchAnswer(torch.__version__, "cpu", (20, 30), None, True, None, (1, 1, 20, 30), 9)


def test_reports_what_torch_raises():
    answer = run_layer(Layer.build(5), (3, 3))
    assert answer.out is None
    assert answer.error.startswith("RuntimeError: Calculated padded input size per channel: (3 x 3)")
    same = run_layer(Layer.build(3, 2, "same"), (8, 8))
    assert same.error == "ValueError: padding='same' is not supported for strided convolutions"


def test_large_inputs_fall_back_to_the_meta_device():
    layer = Layer.build(3)
    answer = run_layer(layer, (100_000, 100_000), (99_998, 99_998))
    assert answer.device == "meta" and not answer.eager
    assert answer.out == (99_998, 99_998)
    assert "input tensor would take 38,147 MiB (limit 256 MiB)" in answer.note


def test_eager_limits():
    n = int((EAGER_LIMIT_BYTES // 4) ** 0.5)
    assert eager_refusal([Layer.build(1)], (n, n), [(n, n)]) is None
    assert "input tensor" in eager_refusal([Layer.build(1)], (n + 1, n + 1), [(n + 1, n + 1)])
    assert "output tensor" in eager_refusal([Layer.build(1, 8, op="conv_transpose")], (n // 4, n // 4),
                                            [(n * 2, n * 2)])
    assert "multiply-accumulates" in eager_refusal([Layer.build(64)], (4000, 4000), [(3937, 3937)])
    assert "multiply-accumulates" in eager_refusal([Layer.build(9)] * 200, (1000, 1000), [(1000, 1000)] * 200)


def test_judge():
    layer = [Layer.build(3, op="conv_transpose")]
    eager = TorchAnswer("2", "cpu", (5, 5), None)
    assert judge(layer, (5, 5), eager).agrees
    assert not judge(layer, (5, 6), eager).agrees
    assert not judge(layer, None, eager).agrees
    assert not judge(layer, (5, 5), TorchAnswer("2", "cpu", None, "RuntimeError: no")).agrees
    quirk = judge(layer, None, TorchAnswer("2", "cpu", (0, 5), None))
    assert quirk.agrees and "quirk" in quirk.caveat
    meta = judge(layer, None, TorchAnswer("2", "meta", (5, 5), None, eager=False))
    assert meta.agrees and "meta device" in meta.caveat
    assert not judge([Layer.build(3)], None, TorchAnswer("2", "cpu", (0, 5), None)).agrees


def test_the_empty_tensor_quirk_is_real_and_named():
    # ConvTranspose2d: height (1-1)*4 - 2*2 + 4 + 0 = 0, width (2-1)*4 - 2*3 + 6 + 1 = 5.
    layer = Layer.build((4, 6), 4, (2, 3), (1, 1), op="conv_transpose", output_padding=(0, 1))
    answer = run_layer(layer, (1, 2))
    if answer.out is None:
        pytest.skip(f"this torch build rejects it outright: {answer.error}")
    assert answer.out == (0, 5)
    assert judge([layer], None, answer).caveat.startswith("torch returned an empty tensor")


def test_devices():
    assert resolve_device("cpu") == "cpu"
    with pytest.raises(ConvcalcError, match="device must be cpu, cuda or cuda:N"):
        resolve_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(ConvcalcError, match="no CUDA device available"):
            resolve_device("cuda")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_runs_on_cuda():
    answer = run_layer(Layer.build(3, padding=1), (64, 64), (64, 64), "cuda")
    assert answer.device == "cuda" and answer.out == (64, 64)


def test_without_torch_says_how_to_install():
    code = ("import sys; sys.modules['torch'] = None\n"
            "from convcalc.torchcheck import import_torch\n"
            "try:\n    import_torch()\n"
            "except Exception as exc:\n    print(type(exc).__name__, exc)\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == ('ConvcalcError verify needs PyTorch, which is not installed: '
                                     'pip install "convcalc[torch]" (from a checkout: pip install ".[torch]"; without a GPU, '
                                     'first the CPU build: pip install torch --index-url '
                                     'https://download.pytorch.org/whl/cpu)')
