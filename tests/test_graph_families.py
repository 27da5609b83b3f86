"""The families beyond the classic CNN, in small: each model reproduces a class of failure the zoo found
(benchmarks/zoo.py), and is held to torch: fields to the gradient measurement or to the rule by hand,
MACs to flop_counter (attention in its math form), fvcore and torchinfo themselves."""

from __future__ import annotations

import logging
import sys
import warnings
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
import models  # noqa: E402

from convcalc.graph import inspect_model  # noqa: E402
from convcalc.graph.costs import inspection_totals  # noqa: E402
from convcalc.graph.fields import GLOBAL, UNKNOWN, Macs, NodeKind  # noqa: E402
from convcalc.graph.measure import verify_default  # noqa: E402
from convcalc.periodic import PeriodicField  # noqa: E402

ROOT = Path(__file__).parent.parent

FAMILIES = {
    "window attention (matmuls)": (lambda: models.WindowAttention(fused=False), (1, 3, 32, 32)),
    "window attention (fused)": (lambda: models.WindowAttention(fused=True), (2, 3, 32, 32)),
    "scaled_dot_product_attention": (models.TinyAttention, (1, 3, 16, 16)),
    "nn.MultiheadAttention": (models.TinyMHA, (2, 3, 16, 16)),
    "channels-last block": (models.NHWCBlock, (1, 3, 32, 32)),
    "channel shuffle": (models.ChannelShuffleNet, (1, 3, 16, 16)),
    "squeeze-and-excitation": (models.SEBlock, (1, 3, 16, 16)),
    "Linear and weight-standardised conv subclasses": (models.TimmLayers, (2, 3, 16, 16)),
    "bidirectional LSTM over rows": (models.RowLSTM, (1, 3, 8, 8)),
    "dict output": (models.DictHeads, (1, 3, 32, 32)),
    "shape-dependent control flow": (models.PartlyTraceable, (1, 3, 16, 16)),
    "optional forward argument": (models.OptionalMask, (1, 3, 16, 16)),
}


def tools(model, shape) -> Macs:
    """flop_counter / 2 with attention in its math form and grad on (so nn.MultiheadAttention takes its slow
    path: on CPU the fused kernels count 0), fvcore's total and torchinfo's total_mult_adds."""
    from fvcore.nn import FlopCountAnalysis
    from torch.nn.attention import SDPBackend, sdpa_kernel
    from torch.utils.flop_counter import FlopCounterMode
    from torchinfo import summary

    x = torch.randn(shape)
    counter = FlopCounterMode(display=False)
    with counter, sdpa_kernel(SDPBackend.MATH):
        model(x)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        logging.disable(logging.WARNING)
        try:
            analysis = FlopCountAnalysis(model, x)
            analysis.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
            fvcore = analysis.total()
        finally:
            logging.disable(logging.NOTSET)
    stats = summary(model, input_data=[x], verbose=0)
    return Macs(counter.get_total_flops() // 2, fvcore, stats.total_mult_adds)


@pytest.mark.parametrize("family", FAMILIES)
def test_each_convention_equals_its_tool(family):
    factory, shape = FAMILIES[family]
    model = factory().eval()
    inspection = inspect_model(model, shape, family)
    assert inspection.traced and inspection.traced_as.startswith("fx")
    assert inspection_totals(inspection).macs == tools(model, shape)
    assert not [w for w in inspection.warnings if "assumed" in w]


def _output_field(inspection, d=0):
    field = inspection.output.fields[d]
    assert isinstance(field, PeriodicField), field
    return field


@pytest.mark.parametrize("fused", [False, True])
def test_window_attention_sees_its_shifted_window_as_the_gradient_does(fused):
    inspection = inspect_model(models.WindowAttention(fused=fused).eval(), (1, 3, 32, 32))
    field = _output_field(inspection)
    assert (field.receptive_field, field.jump) == (8, 2)  # a window of 4x4 patches of 2x2 pixels
    assert any(n.kind is NodeKind.ATTENTION for n in inspection.nodes)
    [measured] = verify_default(inspection)
    assert measured.skipped is None and measured.agrees is True


@pytest.mark.parametrize("factory, rf", [(models.NHWCBlock, 14), (models.ChannelShuffleNet, 5)])
def test_layouts_keep_their_positions_through_permute_and_view(factory, rf):
    inspection = inspect_model(factory().eval(), (1, 3, 32, 32))
    assert _output_field(inspection).receptive_field == rf and not inspection.warnings
    [measured] = verify_default(inspection)
    assert measured.skipped is None and measured.agrees is True


def test_global_attention_is_global_and_its_local_field_the_patch():
    for factory in (models.TinyAttention, models.TinyMHA):
        inspection = inspect_model(factory().eval(), (1, 3, 16, 16))
        assert inspection.output.fields == [GLOBAL, GLOBAL]
        assert [f.receptive_field for f in inspection.output.local_fields] == [4, 4]


def test_an_se_gate_is_global_and_the_local_field_is_the_trunk():
    inspection = inspect_model(models.SEBlock().eval(), (1, 3, 16, 16))
    assert inspection.output.fields == [GLOBAL, GLOBAL]
    assert [f.receptive_field for f in inspection.output.local_fields] == [5, 5]  # two 3x3 convolutions


def test_a_row_lstm_sees_its_whole_row():
    inspection = inspect_model(models.RowLSTM().eval(), (1, 3, 8, 8))
    height, width = inspection.output.fields
    assert isinstance(height, PeriodicField) and height.receptive_field == 3 and width is GLOBAL


def test_a_block_fx_cannot_trace_is_an_opaque_leaf_and_the_rest_a_graph():
    inspection = inspect_model(models.PartlyTraceable().eval(), (1, 3, 16, 16))
    assert inspection.traced_as == "fx, 1 opaque module" and list(inspection.opaque) == ["block"]
    block = inspection.node("block")
    assert block.kind is NodeKind.OPAQUE and block.fields == [UNKNOWN, UNKNOWN]
    assert block.macs.aten == 8 * 8 * 9 * 16 * 16  # its convolution, counted from the ops it ran
    assert any("block (ShapeBranch)" in w and "probe" in w for w in inspection.warnings)
    assert inspection.node("stem").fields[0].receptive_field == 3


def test_an_optional_argument_is_left_out_not_made_an_input():
    inspection = inspect_model(models.OptionalMask().eval(), (1, 3, 16, 16))
    assert [n.name for n in inspection.nodes if n.op == "input"] == ["x"]
    assert _output_field(inspection).receptive_field == 3


def test_fields_that_grow_without_end_are_given_up_with_a_note():
    from measured import run_measured  # noqa: PLC0415

    inspection = inspect_model(models.ManyBranches().eval(), (1, 3, 16, 16))
    assert inspection.traced_as == "forward hooks"
    assert UNKNOWN in inspection.output.fields
    assert any("grew past 2^22 input positions" in w for w in inspection.warnings)
    code, out, err, peak_kib = run_measured([sys.executable, "-m", "convcalc", "inspect", "tests/models.py:ManyBranches",
                                             "--input", "1x3x16x16"], cwd=str(ROOT))
    assert code == 0 and "grew past" in out and peak_kib < 1024 * 1024, err
