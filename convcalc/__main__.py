"""``python -m convcalc``."""

from .cli import main

main()
