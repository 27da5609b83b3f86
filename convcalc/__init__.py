"""convcalc: exact PyTorch shape arithmetic for convolutional networks, without importing torch."""

from .errors import ConvcalcError, ShapeError, SpecError
from .layer import Layer, output_size

__version__ = "0.1.0"

__all__ = ["ConvcalcError", "Layer", "ShapeError", "SpecError", "__version__", "output_size"]
