"""``convcalc check``: one row per check, the failures, torch's cross-checks; the ``convcalc.check/1``
document and the JUnit XML report (docs/architecture.md, "Check files")."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rich.console import Group
from rich.text import Text

from ..checks import format_value
from .common import MAX_TABLE_ROWS, PlainTable, agreement, json_value, line, per_dim_text

if TYPE_CHECKING:
    from ..reports import CheckReport


def check_view(report: CheckReport) -> Group:
    """The table, each failure's reason, the totals and torch's cross-check."""
    parts: list[Any] = [check_table(report)]
    failing = [r for r in report.results if not r.ok and r.actual]
    for result in failing[:MAX_TABLE_ROWS]:
        parts.append(line(f"FAIL {result.where}: {result.check.name}: {result.message}", "red"))
    if len(failing) > MAX_TABLE_ROWS:
        parts.append(line(f"... {len(failing) - MAX_TABLE_ROWS:,} more failures (every one is in --json)", "red"))
    parts.append(line(f"{report.passed:,} passed, {report.failed:,} failed", "bold green" if not report.failed else "bold red"))
    if report.verdicts is not None:
        checked = [v for v in report.verdicts if v is not None and v.agrees is not None]
        word, style = agreement(report.agrees, "agrees on every check")
        parts.append(line(f"PyTorch cross-check of {len(checked):,} checks -> {word}", style))
        for result, verdict in zip(report.results, report.verdicts):
            if verdict is not None and verdict.agrees is False:
                parts.append(line(f"  {result.check.name}: {verdict.detail}", "bold red"))
    return Group(*parts)


def _expectations(values: dict[str, Any]) -> str:
    """``out 256x256, rf 5, jump 0.25``: sizes in full, fields and jumps once when every dimension agrees."""
    def show(key: str, value: Any) -> str:
        if key in ("rf", "jump") and isinstance(value, tuple):
            return per_dim_text(value)
        return format_value(value)

    return ", ".join(f"{key} {show(key, value)}" for key, value in values.items()) or "-"


def check_table(report: CheckReport) -> PlainTable:
    """One row per check: name, what was expected, what came out, pass or fail (failures first beyond 200)."""
    table = PlainTable(f"convcalc check {report.source}")
    for name in ("check", "expected", "actual", "result"):
        table.add_column(name, overflow="fold")
    results = list(report.results)
    hidden = 0
    if len(results) > MAX_TABLE_ROWS:  # a large file: its failures (every result is in --json)
        shown = [r for r in results if not r.ok][:MAX_TABLE_ROWS]
        hidden, results = len(results) - len(shown), shown
    for result in results:
        verdict = Text("pass", style="green") if result.ok else Text("ERROR" if result.error else "FAIL",
                                                                     style="bold red")
        actual = _expectations(result.actual) if result.actual else result.message
        table.add_row(result.check.name, _expectations(result.expected), actual, verdict)
    if hidden:
        table.add_row("...", f"{hidden:,} more checks not shown (every one is in --json)", "", "")
    return table


def check_document(report: CheckReport) -> dict[str, Any]:
    """The ``convcalc.check/1`` JSON document (docs/architecture.md)."""
    results = []
    for i, result in enumerate(report.results):
        entry = {"name": result.check.name, "ok": result.ok, **({"error": True} if result.error else {}),
                 "file": result.check.file, "line": result.line,
                 "expected": {k: json_value(v) for k, v in result.expected.items()},
                 "actual": {k: json_value(v) for k, v in result.actual.items()}, "message": result.message}
        if report.verdicts is not None and report.verdicts[i] is not None:
            entry["verify"] = {"agrees": report.verdicts[i].agrees, "detail": report.verdicts[i].detail}
        results.append(entry)
    return {"schema": "convcalc.check/1", "passed": report.passed, "failed": report.failed,
            "results": results}


def junit_xml(report: CheckReport) -> str:
    """A JUnit XML report: one testcase per check, a failure element for each failing one."""
    from xml.etree import ElementTree

    suites = ElementTree.Element("testsuites")
    errors = sum(r.error for r in report.results)
    suite = ElementTree.SubElement(suites, "testsuite", name="convcalc check", tests=str(len(report.results)),
                                   failures=str(report.failed - errors), errors=str(errors), skipped="0")
    for result in report.results:
        where = {"file": result.check.file or "", "line": str(result.line)} if result.line is not None else {}
        case = ElementTree.SubElement(suite, "testcase", classname=result.check.file or report.source,
                                      name=result.check.name, **where)
        if result.error:
            error = ElementTree.SubElement(case, "error", message=result.message, type="CheckNotComputed")
            error.text = f"layers: {result.check.layers}\n{result.message}"
        elif not result.ok:
            failure = ElementTree.SubElement(case, "failure", message=result.message, type="ShapeCheckFailed")
            failure.text = (f"layers: {result.check.layers}\nexpected: {_expectations(result.expected)}\n"
                            f"actual: {_expectations(result.actual)}\n{result.message}")
    ElementTree.indent(suites)
    return ElementTree.tostring(suites, encoding="unicode", xml_declaration=True) + "\n"


def github_annotations(report: CheckReport, stream: Any) -> None:
    """GitHub Actions workflow commands: one ``::error`` per failing or erroring check, at its line."""
    def escape(text: str, property_value: bool = False) -> str:
        text = text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
        return text.replace(":", "%3A").replace(",", "%2C") if property_value else text

    for result in report.results:
        if result.ok:
            continue
        where = f"file={escape(result.check.file or '', True)}"
        if result.line is not None:
            where += f",line={result.line}"
        stream.write(f"::error {where},title={escape('convcalc check', True)}::"
                     f"{escape(result.check.name + ': ' + result.message)}\n")


def print_line(text: str) -> None:
    """One plain line on stderr (what --update changed), verbatim."""
    from .common import console

    console(stderr=True).print(line(text, "yellow"), soft_wrap=True)
