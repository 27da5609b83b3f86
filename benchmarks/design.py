"""Speed of the exact dilation-schedule search (``convcalc design``).

Target: ``design --rf 1000 -k 3`` and ``design --depth 8 --map 65`` each under 0.5 s of compute
(process time of the search, median), plus harder cases (HDC, caps, long stacks) beside them, and the
whole command's wall time against ``python -c "import typer, rich.console"`` as a ratio.

    python benchmarks/design.py [--runs 5]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

from _timing import convcalc_command, interleaved_medians

from convcalc.design import design

TARGET_SECONDS = 0.5
CASES = {
    "--rf 1000 -k 3": dict(kernel_size=3, target_rf=1000),
    "--depth 8 --map 65": dict(kernel_size=3, depth=8, map_size=65),
    "--rf 1000 -k 3 --hdc": dict(kernel_size=3, target_rf=1000, hdc_rule=True),
    "--rf 10000 -k 2 --max-rate 64": dict(kernel_size=2, target_rf=10_000, max_rate=64),
    "--depth 16 -k 5 --hdc": dict(kernel_size=5, depth=16, hdc_rule=True),
    "--rf 10**8 -k 3 --top 1000": dict(kernel_size=3, target_rf=10**8, top=1000),
    "--depth 24 -k 3 --hdc --max-rate 500": dict(kernel_size=3, depth=24, hdc_rule=True, max_rate=500),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    runs = parser.parse_args().runs
    worst = 0.0
    for name, kwargs in CASES.items():
        times = []
        for _ in range(runs):
            start = time.process_time()
            result = design(**kwargs)
            times.append(time.process_time() - start)
        median = statistics.median(times)
        worst = max(worst, median) if name in list(CASES)[:2] else worst
        best = ",".join(map(str, result.schedules[0].rates[:8])) if result.schedules else "none"
        print(f"{name:>32}: {median * 1000:8.1f} ms (median of {runs}), {result.layers} layers, best {best}..., "
              f"optimal {result.optimal}")
    print(f"{'the two issue cases, worst':>32}: {worst * 1000:8.1f} ms (target < {TARGET_SECONDS * 1000:.0f} ms)")
    medians = interleaved_medians({
        "convcalc design --rf 1000": convcalc_command() + ["design", "--rf", "1000", "--json"],
        "import typer, rich": [sys.executable, "-c", "import typer, rich.console"],
    }, runs * 2)
    ratio = medians["convcalc design --rf 1000"] / medians["import typer, rich"]
    print(f"{'whole command / import typer':>32}: {ratio:8.2f}")


if __name__ == "__main__":
    main()
