"""``convcalc check --update``: rewrite a check file's expected values with the actual ones.

The file is edited through tomlkit, which round-trips TOML: comments, order, quoting and layout stay
as they were; only the values of failing keys change, each written in the form it had (a size string
stays a string such as ``"256x256"``, a list a list, a scalar a scalar where every dimension agrees).
Nothing is written unless asked for.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from .checks import CheckResult, format_value
from .errors import ConvcalcError


@dataclass(frozen=True)
class Change:
    """One expected value rewritten."""

    file: str
    line: int | None
    check: str
    key: str
    old: Any
    new: Any

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line is not None else self.file
        return f"{where}: {self.check}: {self.key} {format_value(self.old)} -> {format_value(self.new)}"


def update_files(results: Sequence[CheckResult]) -> list[Change]:
    """Rewrite every file whose checks failed on a value (not those that errored or that PyTorch
    rejects: they have no value to write) and return what changed."""
    import tomlkit

    changes: list[Change] = []
    by_file: dict[str, list[CheckResult]] = {}
    for result in results:
        if result.check.file is not None and not result.ok and not result.error and result.actual:
            by_file.setdefault(result.check.file, []).append(result)
    for path, failing in by_file.items():
        with open(path, encoding="utf-8-sig") as handle:
            document = tomlkit.parse(handle.read())
        tables = document["check"]
        for result in failing:
            table = tables[result.check.index - 1]  # type: ignore[index]
            for key in result.failed_keys:
                old = table[key].unwrap() if hasattr(table[key], "unwrap") else table[key]
                new = _like(old, result.actual[key])
                table[key] = new
                changes.append(Change(path, result.check.key_lines.get(key), result.check.name, key,
                                      result.expected[key], result.actual[key]))
        try:
            with open(path, "w", encoding="utf-8") as handle:
                handle.write(tomlkit.dumps(document))
        except OSError as exc:
            raise ConvcalcError(f"cannot write {path!r}: {exc.strerror}") from None
    return changes


def _like(old: Any, value: Any) -> Any:
    """``value`` (a per-dimension tuple, or a bool) written the way ``old`` was."""
    if isinstance(value, bool):
        return value
    values = value if isinstance(value, tuple) else (value,)
    if isinstance(old, str):
        if len(set(values)) == 1 and "x" not in old and "," not in old:
            return _scalar(values[0], text=True)
        return "x".join(str(_scalar(v, text=True)) for v in values)
    if isinstance(old, list):
        return [_scalar(v) for v in values]
    if len(set(values)) == 1:
        return _scalar(values[0])
    return [_scalar(v) for v in values]


def _scalar(value: Any, text: bool = False) -> Any:
    if isinstance(value, Fraction):
        if value.denominator == 1:
            value = value.numerator
        elif (value.denominator & (value.denominator - 1)) == 0 and not text:
            return float(value)  # halves, quarters: exact as a float
        else:
            return f"{value.numerator}/{value.denominator}"
    return str(value) if text else value
