"""Loading the user's model: ``package.module:attribute`` or ``path/to/model.py:Name``."""

from __future__ import annotations

import importlib
import importlib.util
import json
import os
import sys
from typing import Any

from ..errors import ConvcalcError
from ..torchcheck import error_line, import_torch


def load_model(target: str, kwargs: dict[str, Any] | None = None) -> Any:
    """``package.module:attribute`` or ``path/to/model.py:Name``: an nn.Module, or a callable returning one.

    Importing the module runs its code, as pytest and uvicorn do.
    """
    torch = import_torch("inspecting a model")
    location, _, attribute = target.rpartition(":")
    if not location or not attribute:
        raise ConvcalcError(f"expected MODULE:ATTR such as torchvision.models:resnet50 or path/to/model.py:Net, "
                            f"got {target!r}")
    module = _import(location)
    obj: Any = module
    for part in attribute.split("."):
        if not hasattr(obj, part):
            raise ConvcalcError(f"{location} has no attribute {attribute!r}")
        obj = getattr(obj, part)
    if not isinstance(obj, torch.nn.Module):
        if not callable(obj):
            raise ConvcalcError(f"{target} is not a model: {_a(type(obj).__name__)}, neither an nn.Module nor a "
                                f"callable that returns one")
        try:
            obj = obj(**(kwargs or {}))
        except (Exception, SystemExit) as exc:  # the user's code may call sys.exit
            raise ConvcalcError(f"calling {target}(**{json.dumps(kwargs or {})}) raised "
                                f"{error_line(exc)}") from None
    elif kwargs:
        raise ConvcalcError(f"{target} is already a model: --kwargs applies to a class or factory")
    if not isinstance(obj, torch.nn.Module):
        raise ConvcalcError(f"{target} returned {_a(type(obj).__name__)}, not an nn.Module")
    return obj


def _a(noun: str) -> str:
    """``a list``, ``an int``."""
    return f"{'an' if noun[:1].lower() in 'aeiou' else 'a'} {noun}"


def _import(location: str) -> Any:
    try:
        if location.endswith(".py") or os.sep in location or "/" in location:
            path = os.path.abspath(location)
            if os.path.isdir(path):
                raise ConvcalcError(f"{location} is a directory: expected a Python file such as path/to/model.py")
            if not os.path.isfile(path):
                raise ConvcalcError(f"no such file: {location}")
            name = "convcalc_user_" + os.path.splitext(os.path.basename(path))[0]
            spec = importlib.util.spec_from_file_location(name, path)
            if spec is None or spec.loader is None:
                raise ConvcalcError(f"cannot import {location}")
            module = importlib.util.module_from_spec(spec)
            sys.modules[name] = module
            sys.path.insert(0, os.path.dirname(path))
            try:
                spec.loader.exec_module(module)
            finally:
                sys.path.remove(os.path.dirname(path))
            return module
        if os.getcwd() not in sys.path:
            sys.path.insert(0, os.getcwd())
        return importlib.import_module(location)
    except ConvcalcError:
        raise
    except (Exception, SystemExit) as exc:  # the user's module failed (or exited) while importing
        raise ConvcalcError(f"cannot import {location}: {error_line(exc)}") from None
