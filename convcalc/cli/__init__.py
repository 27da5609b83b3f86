"""The command line: ``app`` (the Typer app and its error boundary), ``options`` (what several commands
take) and one module per command, each a few lines that parse options, call the core, build the
report (convcalc.reports) and hand it to its renderer (convcalc.render).

``main`` (the console script) registers only the command being run; ``convcalc.cli.app`` is the app
with every command registered, for callers such as ``typer.testing.CliRunner``.
"""

from __future__ import annotations

from typing import Any

from .typer_app import main

__all__ = ["app", "main"]


def __getattr__(name: str) -> Any:
    if name == "app":
        from .typer_app import app_for

        return app_for([])
    raise AttributeError(f"module 'convcalc.cli' has no attribute {name!r}")
