"""pytest plugin (entry point ``pytest11``): check files collected as test items, one per ``[[check]]``.

Files named ``*.convcalc.toml``, and those listed in ``pyproject.toml`` under ``[tool.convcalc]
check-files`` (paths or glob patterns from the project root), are collected where pytest walks. Each
check is one item whose failure report is the check's table and whose location is ``FILE:LINE``.
Nothing happens in a project without such files; the plugin imports neither torch nor numpy.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from .checks import Check, CheckResult, configured_check_files, load_checks, run_check
from .errors import ConvcalcError


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    if file_path.name.endswith(".convcalc.toml") or file_path.resolve() in _listed(parent.config):
        return CheckFile.from_parent(parent, path=file_path)
    return None


def _listed(config: pytest.Config) -> set[Path]:
    """The files ``[tool.convcalc] check-files`` lists (read once per session)."""
    cached = getattr(config, "_convcalc_check_files", None)
    if cached is not None:
        return cached
    listed: set[Path] = set()
    pyproject = Path(config.rootpath) / "pyproject.toml"
    if pyproject.is_file():
        try:
            listed = {Path(path).resolve() for path in configured_check_files(str(pyproject))}
        except ConvcalcError:  # none listed, or a pattern that matches nothing: nothing to collect from it
            listed = set()
    config._convcalc_check_files = listed  # type: ignore[attr-defined]
    return listed


class CheckFailed(Exception):
    """A check whose expectation does not hold (or that could not be computed)."""

    def __init__(self, result: CheckResult):
        super().__init__(result.message)
        self.result = result


class CheckFile(pytest.File):
    """A check file: one item per ``[[check]]`` table."""

    def collect(self) -> Any:
        try:
            checks = load_checks(str(self.path))
        except ConvcalcError as exc:
            raise self.CollectError(f"convcalc: {exc}") from None
        for check in checks:
            yield CheckItem.from_parent(self, name=check.name, check=check)


class CheckItem(pytest.Item):
    """One check: its layers' shapes, field, jump or coverage against what the file expects."""

    def __init__(self, *, check: Check, **kwargs: Any):
        super().__init__(**kwargs)
        self.check = check

    def runtest(self) -> None:
        result = run_check(self.check)
        if not result.ok:
            raise CheckFailed(result)

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> str:
        if not isinstance(excinfo.value, CheckFailed):
            return str(super().repr_failure(excinfo))
        result = excinfo.value.result
        return f"{result.where}: {'error' if result.error else 'failed'}: {result.message}\n{_table(result)}"

    def reportinfo(self) -> tuple[Path, int | None, str]:
        line = self.check.line - 1 if self.check.line is not None else None
        return self.path, line, f"convcalc check: {self.check.name}"


def _table(result: CheckResult) -> str:
    """The check's row as ``convcalc check`` prints it, as plain text."""
    from .reports import CheckReport
    from .render.check import check_table
    from .render.common import plain_text

    return plain_text(check_table(CheckReport(str(result.check.file), (result,))))
