"""convcalc: exact PyTorch shape arithmetic for convolutional networks, without importing torch."""

from .errors import ConvcalcError, ShapeError, SpecError
from .gridding import gridding
from .layer import Layer, output_size
from .receptive import receptive_field
from .spec import parse_layers

__version__ = "0.1.0"

__all__ = ["ConvcalcError", "Layer", "ShapeError", "SpecError", "__version__", "gridding", "output_size",
           "parse_layers", "receptive_field"]
