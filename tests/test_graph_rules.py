"""convcalc.graph's per-op field rules, with stand-in modules and nodes: no torch needed (or imported).

tests/test_inspect.py runs the same rules on real torch models and checks them by gradient.
"""

from __future__ import annotations

import sys
from fractions import Fraction
from types import SimpleNamespace

import pytest

from convcalc.graph.fields import FLAT, GLOBAL, NONE, UNKNOWN, Flow, NodeKind, input_flow
from convcalc.graph.module_rules import through_module
from convcalc.graph.nodes import Call, torch_class
from convcalc.graph.rules import through_function
from convcalc.periodic import PeriodicField
from convcalc.receptive import receptive_field


class Probe:
    """A stand-in probe: its verdict, and the window it measured."""

    def __init__(self, verdict, window=None, everything=False):
        self.verdict, self.measured, self.everything = verdict, window, everything

    def __call__(self, node, flow):
        return self.verdict

    def reads_everything(self, node, flow):
        return self.everything

    def window(self, node, flow):
        return self.measured

    def strided(self, node, flow, shape):
        return None


class Graph:
    """Stand-in fx nodes: values with recorded shapes, and calls of functions and modules on them."""

    def __init__(self, probe=None):
        self.flows: dict[str, Flow] = {}
        self.probe = probe
        self.notes: list[str] = []

    def value(self, flow: Flow) -> SimpleNamespace:
        name = f"v{len(self.flows)}"
        self.flows[name] = flow
        return SimpleNamespace(name=name, op="call_function", meta={"convcalc_shape": flow.shape}, args=(), kwargs={})

    def constant(self, shape) -> SimpleNamespace:
        return self.value(Flow(tuple(shape), constant=True))

    def node(self, target, args, kwargs, shape):
        nodes = [self.value(a) if isinstance(a, Flow) else [self.value(i) if isinstance(i, Flow) else i for i in a]
                 if isinstance(a, list) else a for a in args]
        return SimpleNamespace(name="n", op="call_function", target=target, args=tuple(nodes), kwargs=kwargs,
                               meta={"convcalc_shape": shape})

    def function(self, name, *args, shape, **kwargs):
        node = self.node(name, args, kwargs, shape)
        return through_function(Call(node, name, self.flows, shape, self.probe, self.notes))

    def module(self, module, label, *args, shape, opaque=False):
        node = self.node(label, args, {}, shape)
        return through_module(module, Call(node, label, self.flows, shape, self.probe, self.notes), opaque)


def source(size: int = 32, dims: int = 2, channels: int = 3, local: bool = False) -> Flow:
    return input_flow((1, channels) + (size,) * dims, dims, local)


def conv(k, s=1, p=0, d=1, n=2):
    return SimpleNamespace(kernel_size=(k,) * n, stride=(s,) * n, padding=p if isinstance(p, str) else (p,) * n,
                           dilation=(d,) * n)


def field_of(flow: Flow, d: int = 0) -> PeriodicField:
    f = flow.fields[d]
    assert isinstance(f, PeriodicField), f
    return f


def test_the_rules_need_no_torch():
    import subprocess

    code = ("import sys, convcalc.graph.rules, convcalc.graph.module_rules, convcalc.graph.contract, "
            "convcalc.graph.moves, convcalc.graph.fields; print('torch' in sys.modules)")
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout.strip() == "False"


@pytest.mark.parametrize("spec, k, s, p, d", [("3x3s2p1", 3, 2, 1, 1), ("5x5d2p4", 5, 1, 4, 2), ("7x7s2p3", 7, 2, 3, 1),
                                              ("1x1", 1, 1, 0, 1)])
def test_conv_rule_matches_the_stack_recurrence(spec, k, s, p, d):
    kind, flow, note = Graph().module(conv(k, s, p, d), "Conv2d", source(), shape=(1, 4, 16, 16))
    expected = receptive_field(spec)
    f = field_of(flow)
    assert kind is NodeKind.CONV and note is None
    assert (f.receptive_field, f.jump, f.start) == (expected.receptive_field[0], expected.jump[0], expected.start[0])


def test_same_padding_puts_the_odd_element_right():
    f = field_of(Graph().module(conv(4, p="same"), "Conv2d", source(), shape=(1, 3, 32, 32))[1])
    assert f.start == Fraction(1, 2)  # taps -1..2: left pad 1, right pad 2


def test_pool_stride_defaults_to_the_kernel():
    pool = SimpleNamespace(kernel_size=2, stride=None, padding=0, dilation=1)
    kind, flow, _ = Graph().module(pool, "MaxPool2d", source(), shape=(1, 3, 16, 16))
    assert kind is NodeKind.POOL and field_of(flow).jump == 2


def test_transposed_conv_fields_vary_by_position():
    tconv = SimpleNamespace(kernel_size=(3, 3), stride=(2, 2), padding=(1, 1), dilation=(1, 1))
    kind, flow, _ = Graph().module(tconv, "ConvTranspose2d", source(), shape=(1, 3, 63, 63))
    f = field_of(flow)
    assert kind is NodeKind.TCONV and f.varies and f.jump == Fraction(1, 2) and f.receptive_field == 2


def test_global_pooling_flatten_and_linear():
    g = Graph()
    pooled = g.module(SimpleNamespace(output_size=1), "AdaptiveAvgPool2d", source(), shape=(1, 3, 1, 1))
    assert pooled[0] is NodeKind.ADAPTIVE and pooled[1].fields == [GLOBAL, GLOBAL]
    flat = g.module(SimpleNamespace(start_dim=1), "Flatten", source(), shape=(1, 3 * 32 * 32))
    assert flat[0] is NodeKind.FLATTEN and flat[1].fields == [FLAT, FLAT]
    linear = g.module(SimpleNamespace(), "Linear", flat[1], shape=(1, 10))
    assert linear[0] is NodeKind.LINEAR and linear[1].fields == [GLOBAL, GLOBAL]


def test_nearest_upsampling_by_two():
    up = SimpleNamespace(mode="nearest", align_corners=None)
    kind, flow, note = Graph().module(up, "Upsample", source(16), shape=(1, 3, 32, 32))
    f = field_of(flow)
    assert kind is NodeKind.RESIZE and note is None and f.jump == Fraction(1, 2) and f.receptive_field == 1


def test_an_unfamiliar_op_is_per_position_only_where_the_probe_proves_it():
    kind, flow, note = Graph().module(SimpleNamespace(), "Mystery", source(), shape=(1, 3, 7, 7))
    assert flow.fields == [UNKNOWN, UNKNOWN] and "Mystery" in note and "changes the size" in note
    kind, flow, note = Graph().module(SimpleNamespace(), "Mystery", source(), shape=(1, 3, 32, 32))
    assert flow.fields == [UNKNOWN, UNKNOWN] and "could not be probed" in note
    proven = Graph(probe=Probe(True)).function("drop_path", source(), shape=(1, 3, 32, 32))
    assert proven[1].fields == source().fields and proven[2] is None
    refuted = Graph(probe=Probe(False)).function("blur", source(), shape=(1, 3, 32, 32))
    assert refuted[1].fields == [UNKNOWN, UNKNOWN] and "a probe found outputs that read other positions" in refuted[2]
    kind, flow, note = Graph().module(SimpleNamespace(), "ReLU", source(), shape=(1, 3, 32, 32))
    assert flow.fields == source().fields and note is None
    measured = Graph(probe=Probe(False, [(-1, 0, 1), (-2, 0, 2)])).function("blur", source(), shape=(1, 3, 32, 32))
    assert [f.receptive_field for f in measured[1].fields] == [3, 5] and "measured by a probe" in measured[2]
    mixing = Graph(probe=Probe(False, everything=True)).function("attend", source(), shape=(1, 3, 32, 32))
    assert mixing[1].fields == [GLOBAL, GLOBAL] and "reaching every output" in mixing[2]


def test_an_opaque_module_is_probed_and_shown():
    kind, flow, note = Graph(probe=Probe(False)).module(SimpleNamespace(), "Block", source(),
                                                                     shape=(1, 3, 32, 32), opaque=True)
    assert kind is NodeKind.OPAQUE and flow.fields == [UNKNOWN, UNKNOWN] and "opaque" in note


def test_add_takes_the_union_of_its_branches():
    g = Graph()
    wide = g.module(conv(5, p=2), "Conv2d", source(), shape=(1, 3, 32, 32))[1]
    narrow = g.module(conv(3, p=1), "Conv2d", source(), shape=(1, 3, 32, 32))[1]
    kind, flow, note = g.function("add", wide, narrow, shape=(1, 3, 32, 32))
    assert kind is NodeKind.MERGE and field_of(flow).receptive_field == 5 and note is None


def test_add_warns_when_branches_disagree_on_the_centre():
    g = Graph()
    left = g.module(conv(3, p=0), "Conv2d", source(), shape=(1, 3, 30, 30))[1]
    centred = g.module(conv(1), "Conv2d", source(30), shape=(1, 3, 30, 30))[1]
    _, flow, note = g.function("add", left, centred, shape=(1, 3, 30, 30))
    assert "disagree on centre" in note


def test_cat_along_a_spatial_axis_is_unknown_and_along_channels_a_union():
    g = Graph()
    a = g.module(conv(3, p=1), "Conv2d", source(), shape=(1, 3, 32, 32))[1]
    kind, flow, note = g.function("cat", [a, source()], 2, shape=(1, 3, 64, 32))
    assert flow.fields[0] is UNKNOWN and "concatenates along an axis of positions" in note
    kind, flow, note = g.function("cat", [a, source()], 1, shape=(1, 6, 32, 32))
    assert kind is NodeKind.MERGE and field_of(flow).receptive_field == 3


def test_mean_over_positions_is_global_and_leaves_no_local_path():
    kind, flow, _ = Graph().function("mean", source(), (2, 3), shape=(1, 3))
    assert kind is NodeKind.REDUCE and flow.fields == [GLOBAL, GLOBAL]
    assert Graph().function("mean", source(local=True), (2, 3), shape=(1, 3))[1].fields == [NONE, NONE]


def test_an_se_gate_is_global_and_its_local_field_is_the_trunk():
    for local, expected in ((False, [GLOBAL, GLOBAL]), (True, None)):
        g = Graph()
        trunk = g.module(conv(3, p=1), "Conv2d", source(local=local), shape=(1, 3, 32, 32))[1]
        squeezed = g.function("mean", trunk, (2, 3), True, shape=(1, 3, 1, 1))[1]
        gate = g.function("sigmoid", squeezed, shape=(1, 3, 1, 1))[1]
        _, flow, _ = g.function("mul", trunk, gate, shape=(1, 3, 32, 32))
        assert flow.fields == (expected or trunk.fields)


def test_group_norm_reads_every_position_its_local_field_keeps_the_trunk():
    norm = SimpleNamespace(num_groups=1)
    kind, flow, _ = Graph().module(norm, "GroupNorm", source(), shape=(1, 3, 32, 32))
    assert kind is NodeKind.REDUCE and flow.fields == [GLOBAL, GLOBAL]
    assert Graph().module(norm, "GroupNorm", source(local=True), shape=(1, 3, 32, 32))[1].fields == source().fields


def test_a_padding_mode_is_noted_and_keeps_the_field():
    reflect = SimpleNamespace(**vars(conv(3, p=1)), padding_mode="reflect")
    kind, flow, note = Graph().module(reflect, "Conv2d", source(), shape=(1, 3, 32, 32))
    plain = Graph().module(conv(3, p=1), "Conv2d", source(), shape=(1, 3, 32, 32))[1]
    assert kind is NodeKind.CONV and "padding_mode='reflect'" in note and flow.fields == plain.fields


def test_a_channels_last_block_keeps_its_positions():
    g = Graph()
    x = g.module(conv(3, p=1), "Conv2d", source(16, channels=8), shape=(1, 8, 16, 16))[1]
    nhwc = g.function("permute", x, 0, 2, 3, 1, shape=(1, 16, 16, 8))[1]
    normed = g.module(SimpleNamespace(normalized_shape=(8,)), "LayerNorm", nhwc, shape=(1, 16, 16, 8))[1]
    mlp = g.module(SimpleNamespace(), "Linear", normed, shape=(1, 16, 16, 32))[1]
    back = g.function("permute", mlp, 0, 3, 1, 2, shape=(1, 32, 16, 16))[1]
    kind, out, note = g.module(conv(3, p=1), "Conv2d", back, shape=(1, 32, 16, 16))
    assert note is None and field_of(out).receptive_field == 5 and field_of(out, 1).receptive_field == 5


def test_a_channel_shuffle_keeps_the_field():
    g = Graph()
    x = g.module(conv(3, p=1), "Conv2d", source(16, channels=8), shape=(1, 8, 16, 16))[1]
    grouped = g.function("view", x, 1, 2, 4, 16, 16, shape=(1, 2, 4, 16, 16))[1]
    swapped = g.function("transpose", grouped, 1, 2, shape=(1, 4, 2, 16, 16))[1]
    shuffled = g.function("view", swapped, 1, 8, 16, 16, shape=(1, 8, 16, 16))[1]
    kind, out, note = g.module(conv(3, p=1), "Conv2d", shuffled, shape=(1, 8, 16, 16))
    assert kind is NodeKind.CONV and note is None and field_of(out).receptive_field == 5


def _windows(g: Graph, x: Flow, size: int, window: int, channels: int) -> Flow:
    """Swin's window_partition: (1, H, W, C) -> (nW, ws*ws, C)."""
    n = size // window
    split = g.function("view", x, 1, n, window, n, window, channels, shape=(1, n, window, n, window, channels))[1]
    moved = g.function("permute", split, 0, 1, 3, 2, 4, 5, shape=(1, n, n, window, window, channels))[1]
    return g.function("reshape", moved, -1, window * window, channels, shape=(n * n, window * window, channels))[1]


def test_window_attention_sees_its_window_and_global_attention_everything():
    g = Graph()
    nhwc = g.function("permute", source(16, channels=4), 0, 2, 3, 1, shape=(1, 16, 16, 4))[1]
    tokens = _windows(g, nhwc, 16, 4, 4)
    kind, attended, _ = g.function("scaled_dot_product_attention", tokens, tokens, tokens, shape=(16, 16, 4))
    assert kind is NodeKind.ATTENTION
    f = field_of(attended)
    assert f.receptive_field == 4 and f.jump == 1 and f.of(5).values() == [4, 5, 6, 7]
    flat = g.function("flatten", nhwc, 1, 2, shape=(1, 256, 4))[1]
    _, everything, _ = g.function("scaled_dot_product_attention", flat, flat, flat, shape=(1, 256, 4))
    assert everything.fields == [GLOBAL, GLOBAL]


def test_attention_written_as_matmuls_is_the_same_rule():
    g = Graph()
    nhwc = g.function("permute", source(16, channels=4), 0, 2, 3, 1, shape=(1, 16, 16, 4))[1]
    q = _windows(g, nhwc, 16, 4, 4)
    keys = g.function("transpose", q, -2, -1, shape=(16, 4, 16))[1]
    kind, scores, _ = g.function("matmul", q, keys, shape=(16, 16, 16))
    weights = g.function("softmax", scores, -1, shape=(16, 16, 16))[1]
    kind, out, _ = g.function("matmul", weights, q, shape=(16, 16, 4))
    assert kind is NodeKind.ATTENTION and field_of(out).receptive_field == 4 and field_of(out, 1).receptive_field == 4


def test_torchvision_shifted_window_attention_reads_its_shifted_window():
    g = Graph()
    nhwc = g.function("permute", source(16, channels=4), 0, 2, 3, 1, shape=(1, 16, 16, 4))[1]
    weights = [g.constant((12, 4)), g.constant((4, 4)), g.constant((1, 16, 16))]
    kind, out, note = g.function("shifted_window_attention", nhwc, *weights, [4, 4], 1, [2, 2], shape=(1, 16, 16, 4))
    f = field_of(out)
    assert kind is NodeKind.ATTENTION and note is None and f.receptive_field == 4
    assert f.of(2).values() == [2, 3, 4, 5] and f.of(1).values() == [-2, -1, 0, 1]
    _, whole, _ = g.function("shifted_window_attention", nhwc, *weights, [16, 16], 1, [8, 8], shape=(1, 16, 16, 4))
    assert whole.fields == [GLOBAL, GLOBAL]


def test_a_class_token_in_front_of_the_patches_then_attention_is_global():
    g = Graph()
    patches = g.function("flatten", source(16, channels=4), 2, shape=(1, 4, 256))[1]
    tokens = g.function("transpose", patches, 1, 2, shape=(1, 256, 4))[1]
    kind, joined, note = g.function("cat", [g.constant((1, 1, 4)), tokens], 1, shape=(1, 257, 4))
    assert note is None and joined.fields == tokens.fields
    _, attended, _ = g.function("scaled_dot_product_attention", joined, joined, joined, shape=(1, 257, 4))
    assert attended.fields == [GLOBAL, GLOBAL]
    first = SimpleNamespace(name="first", op="call_function", target=None, args=(g.value(attended), (slice(None), 0)),
                            kwargs={}, meta={"convcalc_shape": (1, 4)})
    from convcalc.graph.moves import getitem

    assert getitem(first, g.flows, (1, 4), []).fields == [GLOBAL, GLOBAL]


def test_a_strided_slice_is_a_subsampling():
    from convcalc.graph.moves import getitem

    g = Graph()
    x = g.value(source(16))
    node = SimpleNamespace(name="s", op="call_function", target=None, args=(x, (slice(None), slice(None), slice(1, None, 2))),
                           kwargs={}, meta={"convcalc_shape": (1, 3, 8, 16)})
    flow = getitem(node, g.flows, (1, 3, 8, 16), [])
    assert field_of(flow).jump == 2 and field_of(flow).of(0).values() == [1] and field_of(flow, 1).jump == 1


def test_a_bidirectional_lstm_reads_the_whole_sequence():
    g = Graph()
    rows = g.function("flatten", source(8, channels=4), 2, shape=(1, 4, 64))[1]
    sequence = g.function("permute", rows, 2, 0, 1, shape=(64, 1, 4))[1]
    lstm = SimpleNamespace(batch_first=False, bidirectional=True)
    kind, out, _ = g.module(lstm, "LSTM", sequence, shape=[(64, 1, 8), [(2, 1, 4), (2, 1, 4)]])
    assert out.items[0].fields == [GLOBAL, GLOBAL]
    one_way = SimpleNamespace(batch_first=False, bidirectional=False)
    _, out, note = g.module(one_way, "LSTM", sequence, shape=[(64, 1, 8), [(1, 1, 4), (1, 1, 4)]])
    assert out.items[0].fields == [UNKNOWN, UNKNOWN] and "earlier step" in note


def test_a_module_is_known_by_the_torch_nn_class_it_derives_from():
    Linear = type("Linear", (), {"__module__": "torch.nn.modules.linear"})
    Conv2d = type("Conv2d", (), {"__module__": "torch.nn.modules.conv"})
    Mine = type("Mine", (Linear,), {"__module__": "timm.layers.linear"})
    Scaled = type("ScaledStdConv2d", (Conv2d,), {"__module__": "timm.layers.std_conv"})
    Plain = type("Block", (), {"__module__": "mymodels"})
    assert [torch_class(c()) for c in (Mine, Scaled, Plain, Linear)] == ["Linear", "Conv2d", "Block", "Linear"]
