"""Exact tap coverage of 1,000 layers with rates up to 1,000 and kernels up to 7 taps.

Target: under 0.2 s of compute per stack (process time). Prints the median and worst over random and
adversarial rate lists (rates that never make the middle of the set solid are the slow kind), and
the whole ``convcalc gridding ... --json`` command beside ``python -c "import typer, rich.console"``.

    python benchmarks/gridding.py [--runs 5]
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time

from _timing import convcalc_command, interleaved_medians

from convcalc.gridding import gridding, tap_coverage

TARGET_SECONDS = 0.2


def stacks() -> dict[str, list[tuple[int, int]]]:
    rng = random.Random(0)
    return {
        "random rates 1..1000, k 2..7": [(rng.randint(1, 1000), rng.randint(2, 7)) for _ in range(1000)],
        "random rates 900..1000, k 7": [(rng.randint(900, 1000), 7) for _ in range(1000)],
        "999 x 1000 and one 999, k 7": [(1000, 7)] * 999 + [(999, 7)],
        "half 999, half 1000, k 7": [(999, 7)] * 500 + [(1000, 7)] * 500,
        "primes near 1000, k 7": [(rng.choice([997, 991, 983, 977]), 7) for _ in range(1000)],
        "even rates and one 999, k 7": [(rng.randrange(2, 1001, 2), 7) for _ in range(999)] + [(999, 7)],
        "all 1000, k 7": [(1000, 7)] * 1000,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    runs = parser.parse_args().runs
    worst = 0.0
    for name, terms in stacks().items():
        times = []
        for _ in range(runs):
            start = time.process_time()
            coverage = tap_coverage(terms)
            times.append(time.process_time() - start)
        worst = max(worst, max(times))
        print(f"{name:>32}: {statistics.median(times) * 1000:7.1f} ms median, {max(times) * 1000:7.1f} ms worst "
              f"(field {coverage.receptive_field:,}, holes {coverage.holes:,})")
    print(f"{'worst / target':>32}: {worst / TARGET_SECONDS:7.3f} (target 0.2 s of compute)")
    rates = [r for r, _ in stacks()["random rates 900..1000, k 7"]]
    start = time.process_time()
    gridding(rates, 7)
    print(f"{'whole analysis, 1,000 rates':>32}: {(time.process_time() - start) * 1000:7.1f} ms (with repairs)")
    medians = interleaved_medians({
        "convcalc gridding --json": convcalc_command() + ["gridding", ",".join(map(str, rates)), "-k", "7",
                                                          "--json", "--exit-zero"],
        "import typer, rich": [sys.executable, "-c", "import typer, rich.console"],
    }, runs)
    for name, seconds in medians.items():
        print(f"{name:>32}: {seconds * 1000:7.1f} ms")
    print(f"{'ratio command / imports':>32}: {medians['convcalc gridding --json'] / medians['import typer, rich']:7.2f}")


if __name__ == "__main__":
    main()
