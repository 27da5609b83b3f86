"""Hostile input, as a new user or an attacker would type it: every command answers with exit code 0-3,
one 'error:' line on stderr, and with --json exactly one JSON document, never a traceback; each run is
guarded (a timeout, and its peak memory read back from the kernel). Times against the 5 s goal are
measured by benchmarks/worst_inputs.py, not here."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent
MODELS = str(ROOT / "tests" / "models.py")
PEAK_LIMIT_KIB = 1024 * 1024  # 1 GiB
RATES = ",".join(str(random.Random(0).randint(1, 10**6)) for _ in range(85))


def files(tmp: Path) -> dict[str, str]:
    odd = tmp / "[" / "]"  # a path under [/]
    odd.mkdir(parents=True, exist_ok=True)
    (odd / "c.toml").write_text('[[check]]\nname = "a [/] b [bold]x"\nlayers = "3x3"\nrf = 4\n')
    (tmp / "bom.toml").write_bytes(b'\xef\xbb\xbf[[check]]\nlayers = "3"\nrf = 3\n')
    (tmp / "deep.toml").write_text("a = " + "[" * 600 + "]" * 600 + "\n")
    (tmp / "wide.toml").write_text('[[check]]\nname = "too large"\nlayers = "tconv3s7*12"\nrf = 3\n'
                                   '[[check]]\nname = "fine"\nlayers = "3"\nrf = 3\n')
    (tmp / "model.py").write_text("from torch import nn\n\ndef odd():\n"
                                  "    return nn.Sequential(nn.ModuleDict({'[/]x': nn.Conv2d(3, 4, 3)})['[/]x'])\n"
                                  "\nclass Keyed(nn.Module):\n    def __init__(self):\n        super().__init__()\n"
                                  "        self.blocks = nn.ModuleDict({'[/]x': nn.Conv2d(3, 4, 3)})\n"
                                  "    def forward(self, x):\n        return self.blocks['[/]x'](x)\n")
    return {"odd": str(odd / "c.toml"), "bom": str(tmp / "bom.toml"), "deep": str(tmp / "deep.toml"),
            "wide": str(tmp / "wide.toml"), "model": str(tmp / "model.py"), "dir": str(tmp)}


CASES = [
    ["check", "{odd}"], ["check", "{odd}", "--junit-xml", "{dir}/j.xml"], ["check", "/dev/zero"], ["check", "{dir}"],
    ["check", "{bom}"], ["check", "{deep}"], ["check", "{wide}"], ["check", "{dir}/missing.toml"],
    ["rf", "--layers", "3x3\x1b[31m"], ["rf", "--layers", "[/]"], ["rf", "--layers", "backbone [layer4] stride"],
    ["rf", "--layers", "200002", "--dims", "1"], ["rf", "--layers", "3x3*300", "--verify"],
    ["rf", "--layers", "2s3p1,avg2s3p1,2s2d3p1", "--in", "25", "--unit", "0", "--dims", "1"],
    ["rf", "--layers", "7x7s2psame", "--convention", "tf"], ["rf", "--layers", "tconv3s7*12"],
    ["out", "--in", "10**30", "-k", "3", "--verify"], ["out", "--in", "9000", "-k", "9000", "--verify"],
    ["out", "--in", "2**99999", "-k", "3"], ["out", "--in", "8", "-k", "3", "--verify", "--device", "cuda:7"],
    ["out", "--in", "8", "-k", "3", "--verify", "--device", "toaster"], ["out", "--shape", "0x3x8x8", "-k", "3"],
    ["out", "--in", "3", "-k", "3", "-p", "3", "--padding-mode", "reflect", "--verify"],
    ["aspp", "--in", "256", "-k", "101", "--rates", "1", "--verify"], ["aspp", "--in", "65x65x65", "--rates", "6"],
    ["gridding", RATES, "-k", "2"], ["gridding", "0"], ["gridding", "1," * 20000 + "1"],
    ["solve", "--in", "500x400", "--out", "250x200", "--max-kernel", "16", "-k", "16"],
    ["solve", "--in", "10**30", "--out", "4"], ["design", "--rf", "10**9", "--max-rate", "1"],
    ["design", "--layers", "256", "-k", "101"],
    ["inspect", MODELS + ":TinyResNet", "--input", "1x3x100000x100000"],
    ["inspect", MODELS + ":TinyResNet", "--input", "1x3x10**30x10**30"],
    ["inspect", MODELS + ":TinyResNet", "--input", "0x5x33x3"],
    ["inspect", MODELS + ":TinyResNet", "--input", "1x3x32x32", "--kwargs", "{\"a\": " + "[" * 3000 + "]" * 3000 + "}"],
    ["inspect", "{dir}:Net", "--input", "1x3x8x8"], ["inspect", "{model}:Keyed", "--input", "1x3x16x16"],
    ["inspect", "{model}:Keyed", "--input", "1x3x16x16", "--node", "[/]x"],
]


def run(args: list[str]) -> tuple[int, str, str, int]:
    """The exit code, stdout, stderr and peak resident memory (KiB, read from the kernel as the command
    ends: tests/measured.py) of one guarded run."""
    from measured import run_measured

    try:
        return run_measured([sys.executable, "-m", "convcalc", *args], cwd=str(ROOT), timeout=120,
                            env={**os.environ, "COLUMNS": "80"})
    except subprocess.TimeoutExpired:
        pytest.fail(f"{args[:3]} ran past 120 s")


@pytest.fixture(scope="module")
def paths(tmp_path_factory):
    return files(tmp_path_factory.mktemp("hostile"))


@pytest.mark.parametrize("case", CASES, ids=[" ".join(c)[:60] for c in CASES])
def test_hostile_input_is_answered(case, paths):
    if case[0] == "inspect" or "--verify" in case:
        pytest.importorskip("torch")
    args = [a.format(**paths) if "{" in a and "}" in a and not a.startswith("{\"") else a for a in case]
    code, out, err, peak = run(args)
    assert code in (0, 1, 2, 3), (code, err[-2000:])
    assert 0 < peak < PEAK_LIMIT_KIB, (args[:3], peak)
    assert "Traceback" not in err and "internal error" not in err, err[-2000:]
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    if code == 2:
        assert len(errors) == 1 and err.startswith("error: "), err
    assert "\x1b" not in err.replace("\x1b[", "")  # no raw escape from user text (rich colours aside)
    code_json, out_json, _, _ = run(args + ["--json"])
    assert code_json == code
    json.loads(out_json)  # exactly one document: anything else fails to parse


def test_user_text_is_verbatim(paths):
    code, out, err, _ = run(["check", paths["odd"]])
    assert code == 1 and "a [/] b [bold]x" in out and f"convcalc check {paths['odd']}" in out
    code, _, err, _ = run(["rf", "--layers", "3x3\x1b[31m"])
    assert code == 2 and "\\x1b" in err and "\x1b[31m" not in err


def test_peak_memory_stays_under_a_gibibyte():
    """The heaviest cases that run (rather than refuse): their peak resident memory, read back from the
    kernel for each command (its launcher reports its child's peak, not a forked test process's)."""
    pytest.importorskip("torch")
    for args in (["rf", "--layers", "3x3*300", "--verify"], ["gridding", RATES, "-k", "2"],
                 ["aspp", "--in", "256", "-k", "101", "--rates", "1", "--verify"],
                 ["inspect", MODELS + ":TinyResNet", "--input", "1x3x20000x20000"]):
        code, _, err, peak = run(args)
        assert code in (0, 1), (args, err[-1000:])
        assert 0 < peak < PEAK_LIMIT_KIB, (args, peak)


@pytest.mark.parametrize("case", CASES[:6], ids=[" ".join(c)[:60] for c in CASES[:6]])
def test_hostile_input_stays_under_a_gibibyte(case, paths):
    """The peak is read while it is real: a command that allocated 2 GiB would fail here."""
    args = [a.format(**paths) if "{" in a and "}" in a and not a.startswith("{\"") else a for a in case]
    _, _, _, peak = run(args)
    assert 0 < peak < PEAK_LIMIT_KIB, (case, peak)


def test_the_peak_is_real():
    """The measurement itself: a command that holds 300 MiB reports at least that, one that holds little
    reports little (a peak read after the child was reaped, or inherited from this process, could not)."""
    from measured import run_measured

    _, _, _, big = run_measured([sys.executable, "-c", "b = bytearray(300 * 2**20); b[::4096] = b'x' * len(b[::4096])"])
    _, _, _, small = run_measured([sys.executable, "-c", "pass"])
    assert big > 300 * 1024 and small < 100 * 1024, (big, small)
