"""Shared helpers for the benchmarks: interleaved wall-clock medians of whole commands."""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import time


def convcalc_command() -> list[str]:
    """The installed ``convcalc`` script, as a user runs it: the one beside this Python, else on PATH."""
    beside = os.path.join(os.path.dirname(sys.executable), "convcalc")
    path = beside if os.path.exists(beside) else shutil.which("convcalc")
    if path is None:
        sys.exit("convcalc is not installed: pip install . first")
    return [path]


def wall(command: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def interleaved_medians(commands: dict[str, list[str]], runs: int) -> dict[str, float]:
    """Run the commands in turn ``runs`` times (one warm-up each) and return each one's median."""
    times: dict[str, list[float]] = {name: [] for name in commands}
    for command in commands.values():
        wall(command)
    for _ in range(runs):
        for name, command in commands.items():
            times[name].append(wall(command))
    return {name: statistics.median(values) for name, values in times.items()}
