"""Every example in README.md and docs/*.md runs, and the output it shows is the real output, whole.

An example is a ``sh`` block holding one ``convcalc`` command followed by a block with its output, or a
``sh`` block whose ``$ convcalc ...`` lines are followed by what they print. The shown output must match
the real one line by line (stdout, then stderr; trailing spaces and the PyTorch version aside); a line
``...`` stands for one or more lines left out, and nothing else may differ. Regenerate on purpose with
``CONVCALC_UPDATE_DOCS=1 python -m pytest tests/test_docs.py`` and review the diff.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
PAIRED = re.compile(r"```sh\n(convcalc [^\n]*)\n```\n\n```(?:json|text)?\n(.*?)```", re.S)
PROMPTED = re.compile(r"```sh\n(\$ convcalc [^\n]*\n.*?)```", re.S)
VERSION = re.compile(r"PyTorch \d[^\s:,)]*")


def examples(page: Path) -> list[tuple[str, str]]:
    """(command, the output shown) for every example on ``page``, in order."""
    text = page.read_text()
    found = [(m.start(), m.group(1), m.group(2)) for m in PAIRED.finditer(text)]
    for m in PROMPTED.finditer(text):
        command, _, shown = m.group(1).partition("\n")
        found.append((m.start(), command[2:], shown))
    return [(command, shown) for _, command, shown in sorted(found)]


CASES = [(page, command, shown) for page in PAGES for command, shown in examples(page)]


def normalised(text: str) -> list[str]:
    return [VERSION.sub("PyTorch X", line.rstrip()) for line in text.rstrip("\n").split("\n")]


def matches(shown: list[str], actual: list[str]) -> bool:
    """``shown`` equals ``actual``, each ``...`` line standing for one or more lines of it."""
    if not shown:
        return not actual
    if shown[0] == "...":
        return any(matches(shown[1:], actual[skip:]) for skip in range(1, len(actual) + 1))
    return bool(actual) and shown[0] == actual[0] and matches(shown[1:], actual[1:])


def run(command: str) -> str:
    result = subprocess.run([sys.executable, "-m", "convcalc", *shlex.split(command)[1:]], cwd=ROOT,
                            capture_output=True, text=True, timeout=300)
    return result.stdout + result.stderr


def test_every_page_has_examples():
    counts = {page.name: len(examples(page)) for page in PAGES}
    assert counts["README.md"] >= 4
    from convcalc.cli.typer_app import COMMANDS

    for command in COMMANDS:
        assert counts[f"{command}.md"] >= 1, command


@pytest.mark.parametrize("page, command, shown", CASES, ids=[f"{p.name}: {c}" for p, c, _ in CASES])
def test_example_shows_its_real_output(page, command, shown):
    if ("--verify" in command or " inspect " in f" {command} ") and importlib.util.find_spec("torch") is None:
        pytest.skip("needs torch")
    if "torchvision" in command and importlib.util.find_spec("torchvision") is None:
        pytest.skip("needs torchvision")
    wanted = normalised(shown)
    assert wanted[0] != "..." and wanted[-1] != "...", "an elision only between shown lines: the ends are compared"
    actual = run(command)
    if os.environ.get("CONVCALC_UPDATE_DOCS"):
        _update(page, command, shown, actual)
        return
    assert matches(wanted, normalised(actual)), f"{command}\n--- shown\n{shown}\n--- actual\n{actual}"


def _update(page: Path, command: str, shown: str, actual: str) -> None:
    """Write ``actual`` in place of ``shown``, keeping as many leading and trailing lines around an
    elision as the page kept."""
    lines, old = actual.rstrip("\n").split("\n"), shown.rstrip("\n").split("\n")
    if "..." in old:
        head, tail = old.index("..."), len(old) - 1 - max(i for i, line in enumerate(old) if line == "...")
        if head + tail < len(lines):
            lines = lines[:head] + ["..."] + (lines[len(lines) - tail:] if tail else [])
    new = "\n".join(line.rstrip() for line in lines) + "\n"
    text = page.read_text()
    paired = f"```sh\n{command}\n```\n\n"
    if paired in text:  # the output block after the command's
        at = text.index(paired) + len(paired)
        start = text.index("\n", at) + 1
    else:  # the lines after "$ command" in the same block
        start = text.index(f"```sh\n$ {command}\n") + len(f"```sh\n$ {command}\n")
    assert text[start:start + len(shown)] == shown
    page.write_text(text[:start] + new + text[start + len(shown):])
