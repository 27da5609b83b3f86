"""Speed of ``convcalc solve`` over the default bounds (kernel <= 7, stride <= 4, dilation <= 4).

Target: a whole 2-d solve in under 50 ms of compute (process time, median), including building the
best 10 as torch code; the whole command's wall time beside ``python -c "import typer, rich.console"``.

    python benchmarks/solve.py [--runs 5]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

from _timing import convcalc_command, interleaved_medians

from convcalc.solve import solve

TARGET_SECONDS = 0.05
CASES = {
    "224x224 -> 112x112, every op": ((224, 224), (112, 112), None),
    "7x7 -> 14x14, every op": ((7, 7), (14, 14), None),
    "224x320 -> 112x160, every op": ((224, 320), (112, 160), None),
    "513x513 -> 129x129, every op": ((513, 513), (129, 129), None),
    "28x28x28 -> 14x14x14, every op": ((28, 28, 28), (14, 14, 14), None),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    runs = parser.parse_args().runs
    worst = 0.0
    for name, (size_in, size_out, op) in CASES.items():
        times = []
        for _ in range(runs):
            start = time.process_time()
            result = solve(size_in, size_out, op)
            [s.torch for s in result.solutions[:10]]
            times.append(time.process_time() - start)
        median = statistics.median(times)
        worst = max(worst, median)
        print(f"{name:>32}: {median * 1000:7.1f} ms (median of {runs}), {result.count:,} solutions")
    print(f"{'worst':>32}: {worst * 1000:7.1f} ms (target < {TARGET_SECONDS * 1000:.0f} ms)")
    medians = interleaved_medians({
        "convcalc solve": convcalc_command() + ["solve", "--in", "224", "--out", "112"],
        "import typer, rich": [sys.executable, "-c", "import typer, rich.console"],
    }, runs * 2)
    print(f"{'whole command / import typer':>32}: {medians['convcalc solve'] / medians['import typer, rich']:7.2f}")


if __name__ == "__main__":
    main()
