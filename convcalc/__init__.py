"""convcalc: exact PyTorch shape arithmetic for convolutional networks, without importing torch.

``output_size``, ``Layer``, ``gridding`` and the errors load with the package; ``parse_layers`` and
``receptive_field`` on first use (PEP 562), so that ``convcalc out`` starts as fast as the CLI
libraries. (``gridding`` cannot wait: importing the submodule of the same name would bind the module
in its place.)
"""

from __future__ import annotations

from typing import Any

from .errors import ConvcalcError, ShapeError, SpecError
from .gridding import gridding
from .layer import Layer, output_size

__version__ = "0.2.0"

__all__ = ["ConvcalcError", "Layer", "ShapeError", "SpecError", "__version__", "gridding", "output_size",
           "parse_layers", "receptive_field"]

_LAZY = {"parse_layers": "spec", "receptive_field": "receptive"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        from importlib import import_module

        value = getattr(import_module(f".{_LAZY[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'convcalc' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
