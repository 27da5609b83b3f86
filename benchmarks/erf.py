"""``convcalc erf`` speed: a model's effective field measured by gradient, and stacks' exact profiles.

- ResNet-50 (``benchmarks/resnet50.py``, the torchvision architecture) at 1x3x224x224 with 16 noise
  samples, the whole command, against the target of 30 s of CPU;
- the exact profiles of long stacks, compute time only (target: well under a second for the stacks
  people build; 1,000 dilated layers carry 480-digit integers and take longer).

    python benchmarks/erf.py [--runs 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

from _timing import convcalc_command, interleaved_medians

HERE = os.path.dirname(os.path.abspath(__file__))
TARGET_SECONDS = 30.0
STACKS = ["3x3*16", "7x7s2p3,max3s2p1,3x3p1*16,3x3s2p1,3x3p1*12", "3x3d1,3x3d2,3x3d5*20", "3x3d2*1000",
          "tconv4s2p1,3x3*8,tconv4s2p1"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    from convcalc.erf import stack_erf

    for spec in STACKS:
        times = []
        for _ in range(5):
            start = time.perf_counter()
            erf = stack_erf(spec)
            times.append(time.perf_counter() - start)
        print(f"{spec[:48]:>48}: {1000 * statistics.median(times):8.1f} ms, field {erf.receptive_field[0]:,}, "
              f"std {erf.profiles[0].std:.2f}")
    command = [*convcalc_command(), "erf", os.path.join(HERE, "resnet50.py") + ":resnet50", "--input",
               "1x3x224x224", "--samples", "16", "--json"]
    median = interleaved_medians({"erf": command}, args.runs)["erf"]
    print(f"ResNet-50, 16 samples at 224: {median:.1f} s (median of {args.runs}); target {TARGET_SECONDS:.0f} s: "
          f"ratio {median / TARGET_SECONDS:.2f}")


if __name__ == "__main__":
    main()
