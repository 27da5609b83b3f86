"""Receptive field of a 1,000-layer stack (``3x3d2*1000``): compute time, and the whole command.

Target: the computation well under a second. Prints the median compute time of
``receptive_field(parse_layers("3x3d2*1000"))`` from cold caches, with the holes counted, and the wall time of ``convcalc rf --layers
3x3d2*1000 --json``, each over the start-up cost of ``python -c "import typer, rich.console"``.

    python benchmarks/rf_stack.py [--runs 10]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

from _timing import convcalc_command, interleaved_medians

from convcalc import receptive, spec
from convcalc.receptive import receptive_field
from convcalc.spec import parse_layers

SPEC = "3x3d2*1000"


def cold() -> None:
    """Empty the caches of parsed layers and stack fields, so every run computes from scratch."""
    for cached in (receptive._stack_fields, receptive._geometry_fields, receptive._geometries, spec._quick_raw,
                   spec._cached_layer):
        cached.cache_clear()


def compute_seconds(runs: int) -> float:
    times = []
    for _ in range(runs):
        cold()
        start = time.perf_counter()
        field = receptive_field(parse_layers(SPEC))
        field.coverage  # the holes, which are counted when first asked for
        times.append(time.perf_counter() - start)
    assert field.receptive_field == (4001, 4001) and field.coverage[0].holes == 2000
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    runs = parser.parse_args().runs
    compute = compute_seconds(runs)
    medians = interleaved_medians({
        "convcalc rf --json": convcalc_command() + ["rf", "--layers", SPEC, "--json"],
        "import typer, rich": [sys.executable, "-c", "import typer, rich.console"],
    }, runs)
    print(f"{'compute ' + SPEC:>28}: {compute * 1000:8.1f} ms (median of {runs}; target well under 1000 ms)")
    for name, seconds in medians.items():
        print(f"{name:>28}: {seconds * 1000:8.1f} ms")
    print(f"{'ratio command / imports':>28}: {medians['convcalc rf --json'] / medians['import typer, rich']:8.2f}")


if __name__ == "__main__":
    main()
