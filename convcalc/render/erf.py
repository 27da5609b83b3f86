"""``convcalc erf``: the effective field beside the theoretical one, its spread and the windows holding
its mass, drawn as bars and a shaded map; the ``convcalc.erf/1`` document; and, for a model, the PNG
heatmap (matplotlib, imported on that path only). docs/erf.md says what each number means."""

from __future__ import annotations

import math
from collections.abc import Sequence
from fractions import Fraction
from typing import TYPE_CHECKING, Any

from rich.console import Group
from rich.text import Text

from ..erf import AREA_THRESHOLDS, MASSES
from .common import PlainTable, collapsed, line, number, sizes

if TYPE_CHECKING:
    from ..erf import Profile, StackErf
    from ..reports import ErfReport

SHADES = ((Fraction(1, 2), "█"), (Fraction(1, 8), "▓"), (Fraction(1, 32), "▒"), (Fraction(0), "░"))  # over this share
LEGEND = "shades: █ over 1/2 of the largest, ▓ over 1/8, ▒ over 1/32, ░ less; · zero (a hole)"
BAR_WIDTH = 40
MAX_ROWS = 41  # offsets drawn one by one up to this many, else summed in groups
MAP_CELLS = 64  # widest map drawn


def erf_view(report: ErfReport) -> Group:
    return _stack_view(report) if report.stack is not None else _model_view(report)


def _percent(part: float, whole: float) -> str:
    share = 100 * part / whole if whole else 0
    return f"{share:.3g}%" if share < 100 else "100%"


def _stack_view(report: ErfReport) -> Group:
    erf = report.stack
    assert erf is not None
    parts: list[Any] = [line(f"effective receptive field of {report.spec} (every tap weighs 1, pooling included; an "
                             f"output unit far from the borders)", "bold")]
    table = PlainTable("per dimension: the spread of the contribution, and the shortest run of offsets holding "
                       "each share of it (its length, and that length over the theoretical field)")
    table.add_column("dim", justify="right")
    table.add_column("theoretical", justify="right")
    table.add_column("holes", justify="right")
    table.add_column("std", justify="right")
    for mass in MASSES:
        table.add_column(f"{_share(mass)}", justify="right")
    rows = [_stack_row(p) for p in erf.profiles]
    if len(set(map(tuple, rows))) == 1:
        rows = [["all", *rows[0][1:]]]
    for row in rows:
        table.add_row(*row)
    parts.append(table)
    formula = [p.formula_variance for p in erf.profiles]
    if all(v is not None for v in formula):
        texts = collapsed([f"sqrt({number(v)})" for v in formula if v is not None])  # type: ignore[arg-type]
        parts.append(line(f"std = sqrt(sum over layers of J^2 d^2 (k^2 - 1) / 12) = {texts}, J the product of the "
                          f"strides before the layer (Luo et al. 2016: sqrt(2n/3) for n 3x3 layers)", "dim"))
    else:
        parts.append(line("transposed convolutions: the profile of the output unit with the widest field; its "
                          "spread is computed from the profile itself", "dim"))
    seen: list[Profile] = []
    for d, profile in enumerate(erf.profiles):
        if profile in seen:
            continue
        seen.append(profile)
        label = "every dimension" if erf.profiles.count(profile) == erf.dims else f"dim {d + 1}"
        parts += profile_bars(profile, label)
    if erf.dims == 2:
        parts += stack_map(erf)
    elif erf.dims == 3:
        parts.append(line("3-d: the map is the product of the three profiles (--json lists each)", "dim"))
    return Group(*parts)


def _share(mass: Fraction) -> str:
    return f"{number(mass * 100)}%"


def _stack_row(p: Profile) -> list[str]:
    exact = p.variance
    std = f"{p.std:.4g}" if exact.denominator != 1 or math.isqrt(exact.numerator) ** 2 != exact.numerator else \
        str(math.isqrt(exact.numerator))
    windows = [p.mass_window(m) for m in MASSES]
    return ["", f"{p.receptive_field:,}", f"{p.holes:,}", std,
            *[f"{w:,} ({_percent(w, p.receptive_field)})" for w in windows]]


def profile_bars(profile: Profile, label: str) -> list[Any]:
    """One bar per offset from the field's centre (or per group of offsets, summed, for wide fields)."""
    counts = profile.counts
    group = max(1, math.ceil(len(counts) / MAX_ROWS))
    sums = [sum(counts[i:i + group]) for i in range(0, len(counts), group)]
    top, total = max(sums), sum(counts)
    centre = Fraction(len(counts) - 1, 2)
    how = "" if group == 1 else f", {group} offsets a row (their sum)"
    lines: list[Any] = [line(f"contribution per offset from the centre, {label}{how}:", "bold")]
    labels = [number(Fraction(i) - centre) for i in range(0, len(counts), group)]
    width = max(map(len, labels))
    for text, value in zip(labels, sums):
        bar = Text(f"{text:>{width}} ", no_wrap=True, overflow="ignore")
        eighths = max(1, round(8 * BAR_WIDTH * value / top)) if value else 0
        bar.append("█" * (eighths // 8) + " ▏▎▍▌▋▊▉"[eighths % 8].strip() if value else "·", style="cyan")
        bar.append(f" {_percent(value, total)}", style="dim")
        lines.append(bar)
    return lines


def stack_map(erf: StackErf) -> list[Any]:
    """The 2-d map, the product of the two profiles, shaded; holes show as dots."""
    rows, cols = erf.profiles[0].counts, erf.profiles[1].counts
    grid = [[r * c for c in cols] for r in rows]
    return shaded_map(grid, "the 2-d map (rows: dim 1, columns: dim 2), each cell's share of the largest",
                      log_scale=False)


def shaded_map(grid: Sequence[Sequence[float]], title: str, log_scale: bool,
               box: tuple[tuple[int, int], ...] | None = None) -> list[Any]:
    """A map drawn in at most MAP_CELLS columns (two characters a cell where it fits), each character
    the mean of a block of positions, shaded by its share of the largest (SHADES; "·": zero); ``log_scale``
    shades ``log10(1 + value)``, as the papers' heatmaps do; a ``box`` (first, last per dimension) is
    drawn as its corners."""
    h, w = len(grid), len(grid[0])
    double = w <= MAP_CELLS // 2
    step_x = max(1, math.ceil(w / (MAP_CELLS // 2 if double else MAP_CELLS)))
    step_y = max(1, step_x * (1 if double else 2))
    cells = []
    for y0 in range(0, h, step_y):
        row = []
        for x0 in range(0, w, step_x):
            block = [grid[y][x] for y in range(y0, min(h, y0 + step_y)) for x in range(x0, min(w, x0 + step_x))]
            mean = sum(block) / len(block)
            row.append(math.log10(1 + mean) if log_scale else mean)
        cells.append(row)
    top = max((v for row in cells for v in row), default=0)
    how = "" if step_x == step_y == 1 else f"; a character is the mean of {step_y}x{step_x} positions"
    scale = ", log10(1 + value)" if log_scale else ""
    parts: list[Any] = [line(f"{title}{scale}{how}:", "bold")]
    corners = set()
    if box is not None:
        (y_first, y_last), (x_first, x_last) = box
        corners = {(y // step_y, x // step_x) for y in (y_first, y_last) for x in (x_first, x_last)}
    for r, row in enumerate(cells):
        text = Text(no_wrap=True, overflow="ignore")
        for c, value in enumerate(row):
            char = "·" if value <= 0 or top <= 0 else next(c for share, c in SHADES if value > share * top)
            if (r, c) in corners:
                text.append("+" * (2 if double else 1), style="bold red")
            else:
                text.append(char * (2 if double else 1), style="green")
        parts.append(text)
    parts.append(line(LEGEND + ("; + the theoretical field's corners" if box is not None else ""), "dim"))
    return parts


def _model_view(report: ErfReport) -> Group:
    m = report.measured
    assert m is not None and report.area_ratio is not None and report.mass_window is not None
    how = {"replknet": "RepLKNet's method: relu of the centre unit, relu of its input gradient, summed over channels",
           "abs": "Luo et al.'s method: the absolute input gradient of the centre unit, summed over channels"}[m.method]
    plural = "" if m.samples == 1 else "s"
    source = {"noise": f"{m.samples:,} sample{plural} of standard normal noise",
              "images": f"{m.samples:,} image{plural}", "inputs": f"{m.samples:,} sample{plural} from the file"}[m.source]
    chosen = " (the output has no spatial map: the last node that has one)" if m.chosen else ""
    parts: list[Any] = [
        line(f"effective receptive field of {report.model} at {m.node}{chosen}"
             f"{'' if m.node == m.node_info.name else f' (its output: {m.node_info.name})'}", "bold"),
        line(f"centre unit {', '.join(map(str, m.unit))} of its {sizes(m.node_info.shape)} output, on "
             f"{sizes(report.input_shape)} inputs: {source}"),
        line(how, "dim"),
        line(f"theoretical receptive field: {_theoretical(m.node_info.fields)}"),
    ]
    if m.skipped:
        parts.append(line(f"note: {m.skipped:,} samples had a NaN gradient and were left out (as RepLKNet does)",
                          "yellow"))
    table = PlainTable("the smallest square centred on the unit holding more than t of the total")
    for name in ("t", "side (log map)", "area ratio", "side (raw map)"):
        table.add_column(name, justify="right")
    for t in AREA_THRESHOLDS:
        found, raw = report.area_ratio[t], report.mass_window[t]
        table.add_row(f"{t:g}", str(found[0]) if found else "-", f"{found[1]:.4f}" if found else "-",
                      str(raw[0]) if raw else "-")
    parts.append(table)
    parts.append(line("area ratio: RepLKNet's high-contribution area ratio (the map as log10(1 + m) scaled to 1; the "
                      "square's area over H x W); '-': no square up to the input's size holds that share", "dim"))
    from ..graph.erf import unit_box

    box = unit_box(m.node_info, m.unit, report.input_shape[2:])
    parts += shaded_map(m.map, "the mean contribution of each input position", log_scale=True,
                        box=box if isinstance(box, tuple) else None)
    if report.png:
        parts.append(line(f"heatmap written to {report.png}"))
    return Group(*parts)


def _theoretical(fields: Sequence[Any]) -> str:
    from ..graph.fields import FieldState

    if fields and all(f is FieldState.GLOBAL for f in fields):
        return "global (every input position)"
    if not fields or any(isinstance(f, FieldState) for f in fields):
        return "unknown"
    return f"{collapsed([str(f.receptive_field) for f in fields])}, jump {collapsed([number(f.jump) for f in fields])}"


def erf_document(report: ErfReport) -> dict[str, Any]:
    """The ``convcalc.erf/1`` document (docs/json.md): a stack's exact profiles or a model's map."""
    if report.stack is not None:
        erf = report.stack
        return {"schema": "convcalc.erf/1", "layers": report.spec, "dims": erf.dims,
                "receptive_field": list(erf.receptive_field),
                "profile": [list(p.counts) for p in erf.profiles],
                "std": [p.std for p in erf.profiles],
                "variance": [number(p.variance) for p in erf.profiles],
                "holes": [p.holes for p in erf.profiles],
                "mass_window": {_key(m): [p.mass_window(m) for p in erf.profiles] for m in MASSES}}
    m = report.measured
    assert m is not None and report.area_ratio is not None and report.mass_window is not None
    from ..graph.erf import unit_box
    from ..graph.fields import field_values

    box = unit_box(m.node_info, m.unit, report.input_shape[2:])
    rf = field_values(m.node_info.fields, "rf")
    return {"schema": "convcalc.erf/1", "model": report.model, "input": list(report.input_shape), "node": m.node,
            "unit": list(m.unit), "samples": m.samples, "source": m.source, "method": m.method,
            "skipped": m.skipped,
            "receptive_field": list(rf) if isinstance(rf, tuple) else rf,
            "field_box": [list(b) for b in box] if isinstance(box, tuple) else None,
            "area_ratio": {f"{t:g}": (report.area_ratio[t][1] if report.area_ratio[t] else None)
                           for t in AREA_THRESHOLDS},
            "area_side": {f"{t:g}": (report.area_ratio[t][0] if report.area_ratio[t] else None)
                          for t in AREA_THRESHOLDS},
            "mass_window": {f"{t:g}": (report.mass_window[t][0] if report.mass_window[t] else None)
                            for t in AREA_THRESHOLDS},
            "map": m.map}


def _key(mass: Fraction) -> str:
    return f"{float(mass):g}"


def write_png(report: ErfReport, path: str) -> None:
    """The heatmap of ``log10(1 + m)`` scaled to 1 (as RepLKNet draws it), a colour bar, and the
    theoretical field's box; matplotlib (the ``plot`` extra) is imported here only."""
    from ..errors import ConvcalcError

    m = report.measured
    assert m is not None
    try:
        import matplotlib
    except ImportError:
        raise ConvcalcError('--png needs matplotlib: pip install "convcalc[plot]"') from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    from ..graph.erf import unit_box

    top = max(math.log10(1 + v) for row in m.map for v in row) or 1.0
    scaled = [[math.log10(1 + v) / top for v in row] for row in m.map]
    figure, axes = plt.subplots(figsize=(6.4, 5.6), dpi=100)
    image = axes.imshow(scaled, cmap="RdYlGn", vmin=0, vmax=1, interpolation="nearest")
    figure.colorbar(image, ax=axes, label="log10(1 + contribution), scaled to 1")
    box = unit_box(m.node_info, m.unit, report.input_shape[2:])
    if isinstance(box, tuple):
        (y0, y1), (x0, x1) = box
        axes.add_patch(Rectangle((x0 - 0.5, y0 - 0.5), x1 - x0 + 1, y1 - y0 + 1, fill=False, edgecolor="black",
                                 linewidth=1.5, linestyle="--", label="theoretical field"))
        axes.legend(loc="upper right", fontsize=8)
    axes.set_title(f"{report.model} at {m.node}: effective receptive field", fontsize=9)
    axes.set_xticks([])
    axes.set_yticks([])
    try:
        figure.savefig(path, bbox_inches="tight")
    except (OSError, ValueError) as exc:
        raise ConvcalcError(f"cannot write {path!r}: {getattr(exc, 'strerror', None) or exc}") from None
    finally:
        plt.close(figure)
