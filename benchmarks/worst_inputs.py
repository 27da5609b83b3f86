"""The worst inputs known, against the goal: every command finishes in under 5 s and 1 GiB of peak
memory on any input within its documented limits, or refuses up front (exit 2) and says why.

Prints, per case, the wall time, the peak resident memory of the process (from the kernel), the exit
code and whether it met the goal.

    python benchmarks/worst_inputs.py
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
import time
from pathlib import Path

from _timing import convcalc_command

ROOT = Path(__file__).parent.parent
MODELS = str(ROOT / "tests" / "models.py")
RESNET = str(ROOT / "benchmarks" / "resnet50.py")
GOAL_SECONDS, GOAL_KIB = 5.0, 1024 * 1024
RATES = ",".join(str(random.Random(0).randint(1, 10**6)) for _ in range(85))

CASES = {
    "out --in 9000 -k 9000 --verify": ["out", "--in", "9000", "-k", "9000", "--verify"],
    "out --in 10**30 -k 3 --verify": ["out", "--in", "10**30", "-k", "3", "--verify"],
    "rf 3x3*300 --verify": ["rf", "--layers", "3x3*300", "--verify"],
    "rf 3x3*30 --verify": ["rf", "--layers", "3x3*30", "--verify"],
    "rf 3x3d2*100000 (spec limit)": ["rf", "--layers", "3x3d2*100000", "--json"],
    "gridding 85 rates <= 10^6, k 2": ["gridding", RATES, "-k", "2", "--exit-zero"],
    "gridding 10,000 rates": ["gridding", ",".join(["1000"] * 10_000), "-k", "7", "--exit-zero", "--json"],
    "aspp 256, k 101 --verify": ["aspp", "--in", "256", "-k", "101", "--rates", "1", "--verify"],
    "solve 224x320 -> 112x160 --json": ["solve", "--in", "224x320", "--out", "112x160", "--json"],
    "solve bounds 16 --json": ["solve", "--in", "500", "--out", "250", "--max-kernel", "16", "--max-stride", "16",
                               "--max-dilation", "16", "--json"],
    "design --layers 256 -k 101": ["design", "--layers", "256", "-k", "101", "--json"],
    "design --rf 10**9 --hdc": ["design", "--rf", str(10**9), "--hdc", "--json"],
    "inspect TinyResNet 1x3x20000x20000": ["inspect", MODELS + ":TinyResNet", "--input", "1x3x20000x20000"],
    "inspect TinyResNet 1x3x100000x100000": ["inspect", MODELS + ":TinyResNet", "--input", "1x3x100000x100000"],
    "inspect ResNet-50 --verify": ["inspect", RESNET + ":resnet50", "--input", "1x3x224x224", "--verify"],
    "sizes 3x3p1*10 over 100,000 sizes": ["sizes", "--layers", "3x3p1*10", "--range", "1..100000", "--json"],
    "sizes 1x3*5 (two dims) 100,000": ["sizes", "--layers", "1x3p0x1*5", "--range", "1..100000", "--same-size"],
    "inspect ResNet-50 --sizes 1..4096": ["inspect", RESNET + ":resnet50", "--input", "1x3x224x224", "--sizes",
                                         "1..4096", "--json"],
}


def check_file(path: Path, count: int) -> None:
    lines = []
    for i in range(count):
        lines.append(f'[[check]]\nname = "c{i}"\nin = {i % 500 + 20}\nlayers = "3x3s2p1,3x3d{i % 7 + 1}"\nrf = 5\n')
    path.write_text("".join(lines))


def main() -> None:
    big = Path("/tmp/convcalc-worst-100000.toml")
    check_file(big, 100_000)
    CASES["check 100,000 checks"] = ["check", str(big), "--json"]
    met = 0
    for name, args in CASES.items():
        start = time.perf_counter()
        process = subprocess.Popen(convcalc_command() + args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _, status, usage = os.wait4(process.pid, 0)
        seconds = time.perf_counter() - start
        code = os.waitstatus_to_exitcode(status)
        ok = seconds < GOAL_SECONDS and usage.ru_maxrss < GOAL_KIB and code in (0, 1, 2, 3)
        met += ok
        print(f"{name:>40}: {seconds:6.2f} s  {usage.ru_maxrss / 1024:7.0f} MiB  exit {code}  "
              f"{'ok' if ok else 'OVER THE GOAL'}")
    print(f"{met} of {len(CASES)} within {GOAL_SECONDS:.0f} s and 1 GiB (ratio to the goal: the worst above)")
    big.unlink()


if __name__ == "__main__":
    sys.exit(main())
