"""Check files that name a real model: shape, rf, jump, params and macs, each model traced once; a file
without model checks never imports torch; convcalc.testing.assert_model."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

MODELS = str(Path(__file__).parent / "models.py")


def write(tmp_path, text: str) -> str:
    path = tmp_path / "models.convcalc.toml"
    path.write_text(text)
    return str(path)


def test_model_checks_against_torch(tmp_path):
    torch = pytest.importorskip("torch")
    import models
    from torch.utils.flop_counter import FlopCounterMode

    from convcalc.checks import load_checks, run_checks

    model = models.TinyResNet().eval()
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        model(torch.zeros(1, 3, 64, 64))
    params, macs = sum(p.numel() for p in model.parameters()), counter.get_total_flops() // 2
    path = write(tmp_path, f'''[[check]]
name = "output"
model = "{MODELS}:TinyResNet"
input = "1x3x64x64"
shape = "1x10"
rf = "global"
params = {params}
macs = {macs}

[[check]]
name = "last block"
model = "{MODELS}:TinyResNet"
input = "1x3x64x64"
node = "add_4"
shape = [1, 16, 4, 4]
rf = 147
jump = 16

[[check]]
name = "wrong rf"
model = "{MODELS}:TinyResNet"
input = "1x3x64x64"
node = "add_4"
rf = 100
''')
    results = run_checks(load_checks(path))
    assert [r.ok for r in results] == [True, True, False]
    assert results[2].message == "rf: expected 100x100, got 147x147" and results[2].line == 24


def test_sizes_expectation_and_its_snapshot(tmp_path):
    pytest.importorskip("torch")
    from convcalc.checks import load_checks, run_checks
    from convcalc.snapshots import update_files

    path = write(tmp_path, f'''[[check]]
name = "unet sizes"
model = "{MODELS}:TinyUNet"
input = "1x1x32x32"
sizes = "multiples of 4 from 4"

[[check]]
name = "lenet sizes"
model = "{MODELS}:LeNet"
input = "1x1x32x32"
sizes = "multiples of 16"  # wrong: LeNet's Linear takes 32..35 only
sizes_range = "1..128"
''')
    results = run_checks(load_checks(path))
    assert results[0].ok and not results[1].ok
    assert results[1].message == "sizes: expected multiples of 16, got 32..35"
    update_files(results)
    text = Path(path).read_text()
    assert 'sizes = "32..35"  # wrong: LeNet' in text and 'sizes = "multiples of 4 from 4"' in text
    assert all(r.ok for r in run_checks(load_checks(path)))


def test_one_trace_for_many_checks(tmp_path, monkeypatch):
    pytest.importorskip("torch")
    from convcalc import graph, modelchecks
    from convcalc.checks import load_checks, run_checks

    calls = []
    real = graph.inspect_model
    monkeypatch.setattr(graph, "inspect_model", lambda *a, **k: calls.append(a) or real(*a, **k))
    modelchecks._TRACED.clear()
    text = "".join(f'[[check]]\nname = "c{i}"\nmodel = "{MODELS}:TinyUNet"\ninput = "1x1x32x32"\nshape = "1x1x32x32"\n\n'
                   for i in range(20))
    assert all(r.ok for r in run_checks(load_checks(write(tmp_path, text))))
    assert len(calls) == 1


def test_a_model_that_fails_to_load_is_that_checks_error(tmp_path):
    pytest.importorskip("torch")
    from convcalc.checks import load_checks, run_checks

    path = write(tmp_path, '[[check]]\nname = "nope"\nmodel = "no.such.module:Net"\ninput = "1x3x8x8"\nparams = 1\n\n'
                           '[[check]]\nname = "fine"\nlayers = "3"\nrf = 3\n')
    results = run_checks(load_checks(path))
    assert results[0].error and "cannot import no.such.module" in results[0].message and results[1].ok


def test_files_without_model_checks_import_no_torch():
    code = ("import sys\nfrom convcalc.checks import load_checks, run_checks\n"
            "run_checks(load_checks('examples/shapes.convcalc.toml'))\nprint('torch' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            cwd=Path(__file__).parent.parent)
    assert result.stdout.strip() == "False"


@pytest.mark.parametrize("text, needle", [
    ('model = "m:N"\nrf = 3\n', "key 'input' must be a string"),
    ('model = "m:N"\ninput = "1x3x8x8"\nlayers = "3"\nrf = 3\n', "unknown key 'layers' for a check of a model"),
    ('model = "m:N"\ninput = "1x3x8x8"\n', "expects nothing"),
    ('model = "m:N"\ninput = "1x3x8x8"\nparams = -1\n', "key 'params' must be a count"),
    ('model = "m:N"\ninput = "1x3x8x8"\nsizes = 16\n', "key 'sizes' must be a rule"),
    ('model = "m:N"\ninput = "1x3x8x8"\nparams = 1\nsizes_range = "1..9"\n', "key 'sizes_range' is a range"),
    ('model = "m:N"\ninput = "1x3x8x8"\nsizes = "all"\nsizes_range = "1..9000"\n', "at most 4,096"),
])
def test_bad_model_checks_name_the_key(tmp_path, text, needle):
    from convcalc import ConvcalcError
    from convcalc.checks import load_checks

    with pytest.raises(ConvcalcError, match=needle):
        load_checks(write(tmp_path, '[[check]]\nname = "m"\n' + text))


def test_assert_model():
    pytest.importorskip("torch")
    import models

    from convcalc.testing import assert_model

    assert_model(models.TinyResNet(), (1, 3, 64, 64), "add_4", shape=(1, 16, 4, 4), rf=147, jump=16)
    assert_model(f"{MODELS}:TinyResNet", (1, 3, 64, 64), rf="global", shape=(1, 10))
    with pytest.raises(AssertionError, match="expected receptive field"):
        assert_model(models.TinyResNet(), (1, 3, 64, 64), "add_4", rf=100)
