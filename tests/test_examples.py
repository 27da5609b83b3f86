"""Every example in every command's --help and in README runs, with the exit code it implies: 0, or 1
where the example shows a failing verdict (rates that grid); never bad input, a bug or a traceback."""

from __future__ import annotations

import importlib
import importlib.util
import re
import shlex
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from convcalc.cli import app
from convcalc.cli.typer_app import COMMANDS

ROOT = Path(__file__).parent.parent


def help_lines(command: str) -> list[str]:
    """The example lines of a command's --help as written, comments included, markup removed."""
    module = importlib.import_module(f"convcalc.cli.{command}")
    text = getattr(module, f"{command.upper()}_EXAMPLES")
    lines = []
    for paragraph in text.split("\n\n"):
        if paragraph.lstrip().startswith("convcalc "):
            lines += [re.sub(r"\[/?dim\]", "", line).replace("\\[", "[") for line in paragraph.splitlines()]
    return lines


def help_examples() -> list[str]:
    examples = []
    for command in COMMANDS:
        joined = "\n".join(help_lines(command)).replace("\\\n", " ")
        for line in joined.splitlines():
            line = line.split("   #")[0].strip()
            if line.startswith("convcalc "):
                examples.append(" ".join(line.split()))
    return examples


def readme_examples() -> list[str]:
    """The commands of README.md and docs/, in sh blocks (``$ convcalc`` prompts included)."""
    commands = []
    for page in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        blocks = re.findall(r"```sh\n(.*?)```", page.read_text(), flags=re.S)
        commands += [line.strip().removeprefix("$ ") for block in blocks for line in block.splitlines()
                     if line.startswith(("convcalc ", "$ convcalc "))]
    return commands


EXAMPLES = sorted(set(help_examples())) + sorted(set(readme_examples()) - set(help_examples()))
# Examples that show a failing verdict (exit 1) or a rejection (exit 2) on purpose; every other exits 0.
EXIT_CODES = {"convcalc gridding 2,2,2": 1, "convcalc gridding 1 2 9 --json": 1,
              "convcalc check docs/examples/drift.toml": 1, "convcalc check docs/examples/typo.toml": 2,
              "convcalc out --in 224 -k 3 -s 2 -p same": 2, "convcalc out --in 3 -k 3 -d 2": 2}


def test_examples_are_found():
    assert len(help_examples()) >= 30 and len(readme_examples()) >= 15


@pytest.mark.parametrize("command", EXAMPLES)
def test_example_runs(command, tmp_path, monkeypatch):
    args = shlex.split(command)[1:]
    needs = {"torchvision": "torchvision", "--verify": "torch", "inspect": "torch"}
    for word, module in needs.items():
        if any(word in a for a in args) and importlib.util.find_spec(module) is None:
            pytest.skip(f"needs {module}")
    for name in ("shapes.convcalc.toml",):  # check examples name the example file, as README's CI section does
        shutil.copy(ROOT / "examples" / name, tmp_path / name)
    (tmp_path / "pyproject.toml").write_text('[tool.convcalc]\ncheck-files = ["*.convcalc.toml"]\n')
    monkeypatch.chdir(tmp_path)
    args = [str(ROOT / a) if a.startswith(("examples/", "tests/", "docs/")) else a for a in args]
    result = CliRunner().invoke(app, args)
    expected = EXIT_CODES.get(command, 0)
    assert result.exit_code == expected, (command, result.output)
    assert "Traceback" not in result.output and "internal error" not in result.output


@pytest.mark.parametrize("command", COMMANDS)
def test_help_examples_fit_80_columns(command):
    """In a real 80-column terminal every example line of --help is shown whole, its comment on the
    same line: never broken in the middle of a command."""
    from terminal import run_in_terminal

    code, shown = run_in_terminal([command, "--help"], 80)
    assert code == 0
    shown = [line.strip() for line in shown]
    wanted = [line.strip() for line in help_lines(command)]
    assert wanted and [line for line in wanted if line not in shown] == []
    assert max(map(len, shown)) <= 80
