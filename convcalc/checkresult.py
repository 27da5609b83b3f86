"""What a check is and what it found: :class:`Check` (one ``[[check]]`` table, parsed), :class:`ModelSpec`
(what a model check loads), :class:`CheckResult`, and how a failed expectation is worded. Shared by
``checks`` (check files, stacks) and ``modelchecks`` (real models), which import it and not each other
the other way round."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .layer import Layer
from .receptive import StackField


@dataclass(frozen=True)
class Check:
    """One ``[[check]]`` entry, its values parsed: sizes as per-dimension tuples or scalars."""

    index: int
    name: str
    layers: str
    in_size: int | tuple[int, ...] | None
    expected: dict[str, Any]
    stack: tuple[Layer, ...] = field(default=(), compare=False, repr=False)
    file: str | None = field(default=None, compare=False)
    line: int | None = field(default=None, compare=False)  # of its [[check]] header
    key_lines: dict[str, int] = field(default_factory=dict, compare=False, repr=False)
    model: ModelSpec | None = None  # a check of a real model instead of layers


@dataclass(frozen=True)
class ModelSpec:
    """What a model check loads and where it looks: ``model``, ``input``, ``kwargs`` and ``node``."""

    target: str
    input_shape: tuple[int, ...]
    kwargs: str = "{}"  # JSON, so that specs compare and hash
    node: str | None = None
    sizes_range: tuple[int, int] = (1, 512)  # the sweep a ``sizes`` expectation describes


@dataclass(frozen=True)
class CheckResult:
    """What one check found: per expectation the expected and the actual value, and why it failed."""

    check: Check
    ok: bool
    expected: dict[str, Any]
    actual: dict[str, Any]
    message: str
    field: StackField | None = field(default=None, compare=False)
    error: bool = False  # the check could not be computed (too large, too wide): an error, not a failure
    failed_keys: tuple[str, ...] = ()

    @property
    def line(self) -> int | None:
        """The line to point at: the first failing key's, else the check's header."""
        for key in self.failed_keys:
            if key in self.check.key_lines:
                return self.check.key_lines[key]
        return self.check.line

    @property
    def where(self) -> str:
        """``FILE:LINE`` (or as much of it as is known)."""
        file = self.check.file or "the check file"
        return f"{file}:{self.line}" if self.line is not None else file


def difference(key: str, expected: Any, actual: Any, stack: StackField | None = None) -> str:
    """Why an expectation failed: ``out: expected 256x256, got 254x254``."""
    if key == "no_gridding" and stack is not None:
        holes = ", ".join(str(c.holes) for c in stack.coverage)
        return f"no_gridding: expected no holes, found {holes} holes per dimension in the field"
    return f"{key}: expected {format_value(expected)}, got {format_value(actual)}"


def format_value(value: Any) -> str:
    """``(256, 256)`` -> ``256x256``; fractions as ``1/2``; booleans as true/false."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, tuple):
        return "x".join(format_value(v) for v in value)
    if value is None:
        return "-"
    return str(value)
