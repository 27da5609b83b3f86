"""The oracle: eager CPU torch on tiny zero tensors, through torch.nn.functional.

Deliberately independent of convcalc.torchcheck (which builds torch.nn modules), so that a mistake in
how convcalc builds layers cannot hide a mistake in how it computes shapes.
"""

from __future__ import annotations

import warnings

import torch
import torch.nn.functional as F


def torch_output_size(op, in_size, kernel_size, stride, padding, dilation, output_padding=0,
                      ceil_mode=False):
    """Spatial output size eager CPU torch computes, or None when torch raises."""
    n = len(in_size)
    x = torch.zeros(1, 1, *in_size)
    try:
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if op == "conv":
                w = torch.zeros(1, 1, *kernel_size)
                y = getattr(F, f"conv{n}d")(x, w, stride=stride, padding=padding, dilation=dilation)
            elif op == "conv_transpose":
                w = torch.zeros(1, 1, *kernel_size)
                y = getattr(F, f"conv_transpose{n}d")(x, w, stride=stride, padding=padding,
                                                       output_padding=output_padding, dilation=dilation)
            elif op == "max_pool":
                y = getattr(F, f"max_pool{n}d")(x, kernel_size, stride, padding, dilation,
                                                ceil_mode=ceil_mode)
            else:
                y = getattr(F, f"avg_pool{n}d")(x, kernel_size, stride, padding, ceil_mode=ceil_mode)
    except (RuntimeError, ValueError):
        return None
    return tuple(y.shape[2:])


def fvcore_total(model, x) -> int:
    """``FlopCountAnalysis(model, x).total()``, with fvcore's warnings and log lines about ops it skips
    silenced (they are its convention, not failures)."""
    import logging

    from fvcore.nn import FlopCountAnalysis

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        logging.disable(logging.WARNING)
        try:
            analysis = FlopCountAnalysis(model, x)
            analysis.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
            return analysis.total()
        finally:
            logging.disable(logging.NOTSET)
