"""What every command's renderer shares: the consoles, JSON output, unwrapped lines, exact numbers and
torch's verdict lines. Formatting only: every value shown is computed by the core or a report."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from fractions import Fraction
from typing import TYPE_CHECKING, Any

from rich.cells import cell_len
from rich.console import Console, Group
from rich.measure import Measurement
from rich.table import Table
from rich.text import Text

from ..errors import visible
from ..reports import byte_size, sizes

if TYPE_CHECKING:
    from ..periodic import UnitField
    from ..torchcheck import TorchAnswer, Verdict
    from ..torchmeasure import MeasuredField

__all__ = ["MAX_TABLE_ROWS", "agreement", "byte_size", "collapsed", "console", "dumps", "json_number",
           "json_value", "line", "measured_document", "measured_lines", "number", "once_per_distinct_dim",
           "per_dim_text", "print_error", "print_json", "run_notes", "sizes", "spans", "verify_document",
           "verify_lines"]

def console(stderr: bool = False) -> Console:
    """A console on the current stdout/stderr (so that test runners capturing them see the output).

    Piped output is never wrapped: a pipe has no width, so tables are as wide as their cells.
    """
    stream = sys.stderr if stderr else sys.stdout
    piped = not (hasattr(stream, "isatty") and stream.isatty())
    return Console(stderr=stderr, highlight=False, width=PIPE_WIDTH if piped else None)


PIPE_WIDTH = 100_000


def print_view(view: Any, out: Console | None = None) -> None:
    """Print a command's view. On a terminal it fits the width: text (names, reasons, notes, specs) wraps
    at word boundaries inside its cell or line, while numbers, sizes and shapes never break; only where
    the unbreakable parts alone are wider than the terminal is the view printed at its natural width
    (the terminal then folds the long lines). Piped output has no width: never wrapped."""
    out = out or console()
    if out.width >= PIPE_WIDTH:  # piped: whole lines, without the spaces that pad table cells at their ends
        with out.capture() as captured:
            out.print(view, crop=False)
        out.file.write("\n".join(line.rstrip() for line in captured.get().split("\n")))
        return
    if minimum_width(view) > out.width:  # a frameless layout first: columns apart by two spaces
        for table in _tables(view):
            table.compact()
    if minimum_width(view) <= out.width:
        for table in _tables(view):
            table.fit(out.width)
    else:
        for table in _tables(view):
            table.compact(False)
        needed = Measurement.get(out, out.options.update_width(PIPE_WIDTH), view).maximum
        out = Console(file=out.file, highlight=False, width=needed, color_system=out.color_system,
                      force_terminal=out.is_terminal)
    out.print(view, crop=False)


def minimum_width(view: Any) -> int:
    """The narrowest width ``view`` prints at without breaking a word, a number or a no-wrap cell."""
    if isinstance(view, Group):
        return max((minimum_width(part) for part in view.renderables), default=0)
    if isinstance(view, PlainTable):
        return view.minimum_width()
    if isinstance(view, Text):
        return _text_width(view, bool(view.no_wrap))
    if isinstance(view, str):
        return max((cell_len(word) for word in view.split()), default=0)
    return 0


def _tables(view: Any) -> list[PlainTable]:
    if isinstance(view, Group):
        return [table for part in view.renderables for table in _tables(part)]
    return [view] if isinstance(view, PlainTable) else []


def _text_width(text: Text, whole: bool) -> int:
    """The widest line of ``text`` (``whole``), or its longest word (text that may wrap)."""
    plain = text.plain
    parts = plain.splitlines() if whole else plain.split()
    return max((cell_len(part) for part in parts), default=0)


class PlainTable(Table):
    """A rich Table whose title and cells are plain text: user text (names, paths, specs) is shown
    verbatim, never read as markup, with control characters escaped. Right-aligned columns (numbers,
    sizes) never wrap; left-aligned ones (names, reasons) wrap at word boundaries when the table must
    fit a terminal (:meth:`fit`)."""

    def __init__(self, title: str | None = None, **options: Any):
        super().__init__(**options)
        # The title is a line of its own, as wide as the console (a table's own title wraps at the table's
        # width): piped it never wraps, on a terminal it wraps at words.
        self.heading = Text(visible(title), overflow="fold") if title is not None else None

    def __rich_console__(self, console: Any, options: Any) -> Any:
        if self.heading is not None:
            yield self.heading
        yield from super().__rich_console__(console, options)

    def __rich_measure__(self, console: Any, options: Any) -> Measurement:
        measured = super().__rich_measure__(console, options)
        if self.heading is None:
            return measured
        return Measurement(measured.minimum, max(measured.maximum, self.heading.cell_len))

    def add_column(self, header: str = "", **options: Any) -> None:  # type: ignore[override]
        options.setdefault("no_wrap", options.get("justify") == "right")
        options.setdefault("overflow", "fold")
        super().add_column(Text(header), **options)

    def add_row(self, *cells: Any, **options: Any) -> None:  # type: ignore[override]
        super().add_row(*(Text(visible(c)) if isinstance(c, str) else c for c in cells), **options)

    def compact(self, on: bool = True) -> None:
        """Without the box, its edges and its outer padding (``on``), or back to the boxed table."""
        if on:
            self._boxed = (self.box, self.show_edge, self.pad_edge, self.header_style)
            self.box, self.show_edge, self.pad_edge, self.header_style = None, False, False, "bold underline"
        elif hasattr(self, "_boxed"):
            self.box, self.show_edge, self.pad_edge, self.header_style = self._boxed

    def _column_widths(self) -> list[tuple[int, int]]:
        """Per column, (narrowest, natural) width of its content: a no-wrap column's narrowest is its
        natural width, a wrapping column's its longest word."""
        widths = []
        for column in self.columns:
            texts = [c if isinstance(c, Text) else Text(str(c)) for c in (column.header, *column.cells)]
            natural = max((_text_width(t, True) for t in texts), default=0)
            narrow = natural if column.no_wrap else max((_text_width(t, False) for t in texts), default=0)
            widths.append((max(narrow, 1), max(natural, 1)))
        return widths

    def _frame_width(self) -> int:
        return self._extra_width + sum(self._get_padding_width(i) for i in range(len(self.columns)))

    def minimum_width(self) -> int:
        title = _text_width(self.heading, False) if self.heading is not None else 0
        return max(title, self._frame_width() + sum(narrow for narrow, _ in self._column_widths()))

    def fit(self, width: int) -> None:
        """Fix the column widths so that the table is at most ``width`` wide: wrapping columns start at
        their longest word and share what is left, up to their natural width (none breaks a word)."""
        widths = self._column_widths()
        if self._frame_width() + sum(natural for _, natural in widths) <= width:
            return
        assigned = [narrow for narrow, _ in widths]
        spare = width - self._frame_width() - sum(assigned)
        while spare > 0:
            short = [i for i, (_, natural) in enumerate(widths) if assigned[i] < natural]
            if not short:
                break
            for i in short[:spare]:
                assigned[i] += 1
            spare -= min(len(short), spare)
        for column, value in zip(self.columns, assigned):
            column.width = value


def plain_text(view: Any) -> str:
    """A view as plain text, no colours, never wrapped: for assertion messages and test reports."""
    from io import StringIO

    buffer = StringIO()
    Console(file=buffer, width=PIPE_WIDTH, color_system=None, highlight=False).print(view, crop=False)
    return "\n".join(line.rstrip() for line in buffer.getvalue().splitlines()) + "\n"


def print_json(document: dict[str, Any]) -> None:
    """Exactly one JSON object on stdout, nothing else."""
    sys.stdout.write(dumps(document) + "\n")


def dumps(value: Any, indent: str = "") -> str:
    """JSON indented by two spaces, with lists of plain values and flat objects kept on one line."""
    inner = indent + "  "
    if isinstance(value, dict) and value and not all(map(_flat, value.values())) or \
            isinstance(value, dict) and indent == "":
        items = [f"{inner}{json.dumps(str(k))}: {dumps(v, inner)}" for k, v in value.items()]
        return "{\n" + ",\n".join(items) + f"\n{indent}}}"
    if isinstance(value, list) and not all(map(_flat, value)):
        items = [inner + dumps(v, inner) for v in value]
        return "[\n" + ",\n".join(items) + f"\n{indent}]"
    if isinstance(value, ExactNumber):
        return str(value)
    if not _has_exact(value):
        return json.dumps(value)
    if isinstance(value, list):  # on one line, as json.dumps writes it
        return "[" + ", ".join(dumps(v, inner) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{json.dumps(str(k))}: {dumps(v, inner)}" for k, v in value.items()) + "}"
    return json.dumps(value)


def _has_exact(value: Any) -> bool:
    kind = type(value)
    if kind is ExactNumber:
        return True
    if kind is list:
        return any(_has_exact(v) for v in value if type(v) in (list, dict, ExactNumber))
    if kind is dict:
        return any(_has_exact(v) for v in value.values() if type(v) in (list, dict, ExactNumber))
    return False


def _flat(value: Any) -> bool:
    """A value that fits on one line: no objects inside, or an object of plain values and lists."""
    if isinstance(value, dict):
        return all(not isinstance(v, (dict, list)) or (isinstance(v, list) and all(map(_plain, v)))
                   for v in value.values())
    if isinstance(value, list):
        return all(map(_plain, value))
    return True


def _plain(value: Any) -> bool:
    return not isinstance(value, dict) and (not isinstance(value, list) or all(map(_plain, value)))


def print_error(message: str, detail: str | None = None) -> None:
    """One red line on stderr naming the problem, and for bad text the text with a caret under it."""
    err = console(stderr=True)
    err.print(Text(f"error: {visible(message)}", style="bold red"), soft_wrap=True)
    if detail:
        err.print(Text(detail), soft_wrap=True)


def print_note(message: str) -> None:
    """A yellow note on stderr (stdout keeps only the view or the JSON document)."""
    console(stderr=True).print(Text(f"note: {visible(message)}", style="yellow"), soft_wrap=True)


def line(text: str, style: str | None = None) -> Text:
    """A line of text: on a terminal it wraps at word boundaries (a number or a size is one word and
    never breaks); piped, it is never wrapped."""
    return Text(visible(text), style=style or "", overflow="fold")


def once_per_distinct_dim(lines: list[str]) -> list[str]:
    """One line when every dimension says the same, else each line labelled with its dimension."""
    if len(set(lines)) == 1:
        return lines[:1]
    return [f"dim {i + 1}: {line}" for i, line in enumerate(lines)]


def verify_lines(answer: TorchAnswer | None, verdict: Verdict | None, ours: str) -> list[Text]:
    """What torch said, then our answer and the verdict, then any notes."""
    if answer is None or verdict is None:
        return []
    if answer.out is None and answer.error is None:  # torch was not asked: it cannot hold the sizes
        return [line(f"PyTorch {answer.version}: not checked: {answer.note}", "yellow")]
    how = "eager" if answer.eager else "meta device"
    theirs = sizes(answer.out) if answer.out is not None else f"rejects it: {answer.error}"
    if answer.out_shape is not None and "parameters" in ours:
        theirs = f"{sizes(answer.out_shape)}, {answer.params:,} parameters"
    word, style = agreement(verdict.agrees)
    lines = [line(f"PyTorch {answer.version} ({answer.device}, {how}): {theirs}"),
             line(f"convcalc: {ours} -> {word}", style)]
    return lines + [line(f"note: {note}", "yellow") for note in run_notes(answer, verdict)]


def run_notes(answer: TorchAnswer, verdict: Verdict) -> list[str]:
    """torch's note on the run and the verdict's caveat, each once."""
    return list(dict.fromkeys(note for note in (answer.note, verdict.caveat) if note))


def agreement(agrees: bool, word: str = "agrees") -> tuple[str, str]:
    """The word and style of a torch cross-check's verdict."""
    return (word, "green") if agrees else ("DISAGREES", "bold red")


def verify_document(answer: TorchAnswer, verdict: Verdict, channels: bool = False) -> dict[str, Any]:
    """The ``verify`` object: torch's version, device and answer, and whether it agrees; with
    ``channels`` also torch's full output shape and parameter count."""
    doc = {
        "torch": answer.version,
        "device": answer.device,
        "eager": answer.eager,
        "out": list(answer.out) if answer.out is not None else None,
        "error": answer.error,
        "agrees": verdict.agrees,
        "note": " ".join(run_notes(answer, verdict)) or None,
    }
    if channels:
        doc["out_shape"] = list(answer.out_shape) if answer.out_shape is not None else None
        doc["params"] = answer.params
    return doc


MAX_TABLE_ROWS = 200  # longer tables show their head and tail (JSON keeps every row)


def number(value: Fraction | int) -> str:
    """An exact number for people: ``8``, ``15.5``, ``100000000.5``, ``1/3``."""
    value = Fraction(value)
    if value.denominator == 1:
        return str(value.numerator)
    return exact_decimal(value) or f"{value.numerator}/{value.denominator}"


def exact_decimal(value: Fraction) -> str | None:
    """``value`` as a finite decimal (``0.25``, ``-7.5``), or None where it has none (``1/3``)."""
    twos = fives = 0
    rest = value.denominator
    while rest % 2 == 0:
        rest, twos = rest // 2, twos + 1
    while rest % 5 == 0:
        rest, fives = rest // 5, fives + 1
    if rest != 1 or max(twos, fives) > 1000:
        return None
    places = max(twos, fives)
    scaled = abs(value.numerator) * 10**places // value.denominator
    whole, fraction = divmod(scaled, 10**places)
    digits = str(fraction).rjust(places, "0").rstrip("0")
    return f"{'-' if value < 0 else ''}{whole}" + (f".{digits}" if digits else "")


class ExactNumber(str):
    """A JSON number written exactly as this text (``dumps`` writes it without quotes)."""


def json_number(value: Fraction | int) -> int | float | ExactNumber:
    """An int where the value is whole, the exact decimal where it has one (``0.5``, ``50000000.5``),
    else the nearest float (``1/3``; the text view keeps the fraction)."""
    value = Fraction(value)
    if value.denominator == 1:
        return value.numerator
    decimal = exact_decimal(value)
    return ExactNumber(decimal) if decimal is not None else float(value)


def per_dim_text(values: Sequence[Fraction | int]) -> str:
    """One value when every dimension agrees, else ``a x b``."""
    return collapsed([number(v) for v in values])


def collapsed(texts: Sequence[str]) -> str:
    return texts[0] if len(set(texts)) == 1 else "x".join(texts)


def spans(fields: Sequence[UnitField]) -> str:
    """Where a unit's field lies and its holes: one text when every dimension agrees, else one per dimension."""
    texts = [f"[{f.first}, {f.last}] rf {f.receptive_field}, {f.holes} holes" for f in fields]
    return texts[0] if len(set(texts)) == 1 else "; ".join(f"dim {i}: {t}" for i, t in enumerate(texts, 1))


def measured_lines(measured: MeasuredField) -> list[Text]:
    """The gradient measurement beside the computed field."""
    word, style = agreement(measured.agrees)
    how = " (one dimension at a time)" if measured.per_dimension else ""
    return [line(f"PyTorch {measured.version} gradient of output unit {', '.join(map(str, measured.unit))} on a "
                 f"{sizes(measured.in_size)} input{how}: {spans(measured.measured)}, out "
                 f"{sizes(measured.measured_out)}"),
            line(f"convcalc: {spans(measured.predicted)}, out {sizes(measured.predicted_out)} -> {word}", style)]


def measured_document(measured: MeasuredField) -> dict[str, Any]:
    """The gradient measurement as JSON: what torch's gradient showed, what convcalc computed."""
    def fields(values: Sequence[UnitField]) -> dict[str, list[int]]:
        return {"first": [f.first for f in values], "last": [f.last for f in values],
                "receptive_field": [f.receptive_field for f in values], "holes": [f.holes for f in values]}

    return {"torch": measured.version, "in": list(measured.in_size), "unit": list(measured.unit),
            "measured": fields(measured.measured), "computed": fields(measured.predicted),
            "agrees": measured.agrees}


def json_value(value: Any) -> Any:
    if isinstance(value, tuple):
        return [json_value(v) for v in value]
    if isinstance(value, Fraction):
        return json_number(value)
    return value
