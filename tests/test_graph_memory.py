"""convcalc memory (graph/memory.py) held to PyTorch's own memory profiler on a real CPU step, and to
saved_tensors_hooks, on every kind of model the issue names; the command itself (cli/memory.py)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

torch = pytest.importorskip("torch")

import models  # noqa: E402

from convcalc.cli import app  # noqa: E402
from convcalc.graph.memory import Simulator, simulate  # noqa: E402
from convcalc.graph.memory_profile import agrees, measure_step  # noqa: E402

ROOT = Path(__file__).parent.parent
MODELS = str(Path(__file__).parent / "models.py")
runner = CliRunner()

# (model, input, optimizer, amp, kernel scratch expected in the profiler's peak)
CASES = [
    ("TinyResNet", (8, 3, 64, 64), "adam", None, False),
    ("TinyUNet", (4, 1, 64, 64), "momentum", None, False),  # cat skips, transposed convolutions
    ("DepthwiseNet", (8, 3, 64, 64), "adamw", None, False),  # depthwise and pointwise convolutions
    ("FrozenBackbone", (4, 3, 32, 32), "adam", None, False),  # frozen layers, in-place ReLUs
    ("SharedConv", (4, 3, 32, 32), "sgd", None, False),  # one module used twice
    ("DictHeads", (4, 3, 32, 32), "adam", None, True),  # a dict output: conv backward copies its broadcast gradient
    ("TinyResNet", (8, 3, 64, 64), "adamw", "bf16", False),
    ("TinyUNet", (4, 1, 64, 64), "adam", "bf16", True),  # oneDNN's bf16 convolutions keep scratch tensors
]


def fresh(name: str):
    torch.manual_seed(0)
    return getattr(models, name)()


@pytest.mark.parametrize("name, shape, optimizer, amp, scratch", CASES, ids=[f"{c[0]}-{c[2]}-{c[3]}" for c in CASES])
def test_training_step_matches_the_profiler(name, shape, optimizer, amp, scratch):
    """The predicted peak is within 3% of the profiler's peak of the tensors the ops exchange, and of its
    peak of every tensor where no kernel keeps scratch tensors; parameters, gradients and optimizer
    state are the profiler's categories to the byte."""
    predicted = simulate(fresh(name), shape, "train", optimizer, amp)
    measured = measure_step(fresh(name), shape, "train", optimizer, amp)
    assert agrees(predicted.peak_bytes, measured), (predicted.peak_bytes, measured)
    if not scratch:
        assert abs(predicted.peak_bytes - measured.peak_bytes) <= 0.03 * measured.peak_bytes, (predicted, measured)
    else:  # the kernels' own tensors are real but outside the prediction: the docs name these cases
        assert measured.scratch_bytes > 0
    assert predicted.parameter_bytes == measured.parameter_bytes
    assert predicted.gradient_bytes == measured.gradient_bytes
    assert predicted.optimizer_state_bytes == measured.optimizer_state_bytes


def saved_by_hooks(model, shape, amp=None) -> int:
    """The unique storages saved_tensors_hooks sees in one real forward (the test's own count)."""
    seen: dict[int, int] = {}

    def pack(tensor):
        storage = tensor.untyped_storage()
        seen[storage.data_ptr()] = storage.nbytes()
        return tensor

    model.train()
    x = torch.randn(*shape)
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=amp is not None):
            model(x)
    return sum(seen.values())


@pytest.mark.parametrize("name, shape, amp", [("TinyResNet", (4, 3, 32, 32), None), ("TinyUNet", (2, 1, 32, 32), None),
                                              ("SharedConv", (2, 3, 16, 16), None), ("DictHeads", (2, 3, 32, 32), None),
                                              ("FrozenBackbone", (2, 3, 16, 16), None),
                                              ("TinyResNet", (4, 3, 32, 32), "bf16")])
def test_saved_for_backward_is_what_autograd_saves(name, shape, amp):
    predicted = simulate(fresh(name), shape, "train", "sgd", amp)
    assert predicted.saved_bytes == saved_by_hooks(fresh(name), shape, amp)
    assert 0 < predicted.saved_parameter_bytes <= predicted.saved_bytes
    assert sum(n.saved_bytes for n in predicted.nodes) >= predicted.saved_bytes  # per node, a storage may recur


def test_frozen_layers_get_no_gradients_nor_state():
    model = fresh("FrozenBackbone")
    trainable = sum(p.numel() * 4 for p in model.parameters() if p.requires_grad)
    step = simulate(model, (2, 3, 16, 16), "train", "adam")
    assert step.gradient_bytes == trainable < step.parameter_bytes
    n_trainable = sum(1 for p in model.parameters() if p.requires_grad)
    assert step.optimizer_state_bytes == 2 * trainable + 4 * n_trainable  # exp_avg, exp_avg_sq, the step counters


@pytest.mark.parametrize("name, shape", [("TinyResNet", (8, 3, 64, 64)), ("TinyUNet", (4, 1, 64, 64)),
                                         ("DictHeads", (4, 3, 32, 32))])
def test_inference_matches_the_profiler_and_inspect(name, shape):
    from convcalc.graph import inspect_model
    from convcalc.graph.costs import inspection_totals

    predicted = simulate(fresh(name), shape, "infer")
    measured = measure_step(fresh(name), shape, "infer")
    assert agrees(predicted.peak_bytes, measured), (predicted.peak_bytes, measured)
    assert predicted.gradient_bytes == predicted.optimizer_state_bytes == predicted.saved_bytes == 0
    assert inspection_totals(inspect_model(fresh(name), shape, name)).peak_bytes == predicted.peak_bytes


def test_inspect_reports_the_inference_peak_of_memory_infer():
    """On an attention model too (the profiler cannot tie its last convolution's output to a tensor, so
    it is not an oracle there: docs/memory.md)."""
    from convcalc.graph import inspect_model
    from convcalc.graph.costs import inspection_totals

    for name, shape in (("TinyAttention", (2, 3, 32, 32)), ("SEBlock", (2, 3, 16, 16))):
        inspected = inspection_totals(inspect_model(fresh(name), shape, name)).peak_bytes
        assert inspected == simulate(fresh(name), shape, "infer").peak_bytes


def test_steps_at_several_batches_share_one_setup():
    with Simulator(fresh("TinyResNet")) as simulator:
        peaks = [simulator.step((b, 3, 32, 32)).peak_bytes for b in (1, 2, 3, 4)]
    assert peaks == [simulate(fresh("TinyResNet"), (b, 3, 32, 32)).peak_bytes for b in (1, 2, 3, 4)]
    assert peaks[3] - peaks[2] == peaks[2] - peaks[1]


def invoke(*args: str):
    return runner.invoke(app, ["memory", *args])


def test_budget_finds_the_largest_batch_and_confirms_it():
    document = json.loads(invoke(f"{MODELS}:TinyResNet", "--input", "8x3x32x32", "--budget", "4MiB", "--json").stdout)
    b = document["largest_batch"]
    assert simulate(fresh("TinyResNet"), (b, 3, 32, 32)).peak_bytes <= 4 * 2**20
    assert simulate(fresh("TinyResNet"), (b + 1, 3, 32, 32)).peak_bytes > 4 * 2**20
    assert document["simulations"] <= 4 and document["per_sample_bytes"] > 0
    small = invoke(f"{MODELS}:TinyResNet", "--input", "8x3x32x32", "--budget", "100kB")
    assert small.exit_code == 1 and "even batch 1 does not fit the budget of 97.7 KiB" in small.stderr


def test_verify_agrees_and_refuses_what_is_too_large():
    result = invoke(f"{MODELS}:FrozenBackbone", "--input", "4x3x32x32", "--verify", "--json")
    assert result.exit_code == 0, result.output
    verify = json.loads(result.stdout)["verify"]
    assert verify["agrees"] is True and verify["measured_peak_bytes"] > 0 and result.stderr == ""
    big = invoke(f"{MODELS}:TinyUNet", "--input", "64x1x512x512", "--verify")
    assert big.exit_code == 2 and "over the 512 MiB that --verify may use" in big.stderr


def test_a_huge_input_answers_without_allocating():
    """64x3x1024x1024 through a MobileNet-style net: tens of GiB predicted, under 1 GiB of host memory."""
    from measured import run_measured

    code, out, err, peak = run_measured([sys.executable, "-m", "convcalc", "memory", f"{MODELS}:DepthwiseNet",
                                         "--input", "64x3x1024x1024", "--json"], cwd=str(ROOT), timeout=300)
    assert code == 0, err
    assert json.loads(out)["peak_bytes"] > 20 * 2**30
    assert 0 < peak < 2**20, peak  # KiB: under 1 GiB


@pytest.mark.parametrize("args, needle", [
    (["--budget", "lots"], "--budget 'lots': expected a size such as 24GiB"),
    (["--optimizer", "lion"], "unknown --optimizer 'lion': expected sgd, momentum, adam, adamw"),
    (["--amp", "fp8"], "unknown --amp 'fp8'"),
    (["--infer", "--optimizer", "sgd"], "--optimizer applies to a training step"),
])
def test_bad_input_is_one_line_and_exit_2(args, needle):
    result = invoke(f"{MODELS}:TinyResNet", "--input", "2x3x32x32", *args)
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0], result.stderr


def test_a_value_dependent_model_is_named():
    result = invoke(f"{MODELS}:DataDependent", "--input", "2x3x16x16")
    assert result.exit_code == 2
    assert "the model does not run on fake tensors at (model)" in result.stderr and "cannot be simulated" in result.stderr


def test_fp16_autocast_and_text():
    result = invoke(f"{MODELS}:DictHeads", "--input", "2x3x32x32", "--amp", "fp16", "--all")
    assert result.exit_code == 0, result.output
    assert "autocast fp16" in result.stdout and "every node, most saved for backward first" in result.stdout
    assert "not included: scratch memory the backend allocates inside a kernel" in result.stdout


@pytest.mark.parametrize("name, shape", [("TinyResNet", (2, 3, 32, 32)), ("TinyUNet", (2, 1, 32, 32)),
                                         ("TinyAttention", (2, 3, 32, 32)), ("CostZoo", (2, 3, 8, 8)),
                                         ("DictHeads", (2, 3, 32, 32))])
@pytest.mark.parametrize("mode", ["train", "infer"])
def test_meta_and_fake_tensors_give_the_same_step(name, shape, mode):
    """float32 steps run on the meta device (fast, and no torch._dynamo to import); autocast needs fake
    tensors, which carry the CPU device. Both follow the same storages."""
    results = []
    for backend in ("meta", "fake"):
        with Simulator(fresh(name), mode, "adam", None, backend) as simulator:
            step = simulator.step(shape)
        results.append((step.peak_bytes, step.peak_phase, step.peak_node, step.saved_bytes, step.breakdown,
                        [(n.name, n.saved_bytes, n.out_bytes) for n in step.nodes]))
    assert results[0] == results[1]
