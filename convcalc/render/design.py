"""``convcalc design``: the best schedule and why it has no holes, the runners-up, the well-known
schedules beside them; and the ``convcalc.design/1`` document (docs/architecture.md, "JSON")."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rich.console import Group

from ..gridding import path_counts
from ..reports import short_rates
from .common import PlainTable, line
from .gridding import MAP_LIMIT, coverage_map

if TYPE_CHECKING:
    from ..design import Design, Reference, Schedule
    from ..reports import DesignReport


def design_view(report: DesignReport) -> Group:
    """The question, the answer and its proof, the runners-up and the well-known schedules."""
    d = report.design
    parts: list[Any] = [line(_question(d), "bold")]
    if d.found:
        best = d.schedules[0]
        optimal = ("optimal: the search was complete" if d.optimal else
                   "the best found: the search stopped at its budget, so it is not proved optimal")
        parts.append(line(f"best: rates {short_rates(best.rates)} -> receptive field {best.receptive_field:,}, "
                          f"no holes; {optimal}", "bold green"))
        if d.target_rf is None:
            saw = (f"; an HDC sawtooth reaches it too: {short_rates(d.sawtooth)}" if d.sawtooth else
                   "; no HDC sawtooth of 1,b,c groups reaches it")
            parts.append(line(f"the largest field {d.layers} layers can cover: {d.largest_field:,}{saw}"))
        parts += _proof(best)
        parts += _schedules_table(d)
    parts += _references_table(d)
    return Group(*parts)


def _question(d: Design) -> str:
    constraints = [f"rates <= {d.max_rate}"] if d.max_rate is not None else []
    if d.map_size is not None:
        constraints.append(f"rates < the {d.map_size} map")
    if d.hdc:
        constraints.append(f"HDC's M_2 <= {d.kernel_size}")
    where = f", {', '.join(constraints)}" if constraints else ""
    if d.target_rf is None:
        goal = f"the largest field of {d.layers} layers"
    else:
        count = (f"{d.layers} layers" if d.layers_given else
                 f"fewest layers: {d.layers}" if d.layers is not None else "fewest layers")
        goal = f"receptive field >= {d.target_rf:,}, {count}"
    return f"{d.kernel_size}-tap dilated convolutions (stride 1){where}: {goal}"


def _proof(best: Schedule) -> list[Any]:
    """Why the schedule has no holes: each rate within the covering bound; HDC's M_i beside it."""
    k = best.kernel_size
    table = PlainTable()
    for name in ("i", "r_i", "bound", "M_i"):
        table.add_column(name, justify="right")
    before = 0
    for i, (rate, m) in enumerate(zip(best.rates, best.hdc.M), 1):
        table.add_row(str(i), str(rate), str(1 + (k - 1) * before), str(m) if i > 1 else "-")
        before += rate
    parts: list[Any] = [line(f"why no holes: r_1 = 1 and each r_i <= bound = 1 + {k - 1} x (sum of the rates before "
                             f"it); M_i: HDC"), table]
    if best.receptive_field <= MAP_LIMIT:
        parts += coverage_map(path_counts([(r, k) for r in best.rates]))
    return parts


def _schedules_table(d: Design) -> list[Any]:
    table = PlainTable()
    for name in ("#", "rates", "rf", "largest", "sum", "M_2"):
        table.add_column(name, justify="left" if name == "rates" else "right")
    for i, s in enumerate(d.schedules, 1):
        table.add_row(str(i), short_rates(s.rates), f"{s.receptive_field:,}", str(max(s.rates)), str(sum(s.rates)),
                      _m2(s))
    caption = f"the first {len(d.schedules)} schedules in order: largest rate, then sum, then the rates"
    return [line(caption), table]


def _m2(s: Schedule) -> str:
    m2 = s.hdc.M2
    return "-" if m2 is None else f"{m2} {'<=' if m2 <= s.kernel_size else '>'} {s.kernel_size}"


def _references_table(d: Design) -> list[Any]:
    layers = d.layers or (len(d.schedules[0].rates) if d.schedules else 3)
    table = PlainTable()
    for name in ("schedule", "rates", "rf", "holes", "M_2", "verdict"):
        table.add_column(name, justify="left" if name in ("schedule", "rates", "verdict") else "right")
    for r in d.references:
        s = r.schedule
        table.add_row(r.name, short_rates(s.rates), f"{s.receptive_field:,}",
                      "?" if s.holes is None else f"{s.holes:,}", _m2(s), "; ".join(r.problems) or "qualifies")
    return [line(f"well-known schedules at {layers} layers, judged by the same rules:"), table]


def _schedule_json(s: Schedule) -> dict[str, Any]:
    return {"rates": list(s.rates), "receptive_field": s.receptive_field, "holes": s.holes,
            "hdc_M2": s.hdc.M2, "hdc_ok": s.hdc.ok}


def _reference_json(r: Reference) -> dict[str, Any]:
    return {"name": r.name, **_schedule_json(r.schedule), "problems": list(r.problems)}


def design_document(report: DesignReport) -> dict[str, Any]:
    """The ``convcalc.design/1`` JSON document (docs/architecture.md)."""
    d = report.design
    return {
        "schema": "convcalc.design/1",
        "kernel_size": d.kernel_size,
        "target_rf": d.target_rf,
        "layers": d.layers,
        "map": d.map_size,
        "max_rate": d.max_rate,
        "hdc": d.hdc,
        "optimal": d.optimal,
        "largest_field": d.largest_field,
        "sawtooth": list(d.sawtooth) if d.sawtooth else None,
        "schedules": [_schedule_json(s) for s in d.schedules],
        "references": [_reference_json(r) for r in d.references],
    }
