"""``convcalc check``: every [[check]] of a TOML file, for CI."""

from __future__ import annotations

import gc
import os
import sys
from typing import Annotated, Optional

import typer

from ..reports import CheckReport
from ..errors import ConvcalcError
from ..render.check import check_document, check_view, github_annotations, junit_xml, print_line
from .typer_app import Command, app, examples, finish
from .options import JsonOpt, VerifyOpt, write_text

CHECK_EXAMPLES = examples(
    "convcalc check shapes.convcalc.toml",
    ("convcalc check", "the files pyproject.toml lists (check-files)"),
    ("convcalc check shapes.convcalc.toml --junit-xml junit.xml", "CI reports"),
    "convcalc check shapes.convcalc.toml --json --verify",
    notes=("[b]A check file[/b] holds [\\[check]] tables with the keys name, in, layers, convention, out, "
           "rf, jump, no_gridding (or model, input, shape, params, macs, ...):\n\n"
           "  [\\[check]]\n  name = \"dilated 3x3 keeps size\"\n  in = \"256x256\"\n  layers = \"3x3d2p2\"\n"
           "  out = \"256x256\"\n  rf = 5\n\n"
           "With no FILE, the files \\[tool.convcalc] check-files lists in the nearest pyproject.toml. Exit 0 "
           "when every check passes, 1 when one fails, 2 when the file itself is wrong."),
)

FilesArg = Annotated[Optional[list[str]], typer.Argument(metavar="[FILE...]", show_default=False, help=(
    "TOML files of [\\[check]] tables; a pyproject.toml stands for the files its \\[tool.convcalc] check-files "
    "lists \\[default: those of the nearest pyproject.toml]."))]
UpdateOpt = Annotated[bool, typer.Option(
    "--update", help="Rewrite failing expected values with the actual ones (comments and layout kept).")]
FormatOpt = Annotated[Optional[str], typer.Option(
    "--format", help="text, or github: also GitHub Actions annotations on each failing line \\[default: github "
                     "when GITHUB_ACTIONS=true]", show_default=False)]
JunitOpt = Annotated[Optional[str], typer.Option("--junit-xml", help="Also write a JUnit XML report to PATH.",
                                                 metavar="PATH")]

@app.command(cls=Command, epilog=CHECK_EXAMPLES)
def check(
    files: FilesArg = None,
    verify: VerifyOpt = False,
    json_: JsonOpt = False,
    junit_xml_path: JunitOpt = None,
    output_format: FormatOpt = None,
    update: UpdateOpt = False,
) -> int:
    """Run every [\\[check]] of a TOML file: output sizes, receptive fields, jumps, no gridding."""
    from ..checks import load_checks, run_checks

    if verify:
        from ..torchcheck import import_torch

        import_torch()  # the install hint now, not a field "not measured" later
    github = _github(output_format)
    files = check_files(files or [])
    gc.disable()  # a batch of small objects with no cycles to collect: 10,000 checks run ~20% faster
    try:
        results = tuple(result for file in files for result in run_checks(load_checks(file)))
    finally:
        gc.freeze()  # and the results are kept to the end: nothing to gain from scanning them again
        gc.enable()
    if update:
        from ..snapshots import update_files

        for change in update_files(results):
            print_line(f"updated {change}")
        results = tuple(result for file in files for result in run_checks(load_checks(file)))
    verdicts = None
    if verify:
        from ..torchmeasure import verify_check

        verdicts = tuple(verify_check(result) for result in results)
    report = CheckReport(" ".join(files), results, verdicts)
    if junit_xml_path is not None:
        write_text(junit_xml_path, junit_xml(report))
    if github:
        github_annotations(report, sys.stderr if json_ else sys.stdout)
    gc.disable()  # the report's many small strings have no cycles either
    try:
        return finish(report, json_, check_document, check_view)
    finally:
        gc.enable()


def check_files(given: list[str]) -> list[str]:
    """The files to check: those given, a pyproject.toml replaced by the files it configures; with none
    given, those the nearest pyproject.toml configures ([tool.convcalc] check-files)."""
    from ..checks import configured_check_files, find_pyproject

    if not given:
        pyproject = find_pyproject()
        if pyproject is None:
            raise ConvcalcError("no check file given, and no pyproject.toml here or above to list some: give "
                                "FILE..., or add check-files = [\"shapes.convcalc.toml\"] under [tool.convcalc] "
                                "in pyproject.toml")
        given = [pyproject]
    files: list[str] = []
    for name in given:
        expanded = configured_check_files(name) if os.path.basename(name) == "pyproject.toml" else [name]
        files += [f for f in expanded if f not in files]
    return files


def _github(choice: str | None) -> bool:
    """``--format``: text or github (the default on GitHub Actions)."""
    if choice is None:
        return os.environ.get("GITHUB_ACTIONS") == "true"
    if choice.lower() not in ("text", "github"):
        raise ConvcalcError(f"--format must be text or github, got {choice!r}")
    return choice.lower() == "github"
