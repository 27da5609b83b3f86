"""Every JSON document stays byte-identical across refactors: README's examples and one of each kind.

The files under tests/golden/ were written by the commands below; regenerate them on purpose only
(``CONVCALC_UPDATE_GOLDEN=1 python -m pytest tests/test_golden_json.py``) and review the diff.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent
GOLDEN = Path(__file__).parent / "golden"

COMMANDS = [
    "out --in 256 -k 3 -d 2 -p 2",
    "out --in 224x320 -k 1x7 -p 0x3",
    "out --in 5 -k 2 -s 2 -p 1 --op max --ceil --dims 1",
    "out --in 64 -k 4 -s 2 -p 1 --op tconv --verify",
    "out --in 256 -k 3 -s 2 -p 1 --expect 128x128",
    "out --in 256 -k 3 -s 2 -p 1 --expect 127",
    "out --in 2 -k 5",
    'out --shape "torch.Size([1, 3, 256, 256])" -k 3 -p 2 -d 2 --out-channels 64',
    "out --shape 8x32x56x56 -k 3 -p 1 --groups 32 --out-channels 64 --dtype float16",
    "rf --layers 3x3d1,3x3d2,3x3d5",
    "rf --layers 3x3p1*2,max2,3x3p1*2,max2,3x3p1*3,max2,3x3p1*3,max2,3x3p1*3,max2 --in 224",
    "rf --layers 7x7s2p3,max3s2p1 --in 224 --unit 0,0",
    "rf --layers 3x3d2*3 --verify",
    "rf --layers tconv4s2p1,3x3p1,tconv4s2p1 --in 16",
    "rf --layers 3x3p1*2,max2,3x3p1*2,max2 --shape 1x3x224x224 --channels 64,64,128,128",
    "rf --layers 3x3,3x3s2 --in 4",
    "rf --layers 3x3d1,3x3d2 --expect-rf 9",
    "gridding 2,2,2",
    "gridding 1,2,5",
    "gridding 1,2,9",
    "gridding 1,2,4,8,16,32,64,128,256,512 -k 2",
    "gridding 2,2,2 --exit-zero --verify",
    "aspp --in 65 --rates 6,12,18,24,65",
    "aspp --in 33 --rates 6,12,18,36 --verify",
    "solve --in 224 --out 112 -k 3 -s 2 --op conv",
    "solve --in 7 --out 14 --op tconv -k 4",
    "solve --in 224 --out 112 -k 3 -s 2 -d 1 --convention tf",
    "design --rf 100 --top 5",
    "design --depth 8 --map 65 --hdc",
    "design --rf 100 --depth 2",
    "sizes --layers 3x3p1,max2,3x3p1,max2,tconv2s2,3x3p1,tconv2s2 --range 1..40 --same-size",
    "sizes --layers 5x5,max2,5x5,max2 --range 1..40",
    "check examples/shapes.convcalc.toml",
    "check examples/shapes.convcalc.toml --verify",
    "inspect tests/models.py:TinyUNet --input 1x1x32x32 --verify",
    "inspect tests/models.py:TinyResNet --input 1x3x64x64 --all",
    "inspect tests/models.py:deeplab_like --input 1x3x65x65",
    "inspect tests/models.py:CostZoo --input 2x3x8x8",
    "inspect tests/models.py:TinyUNet --input 1x1x32x32 --sizes 1..48",
    "inspect tests/models.py:LeNet --input 1x1x32x32 --sizes 28..40 --vary-dim 3",
    "memory tests/models.py:TinyUNet --input 4x1x32x32 --budget 16MiB",
    "memory tests/models.py:DictHeads --input 2x3x32x32 --infer",
    "memory tests/models.py:TinyResNet --input 2x3x32x32 --amp bf16 --optimizer sgd",
    "erf --layers 3x3*4",
    "erf --layers 3x3d1,3x3d2,3x3d5 --dims 1",
    "erf --layers tconv4s2p1,3x3 --dims 1",
    "out --in 3 -k 3 -p x",
    "rf --layers 3x3q",
]

TORCH_VERSION = re.compile(r'"torch": "[^"]*"')


def _slug(command: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", command).strip("-")[:120]


@pytest.mark.parametrize("command", COMMANDS)
def test_json_document_is_unchanged(command):
    if "--verify" in command or command.startswith(("inspect", "memory")):
        pytest.importorskip("torch")
    result = subprocess.run([sys.executable, "-m", "convcalc", *shlex.split(command), "--json"], cwd=ROOT,
                            capture_output=True, text=True, timeout=120)
    document = TORCH_VERSION.sub('"torch": "X"', result.stdout)
    path = GOLDEN / f"{_slug(command)}.json"
    if os.environ.get("CONVCALC_UPDATE_GOLDEN"):
        path.write_text(document)
    assert result.returncode in (0, 1, 2, 3), result.stderr
    assert document == path.read_text()
