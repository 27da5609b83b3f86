"""Run a command and read its peak resident memory from the kernel.

A child's ``ru_maxrss`` keeps the high-water mark its process had before ``exec``: forked from a large
test process, it would report the parent's size. So the command runs under a small Python launcher, and
the launcher reports ``RUSAGE_CHILDREN`` once its own child has ended: the command's peak alone.
"""

from __future__ import annotations

import json
import subprocess
import sys

LAUNCHER = ("import json, resource, subprocess, sys\n"
            "args = json.loads(sys.argv[1])\n"
            "done = subprocess.run(args, capture_output=True, text=True, timeout=float(sys.argv[2]))\n"
            "peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss\n"
            "print(json.dumps([done.returncode, done.stdout, done.stderr, peak]))\n")


def run_measured(args: list[str], cwd: str | None = None, timeout: float = 120,
                 env: dict[str, str] | None = None) -> tuple[int, str, str, int]:
    """Exit code, stdout, stderr and peak resident memory (KiB) of ``args``."""
    result = subprocess.run([sys.executable, "-c", LAUNCHER, json.dumps(args), str(timeout)], cwd=cwd, env=env,
                            capture_output=True, text=True, timeout=timeout + 30)
    if result.returncode != 0:
        raise RuntimeError(f"the launcher failed: {result.stderr[-2000:]}")
    code, out, err, peak = json.loads(result.stdout)
    return code, out, err, peak
