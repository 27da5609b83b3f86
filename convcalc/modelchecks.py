"""Model checks of a check file (``model = "pkg.module:factory"``): the torch side, imported only when a
file has one. Each model is loaded and traced once per (model, kwargs, input), however many checks
name it; ``params`` counts the whole model, ``macs`` one forward pass in the aten convention
(torch.utils.flop_counter's count, halved; docs/references.md, "Counting conventions"), ``sizes`` the
rule of the accepted sizes (``inspect --sizes``)."""

from __future__ import annotations

import json
from typing import Any

from .checkresult import Check, CheckResult, difference
from .errors import ConvcalcError

_TRACED: dict[tuple[str, str, tuple[int, ...]], Any] = {}


def run_model_check(check: Check) -> CheckResult:
    spec = check.model
    assert spec is not None
    try:
        model, inspection = traced(spec.target, spec.kwargs, spec.input_shape)
        node = inspection.node(spec.node) if spec.node else inspection.output
        actual = {key: _value(key, model, inspection, node, spec) for key in check.expected}
    except ConvcalcError as exc:
        return CheckResult(check, False, dict(check.expected), {}, exc.worded({"input": "key 'input'"}), error=True)
    failed = tuple(key for key in check.expected if check.expected[key] != actual[key])
    problems = [difference(key, check.expected[key], actual[key]) for key in failed]
    return CheckResult(check, not failed, dict(check.expected), actual, "; ".join(problems), failed_keys=failed)


def traced(target: str, kwargs: str, input_shape: tuple[int, ...]) -> tuple[Any, Any]:
    """The model and its inspection, once per (model, kwargs, input)."""
    key = (target, kwargs, input_shape)
    if key not in _TRACED:
        from .graph import inspect_model, load_model

        model = load_model(target, json.loads(kwargs))
        _TRACED[key] = (model, inspect_model(model, input_shape, target))
    return _TRACED[key]


def _value(key: str, model: Any, inspection: Any, node: Any, spec: Any) -> Any:
    from .graph.fields import field_values

    if key == "shape":
        return node.shape
    if key in ("rf", "jump"):
        return field_values(node.fields, key)
    if key == "params":
        return inspection.params
    if key == "macs":
        from .graph.costs import inspection_totals

        return inspection_totals(inspection).macs.aten
    return _sizes_rule(model, spec)


def _sizes_rule(model: Any, spec: Any) -> str:
    """The rule of the square sizes in ``spec.sizes_range`` the model accepts, once per model and range."""
    from .graph.sizes import sweep_sizes

    key = (spec.target, spec.kwargs, spec.input_shape, spec.sizes_range)
    if key not in _SWEPT:
        sweep, _ = sweep_sizes(model, spec.input_shape, *spec.sizes_range)
        _SWEPT[key] = sweep.rule
    return _SWEPT[key]


_SWEPT: dict[tuple[Any, ...], str] = {}
