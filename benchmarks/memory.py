"""``convcalc memory``: speed and host memory, the batch search's cost, and the prediction beside PyTorch's
profiler and torchinfo's estimate.

1. ResNet-50 (``benchmarks/resnet50.py``) at 64x3x224x224, a training step with Adam: the whole command's
   wall time and peak resident memory (targets: under 5 s and under 1 GiB), then with ``--budget 24GiB``
   (target: at most 4 simulated steps);
2. for the test models, one real CPU step under the profiler: the predicted peak over the profiler's peak
   of the tensors the ops exchange, the kernels' own scratch on top of it, and torchinfo's "Estimated
   Total Size" (input, parameters and its forward/backward pass size) over the measured peak.

    python benchmarks/memory.py [--skip-resnet]
"""

from __future__ import annotations

import argparse
import io
import json
import os
import subprocess
import sys
import time
from contextlib import redirect_stdout

from _timing import convcalc_command

HERE = os.path.dirname(os.path.abspath(__file__))
TESTS = os.path.join(os.path.dirname(HERE), "tests")
CASES = [("TinyResNet", (8, 3, 64, 64), "adam", None), ("TinyUNet", (4, 1, 64, 64), "momentum", None),
         ("UNet4", (2, 3, 64, 64), "adam", None), ("DepthwiseNet", (8, 3, 64, 64), "adamw", None),
         ("FrozenBackbone", (4, 3, 32, 32), "adam", None), ("SharedConv", (4, 3, 32, 32), "sgd", None),
         ("DictHeads", (4, 3, 32, 32), "adam", None), ("TinyResNet", (8, 3, 64, 64), "adamw", "bf16"),
         ("TinyUNet", (4, 1, 64, 64), "adam", "bf16"), ("CostZoo", (2, 3, 8, 8), "sgd", None)]


def timed(args: list[str]) -> tuple[float, int, dict]:
    """Wall seconds, peak resident KiB and the JSON document of one whole command."""
    start = time.perf_counter()
    process = subprocess.Popen([*convcalc_command(), *args, "--json"], stdout=subprocess.PIPE,
                               stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - start
    out = process.stdout.read()
    if os.waitstatus_to_exitcode(status) not in (0, 1):
        sys.exit(f"convcalc {' '.join(args)} failed")
    return seconds, usage.ru_maxrss, json.loads(out)


def torchinfo_total(model, shape) -> int | None:
    """torchinfo's Estimated Total Size in bytes (its own MB are 10^6 bytes), or None without torchinfo."""
    try:
        import torchinfo
    except ImportError:
        return None
    with redirect_stdout(io.StringIO()):
        stats = torchinfo.summary(model, input_size=shape, verbose=0)
    return int(stats.total_input + stats.total_output_bytes + stats.total_param_bytes)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--skip-resnet", action="store_true")
    args = parser.parse_args()
    if not args.skip_resnet:
        target = os.path.join(HERE, "resnet50.py") + ":resnet50"
        seconds, rss, doc = timed(["memory", target, "--input", "64x3x224x224"])
        print(f"ResNet-50, 64x3x224x224, Adam: peak {doc['peak_bytes'] / 2**30:.2f} GiB predicted in {seconds:.1f} s "
              f"(target 5 s: ratio {seconds / 5:.2f}), host memory {rss / 2**20:.2f} GiB (target 1 GiB)")
        seconds, rss, doc = timed(["memory", target, "--input", "64x3x224x224", "--budget", "24GiB"])
        print(f"  --budget 24GiB: largest batch {doc['largest_batch']}, {doc['per_sample_bytes'] / 2**20:.1f} MiB a "
              f"sample, {doc['simulations']} steps simulated (target <= 4), {seconds:.1f} s")
    import torch

    sys.path.insert(0, TESTS)
    import models

    from convcalc.graph.memory import simulate
    from convcalc.graph.memory_profile import measure_step

    print(f"{'model':>16} {'optimizer':>9} {'amp':>4} {'predicted':>11} {'profiler':>11} {'exchanged':>11} "
          f"{'ratio':>6} {'scratch':>8} {'torchinfo':>10}")
    for name, shape, optimizer, amp in CASES:
        torch.manual_seed(0)
        predicted = simulate(getattr(models, name)(), shape, "train", optimizer, amp).peak_bytes
        torch.manual_seed(0)
        measured = measure_step(getattr(models, name)(), shape, "train", optimizer, amp)
        info = torchinfo_total(getattr(models, name)(), shape) if amp is None else None
        print(f"{name:>16} {optimizer:>9} {amp or '-':>4} {predicted:>11,} {measured.peak_bytes:>11,} "
              f"{measured.exchanged_peak_bytes:>11,} {predicted / measured.exchanged_peak_bytes:>6.3f} "
              f"{measured.scratch_bytes / measured.peak_bytes:>7.1%} "
              f"{'-' if info is None else f'{info / measured.peak_bytes:.2f}x':>10}")
    print("ratio: predicted / profiler's peak of the tensors the ops exchange; scratch: the share of the profiler's "
          "peak that kernels create and free inside themselves; torchinfo: its Estimated Total Size over the "
          "measured peak")


if __name__ == "__main__":
    main()
