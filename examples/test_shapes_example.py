"""The pytest example of docs/ci.md: assertions a project keeps beside its model code."""

from convcalc.testing import assert_no_gridding, assert_output_size, assert_receptive_field


def test_stem_quarters_the_input():
    assert_output_size("7x7s2p3,max3s2p1", (224, 224), (56, 56))


def test_dilated_context_module():
    assert_receptive_field("3x3d1p1,3x3d2p2,3x3d5p5", 17, jump=1)
    assert_no_gridding([1, 2, 5])
