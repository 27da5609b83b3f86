"""convcalc.testing: pytest helpers pass silently and fail with the per-layer table."""

from __future__ import annotations

import pytest

from convcalc.testing import assert_no_gridding, assert_output_size, assert_receptive_field


def test_passing_assertions_are_silent():
    assert_output_size("7x7s2p3,max3s2p1", (224, 224), (56, 56))
    assert_output_size("3x3d2p2", 256, 256)
    assert_receptive_field("3x3d1p1,3x3d2p2,3x3d5p5", 17, jump=1)
    assert_no_gridding([1, 2, 5])
    assert_no_gridding("3x3d1,3x3d2,3x3d5")


def test_output_size_failure_shows_the_table():
    with pytest.raises(AssertionError) as info:
        assert_output_size("3x3d2p1,3x3", 64, 64)
    text = str(info.value)
    assert text.startswith("expected output 64x64, got 60x60")
    assert "3x3d2p1" in text and "Conv2d" in text and "receptive field, layer by layer" in text


def test_output_size_failure_when_pytorch_rejects():
    with pytest.raises(AssertionError, match="PyTorch rejects the stack: layer 2"):
        assert_output_size("3x3d2,3x3d2", 8, 1)


def test_receptive_field_failures():
    with pytest.raises(AssertionError, match="expected receptive field 15x15, got 17x17"):
        assert_receptive_field("3x3d1,3x3d2,3x3d5", 15)
    with pytest.raises(AssertionError, match="expected jump 2x2, got 4x4"):
        assert_receptive_field("7x7s2p3,max3s2p1", 11, jump=2)
    with pytest.raises(AssertionError, match="PyTorch rejects the stack"):
        assert_receptive_field("max3p2", 3)


def test_no_gridding_failures():
    with pytest.raises(AssertionError) as info:
        assert_no_gridding([2, 2, 2])
    assert "rates 2,2,2 grid with 3-tap kernels: 6 of 13 offsets are never reached (gcd 2" in str(info.value)
    assert "closest hole-free rates: 1,2,3" in str(info.value)
    with pytest.raises(AssertionError, match="the stack's field has holes: 6x6 positions per dimension"):
        assert_no_gridding("3x3d2*3")


def test_helpers_import_neither_torch_nor_numpy():
    import subprocess
    import sys

    code = ("import sys\nfrom convcalc.testing import assert_output_size\n"
            "assert_output_size('3', 8, 6)\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'numpy', 'rich', 'typer')))\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
