"""The Typer app and what every command shares: the error boundary, exit codes and ``finish``.

Each command lives in its own module (``convcalc/cli/<command>.py``), imported only when that command
runs, so start-up pays for one command's options (benchmarks/startup.py). Exit codes (docs/json.md, "Exit
codes"): 0 all good; 1 an expectation or check failed; 2 bad input or a layer PyTorch would reject;
3 ``--verify`` found torch disagreeing; 4 a bug in convcalc (one line; CONVCALC_DEBUG=1 shows the
traceback).
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Callable, Sequence
from typing import Annotated, Any

import typer
from typer.core import TyperCommand, TyperGroup

from .. import __version__
from ..errors import ConvcalcError, SpecError
from ..reports import BAD_INPUT, INTERNAL_ERROR, OK, Verdicts, exit_code

COMMANDS = ("out", "rf", "solve", "sizes", "gridding", "aspp", "design", "check", "inspect", "memory", "erf")

# The core names arguments by their Python names; the CLI words them as its flags (errors.ConvcalcError).
FLAGS = {"in_size": "--in", "unit": "--unit", "channels": "--channels", "shape": "--shape", "verify": "--verify",
         "kernel_size": "--kernel-size", "target_rf": "--rf", "layers": "--layers", "depth": "--depth", "map_size": "--map",
         "max_rate": "--max-rate", "top": "--top", "budget": "--budget", "out_size": "--out", "max_kernel": "--max-kernel",
         "max_stride": "--max-stride", "max_dilation": "--max-dilation", "input": "--input", "stride": "--stride",
         "dilation": "--dilation", "padding": "--padding", "op": "--op", "dtype": "--dtype", "sizes": "--sizes",
         "size_range": "--range"}


class ConvcalcGroup(TyperGroup):
    """Turns every usage error and ConvcalcError into one red line and exit code 2, never a traceback."""

    def main(self, args: Any = None, prog_name: Any = None, complete_var: Any = None,
             standalone_mode: bool = True, **extra: Any) -> Any:
        args = list(sys.argv[1:] if args is None else args)
        sys.set_int_max_str_digits(max(sys.get_int_max_str_digits(), 100_000))  # exact products of big sizes
        try:
            code = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except typer.TyperException as exc:
            code = _usage_error(exc, json_mode="--json" in args, args=args)
        except ConvcalcError as exc:
            code = report_error(exc, json_mode="--json" in args)
        except typer.Abort:
            code = 130
        except Exception as exc:  # a bug in convcalc: one line, and the traceback on request
            if os.environ.get("CONVCALC_DEBUG"):
                raise
            from ..render.common import print_error

            message = (f"internal error: {type(exc).__name__}: {exc} (a bug in convcalc; run with "
                       f"CONVCALC_DEBUG=1 for the traceback, and please report it)")
            print_error(message)
            if "--json" in args:  # still exactly one document
                from ..render.common import print_json

                print_json({"schema": "convcalc.error/1", "error": message, "exit_code": INTERNAL_ERROR})
            code = INTERNAL_ERROR
        code = code if isinstance(code, int) else OK
        if standalone_mode:
            sys.exit(code)
        return code


class Command(TyperCommand):
    """A command whose usage line names its arguments plainly (``FILE``, not Typer's ``{FILE}``)."""

    def collect_usage_pieces(self, ctx: Any) -> list[str]:
        return [piece[1:-1] if piece.startswith("{") and piece.endswith("}") else piece
                for piece in super().collect_usage_pieces(ctx)]


def _usage_error(exc: typer.TyperException, json_mode: bool, args: list[str] = ()) -> int:
    ctx = getattr(exc, "ctx", None)
    if type(exc).__name__ == "NoArgsIsHelpError":
        return exc.exit_code  # the help was printed when the error was made
    hint = f" (see '{ctx.command_path} --help')" if ctx is not None else ""
    spec = _split_spec(args) if "unexpected extra argument" in exc.format_message() else None
    if spec is not None:
        hint = f": the layer spec was split at its spaces; quote it (--layers \"{spec}\") or join it " \
               f"(--layers {spec.replace(' ', '')})"
    return report_error(ConvcalcError(exc.format_message() + hint), json_mode,
                        getattr(exc, "exit_code", BAD_INPUT))


def _split_spec(args: Sequence[str]) -> str | None:
    """``--layers 3x3 d2``: the words a shell split off the layer spec, joined again (None where the
    extra arguments follow no --layers)."""
    for i, arg in enumerate(args):
        if arg in ("--layers", "-l") and i + 2 < len(args) + 1:
            words = []
            for word in args[i + 1:]:
                if word.startswith("-") and words:
                    break
                words.append(word)
            return " ".join(words) if len(words) > 1 else None
    return None


def report_error(exc: ConvcalcError, json_mode: bool, code: int = BAD_INPUT) -> int:
    """The red line on stderr (and, with --json, an error document on stdout); returns the exit code."""
    from ..render.common import print_error, print_json

    reason = exc.reason if isinstance(exc, SpecError) else exc.worded(FLAGS)
    detail = exc.pointer() if isinstance(exc, SpecError) else None
    print_error(reason, detail)
    if json_mode:
        document = {"schema": "convcalc.error/1", "error": reason, "exit_code": code}
        if isinstance(exc, SpecError) and exc.text is not None:
            document.update(text=exc.text, position=exc.position)
        print_json(document)
    return code


def finish(report: Verdicts, json_mode: bool, document: Callable[[Any], dict[str, Any]],
           view: Callable[[Any], Any] | None) -> int:
    """Print the JSON document or the view of ``report`` (each built only when printed), then its red
    line (a rejection or a failure); return its exit code."""
    from ..render.common import print_error, print_json, print_view

    if json_mode:
        print_json(document(report))
    elif view is not None:
        print_view(view(report))
    message = report.rejection or report.failure
    if message:
        print_error(message)
    return exit_code(report)


EXAMPLE_WIDTH = 78  # an example line in --help at 80 columns, its indent included: the help's padding takes 2


def examples(*items: str | tuple[str, str], notes: str = "") -> str:
    """A command's --help epilog: its examples, one a line (``(command, comment)`` puts the comment after
    the command, aligned with the others where it fits), then ``notes``. Every example line fits
    EXAMPLE_WIDTH (tests/test_examples.py), so an 80-column terminal never breaks one mid-command; a long
    command is written over several lines with a trailing backslash, as a shell takes it."""
    from rich.markup import escape

    rows = [(item, "") if isinstance(item, str) else item for item in items]
    commented = [command.splitlines()[-1] for command, comment in rows if comment]
    column = max((len(last) for last in commented), default=0) + 3
    lines = []
    for command, comment in rows:
        text = escape(command)
        if comment:
            last = command.splitlines()[-1]
            gap = column - len(last) if 2 + column + 2 + len(comment) <= EXAMPLE_WIDTH else 3
            text += " " * gap + f"[dim]# {escape(comment)}[/dim]"
        lines.append("\n".join(f"  {part}" for part in text.split("\n")))
    # the notes start at the margin, which also keeps click from dedenting the examples' indentation
    return "[b]Examples[/b]\n\n" + "\n\n".join(lines) + "\n\n" + (notes or "See the docs folder for each command's page.")


def _version(value: bool) -> None:
    if value:
        typer.echo(f"convcalc {__version__}")
        raise typer.Exit()


app = typer.Typer(
    cls=ConvcalcGroup,
    name="convcalc",
    help="Exact PyTorch output sizes, receptive fields and dilation gridding for CNN layers.",
    no_args_is_help=True,
    add_completion=True,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
    context_settings={"help_option_names": ["-h", "--help"]},
)


@app.callback()
def _main(
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                          help="Show the version and exit.")] = False,
) -> None:
    """convcalc: answers about convolutional layers, exactly as PyTorch computes them."""


def app_for(args: list[str]) -> typer.Typer:
    """The app with the command being run registered (only it: Typer builds every registered command's
    options on each start); any other invocation (help, a mistyped command) gets every command."""
    name = args[0] if args else None
    for command in (name,) if name in COMMANDS else COMMANDS:
        importlib.import_module(f"{__package__}.{command}")
    return app


def main() -> None:
    """Console-script entry point."""
    app_for(sys.argv[1:])()
