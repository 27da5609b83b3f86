"""README.md: its set-up commands, its CI example and its pytest example are the real, tested ones."""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent
README = (ROOT / "README.md").read_text()


def fenced_blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", README, flags=re.S)


def test_the_test_command_is_what_ci_runs():
    after = README[README.index("<!-- test-command -->"):]
    command = re.search(r"```sh\n(.*?)\n```", after, flags=re.S).group(1).strip()
    assert command.startswith("pip install ") and "[torch,test]" in command and "pytest" in command
    assert "<!-- test-command -->" in README and "test-command" in (ROOT / ".ci" / "run").read_text()


def test_install_command_runs_the_main_job():
    """README's first command installs the package and runs the main job; run its second half (the
    package is installed here) through the installed console script and check what it prints."""
    block = fenced_blocks("sh")[0].strip()
    install, _, run = block.partition(" && ")
    assert install == "pip install ." and run.startswith("convcalc out "), block
    script = shutil.which("convcalc", path=str(Path(sys.executable).parent))
    assert script is not None, "the convcalc console script is installed beside this Python"
    result = subprocess.run([script, *shlex.split(run)[1:]], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "out = floor((256 + 2 + 2 - 5) / 1) + 1 = 256" in result.stdout


def test_github_actions_example_is_the_file_in_the_repo():
    workflow = (ROOT / "examples" / "github-actions.yml").read_text()
    assert workflow in README
    commands = [line.split("run:", 1)[1].strip() for line in workflow.splitlines()
                if line.strip().startswith("- run: convcalc")]
    assert commands, "the workflow runs convcalc"
    for command in commands:
        args = shlex.split(command)
        args = [a if a != "convcalc-junit.xml" else str(Path("/tmp") / "convcalc-junit-test.xml") for a in args]
        result = subprocess.run([sys.executable, "-m", "convcalc", *args[1:]], cwd=ROOT, capture_output=True,
                                text=True)
        assert result.returncode == 0, (command, result.stdout, result.stderr)


def test_pytest_example_is_the_file_in_the_repo():
    example = (ROOT / "examples" / "test_shapes_example.py").read_text()
    assert example in README


def test_example_check_file_is_shown_and_passes():
    shapes = (ROOT / "examples" / "shapes.toml").read_text()
    assert shapes in README
    result = subprocess.run([sys.executable, "-m", "convcalc", "check", "examples/shapes.convcalc.toml"], cwd=ROOT,
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("command", ["out", "rf", "solve", "sizes", "gridding", "aspp", "design", "check", "inspect"])
def test_every_command_is_documented(command):
    assert f"## `convcalc {command}`" in README


EXAMPLES = re.findall(r"```sh\n(convcalc[^\n]*)\n```\n\n```(?:json)?\n(.*?)```", README, flags=re.S)


def test_readme_examples_are_found():
    """The pattern above must keep matching README's examples, or the test below checks nothing."""
    assert len(EXAMPLES) >= 8, EXAMPLES
    assert {shlex.split(command)[1] for command, _ in EXAMPLES} >= {"out", "rf", "gridding", "aspp", "inspect"}


@pytest.mark.parametrize("command, shown", EXAMPLES, ids=[c for c, _ in EXAMPLES])
def test_readme_examples_show_real_output(command, shown):
    """Every line README shows under a command is what the command prints (elisions aside)."""
    if "--verify" in command or "inspect" in command:
        pytest.importorskip("torch")
    args = shlex.split(command)[1:]
    result = subprocess.run([sys.executable, "-m", "convcalc", *args], cwd=ROOT, capture_output=True, text=True,
                            env={**__import__("os").environ, "COLUMNS": "100"})
    version = re.compile(r"PyTorch \S+")
    printed = {version.sub("PyTorch X", line.rstrip()) for line in (result.stdout + result.stderr).splitlines()}
    wanted = [version.sub("PyTorch X", line.rstrip()) for line in shown.strip().splitlines()
              if line.strip() != "..." and not line.startswith("   (")]
    assert [line for line in wanted if line not in printed] == []
