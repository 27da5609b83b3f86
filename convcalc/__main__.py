"""``python -m convcalc``."""

import sys

try:
    from .cli import main
except ModuleNotFoundError as exc:  # run from a checkout whose dependencies were never installed
    if exc.name not in ("typer", "rich"):
        raise
    sys.stderr.write(f"error: convcalc needs {exc.name}, which is not installed: pip install . (from the "
                     f"checkout) or pip install typer rich\n")
    sys.exit(2)

main()
