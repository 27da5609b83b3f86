"""``convcalc inspect`` of ResNet-50 at 1x3x224x224 (totals included), against ``torchinfo.summary`` of the
same model and against the time its imports take.

Targets: convcalc/torchinfo <= 1.0, both whole processes (import torch, build the model, summarise);
and within 1.5x of ``python -c "import torch, torchvision"`` (tracing and shape propagation must be
cheap next to the imports). Uses ``torchvision.models:resnet50`` when torchvision is installed; else
the same architecture from ``benchmarks/resnet50.py``, against ``python -c "import torch"``.

    python benchmarks/inspect_resnet50.py [--runs 9]
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys

from _timing import convcalc_command, interleaved_medians

TARGET_IMPORTS = 1.5
TARGET_TORCHINFO = 1.0
HERE = os.path.dirname(os.path.abspath(__file__))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=9)
    runs = parser.parse_args().runs
    if importlib.util.find_spec("torchvision") is not None:
        model, imports = "torchvision.models:resnet50", "import torch, torchvision"
        build = "from torchvision.models import resnet50"
    else:
        model = os.path.join(HERE, "resnet50.py") + ":resnet50"
        imports = "import torch"
        build = f"import sys; sys.path.insert(0, {HERE!r}); from resnet50 import resnet50"
        print("torchvision is not installed: using benchmarks/resnet50.py (the same architecture)")
    commands = {
        "convcalc inspect": convcalc_command() + ["inspect", model, "--input", "1x3x224x224", "--json"],
        imports: [sys.executable, "-c", imports],
    }
    if importlib.util.find_spec("torchinfo") is not None:
        commands["torchinfo.summary"] = [sys.executable, "-c", (
            f"import torch, torchinfo; {build}; "
            "torchinfo.summary(resnet50(), input_size=(1, 3, 224, 224), verbose=0)")]
    medians = interleaved_medians(commands, runs)
    for name, seconds in medians.items():
        print(f"{name:>28}: {seconds * 1000:8.1f} ms (median of {runs})")
    print(f"{'over the imports':>28}: {medians['convcalc inspect'] / medians[imports]:8.2f} "
          f"(target <= {TARGET_IMPORTS})")
    if "torchinfo.summary" in medians:
        print(f"{'over torchinfo.summary':>28}: {medians['convcalc inspect'] / medians['torchinfo.summary']:8.2f} "
              f"(target <= {TARGET_TORCHINFO})")
    else:
        print("torchinfo is not installed: pip install torchinfo for the comparison")


if __name__ == "__main__":
    main()
