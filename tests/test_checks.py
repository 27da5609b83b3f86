"""convcalc.checks: check files, their results, and every way a file can be wrong."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import pytest

from convcalc import ConvcalcError, SpecError
from convcalc.checks import load_checks, parse_checks, run_check, run_checks

EXAMPLE = Path(__file__).parent.parent / "examples" / "shapes.convcalc.toml"


def checks_of(text: str, tmp_path: Path):
    path = tmp_path / "shapes.toml"
    path.write_text(text)
    return load_checks(str(path))


def test_the_example_file_passes():
    results = run_checks(load_checks(str(EXAMPLE)))
    assert len(results) == 5 and all(r.ok for r in results)


def test_results_carry_expected_and_actual(tmp_path):
    [result] = run_checks(checks_of('[[check]]\nname = "a"\nin = 256\nlayers = "3x3d2p1"\nout = 256\nrf = 5\n',
                                    tmp_path))
    assert not result.ok
    assert result.expected == {"out": (256, 256), "rf": (5, 5)}
    assert result.actual == {"out": (254, 254), "rf": (5, 5)}
    assert result.message == "out: expected 256x256, got 254x254"


def test_sizes_as_strings_integers_and_arrays(tmp_path):
    text = ('[[check]]\nname = "string"\nin = "224x320"\nlayers = "3x3s2p1"\nout = "112x160"\n'
            '[[check]]\nname = "array"\nin = [224, 320]\nlayers = "3x3s2p1"\nout = [112, 160]\n'
            '[[check]]\nname = "one dimension"\nin = [100]\nlayers = "3"\nout = [98]\nrf = 3\n')
    assert all(r.ok for r in run_checks(checks_of(text, tmp_path)))


def test_jump_as_integer_float_and_fraction(tmp_path):
    text = ('[[check]]\nname = "a"\nlayers = "tconv4s2p1,tconv4s2p1"\njump = 0.25\n'
            '[[check]]\nname = "b"\nlayers = "tconv3s3"\njump = "1/3"\n'
            '[[check]]\nname = "c"\nlayers = "3s2,3s2"\njump = [4, 4]\n')
    results = run_checks(checks_of(text, tmp_path))
    assert [r.ok for r in results] == [True, True, True]
    assert results[1].actual["jump"] == (Fraction(1, 3), Fraction(1, 3))


def test_no_gridding(tmp_path):
    text = ('[[check]]\nname = "hdc"\nlayers = "3x3d1,3x3d2,3x3d5"\nno_gridding = true\n'
            '[[check]]\nname = "grids"\nlayers = "3x3d2*3"\nno_gridding = true\n')
    good, bad = run_checks(checks_of(text, tmp_path))
    assert good.ok and not bad.ok
    assert bad.message == "no_gridding: expected no holes, found 6, 6 holes per dimension in the field"


def test_a_stack_pytorch_rejects_fails_the_check(tmp_path):
    [result] = run_checks(checks_of('[[check]]\nname = "small"\nin = 8\nlayers = "3x3d2,3x3d2"\nout = 1\n',
                                    tmp_path))
    assert not result.ok and "layer 2 (3x3d2) rejects input 4x4" in result.message
    [always] = run_checks(checks_of('[[check]]\nname = "pad"\nlayers = "max3p2"\nrf = 3\n', tmp_path))
    assert not always.ok and "pad 2 should be at most half" in always.message


@pytest.mark.parametrize("text, message", [
    ("[[check]]\nname = 'a'\nlayers = '3'\nrf = 3\noutt = 3\n",
     "FILE:5: check 'a' (#1): unknown key 'outt' for a check of layers; did you mean 'out'? (a check of layers "
     "takes name, in, layers, convention, out, rf, jump, no_gridding; a check of a model takes name, model, input, "
     "kwargs, node, shape, rf, jump, params, macs, sizes, sizes_range)"),
    ("[[check]]\nname = 'a'\nrf = 3\n", "check 'a' (#1): key 'layers' is missing"),
    ("[[check]]\nname = 'a'\nlayers = 3\nrf = 3\n", "check 'a' (#1): key 'layers' must be a string"),
    ("[[check]]\nname = 'a'\nlayers = '3'\n", "check 'a' (#1): expects nothing"),
    ("[[check]]\nname = 'a'\nlayers = '3'\nout = 5\n", "check 'a' (#1): key 'out' needs key 'in'"),
    ("[[check]]\nname = 'a'\nlayers = '3'\nrf = 'big'\n", "check 'a' (#1), key 'rf': rf: expected a number"),
    ("[[check]]\nname = 'a'\nlayers = '3'\nrf = 2.5\n", "check 'a' (#1): key 'rf' must be a size"),
    ("[[check]]\nname = 'a'\nlayers = '3'\nrf = 0\n", "check 'a' (#1): key 'rf' must be positive"),
    ("[[check]]\nname = 'a'\nlayers = '3'\nrf = true\n", "check 'a' (#1): key 'rf' must be a size"),
    ("[[check]]\nname = 'a'\nlayers = '3'\njump = 'x'\n", "check 'a' (#1): key 'jump' must be a positive number"),
    ("[[check]]\nname = 'a'\nlayers = '3'\nno_gridding = 'yes'\n", "key 'no_gridding' must be true or false"),
    ("[[check]]\nname = 7\nlayers = '3'\nrf = 3\n", "check #1: key 'name' must be a non-empty string"),
    ("[[check]]\nname = 'a'\nlayers = '3'\nrf = 3\n[[check]]\nname = 'a'\nlayers = '3'\nrf = 3\n",
     "check 'a' (#2): the name is also used by check #1"),
    ("title = 'x'\n[[check]]\nname = 'a'\nlayers = '3'\nrf = 3\n", "unknown top-level key 'title'"),
    ("", "expected one or more [[check]] tables"),
    ("[[check]]\nname = 'a'\nlayers = '3x3'\nin = '8x8x8'\nrf = 3\n",
     "check 'a' (#1), key 'layers': kernel_size has 2 dimensions where the stack has 3"),
    ("[[check]]\nname = 'a'\nlayers = '3x3'\nin = '8x8'\nrf = [3, 3, 3]\n",
     "check 'a' (#1), key 'layers': per-dimension values disagree on the number of dimensions: in has 2, rf has 3"),
])
def test_wrong_files_name_the_check_and_the_key(text, message, tmp_path):
    with pytest.raises(ConvcalcError) as info:
        checks_of(text, tmp_path)
    assert message.replace("FILE", str(tmp_path / "shapes.toml")) in str(info.value)


def test_bad_layer_specs_keep_their_caret(tmp_path):
    with pytest.raises(SpecError) as info:
        checks_of("[[check]]\nname = 'a'\nlayers = '3x3q'\nrf = 3\n", tmp_path)
    assert info.value.reason.startswith("check 'a' (#1), key 'layers': expected an option")
    assert info.value.position == 3 and info.value.text == "3x3q"


def test_unreadable_and_invalid_files(tmp_path):
    with pytest.raises(ConvcalcError, match="cannot read the check file"):
        load_checks(str(tmp_path / "missing.toml"))
    (tmp_path / "bad.toml").write_text("[[check]\nname = ")
    with pytest.raises(ConvcalcError, match="is not valid TOML"):
        load_checks(str(tmp_path / "bad.toml"))


def test_parse_checks_takes_a_document():
    [check] = parse_checks({"check": [{"name": "x", "layers": "3", "rf": 3}]})
    assert run_check(check).ok


def test_convention_per_file_and_per_check():
    from convcalc.checks import parse_checks, run_checks

    document = {"convention": "tf", "check": [
        {"name": "tf stem", "in": 224, "layers": "7x7s2psame,max3s2psame", "out": 56, "rf": 11},
        {"name": "torch", "convention": "torch", "in": 224, "layers": "7x7s2p3,max3s2p1", "out": 56},
        {"name": "needs in", "layers": "7x7s2psame", "rf": 7}]}
    results = run_checks(parse_checks(document))
    assert [r.ok for r in results] == [True, True, False]
    assert results[2].message.endswith("depends on the input size: give key 'in'")
    with pytest.raises(ConvcalcError, match="key 'convention' must be \"torch\" or \"tf\" .*, got 'caffe'"):
        parse_checks({"convention": "caffe", "check": [{"layers": "3", "rf": 3}]})
    [keras] = parse_checks({"convention": "Keras", "check": [{"layers": "3s2psame", "in": 9, "out": 5}]})
    assert keras.stack[0].convention == "tf"  # Keras and JAX name TensorFlow's SAME too
    with pytest.raises(ConvcalcError, match="padding 'same' is supported by conv only, not max"):
        parse_checks({"check": [{"layers": "max3s2psame", "in": 8, "out": 4}]})


def test_positions_of_tables_and_keys():
    from convcalc.checks import check_positions

    text = ('# shapes\n[[check]]\nname = "a"\nnotes = """\n[[check]]\nrf = 9\n"""\nrf = 3\n\n[[ check ]]  # two\n'
            '"layers" = "3"\n[other]\nrf = 1\n')
    assert check_positions(text) == [(2, {"name": 3, "notes": 4, "rf": 8}), (10, {"layers": 11})]


def test_results_name_file_and_line(tmp_path):
    path = tmp_path / "shapes.toml"
    path.write_text('[[check]]\nname = "ok"\nlayers = "3"\nrf = 3\n\n[[check]]\nname = "bad"\nlayers = "3"\n'
                    'rf = 4\njump = 2\n')
    results = run_checks(load_checks(str(path)))
    assert [r.where for r in results] == [f"{path}:1", f"{path}:9"]  # the first failing key: rf
