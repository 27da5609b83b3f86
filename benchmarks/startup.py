"""Start-up cost of the calculator path.

Median wall time of ``convcalc out --in 256 -k 3 -d 2 -p 2`` divided by the median of
``python -c "import typer, rich.console, rich.table"``, interleaved. Target: <= 1.25.

    python benchmarks/startup.py [--runs 40]
"""

from __future__ import annotations

import argparse
import sys

from _timing import convcalc_command, interleaved_medians

TARGET = 1.25


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=40)
    runs = parser.parse_args().runs
    medians = interleaved_medians({
        "convcalc out": convcalc_command() + ["out", "--in", "256", "-k", "3", "-d", "2", "-p", "2"],
        "import typer, rich": [sys.executable, "-c", "import typer, rich.console, rich.table"],
    }, runs)
    ratio = medians["convcalc out"] / medians["import typer, rich"]
    for name, seconds in medians.items():
        print(f"{name:>20}: {seconds * 1000:7.1f} ms (median of {runs})")
    print(f"{'ratio':>20}: {ratio:7.2f} (target <= {TARGET})")


if __name__ == "__main__":
    main()
