"""What each command found, with its verdicts: pure data between the core and the renderer.

Data flows one way (docs/architecture.md, "Architecture"): the CLI parses options and calls the core; the
core's results and torch's answers are gathered here, each report deciding what its command's verdict
is (``rejection``: input PyTorch rejects, exit 2; ``failure``: an expectation or check that failed,
exit 1; ``disagrees``: torch disagreed, exit 3); the renderer only formats. Nothing here imports
typer, rich or torch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, NamedTuple, Protocol

from .gridding import FieldTooWide
from .layer import format_size

if TYPE_CHECKING:  # the calculator path loads none of these here: they are imported where they are used
    from .aspp import Branch
    from .checks import CheckResult
    from .design import Design
    from .erf import StackErf
    from .memory import BatchSearch, StepMemory
    from .graph.memory_profile import MeasuredStep
    from .graph.erf import ModelErf
    from .solve import SolveResult
    from .sizes import SizeSweep
    from .cost import LayerCost
    from .gridding import Coverage, GriddingReport
    from .graph import Inspection, NodeInfo, NodeMeasurement
    from .graph.costs import ModelTotals
    from .layer import Layer
    from .receptive import StackField, UnitBox
    from .torchcheck import TorchAnswer, Verdict
    from .torchmeasure import CheckVerify, MeasuredField, TapCount

OK, FAILED, BAD_INPUT, DISAGREES, INTERNAL_ERROR = 0, 1, 2, 3, 4


class Verdicts(Protocol):
    """What every report says about itself."""

    @property
    def rejection(self) -> str | None: ...

    @property
    def failure(self) -> str | None: ...

    @property
    def disagrees(self) -> bool: ...


def exit_code(report: Verdicts) -> int:
    """The exit code of a report, most serious first (docs/json.md, "Exit codes")."""
    if report.disagrees:
        return DISAGREES
    if report.rejection:
        return BAD_INPUT
    return FAILED if report.failure else OK


def sizes(values: tuple[int, ...] | None) -> str:
    """``(256, 256)`` -> ``256x256``; None (a rejected layer has no output) -> ``rejected``."""
    return format_size(values) if values is not None else "rejected"


def byte_size(n: int) -> str:
    """``5.5 GiB (5,864,370,612 bytes)``: binary units and the exact count."""
    if n.bit_length() > 900:  # beyond what a float holds: the exact count only
        return f"{n:,} bytes"
    for unit, size in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= size:
            return f"{n / size:,.1f} {unit} ({n:,} bytes)"
    return f"{n:,} bytes"


# -- convcalc out ---------------------------------------------------------------------------------------

class OutReport(NamedTuple):
    """Everything ``convcalc out`` found: our answer (or rejection), and torch's when asked."""

    layer: Layer
    in_size: tuple[int, ...]
    out: tuple[int, ...] | None
    error: str | None = None
    expected: tuple[int, ...] | None = None
    answer: TorchAnswer | None = None
    verdict: Verdict | None = None
    cost: LayerCost | None = None
    shape: tuple[int, ...] | None = None  # N x C x spatial, with --shape
    output_size: tuple[int, ...] | None = None  # asked for a transposed conv (output_padding derived from it)
    hint: str | None = None  # the way out of a rejection (cli/hints.py)

    @property
    def comparable(self) -> tuple[int, ...] | None:
        """What an expected size is compared with: the full output shape when it was given as one."""
        if self.cost is not None and self.expected is not None and len(self.expected) == len(self.cost.out_shape):
            return self.cost.out_shape
        return self.out

    @property
    def rejection(self) -> str | None:
        if self.error is None:
            return None
        hint = f"; {self.hint}" if self.hint else ""
        return f"{self.layer.torch_name} rejects input {sizes(self.shape or self.in_size)}: {self.error}{hint}"

    @property
    def failure(self) -> str | None:
        if self.error is None and self.expected is not None and self.expected != self.comparable:
            return f"expected output {sizes(self.expected)}, got {sizes(self.comparable)}"
        return None

    @property
    def disagrees(self) -> bool:
        return self.verdict is not None and not self.verdict.agrees


# -- convcalc rf ----------------------------------------------------------------------------------------

class RfReport(NamedTuple):
    """What ``convcalc rf`` found: the stack's fields, and the extras asked for."""

    field: StackField
    unit: tuple[int, ...] | None = None
    boxes: tuple[UnitBox | None, ...] | None = None
    expected_rf: tuple[int, ...] | None = None
    answer: TorchAnswer | None = None
    verdict: Verdict | None = None
    measured: MeasuredField | None = None
    costs: tuple[LayerCost, ...] | None = None
    hint: str | None = None  # the way out of a rejection (cli/hints.py)

    @property
    def coverage(self) -> tuple[Coverage, ...] | str:
        """The stack's holes per dimension, or why they were not counted (a field too wide)."""
        return counted_coverage(self.field)

    @property
    def params(self) -> int:
        """Parameters of the whole stack (with ``--shape``)."""
        return sum(c.params for c in self.costs or ())

    @property
    def macs(self) -> int:
        """Multiply-accumulates of the whole stack for one forward pass of the batch (with ``--shape``)."""
        return sum(c.macs for c in self.costs or ())

    @property
    def rejection(self) -> str | None:
        if self.field.rejected is None:
            return None
        return self.field.rejected[1] + (f"; {self.hint}" if self.hint else "")

    @property
    def failure(self) -> str | None:
        if self.expected_rf is not None and self.expected_rf != self.field.receptive_field:
            return f"expected receptive field {sizes(self.expected_rf)}, got {sizes(self.field.receptive_field)}"
        return None

    @property
    def disagrees(self) -> bool:
        return (self.verdict is not None and not self.verdict.agrees) or \
            (self.measured is not None and not self.measured.agrees)


def counted_coverage(field: StackField) -> tuple[Coverage, ...] | str:
    """A stack's holes per dimension, or why they were not counted (a field too wide)."""
    try:
        return field.coverage
    except FieldTooWide as exc:
        return str(exc)


# -- convcalc gridding ----------------------------------------------------------------------------------

class RatesReport(NamedTuple):
    """What ``convcalc gridding`` found about a list of rates, and the torch measurement when asked."""

    analysis: GriddingReport
    runs: tuple[int, list[tuple[int, int]], int, list[tuple[int, int]]]
    measured: MeasuredField | None = None
    exit_zero: bool = False

    @property
    def rejection(self) -> str | None:
        return None

    @property
    def failure(self) -> str | None:
        if self.analysis.gridding and not self.exit_zero:
            return (f"the rates {short_rates(self.analysis.rates)} grid: {self.analysis.coverage.holes:,} holes "
                    f"per dimension")
        return None

    @property
    def disagrees(self) -> bool:
        return self.measured is not None and not self.measured.agrees


def short_rates(rates: tuple[int, ...] | list[int]) -> str:
    """A rate list for a message: in full up to 12 rates, else its start and its length."""
    if len(rates) <= 12:
        return ",".join(map(str, rates))
    return f"{','.join(map(str, rates[:6]))},... ({len(rates):,} rates)"


# -- convcalc aspp --------------------------------------------------------------------------------------

class AsppReport(NamedTuple):
    """The branches of ``convcalc aspp``, and torch's tap counts when asked."""

    branches: tuple[Branch, ...]
    counts: tuple[TapCount, ...] | None = None

    @property
    def agrees(self) -> bool:
        return self.counts is None or all(
            (t.all_taps_valid, t.only_center_valid, t.out) == (b.all_taps_valid, b.only_center_valid, b.out)
            for b, t in zip(self.branches, self.counts))

    rejection = None
    failure = None

    @property
    def disagrees(self) -> bool:
        return not self.agrees


# -- convcalc design -----------------------------------------------------------------------------------

class DesignReport(NamedTuple):
    """The schedules ``convcalc design`` found; failing when none satisfies the constraints."""

    design: Design

    rejection = None

    @property
    def failure(self) -> str | None:
        d = self.design
        if d.found:
            return None
        if d.target_rf is None:
            return f"no schedule of {d.layers} layers satisfies the constraints"
        layers = f"{d.layers} layers" if d.layers is not None else "at most 256 layers"
        closest = f"; the largest field reachable is {d.largest_field:,}" if d.largest_field is not None else ""
        return f"no schedule of {layers} reaches a receptive field of {d.target_rf:,}{closest}"

    disagrees = False


# -- convcalc solve ------------------------------------------------------------------------------------

class SolveReport(NamedTuple):
    """Every layer ``convcalc solve`` found, best first; failing when none fits."""

    result: SolveResult
    top: int = 10

    rejection = None

    @property
    def failure(self) -> str | None:
        return self.result.reason

    disagrees = False


# -- convcalc sizes (and inspect --sizes) ---------------------------------------------------------------

@dataclass(frozen=True)
class SizesReport:
    """A sweep of input sizes through a spec stack or a traced model; failing when none is accepted
    (under --same-size: when none keeps its size)."""

    sweep: SizeSweep
    subject: str  # the --layers spec, or the model
    input_shape: tuple[int, ...] | None = None  # models: --input, whose spatial sizes the sweep replaces
    axes: tuple[int, ...] = ()  # models: the tensor axes swept
    dims: int = 2  # stacks: spatial dimensions, each given the size
    convention: str = "torch"
    warnings: tuple[str, ...] = ()

    rejection = None
    disagrees = False

    @property
    def failure(self) -> str | None:
        s = self.sweep
        if s.wanted:
            return None
        if s.same_size and s.accepted:
            return f"no size in {s.low}..{s.high} gives an output of the same size"
        return f"no size in {s.low}..{s.high} is accepted"


# -- convcalc check -------------------------------------------------------------------------------------

class CheckReport(NamedTuple):
    """The results of a check file, with torch's cross-checks when asked (one per result, or None)."""

    source: str
    results: tuple[CheckResult, ...]
    verdicts: tuple[CheckVerify | None, ...] | None = None

    @property
    def failed(self) -> int:
        return sum(not r.ok for r in self.results)

    @property
    def passed(self) -> int:
        return len(self.results) - self.failed

    @property
    def agrees(self) -> bool:
        return self.verdicts is None or all(v is None or v.agrees is not False for v in self.verdicts)

    rejection = None

    @property
    def failure(self) -> str | None:
        return f"{self.failed:,} of {len(self.results):,} checks failed" if self.failed else None

    @property
    def disagrees(self) -> bool:
        return not self.agrees


# -- convcalc inspect -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class InspectReport:
    """A traced model, the nodes to show, and the gradient measurements when asked."""

    inspection: Inspection
    nodes: list[NodeInfo]
    totals: ModelTotals
    measurements: list[NodeMeasurement] | None = None

    rejection = None
    failure = None

    @property
    def disagrees(self) -> bool:
        return any(m.agrees is False for m in self.measurements or ())



# -- convcalc erf ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class ErfReport:
    """The effective receptive field: exact profiles of a stack (``stack``), or a model's measured map
    (``measured``, with the inspection that gives the theoretical field and the statistics of the map)."""

    stack: StackErf | None = None
    spec: str = ""
    measured: ModelErf | None = None
    model: str = ""
    input_shape: tuple[int, ...] = ()
    area_ratio: dict[float, tuple[int, float] | None] | None = None  # RepLKNet's, on the log-scaled map
    mass_window: dict[float, tuple[int, float] | None] | None = None  # the same squares on the raw map
    png: str | None = None  # where the picture was written

    rejection = None
    failure = None
    disagrees = False


# -- convcalc memory ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class MemoryReport:
    """A simulated step's memory, the largest batch for a budget, and the profiler's measurement."""

    model: str
    input_shape: tuple[int, ...]
    step: StepMemory
    optimizer: str | None
    amp: str | None
    search: BatchSearch | None = None
    measured: MeasuredStep | None = None
    show_all: bool = False

    rejection = None

    @property
    def agrees(self) -> bool | None:
        if self.measured is None:
            return None
        from .graph.memory_profile import agrees

        return agrees(self.step.peak_bytes, self.measured)

    @property
    def failure(self) -> str | None:
        if self.search is not None and self.search.largest_batch is None:
            return (f"even batch 1 does not fit the budget of {byte_size(self.search.budget_bytes)}: its peak is "
                    f"{byte_size(self.search.peaks[1])}")
        return None

    @property
    def disagrees(self) -> bool:
        return self.agrees is False
