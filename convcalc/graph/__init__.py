"""A real torch model, through its whole graph: loading, tracing, per-op field rules, measurement.

- ``fields``: what flows through the graph (shapes, fields, :class:`FieldState`), no torch;
- ``rules``: what each module or function does to fields, no torch;
- ``loading``: ``package.module:attribute`` or ``path/to/model.py:Name``;
- ``tracing``: torch.fx trace, eager shape pass, forward-hook fallback;
- ``measure``: a node's field measured by gradient.

torch is imported only when a model is loaded, traced or measured (``import convcalc.graph`` loads
none of it).
"""

from .fields import (
           FLAT,
           GLOBAL,
           SHOWN,
           UNKNOWN,
           Field,
           FieldState,
           Flow,
           Inspection,
           NodeInfo,
           NodeKind,
)
from .loading import load_model
from .measure import NodeMeasurement, verify_default, verify_nodes
from .tracing import inspect_model, shown_nodes

__all__ = ["FLAT", "GLOBAL", "SHOWN", "UNKNOWN", "Field", "FieldState", "Flow", "Inspection", "NodeInfo",
           "NodeKind", "NodeMeasurement", "inspect_model", "load_model", "shown_nodes", "verify_default",
           "verify_nodes"]
