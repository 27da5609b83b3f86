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
from .typer_app import Command, app, finish
from .options import JsonOpt, VerifyOpt, write_text

CHECK_EXAMPLES = """\
[b]Examples[/b]

  convcalc check shapes.toml

  convcalc check shapes.toml --junit-xml convcalc-junit.xml     [dim]# for CI test reports[/dim]

  convcalc check shapes.toml --json --verify

[b]A check file[/b] holds [\\[check]] tables with the keys name, in, layers, convention, out, rf, jump, no_gridding:

  [\\[check]]
  name = "dilated 3x3 keeps size"
  in = "256x256"
  layers = "3x3d2p2"
  out = "256x256"
  rf = 5

Exit 0 when every check passes, 1 when one fails, 2 when the file itself is wrong.
"""

FilesArg = Annotated[list[str], typer.Argument(metavar="FILE...", help="TOML files of [\\[check]] tables.",
                                               show_default=False)]
UpdateOpt = Annotated[bool, typer.Option(
    "--update", help="Rewrite failing expected values with the actual ones (comments and layout kept).")]
FormatOpt = Annotated[Optional[str], typer.Option(
    "--format", help="text, or github: also GitHub Actions annotations on each failing line \\[default: github "
                     "when GITHUB_ACTIONS=true]", show_default=False)]
JunitOpt = Annotated[Optional[str], typer.Option("--junit-xml", help="Also write a JUnit XML report to PATH.",
                                                 metavar="PATH")]

@app.command(cls=Command, epilog=CHECK_EXAMPLES)
def check(
    files: FilesArg,
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


def _github(choice: str | None) -> bool:
    """``--format``: text or github (the default on GitHub Actions)."""
    if choice is None:
        return os.environ.get("GITHUB_ACTIONS") == "true"
    if choice.lower() not in ("text", "github"):
        raise ConvcalcError(f"--format must be text or github, got {choice!r}")
    return choice.lower() == "github"
