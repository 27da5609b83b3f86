"""``convcalc check``: every [[check]] of a TOML file, for CI."""

from __future__ import annotations

import gc
from typing import Annotated, Optional

import typer

from ..reports import CheckReport
from ..render.check import check_document, check_view, junit_xml
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

FileArg = Annotated[str, typer.Argument(metavar="FILE", help="A TOML file of [\\[check]] tables.", show_default=False)]
JunitOpt = Annotated[Optional[str], typer.Option("--junit-xml", help="Also write a JUnit XML report to PATH.",
                                                 metavar="PATH")]

@app.command(cls=Command, epilog=CHECK_EXAMPLES)
def check(
    file: FileArg,
    verify: VerifyOpt = False,
    json_: JsonOpt = False,
    junit_xml_path: JunitOpt = None,
) -> int:
    """Run every [\\[check]] of a TOML file: output sizes, receptive fields, jumps, no gridding."""
    from ..checks import load_checks, run_checks

    if verify:
        from ..torchcheck import import_torch

        import_torch()  # the install hint now, not a field "not measured" later
    gc.disable()  # a batch of small objects with no cycles to collect: 10,000 checks run ~20% faster
    try:
        results = tuple(run_checks(load_checks(file)))
    finally:
        gc.freeze()  # and the results are kept to the end: nothing to gain from scanning them again
        gc.enable()
    verdicts = None
    if verify:
        from ..torchmeasure import verify_check

        verdicts = tuple(verify_check(result) for result in results)
    report = CheckReport(file, results, verdicts)
    if junit_xml_path is not None:
        write_text(junit_xml_path, junit_xml(report))
    return finish(report, json_, check_document, check_view)
