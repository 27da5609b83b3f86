"""A check file of 10,000 entries, without --verify: the whole ``convcalc check`` command.

Target: under 1.5 s wall on the project's machines. Generates two files, every expectation true:
one where stacks repeat (a few backbones at several input sizes, as real check files do) and one
where every check has a stack of its own (no cache helps: the worst case). Prints the median wall
time of ``convcalc check FILE`` (and ``--json``), over the target and over
``python -c "import typer, rich.console"``.

    python benchmarks/check_file.py [--entries 10000] [--runs 5]
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile

from _timing import convcalc_command, interleaved_medians

from convcalc.receptive import receptive_field

TARGET_SECONDS = 1.5
STACKS = ["3x3d{d}p{d}", "7x7s2p3,max3s2p1,3x3p1*{n}", "3x3p1*{n},max2", "1x7p0x3,7x1p3x0,3x3d{d}p{d}",
          "tconv4s2p1,3x3p1*{n}", "3x3s2p1,3x3d{d}p{d}*{n}", "5x5p2,avg2,3x3p1*{n}"]


def write_file(path: str, entries: int, distinct: bool = False) -> None:
    """Checks drawn from a few stack shapes; with ``distinct`` every check's stack differs from the rest
    (no cache helps: the worst case)."""
    rng = random.Random(0)
    with open(path, "w") as handle:
        for i in range(entries):
            spec = rng.choice(STACKS).format(d=rng.randint(1, 6), n=rng.randint(1, 6))
            if distinct:
                spec += f",1x1p{i // 100}x{i % 100}"
            size = rng.choice([64, 128, 224, 256, 320])
            field = receptive_field(spec, size)
            handle.write(f'[[check]]\nname = "check {i}: {spec} on {size}"\nin = {size}\nlayers = "{spec}"\n'
                         f'out = "{field.out[0]}x{field.out[1]}"\nrf = {field.receptive_field[0]}\n\n')


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        repeated, distinct = os.path.join(tmp, "shapes.toml"), os.path.join(tmp, "distinct.toml")
        write_file(repeated, args.entries)
        write_file(distinct, args.entries, distinct=True)
        medians = interleaved_medians({
            "check (stacks repeat)": convcalc_command() + ["check", repeated],
            "check --json (repeat)": convcalc_command() + ["check", repeated, "--json"],
            "check (all distinct)": convcalc_command() + ["check", distinct],
            "import typer, rich": [sys.executable, "-c", "import typer, rich.console"],
        }, args.runs)
    for name, seconds in medians.items():
        print(f"{name:>26}: {seconds * 1000:8.1f} ms (median of {args.runs}, {args.entries:,} checks)")
    for name in list(medians)[:-1]:
        print(f"{name + ' / target':>34}: {medians[name] / TARGET_SECONDS:6.2f}   "
              f"/ imports: {medians[name] / medians['import typer, rich']:6.2f}")


if __name__ == "__main__":
    main()
