"""Views in a real terminal (a pty at 60, 80 and 120 columns, render/common.py's print_view): each fits
the width, text wrapping at word boundaries and numbers never broken; only where the unbreakable parts
alone are too wide is the view printed at its natural width, exactly as piped."""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import pytest

from terminal import run_in_terminal

ROOT = Path(__file__).parent.parent
BOX = re.compile(r"[\s\u2500-\u257f]+")  # whitespace and box-drawing characters separate the words

VIEWS = [
    ["inspect", "tests/models.py:LeNet", "--input", "1x1x32x32", "--sizes", "1..512"],
    ["inspect", "tests/models.py:TinyUNet", "--input", "1x1x32x32"],
    ["sizes", "--layers", "3x3p1,max2,3x3p1,max2,tconv2s2,3x3p1,tconv2s2", "--range", "1..256", "--same-size"],
    ["check", "examples/shapes.convcalc.toml"],
    ["solve", "--in", "7", "--out", "14", "--op", "tconv", "-k", "4"],
    ["solve", "--in", "224", "--out", "112", "-k", "3", "-s", "2", "--convention", "tf"],
    ["out", "--shape", "1x3x256x256", "-k", "3", "-p", "2", "-d", "2", "--out-channels", "64"],
    ["rf", "--layers", "7x7s2p3,max3s2p1,3x3d2p2*3", "--in", "224", "--unit", "10,10"],
    ["design", "--rf", "100", "--top", "5"],
    ["gridding", "1,2,5"],
    ["aspp", "--in", "65", "6,12,18,24,65"],
]


def words(lines: list[str]) -> list[str]:
    return sorted(word for line in lines for word in BOX.split(line) if word)


@pytest.mark.parametrize("columns", [60, 80, 120])
@pytest.mark.parametrize("args", VIEWS, ids=lambda a: " ".join(a[:3]))
def test_views_fit_the_terminal(args, columns):
    if args[0] == "inspect" and importlib.util.find_spec("torch") is None:
        pytest.skip("needs torch")
    piped = subprocess.run([sys.executable, "-m", "convcalc", *args], cwd=ROOT, capture_output=True, text=True)
    assert piped.returncode == 0, piped.stderr
    natural = piped.stdout.rstrip("\n").split("\n")
    code, shown = run_in_terminal(args, columns, cwd=str(ROOT))
    assert code == 0
    if max(map(len, shown)) > columns:  # the numbers alone do not fit: the natural width, as piped
        assert [line.rstrip() for line in shown] == [line.rstrip() for line in natural]
        assert max(len(line.rstrip()) for line in natural) > columns
        return
    assert words(shown) == words(natural)  # every word, number and size whole: wrapped only between words


def test_a_narrow_terminal_still_fits_most_views():
    """The fallback is rare: at 80 columns every view above fits."""
    for args in VIEWS:
        if args[0] == "inspect" and importlib.util.find_spec("torch") is None:
            continue
        _, shown = run_in_terminal(args, 80, cwd=str(ROOT))
        assert max(map(len, shown)) <= 80, (args, [line for line in shown if len(line) > 80])
