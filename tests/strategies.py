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
