"""``convcalc inspect --sizes 1..512`` of ResNet-50 and of a 4-level U-Net, against one plain ``inspect`` of
the same model, with the brute-force time (one eager forward pass per size) beside it.

Target: the sweep within 2x one plain inspect (whole commands, torch's import included). The brute
force runs one size in ``--every`` (default 8; a fixed random sample, so that every residue is seen)
in eager torch and scales the sum up; ``--every 1`` runs them all (minutes for ResNet-50).

    python benchmarks/sizes.py [--runs 5] [--every 8]
"""

from __future__ import annotations

import argparse
import os
import sys
import time

from _timing import convcalc_command, interleaved_medians

HERE = os.path.dirname(os.path.abspath(__file__))
TARGET = 2.0
MODELS = {"ResNet-50": ("resnet50.py:resnet50", "1x3x224x224"), "4-level U-Net": ("unet.py:unet", "1x3x256x256")}


def brute_force(target: str, shape: str, low: int, high: int, every: int) -> tuple[float, int]:
    """Seconds for eager forward passes on sizes low..high (one in ``every``, scaled up), and how many of
    those the model accepted."""
    import random

    import torch

    sys.path.insert(0, HERE)
    module, _, name = target.partition(":")
    model = getattr(__import__(module.removesuffix(".py")), name)().eval()
    base = [int(n) for n in shape.split("x")]
    spent, accepted = 0.0, 0
    with torch.no_grad():
        sizes = range(low, high + 1)
        for n in random.Random(0).sample(sizes, len(sizes) // every):
            start = time.perf_counter()
            try:
                model(torch.zeros(*base[:2], n, n))
                accepted += 1
            except RuntimeError:
                pass
            spent += time.perf_counter() - start
    return spent * every, accepted


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--every", type=int, default=8)
    args = parser.parse_args()
    for label, (target, shape) in MODELS.items():
        path = os.path.join(HERE, target)
        command = convcalc_command() + ["inspect", path, "--input", shape, "--json"]
        medians = interleaved_medians({"inspect": command, "sweep": command + ["--sizes", "1..512"]}, args.runs)
        brute, accepted = brute_force(target, shape, 1, 512, args.every)
        sampled = "all sizes" if args.every == 1 else f"one size in {args.every}, scaled up"
        print(f"{label}: inspect {medians['inspect'] * 1000:.0f} ms, --sizes 1..512 {medians['sweep'] * 1000:.0f} ms "
              f"-> ratio {medians['sweep'] / medians['inspect']:.2f} (target <= {TARGET}); brute force in eager "
              f"torch {brute:.1f} s ({sampled}; {accepted} sampled sizes accepted)")


if __name__ == "__main__":
    main()
