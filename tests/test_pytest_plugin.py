"""convcalc's pytest plugin, run inside pytester: one item per check, the check's table as the failure
report, FILE:LINE as the location; inert without check files; torch never imported."""

from __future__ import annotations

import subprocess
import sys

CHECKS = '''[[check]]
name = "keeps size"
in = 256
layers = "3x3d2p2"
out = 256

[[check]]
name = "off by two"
in = 256
layers = "3x3d2p1"
out = 256
'''


def test_check_files_become_test_items(pytester):
    pytester.makefile(".convcalc.toml", shapes=CHECKS)
    result = pytester.runpytest("-v")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*shapes.convcalc.toml::keeps size PASSED*",
                                 "*shapes.convcalc.toml::off by two FAILED*",
                                 "*shapes.convcalc.toml:11: failed: out: expected 256x256, got 254x254*",
                                 "*off by two*out 256x256*out 254x254*FAIL*"])


def test_pyproject_lists_other_files(pytester):
    pytester.makefile(".toml", backbone=CHECKS.replace("3x3d2p1", "3x3d2p2"))
    pytester.makepyprojecttoml('[tool.convcalc]\ncheck-files = ["backbone.toml"]\n')
    pytester.runpytest().assert_outcomes(passed=2)


def test_inert_without_check_files(pytester):
    pytester.makefile(".toml", other='[tool]\nname = "not a check file"\n')
    pytester.makepyfile("def test_plain():\n    assert True\n")
    pytester.runpytest().assert_outcomes(passed=1)


def test_a_wrong_file_is_a_collection_error(pytester):
    pytester.makefile(".convcalc.toml", broken='[[check]]\nname = "x"\nlayers = "3x3q"\nrf = 3\n')
    result = pytester.runpytest()
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*convcalc: check 'x' (#1), key 'layers'*"])


def test_the_plugin_imports_no_torch():
    code = "import sys, convcalc.pytest_plugin; print('torch' in sys.modules, 'numpy' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout.strip() == "False False"
