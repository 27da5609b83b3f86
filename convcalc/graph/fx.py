"""torch.fx, as convcalc uses it: tracing a model into a graph, naming the user's line where it fails, and
running the graph while recording each node's output shape. torch is imported on use."""

from __future__ import annotations

import os
import traceback
from pathlib import Path
from typing import Any

from ..errors import ConvcalcError
from ..torchcheck import error_line, import_torch


def shape_recorder(graph: Any, torch: Any, counter: Any = None) -> Any:
    """An interpreter that runs the graph eagerly and records each node's output shape (a tuple for a
    tensor, a list for a tuple or list holding tensors (their shapes, None for what is not one, nested
    lists for nested tuples), None otherwise) in ``node.meta["convcalc_shape"]``; with an
    active ``counter`` (graph/dispatch.py), the aten and fvcore MACs of the ops each node dispatched in
    ``node.meta["convcalc_dispatched"]``."""

    def shape_of(value: Any) -> Any:
        if isinstance(value, torch.Tensor):
            return tuple(int(d) for d in value.shape)
        if isinstance(value, (tuple, list)) and value and any(shape_of(v) is not None for v in value):
            return [shape_of(v) for v in value]
        return None

    class Shapes(torch.fx.Interpreter):
        def run_node(self, node: Any) -> Any:
            if counter is None:
                result = super().run_node(node)
            else:
                counter.current = node.name
                counter.macs[node.name] = counter.fvcore[node.name] = counter.torchinfo[node.name] = 0
                try:
                    result = super().run_node(node)
                finally:
                    counter.current = None
                node.meta["convcalc_dispatched"] = (counter.macs[node.name], counter.fvcore[node.name],
                                                    counter.torchinfo[node.name])
            node.meta["convcalc_shape"] = shape_of(result)
            return result

    return Shapes(graph)


def fx_trace(model: Any, needed_by: str) -> Any:
    """The model's torch.fx GraphModule; ConvcalcError (naming the user's line) where fx cannot trace it."""
    torch = import_torch(needed_by)
    try:
        return torch.fx.symbolic_trace(model)
    except (Exception, SystemExit) as exc:
        raise ConvcalcError(f"{needed_by} needs a model torch.fx can trace: {trace_failure(exc)}") from None


def trace_failure(exc: BaseException) -> str:
    """The message of an fx trace error, with the line that caused it: the user's own where there is one,
    else the installed library's (timm's, say), never torch's or convcalc's."""
    frames = [f for f in traceback.extract_tb(exc.__traceback__)
              if f"{os.sep}torch{os.sep}" not in f.filename and f"{os.sep}convcalc{os.sep}" not in f.filename]
    own = [f for f in frames if "site-packages" not in f.filename]
    frames = own or frames
    where = (f" at {_shown_path(frames[-1].filename)}:{frames[-1].lineno}: {(frames[-1].line or '').strip()}"
             if frames else "")
    return f"torch.fx could not trace the model{where} ({error_line(exc)})"


def _shown_path(filename: str) -> str:
    """A source path as a reader finds it: relative to the working directory when under it, from the
    package's own folder when installed (``timm/models/hiera.py``), else as it is."""
    path = Path(filename)
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        pass
    parts = path.parts
    if "site-packages" in parts:
        return str(Path(*parts[parts.index("site-packages") + 1:]))
    return filename
