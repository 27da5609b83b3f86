"""``convcalc inspect`` of ResNet-50 at 1x3x224x224, against the time its imports take.

Target: within 1.5x of ``python -c "import torch, torchvision"`` (tracing and shape propagation must be
cheap next to the imports). Uses ``torchvision.models:resnet50`` when torchvision is installed; else
the same architecture from ``benchmarks/resnet50.py``, against ``python -c "import torch"``.

    python benchmarks/inspect_resnet50.py [--runs 5]
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys

from _timing import convcalc_command, interleaved_medians

TARGET = 1.5


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    runs = parser.parse_args().runs
    if importlib.util.find_spec("torchvision") is not None:
        model, imports = "torchvision.models:resnet50", "import torch, torchvision"
    else:
        model = os.path.join(os.path.dirname(os.path.abspath(__file__)), "resnet50.py") + ":resnet50"
        imports = "import torch"
        print("torchvision is not installed: using benchmarks/resnet50.py (the same architecture)")
    medians = interleaved_medians({
        "convcalc inspect": convcalc_command() + ["inspect", model, "--input", "1x3x224x224", "--json"],
        imports: [sys.executable, "-c", imports],
    }, runs)
    for name, seconds in medians.items():
        print(f"{name:>28}: {seconds * 1000:8.1f} ms (median of {runs})")
    ratio = medians["convcalc inspect"] / medians[imports]
    print(f"{'ratio':>28}: {ratio:8.2f} (target <= {TARGET})")


if __name__ == "__main__":
    main()
