"""``convcalc design`` from the command line: output, JSON, exit codes (the search itself: test_design.py)."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from convcalc.cli import app

runner = CliRunner()


def invoke(*args: str):
    return runner.invoke(app, ["design", *args])


def test_best_schedule_with_its_proof_and_the_references():
    result = invoke("--rf", "17")
    assert result.exit_code == 0, result.output
    assert "best: rates 1,3,4 -> receptive field 17, no holes; optimal: the search was complete" in result.stdout
    assert "HDC groups 1,2,5" in result.stdout and "qualifies" in result.stdout
    assert "paths per offset" in result.stdout  # the coverage map of a 17-wide field


def test_largest_field_of_n_layers():
    document = json.loads(invoke("--depth", "4", "--json").stdout)
    assert document["largest_field"] == 81 and document["schedules"][0]["rates"] == [1, 3, 9, 27]
    assert document["sawtooth"] is None or sum(document["sawtooth"]) * 2 + 1 == 81


def test_json_document():
    document = json.loads(invoke("--rf", "1000", "--top", "3", "--json").stdout)
    assert document["schema"] == "convcalc.design/1" and document["optimal"] is True
    assert document["layers"] == 7 and len(document["schedules"]) == 3
    assert all(s["holes"] == 0 and s["receptive_field"] >= 1000 for s in document["schedules"])
    assert {r["name"].split(" ")[0] for r in document["references"]} == {"HDC", "Yu", "powers"}


def test_no_schedule_exits_1_and_says_how_far_it_gets():
    result = invoke("--rf", "100", "--depth", "2")
    assert result.exit_code == 1
    assert result.stderr.strip() == ("error: no schedule of 2 layers reaches a receptive field of 100; the largest "
                                     "field reachable is 9")
    document = json.loads(invoke("--rf", "100", "--depth", "2", "--json").stdout)
    assert document["schedules"] == [] and document["largest_field"] == 9


def test_map_and_max_rate_cap_the_rates():
    document = json.loads(invoke("--depth", "8", "--map", "65", "--json").stdout)
    assert max(document["schedules"][0]["rates"]) == 64 and document["largest_field"] == 593
    document = json.loads(invoke("--rf", "50", "--max-rate", "4", "--json").stdout)
    assert all(max(s["rates"]) <= 4 for s in document["schedules"])


@pytest.mark.parametrize("args, needle", [
    ((), "give --rf (the field to reach), --depth (the number of layers), or both"),
    (("--depth", "0"), "--depth must be an integer from 1 to 256, got 0"),
    (("--rf", "10", "-k", "1"), "--kernel-size must be an integer from 2 to 101, got 1"),
    (("--rf", "10", "--map", "1"), "--map must be an integer from 2"),
    (("--rf", "x"), "Invalid value for '--rf'"),
])
def test_bad_input_is_one_line_and_exit_2(args, needle):
    result = invoke(*args)
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0], result.stderr


def test_layers_is_the_old_name_of_depth_and_says_so():
    """design --layers N (a count) clashed with rf --layers SPEC: it still works, with a note; a spec there
    is refused with the way to ask for it."""
    result = invoke("--layers", "4", "--json")
    assert result.exit_code == 0 and json.loads(result.stdout)["layers"] == 4
    assert result.stderr.strip() == ("note: design --layers 4 is --depth 4: the count of layers (rf --layers takes "
                                     "a layer spec)")
    result = invoke("--layers", "3x3d1,3x3d2")
    assert result.exit_code == 2 and result.stderr.strip() == (
        "error: design --layers takes a count of layers (now named --depth), got '3x3d1,3x3d2'; a layer spec such "
        "as 3x3d1,3x3d2 is convcalc rf --layers")
    result = invoke("--layers", "4", "--depth", "4")
    assert result.exit_code == 2 and "give --depth, not both --depth and --layers" in result.stderr
