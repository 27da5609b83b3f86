"""README.md: its set-up commands, its CI example and its pytest example are the real, tested ones."""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from convcalc.cli.typer_app import COMMANDS

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


CI_DOC = (ROOT / "docs" / "ci.md").read_text()


def test_github_actions_example_is_the_file_in_the_repo():
    workflow = (ROOT / "examples" / "github-actions.yml").read_text()
    assert workflow in CI_DOC
    assert "pip install . " not in workflow and "@v" in workflow  # installed as a user's project installs it
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
    assert example in CI_DOC


def test_example_check_file_is_shown_and_passes():
    shapes = (ROOT / "examples" / "shapes.convcalc.toml").read_text()
    assert shapes in CI_DOC
    result = subprocess.run([sys.executable, "-m", "convcalc", "check", "examples/shapes.convcalc.toml"], cwd=ROOT,
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_pre_commit_hook_runs_on_what_the_docs_name():
    """The hook's file pattern matches the check files the docs tell users to write, and pyproject.toml;
    it was once `\\.convcalc\\.toml$` alone while the docs said shapes.toml, and passed checking nothing."""
    hook = (ROOT / ".pre-commit-hooks.yaml").read_text()
    pattern = re.search(r"files: (.*)", hook).group(1).strip()
    for name in ("shapes.convcalc.toml", "models/backbone.convcalc.toml", "pyproject.toml", "sub/pyproject.toml"):
        assert re.search(pattern, name), name
    assert not re.search(pattern, "shapes.toml") and "rev: main" not in CI_DOC
    for page in [README, CI_DOC, (ROOT / "docs" / "check.md").read_text()]:
        assert "shapes.toml" not in page.replace("shapes.convcalc.toml", "")


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_its_page_linked_from_the_readme(command):
    page = ROOT / "docs" / f"{command}.md"
    assert page.is_file() and page.read_text().startswith(f"# `convcalc {command}`")
    assert f"(docs/{command}.md)" in README


def test_readme_is_the_front_page():
    """Well under half its old 57,191 bytes: install, the common questions, links onwards."""
    assert len(README.encode()) < 25_000
    head = README[:README.index("## Commands")]
    for needle in ("pip install . && convcalc", "--index-url https://download.pytorch.org/whl/cpu", "pipx",
                   "| question | command |", "**Contents:**"):
        assert needle in head, needle


def test_links_between_pages_resolve():
    pages = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    for page in pages:
        for target in re.findall(r"\]\(([^)#:]+\.md)(?:#[^)]*)?\)", page.read_text()):
            assert (page.parent / target).is_file(), (page.name, target)
