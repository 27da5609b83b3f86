"""The families beyond the classic CNN, in small: each model reproduces a class of failure the zoo found
(benchmarks/zoo.py), and is held to torch: fields to the gradient measurement or to the rule by hand,
MACs to flop_counter (attention in its math form), fvcore and torchinfo themselves."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
import models  # noqa: E402

from convcalc.graph import inspect_model  # noqa: E402
from convcalc.graph.costs import inspection_totals  # noqa: E402
from convcalc.graph.fields import GLOBAL, UNKNOWN, Macs, NodeKind  # noqa: E402
from convcalc.graph.measure import verify_default, verify_nodes  # noqa: E402
from convcalc.periodic import PeriodicField  # noqa: E402

ROOT = Path(__file__).parent.parent

FAMILIES = {
    "window attention (matmuls)": (lambda: models.WindowAttention(fused=False), (1, 3, 32, 32)),
    "window attention (fused)": (lambda: models.WindowAttention(fused=True), (2, 3, 32, 32)),
    "scaled_dot_product_attention": (models.TinyAttention, (1, 3, 16, 16)),
    "nn.MultiheadAttention": (models.TinyMHA, (2, 3, 16, 16)),
    "einsum attention": (models.EinsumAttention, (1, 3, 28, 28)),
    "channels-last block": (models.NHWCBlock, (1, 3, 32, 32)),
    "channel shuffle": (models.ChannelShuffleNet, (1, 3, 16, 16)),
    "squeeze-and-excitation": (models.SEBlock, (1, 3, 16, 16)),
    "Linear and weight-standardised conv subclasses": (models.TimmLayers, (2, 3, 16, 16)),
    "bidirectional LSTM over rows": (models.RowLSTM, (1, 3, 8, 8)),
    "dict output": (models.DictHeads, (1, 3, 32, 32)),
    "shape-dependent control flow": (models.PartlyTraceable, (1, 3, 16, 16)),
    "opaque block with batch norm and fused attention": (models.WithOpaqueAttention, (1, 3, 16, 16)),
    "optional forward argument": (models.OptionalMask, (1, 3, 16, 16)),
    "an MLP on a constant table": (models.TableBias, (3, 3, 16, 16)),
}


def tools(model, shape) -> Macs:
    """flop_counter / 2 with attention in its math form and grad on (so nn.MultiheadAttention takes its slow
    path: on CPU the fused kernels count 0), fvcore's total and torchinfo's total_mult_adds."""
    from torch.nn.attention import SDPBackend, sdpa_kernel
    from torch.utils.flop_counter import FlopCounterMode
    from torch_oracle import fvcore_total
    from torchinfo import summary

    x = torch.randn(shape)
    counter = FlopCounterMode(display=False)
    with counter, sdpa_kernel(SDPBackend.MATH):
        model(x)
    stats = summary(model, input_data=[x], verbose=0)
    return Macs(counter.get_total_flops() // 2, fvcore_total(model, x), stats.total_mult_adds)


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


@pytest.mark.parametrize("factory, rf", [(models.NHWCBlock, 14), (models.ChannelShuffleNet, 5), (models.PatchMerging, 12)])
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


def test_einsum_attention_is_global_and_counted_as_fvcore_rounds_it():
    from convcalc.graph.einsum_count import fvcore_einsum

    inspection = inspect_model(models.EinsumAttention().eval(), (1, 3, 28, 28))
    assert inspection.output.fields == [GLOBAL, GLOBAL]
    # 196 tokens, 3 heads of 4: 3 x 196 x 196 x 4 = 460,992 MACs, 921,984 FLOPs, which numpy prints as
    # 9.220e+05: fvcore counts 461,000.
    assert fvcore_einsum("bhid,bhjd->bhij", [(1, 3, 196, 4), (1, 3, 196, 4)]) == 461_000
    einsum = [n for n in inspection.nodes if n.op == "einsum"]
    assert [n.macs.aten for n in einsum] == [460_992, 460_992] and [n.macs.fvcore for n in einsum] == [461_000] * 2
    assert fvcore_einsum("nct,ncp->ntp", [(2, 3, 5), (2, 3, 7)]) == 2 * 3 * 5 * 7  # fvcore's bmm case
    assert fvcore_einsum("xyz,xwz->xwy", [(2, 5, 3), (2, 7, 3)]) == 2 * 5 * 3 * 7


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
    assert block.kind is NodeKind.OPAQUE and block.macs.aten == 8 * 8 * 9 * 16 * 16  # counted from what it ran
    assert [f.receptive_field for f in block.fields] == [5, 5]  # its 3x3 window, measured, after the stem's
    assert any("block (ShapeBranch)" in w and "measured by a probe" in w for w in inspection.warnings)
    [reason] = [w for w in inspection.warnings if "opaque leaf" in w]
    assert "could not trace it at tests/models.py:" in reason and "if x.shape[-1] % 2" in reason  # as the user finds it
    [measured] = verify_nodes(inspection, ["down"])
    assert measured.skipped is None and measured.agrees is True


def test_an_opaque_block_that_reads_no_window_stays_unknown():
    class Flip(torch.nn.Module):
        def forward(self, x):
            if x.shape[-1] > 0:  # fx cannot trace it
                x = x.flip(-1)
            return x

    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, padding=1), Flip(), torch.nn.Conv2d(4, 4, 3, padding=1))
    inspection = inspect_model(model.eval(), (1, 3, 16, 16))
    assert inspection.traced_as == "fx, 1 opaque module" and inspection.node("1").fields == [UNKNOWN, UNKNOWN]


def test_an_opaque_block_that_returns_a_tuple_leaves_its_tensors_unknown_not_constant():
    inspection = inspect_model(models.TokensFromATuple().eval(), (1, 3, 16, 16))
    assert inspection.traced_as == "fx, 1 opaque module"
    assert inspection.output.shape == (1, 10) and inspection.output.fields == [UNKNOWN, UNKNOWN]
    assert any("embed (PatchesAndGrid): PatchesAndGrid (opaque) returns several tensors" in w
               for w in inspection.warnings)


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


def test_a_function_whose_field_grows_without_end_is_given_up_with_that_note():
    class Strided(torch.nn.Module):  # fx traces it: the functional convolutions are function nodes
        def __init__(self):
            super().__init__()
            self.weight = torch.nn.Parameter(torch.ones(3, 3, 3, 3))

        def forward(self, x):
            for _ in range(24):  # stride 2, padding 9: 16x16 stays 16x16, the jump doubles each time
                x = torch.nn.functional.conv2d(x, self.weight, stride=2, padding=9)
            return x

    inspection = inspect_model(Strided().eval(), (1, 3, 16, 16))
    assert inspection.traced_as == "fx" and UNKNOWN in inspection.output.fields
    gave_up = [w for w in inspection.warnings if "grew past 2^22 input positions" in w]
    assert gave_up and gave_up[0].startswith("conv2d_") and not [w for w in inspection.warnings if "laid out" in w]


def test_an_opaque_attention_block_is_probed_global():
    class Attend(torch.nn.Module):  # convit's GPSA in spirit: attention fx cannot trace
        def forward(self, tokens):
            if tokens.shape[1] > 1:
                tokens = torch.nn.functional.scaled_dot_product_attention(tokens, tokens, tokens)
            return tokens

    class Model(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.embed = torch.nn.Conv2d(3, 8, 4, stride=4)
            self.attend = Attend()

        def forward(self, x):
            tokens = self.embed(x).flatten(2).transpose(1, 2)
            return tokens + self.attend(tokens)

    inspection = inspect_model(Model().eval(), (1, 3, 16, 16))
    assert inspection.traced_as == "fx, 1 opaque module"
    assert inspection.node("attend").fields == [GLOBAL, GLOBAL]
    assert [f.receptive_field for f in inspection.output.local_fields] == [4, 4]
    assert any("reaching every output" in w for w in inspection.warnings)


def test_a_line_in_an_installed_library_is_named_from_the_package_folder():
    from convcalc.graph.fx import _shown_path

    assert _shown_path("/opt/venv/lib/python3.11/site-packages/timm/models/hiera.py") == "timm/models/hiera.py"
    assert _shown_path("/elsewhere/model.py") == "/elsewhere/model.py"


def test_a_function_a_library_registers_as_not_traceable_is_kept_whole(monkeypatch):
    import sys
    import types

    assert inspect_model(models.RegisteredFunction().eval(), (1, 3, 16, 16)).traced_as == "forward hooks"
    registry = types.SimpleNamespace(get_notrace_functions=lambda: [models.resize_to])
    monkeypatch.setitem(sys.modules, "timm.layers._fx", registry)  # as timm's register_notrace_function fills it
    inspection = inspect_model(models.RegisteredFunction().eval(), (1, 3, 16, 16))
    assert inspection.traced_as == "fx" and [n.op for n in inspection.nodes] == ["input", "resize_to", "Conv2d", "add"]
    assert [f.receptive_field for f in inspection.output.fields] == [3, 3]  # resize_to at 16 leaves positions be


class _Stem(torch.nn.Module):
    """A 3x3 convolution, ``then`` (the op under test), a 3x3 convolution: field 5 where ``then`` is per
    position."""

    def __init__(self, then, channels: int = 8):
        super().__init__()
        self.stem = torch.nn.Conv2d(3, channels, 3, padding=1)
        self.then = then
        self.out = torch.nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x):
        return self.out(self.then(self, self.stem(x)))


class _BiasBranch(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.bias = torch.nn.Parameter(torch.full((8, 1, 1), 0.1))

    def forward(self, x):
        if x.sum() < -1e9:  # fx cannot trace it: an opaque leaf, probed
            x = x * 0
        x += self.bias  # in place, on the probe's input
        return x


class _EinsumScale(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.mix = torch.nn.Parameter(torch.randn(8, 8))  # neither "weight" nor "bias"
        self.gamma = torch.nn.Parameter(torch.full((8, 1, 1), 1e-6))  # a layer scale

    def forward(self, x):
        return self.gamma * torch.einsum("bchw,dc->bdhw", x, self.mix)


PER_POSITION = {  # each once crashed, went global, or lost its field (an independent review of the diff)
    "torch.max of two tensors": lambda s, x: torch.max(x, x.flip(1)),
    "in-place method": lambda s, x: x.mul_(2),
    "noise": lambda s, x: x + 0.1 * torch.randn_like(x),
    "max over channels, .values": lambda s, x: x.max(dim=1, keepdim=True).values.expand(-1, 8, -1, -1),
    "an ellipsis": lambda s, x: x[..., None].squeeze(-1),
    "an opaque leaf adding a bias in place": None,
    "an einsum weight and a layer scale": None,
}


@pytest.mark.parametrize("case", PER_POSITION)
def test_ops_that_keep_positions_keep_the_field_and_the_gradient_agrees(case):
    then = PER_POSITION[case]
    if case == "an opaque leaf adding a bias in place":
        block = _BiasBranch()
        then = lambda s, x: s.block(x)  # noqa: E731
    elif case == "an einsum weight and a layer scale":
        block = _EinsumScale()
        then = lambda s, x: s.block(x)  # noqa: E731
    model = _Stem(then)
    if case in ("an opaque leaf adding a bias in place", "an einsum weight and a layer scale"):
        model.block = block
    inspection = inspect_model(model.eval(), (1, 3, 16, 16))
    assert [f.receptive_field for f in _fields(inspection)] == [5, 5]
    [measured] = verify_nodes(inspection, ["out"])
    assert measured.skipped is None and measured.agrees is True


def _fields(inspection):
    fields = inspection.output.fields
    assert all(isinstance(f, PeriodicField) for f in fields), fields
    return fields


def test_a_strided_slice_after_an_ellipsis_keeps_its_step():
    inspection = inspect_model(_Stem(lambda s, x: x[..., ::2]).eval(), (1, 3, 16, 16))
    assert [(f.receptive_field, f.jump) for f in _fields(inspection)] == [(5, 1), (7, 2)]


@pytest.mark.parametrize("rnn", [torch.nn.LSTM, torch.nn.GRU])
def test_a_recurrent_layers_final_state_is_unknown_not_a_constant(rnn):
    class Model(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.rnn = rnn(3 * 8, 16, batch_first=True)
            self.fc = torch.nn.Linear(16, 10)

        def forward(self, x):
            _, state = self.rnn(x.flatten(1, 2).transpose(1, 2))
            h = state[0] if rnn is torch.nn.LSTM else state  # LSTM's (h, c), GRU's h
            return self.fc(h[-1])

    inspection = inspect_model(Model().eval(), (2, 3, 8, 8))
    assert inspection.output.shape == (2, 10) and inspection.output.fields == [UNKNOWN, UNKNOWN]
    assert any("final state's field is unknown" in w for w in inspection.warnings)


def test_a_parameter_is_shown_without_the_batch():
    inspection = inspect_model(models.TableBias().eval(), (3, 3, 16, 16))
    shapes = {n.name: n.shape for n in inspection.nodes if n.op == "get_attr"}
    assert shapes and all(s[0] != 3 or len(s) < 2 for s in shapes.values()), shapes


def test_a_field_lost_to_a_layout_without_a_rule_is_named():
    class SpaceToDepth(torch.nn.Module):  # TResNet's stem: 4x4 blocks of pixels onto the channels
        def __init__(self):
            super().__init__()
            self.conv = torch.nn.Conv2d(48, 8, 3, padding=1)

        def forward(self, x):
            n, c, h, w = x.size()
            x = x.view(n, c, h // 4, 4, w // 4, 4).permute(0, 3, 5, 1, 2, 4).contiguous()
            return self.conv(x.view(n, c * 16, h // 4, w // 4))

    inspection = inspect_model(SpaceToDepth().eval(), (1, 3, 16, 16))
    assert inspection.output.fields == [UNKNOWN, UNKNOWN]
    assert any(w.startswith("conv (Conv2d): Conv2d meets positions laid out in a way it has no rule for")
               for w in inspection.warnings), inspection.warnings


@pytest.mark.parametrize("size", [16, 17])
def test_an_opaque_strided_convolution_has_its_window_and_stride_measured(size):
    inspection = inspect_model(models.TFStem().eval(), (1, 3, size, size))
    assert inspection.traced_as == "fx, 1 opaque module"
    stem = inspection.node("stem")
    left = (((size + 1) // 2 - 1) * 2 + 3 - size) // 2  # TensorFlow's SAME: the odd pixel on the right
    assert [(f.receptive_field, f.jump, f.start) for f in stem.fields] == [(3, 2, 1 - left)] * 2  # start: a centre
    assert any("window (3x3, stride 2x2) is measured by a probe" in w for w in inspection.warnings)
    [measured] = verify_nodes(inspection, ["conv"])
    assert measured.skipped is None and measured.agrees is True


def test_a_strided_measurement_over_its_budget_is_not_made(monkeypatch):
    from convcalc.graph import probe

    monkeypatch.setattr(probe, "STRIDED_MACS_BUDGET", 8 * 3 * 9 * 8 * 8 * 20)  # the stem's MACs, 20 runs
    inspection = inspect_model(models.TFStem().eval(), (1, 3, 16, 16))  # the first look: 2 x (2 x 2 + 9) runs
    assert inspection.node("stem").fields == [UNKNOWN, UNKNOWN]


def test_a_wide_strided_window_is_looked_for_further():
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 1), models.Conv2dSame(4, 4, 11, stride=2)).eval()
    inspection = inspect_model(model, (1, 3, 32, 32))
    assert [(f.receptive_field, f.jump) for f in inspection.node("1").fields] == [(11, 2)] * 2
