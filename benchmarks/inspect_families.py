"""``convcalc inspect`` against ``torchinfo.summary`` on one torchvision model of each family (classic CNN,
SE gates, depthwise, ConvNeXt, Swin, ViT, MaxViT), whole processes that each import torch, build the
model and summarise it at 1x3x224x224. Prints each model's ratio and their median.

Target: the median ratio at or under 1.0 (the zoo issue's budget: "inspect stays at or under torchinfo's
time on the same model"). Needs torchvision and torchinfo: run it in the zoo venv (benchmarks/zoo.py).

    python benchmarks/inspect_families.py [--runs 3]
"""

from __future__ import annotations

import argparse
import statistics
import sys

from _timing import convcalc_command, interleaved_medians

MODELS = ["resnet50", "efficientnet_b0", "mobilenet_v3_large", "regnet_y_400mf", "convnext_tiny", "swin_t",
          "vit_b_16", "maxvit_t"]
TARGET = 1.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--models", nargs="*", default=MODELS)
    args = parser.parse_args()
    ratios = []
    for model in args.models:
        commands = {
            "convcalc inspect": convcalc_command() + ["inspect", f"torchvision.models:{model}", "--input",
                                                      "1x3x224x224", "--json"],
            "torchinfo.summary": [sys.executable, "-c", (
                f"import torch, torchinfo; from torchvision.models import {model}; "
                f"torchinfo.summary({model}(), input_size=(1, 3, 224, 224), verbose=0)")],
        }
        medians = interleaved_medians(commands, args.runs)
        ratio = medians["convcalc inspect"] / medians["torchinfo.summary"]
        ratios.append(ratio)
        print(f"{model:>20}: inspect {medians['convcalc inspect']:6.2f} s, torchinfo "
              f"{medians['torchinfo.summary']:6.2f} s, ratio {ratio:5.2f}", flush=True)
    print(f"{'median ratio':>20}: {statistics.median(ratios):5.2f} (target <= {TARGET})")


if __name__ == "__main__":
    main()
