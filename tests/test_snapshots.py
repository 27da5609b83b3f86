"""convcalc check --update rewrites failing expected values in place, keeping comments, order, quoting and
layout (tomlkit round-trips); without --update nothing is ever written."""

from __future__ import annotations

from typer.testing import CliRunner

from convcalc.cli import app

BEFORE = '''# shapes the model code relies on
[[check]]
name = "stem"            # 7x7 s2 then max pool
in = "224x224"
layers = "7x7s2p3,max3s2p1"
out = "55x55"            # wrong on purpose
rf = [10, 10]

[[check]]
name = "decoder"
in = 64
layers = "tconv4s2p1*2"
out = 256
jump = 0.5

[[check]]
name = "right already"
layers = "3x3d2p2"
rf = 5

[[check]]
name = "too large"
layers = "tconv3s7*12"
rf = 3
'''

AFTER = BEFORE.replace('out = "55x55"', 'out = "56x56"').replace("rf = [10, 10]", "rf = [11, 11]") \
    .replace("jump = 0.5", "jump = 0.25")


def test_update_rewrites_only_the_failing_values(tmp_path):
    path = tmp_path / "shapes.convcalc.toml"
    path.write_text(BEFORE)
    result = CliRunner().invoke(app, ["check", str(path), "--update"])
    assert path.read_text() == AFTER
    assert f"updated {path}:6: stem: out 55x55 -> 56x56" in result.stderr
    assert f"updated {path}:14: decoder: jump 1/2x1/2 -> 1/4x1/4" in result.stderr
    assert result.exit_code == 1  # the check that cannot be computed stays an error
    assert "3 passed, 1 failed" in result.stdout


def test_nothing_is_written_without_update(tmp_path):
    path = tmp_path / "shapes.toml"
    path.write_text(BEFORE)
    result = CliRunner().invoke(app, ["check", str(path), "--json"])
    assert result.exit_code == 1 and path.read_text() == BEFORE
