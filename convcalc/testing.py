"""Assertions for pytest (or any test runner): the shapes a project's code assumes, checked exactly.

    from convcalc.testing import assert_output_size, assert_receptive_field, assert_no_gridding

    def test_backbone_shapes():
        assert_output_size("7x7s2p3,max3s2p1", (224, 224), (56, 56))
        assert_receptive_field("3x3d1p1,3x3d2p2,3x3d5p5", 17)
        assert_no_gridding([1, 2, 5])

A failure raises AssertionError whose message names what differs and shows the per-layer table as
text. Like the rest of the calculator, this imports neither torch nor numpy (rich only on failure).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Union

from .errors import ShapeError
from .gridding import gridding
from .layer import Layer, format_size
from .receptive import StackField, receptive_field

Layers = Union[str, Sequence[Layer]]
Size = Union[int, Sequence[int]]


def assert_output_size(layers: Layers, in_size: Size, expected: Size) -> None:
    """The stack's output size on ``in_size`` equals ``expected`` (a scalar applies to every dimension)."""
    __tracebackhide__ = True
    field = receptive_field(layers, in_size)
    want = _per_dim(expected, field.dims)
    if field.rejected is not None:
        raise AssertionError(_report(f"expected output {_fmt(want)}, but PyTorch rejects the stack: "
                                     f"{field.rejected[1]}", field))
    if field.out != want:
        raise AssertionError(_report(f"expected output {_fmt(want)}, got {_fmt(field.out)}", field))


def assert_receptive_field(layers: Layers, expected: Size, *, jump: Size | None = None,
                           in_size: Size | None = None) -> None:
    """The stack's receptive field (and, if given, its jump) equals ``expected``."""
    __tracebackhide__ = True
    try:
        field = receptive_field(layers, in_size)
    except ShapeError as exc:
        raise AssertionError(f"PyTorch rejects the stack: {exc}") from None
    problems = []
    want = _per_dim(expected, field.dims)
    if field.receptive_field != want:
        problems.append(f"expected receptive field {_fmt(want)}, got {_fmt(field.receptive_field)}")
    want_jump = _per_dim(jump, field.dims) if jump is not None else field.jump
    if field.jump != want_jump:
        problems.append(f"expected jump {_fmt(want_jump)}, got {_fmt(field.jump)}")
    if problems:
        raise AssertionError(_report("; ".join(problems), field))


def assert_no_gridding(rates: Union[Sequence[int], Layers], kernel_size: int = 3) -> None:
    """Stacked ``kernel_size``-tap convolutions with these dilation ``rates`` reach every offset of
    their field; or, given a layer spec or Layers, that stack's field has no holes."""
    __tracebackhide__ = True
    if isinstance(rates, str) or (rates and isinstance(rates[0], Layer)):
        field = receptive_field(rates)  # type: ignore[arg-type]
        holes = [c.holes for c in field.coverage]
        if any(holes):
            raise AssertionError(_report(f"the stack's field has holes: {_fmt(holes)} positions per "
                                         f"dimension are never seen", field))
        return
    report = gridding(rates, kernel_size)  # type: ignore[arg-type]
    if report.gridding:
        c = report.coverage
        repairs = "; ".join(",".join(map(str, s)) for s in report.suggestions) or "none of the same length"
        raise AssertionError(f"rates {','.join(map(str, report.rates))} grid with {kernel_size}-tap kernels: "
                             f"{c.holes} of {c.receptive_field} offsets are never reached (gcd {report.gcd}, "
                             f"HDC M_2 = {report.hdc.M2}); closest hole-free rates: {repairs}")


def _per_dim(value: Size, dims: int) -> tuple[int, ...]:
    return tuple(value) if isinstance(value, (tuple, list)) else (value,) * dims


def _fmt(values: Sequence[object] | None) -> str:
    return format_size(values) if values is not None else "none"


def _report(message: str, field: StackField) -> str:
    """The message, then the per-layer table as plain text."""
    from .render.common import plain_text
    from .render.rf import rf_table

    return f"{message}\n{plain_text(rf_table(field))}"


def assert_model(model: Any, input: Size, node: str | None = None, *, shape: Size | None = None,
                 rf: Size | str | None = None, jump: Size | None = None) -> None:
    """A real model (an nn.Module, or ``"pkg.module:attr"`` as ``convcalc inspect`` takes it) on ``input``
    (N x C x spatial): the output's (or ``node``'s) shape, receptive field (``"global"`` allowed) and
    jump are as expected. Needs torch."""
    __tracebackhide__ = True
    from .graph import inspect_model, load_model
    from .graph.fields import field_values

    if isinstance(model, str):
        model = load_model(model)
    dims = len(tuple(input)) - 2  # type: ignore[arg-type]
    inspection = inspect_model(model, tuple(input), type(model).__name__)  # type: ignore[arg-type]
    found = inspection.node(node) if node else inspection.output
    where = f"node {node!r}" if node else "the output"
    if shape is not None and tuple(shape) != found.shape:  # type: ignore[arg-type]
        raise AssertionError(f"{where}: expected shape {_fmt(tuple(shape))}, got {_fmt(found.shape)}")  # type: ignore
    if rf is not None:
        actual = field_values(found.fields, "rf")
        wanted = rf if rf == "global" else _per_dim(rf, dims)  # type: ignore[arg-type]
        if actual != wanted:
            raise AssertionError(f"{where}: expected receptive field {wanted}, got {actual}")
    if jump is not None:
        actual_jump = field_values(found.fields, "jump")
        if actual_jump != _per_dim(jump, dims):
            raise AssertionError(f"{where}: expected jump {_per_dim(jump, dims)}, got {actual_jump}")
