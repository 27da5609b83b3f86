"""Hypothesis strategies for random layer configurations, shared by the parity and CLI tests."""

from __future__ import annotations

from hypothesis import strategies as st

OPS = ("conv", "conv_transpose", "max_pool", "avg_pool")


def _per_dim(draw, n: int, low: int, high: int) -> tuple[int, ...]:
    return draw(st.tuples(*[st.integers(low, high)] * n))


@st.composite
def layer_configs(draw, op: str, max_in: int = 12) -> dict:
    """Keyword arguments for ``convcalc.output_size`` (and the torch oracle), all per-dimension tuples.

    Ranges are small so that torch runs fast, and straddle the limits (kernel vs padded input,
    pool padding vs kernel // 2, output_padding vs stride and dilation) so that torch both accepts
    and rejects.
    """
    n = draw(st.integers(1, 3))
    kernel = _per_dim(draw, n, 1, 6)
    config = {"op": op, "in_size": _per_dim(draw, n, 1, max_in), "kernel_size": kernel,
              "stride": _per_dim(draw, n, 1, 4), "dilation": _per_dim(draw, n, 1, 4),
              "output_padding": (0,) * n, "ceil_mode": False}
    if op == "conv":
        mode = draw(st.sampled_from(["ints"] * 5 + ["same", "valid"]))
        config["padding"] = _per_dim(draw, n, 0, 5) if mode == "ints" else mode
        if mode == "same" and draw(st.booleans()):
            config["stride"] = (1,) * n
    elif op == "conv_transpose":
        config["padding"] = _per_dim(draw, n, 0, 5)
        # output_padding must stay below stride or dilation: draw up to the limit itself.
        config["output_padding"] = tuple(draw(st.integers(0, max(s, d)))
                                         for s, d in zip(config["stride"], config["dilation"]))
    else:
        # pad <= kernel_size // 2 is the rule; cross it now and then.
        config["padding"] = tuple(k // 2 + 1 if draw(st.integers(0, 9)) == 0 else draw(st.integers(0, k // 2))
                                  for k in kernel)
        config["ceil_mode"] = draw(st.booleans())
        if draw(st.booleans()):
            config["stride"] = None
        if op == "avg_pool":
            config["dilation"] = (1,) * n
    return config


@st.composite
def stack_layers(draw, dims: int | None = None, min_layers: int = 2, max_layers: int = 8) -> list:
    """Random stacks of mixed layers (conv, tconv, pools) that PyTorch accepts on large inputs."""
    from convcalc import Layer

    n = dims or draw(st.integers(1, 2))
    layers = []
    for _ in range(draw(st.integers(min_layers, max_layers))):
        op = draw(st.sampled_from(["conv", "conv", "conv", "conv_transpose", "max_pool", "avg_pool"]))
        kernel = _per_dim(draw, n, 1, 4)
        stride = _per_dim(draw, n, 1, 3)
        dilation = _per_dim(draw, n, 1, 3) if op != "avg_pool" else (1,) * n
        if op == "conv":
            padding = "same" if draw(st.integers(0, 5)) == 0 else _per_dim(draw, n, 0, 3)
            stride = (1,) * n if padding == "same" else stride
            layers.append(Layer.build(kernel, stride, padding, dilation, op=op))
        elif op == "conv_transpose":
            output_padding = tuple(draw(st.integers(0, max(s, d) - 1)) for s, d in zip(stride, dilation))
            layers.append(Layer.build(kernel, stride, _per_dim(draw, n, 0, 2), dilation, op=op,
                                      output_padding=output_padding))
        else:
            padding = tuple(draw(st.integers(0, k // 2)) for k in kernel)
            layers.append(Layer.build(kernel, stride, padding, dilation, op=op, ceil_mode=draw(st.booleans())))
    return layers


@st.composite
def layers_of_every_kind(draw) -> object:
    """One random Layer of any op and 1-3 dimensions, scalars and per-dimension values mixed."""
    from convcalc import Layer

    n = draw(st.integers(1, 3))
    op = draw(st.sampled_from(OPS))
    value = lambda low, high: draw(st.integers(low, high) | st.tuples(*[st.integers(low, high)] * n))  # noqa: E731
    kwargs = {"stride": value(1, 5), "dilation": value(1, 4) if op != "avg_pool" else 1, "dims": n}
    kernel = value(1, 7)
    if op == "conv":
        kwargs["padding"] = draw(st.sampled_from(["same", "valid"])) if draw(st.booleans()) else value(0, 5)
    elif op == "conv_transpose":
        kwargs["padding"] = value(0, 5)
        kwargs["output_padding"] = value(0, 3)
    else:
        kwargs["padding"] = value(0, 3)
        kwargs["ceil_mode"] = draw(st.booleans())
    return Layer.build(kernel, op=op, **kwargs)
