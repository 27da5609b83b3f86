"""Sizes and the layer-spec language: text -> numbers and Layers; every error points at its character.

A size is ``256``, ``256x256`` or ``224,224`` (``10**30`` is a number too). See docs/architecture.md,
"Sizes and the layer-spec language".
"""

from __future__ import annotations

import functools
import math
import re
from typing import Any

from .errors import SpecError
from .layer import POOLS, Layer, format_size
from .padding import PADDING_STRINGS

MAX_DIGITS = 1000


def parse_size(text: str, name: str = "size") -> int | tuple[int, ...]:
    """``"256"`` -> 256, ``"256x128"`` or ``"256,128"`` -> (256, 128). Numbers are non-negative.

    A scalar stays an int so that the caller can broadcast it; a per-dimension value is a tuple.
    """
    if not text.strip():
        raise SpecError(f"{name} is empty: expected a number such as 256 or 256x256")
    parts: list[int] = []
    pos = 0
    separated = False
    while True:
        number, pos = _number(text, pos, name)
        parts.append(number)
        pos = _skip_spaces(text, pos)
        if pos == len(text):
            break
        if text[pos].lower() not in "x,":
            raise SpecError(f"{name}: expected 'x' or ',' between numbers, got {text[pos]!r}", text, pos)
        separated = True
        pos += 1
    return tuple(parts) if separated else parts[0]


def _skip_spaces(text: str, pos: int) -> int:
    while pos < len(text) and text[pos].isspace():
        pos += 1
    return pos


def _digits(text: str, pos: int) -> int:
    end = pos
    while end < len(text) and "0" <= text[end] <= "9":
        end += 1
    return end


def _number(text: str, pos: int, name: str) -> tuple[int, int]:
    """One non-negative integer (``12``, or ``10**30``) at ``pos``; returns it and the position after."""
    pos = _skip_spaces(text, pos)
    end = _digits(text, pos)
    if end == pos:
        raise SpecError(f"{name}: {_what_instead(text, pos)}", text, pos)
    value = _bounded_int(text, pos, end, name)
    if text.startswith("**", end):
        exp_end = _digits(text, end + 2)
        if exp_end == end + 2:
            raise SpecError(f"{name}: expected an exponent after '**'", text, end + 2)
        value = _power(value, _bounded_int(text, end + 2, exp_end, name), text, pos, name)
        end = exp_end
    if end < len(text) and text[end] in ".eE/":
        token_end = end
        while token_end < len(text) and text[token_end].lower() not in "x, ":
            token_end += 1
        raise SpecError(f"{name}: expected a whole number, got {text[pos:token_end]!r}", text, end)
    return value, end


def _bounded_int(text: str, start: int, end: int, name: str) -> int:
    if end - start > MAX_DIGITS:
        raise SpecError(f"{name}: numbers are limited to {MAX_DIGITS} digits", text, start)
    return int(text[start:end])


def _power(base: int, exponent: int, text: str, pos: int, name: str) -> int:
    # 2 ** 3322 has 1001 digits: larger exponents need no logarithm (which would overflow a float).
    if base > 1 and (exponent > 4 * MAX_DIGITS or exponent * math.log10(base) >= MAX_DIGITS):
        raise SpecError(f"{name}: numbers are limited to {MAX_DIGITS} digits", text, pos)
    return base**exponent


def _what_instead(text: str, pos: int) -> str:
    if pos >= len(text):
        return "expected a number at the end"
    if text[pos] == "-":
        return "negative numbers are not allowed here"
    return f"expected a number, got {text[pos]!r}"


# -- the layer-spec language --------------------------------------------------------------------------

OP_WORDS = (("tconv", "conv_transpose"), ("conv", "conv"), ("max", "max_pool"), ("avg", "avg_pool"))
OP_PREFIX = {op: word for word, op in OP_WORDS}
OPTION_NAMES = {"s": "stride", "d": "dilation", "p": "padding", "o": "output_padding", "c": "ceil_mode"}
OPTION_LETTERS = {name: letter for letter, name in OPTION_NAMES.items()}
MAX_LAYERS = 100_000
EXPECTED_OPTION = "an option (s, d, p, o, c), '*count', ',' or the end"


class _Text:
    """The spec without its spaces, lower-cased, remembering where each character was."""

    def __init__(self, text: str, convention: str = "torch"):
        self.original = text
        kept = [(i, ch) for i, ch in enumerate(text) if not ch.isspace()]
        self.where = [i for i, _ in kept] + [len(text)]
        self.chars = "".join(ch for _, ch in kept).lower()
        self.pos = 0
        self.convention = convention

    def peek(self) -> str:
        return self.chars[self.pos] if self.pos < len(self.chars) else ""

    def take(self, word: str) -> bool:
        if self.chars.startswith(word, self.pos):
            self.pos += len(word)
            return True
        return False

    def error(self, reason: str, pos: int | None = None) -> SpecError:
        return SpecError(reason, self.original, self.where[self.pos if pos is None else pos])

    def got(self) -> str:
        return f"got {self.original[self.where[self.pos]]!r}" if self.peek() else "got the end"

    def number(self, what: str) -> int:
        start = self.pos
        while self.peek().isdigit() and self.peek().isascii():
            self.pos += 1
        if self.pos == start:
            raise self.error(f"expected {what}, {self.got()}")
        if self.pos - start > MAX_DIGITS:
            raise self.error(f"{what}: numbers are limited to {MAX_DIGITS} digits", start)
        return int(self.chars[start:self.pos])

    def size(self, what: str, minimum: int = 0) -> int | tuple[int, ...]:
        values = [self._at_least(what, minimum)]
        while self.peek() == "x":
            self.pos += 1
            values.append(self._at_least(what, minimum))
        return tuple(values) if len(values) > 1 else values[0]

    def _at_least(self, what: str, minimum: int) -> int:
        start = self.pos
        value = self.number(what)
        if value < minimum:
            raise self.error(f"{what} must be positive, got {value}", start)
        return value


class _RawLayer:
    """One layer as written, before the number of dimensions is known.

    Raws of the quick path carry their ``text`` and compare (and hash) by it; the careful parser's
    carry positions instead.
    """

    def __init__(self, start: int, text: str | None = None):
        self.start = start
        self.text = text
        self.op = "conv"
        self.values: dict[str, object] = {}
        self.positions: dict[str, int] = {}
        self.count = 1

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _RawLayer) and self.text is not None and self.text == other.text

    def __hash__(self) -> int:
        return hash(self.text) if self.text is not None else id(self)


def parse_layers(text: str, dims: int | None = None, default_padding: object = None,
                 convention: str = "torch") -> list:
    """Layer-spec text -> list[Layer]: ``[op] kernel {option} [*count]`` joined by commas.

    ``dims`` fixes the number of spatial dimensions (else: the longest size written, else 2);
    ``default_padding`` (e.g. ``"same"``) applies to conv layers that give no padding; under
    ``convention="tf"`` 'same' is TensorFlow's SAME (any stride, pools too).
    Well-formed text takes a regular-expression path; anything else the careful parser, which
    points at the offending character.
    """
    raws = _quick_raws(text)
    if raws is not None:
        try:
            return _build_layers(raws, dims, default_padding, None, convention)
        except ValueError:
            pass  # the careful parser below says where
    source = _Text(text, convention)
    return _build_layers(_careful_raws(source), dims, default_padding, source, convention)


def _careful_raws(source: _Text) -> list[_RawLayer]:
    if not source.chars:
        raise SpecError("the layer spec is empty: expected layers such as 3x3d2,max2", source.original, 0)
    raws = [_parse_layer(source)]
    while source.take(","):
        raws.append(_parse_layer(source))
    return raws


def _build_layers(raws: list[_RawLayer], dims: int | None, default_padding: object,
                  source: _Text | None, convention: str = "torch") -> list:
    """Layers from parsed text; errors point into ``source`` (None: the quick path, which only needs to
    fail for the careful one to take over)."""
    n = _stack_dims(source, raws, dims)
    layers: list = []
    for raw in raws:
        try:
            layer = _layer(raw, n, default_padding, convention)
        except SpecError:
            raise
        except ValueError as exc:
            raise source.error(str(exc), raw.start) if source else exc from None
        if len(layers) + raw.count > MAX_LAYERS:
            message = f"at most {MAX_LAYERS:,} layers, please"
            raise source.error(message, raw.start) if source else SpecError(message)
        layers.extend([layer] * raw.count)
    return layers


def _layer(raw: _RawLayer, dims: int, default_padding: object, convention: str) -> Any:
    if raw.text is not None and default_padding is None:  # 1 and True hash alike: cache only the plain case
        return _cached_layer(raw, dims, convention)
    return _new_layer(raw, dims, default_padding, convention)


@functools.lru_cache(maxsize=4096)
def _cached_layer(raw: _RawLayer, dims: int, convention: str) -> Any:
    """Layers written alike are built once (raws from the quick path hash by their text)."""
    return _new_layer(raw, dims, None, convention)


def _new_layer(raw: _RawLayer, dims: int, default_padding: object, convention: str) -> Any:
    values = dict(raw.values)
    if default_padding is not None and raw.op == "conv" and "padding" not in values:
        values["padding"] = default_padding
    return Layer.build(op=raw.op, dims=dims, convention=convention, **values)


_NUMBERS = r"[0-9]+(?:x[0-9]+)*"
_QUICK_LAYER = re.compile(rf"(tconv|conv|max|avg)?({_NUMBERS})((?:[sdo]{_NUMBERS}|p(?:same|valid|causal|{_NUMBERS})|c)*)"
                          r"(?:\*([0-9]+))?")
_QUICK_OPTION = re.compile(rf"([sdo])({_NUMBERS})|p(same|valid|causal|{_NUMBERS})|(c)")
_OP_BY_WORD = dict(OP_WORDS)


def _quick_raws(text: str) -> list[_RawLayer] | None:
    """Well-formed text parsed by regular expressions; None wherever the careful parser must decide."""
    compact = "".join(text.split()).lower()
    if not compact or len(compact) > 10_000:
        return None
    raws = [_quick_raw(piece) for piece in compact.split(",")]
    return None if None in raws else raws


@functools.lru_cache(maxsize=4096)
def _quick_raw(piece: str) -> _RawLayer | None:
    """One layer's text, without spaces and lower-cased; cached, as stacks repeat their layers."""
    match = _QUICK_LAYER.fullmatch(piece)
    if match is None:
        return None
    word, kernel, options, count = match.groups()
    raw = _RawLayer(0, piece)
    raw.op = _OP_BY_WORD[word] if word else "conv"
    raw.values["kernel_size"] = _quick_size(kernel, 1)
    for option in _QUICK_OPTION.finditer(options):
        letter, numbers, padding, ceil = option.groups()
        name = OPTION_NAMES[letter or ("p" if padding else "c")]
        if name in raw.values:
            return None
        if name == "ceil_mode":
            raw.values[name] = True
        elif name == "padding":
            raw.values[name] = padding if padding in PADDING_STRINGS else _quick_size(padding, 0)
        else:
            raw.values[name] = _quick_size(numbers, 1 if name != "output_padding" else 0)
    raw.count = int(count) if count else 1
    if None in raw.values.values() or raw.count < 1 or not _options_apply(raw):
        return None
    return raw


def _quick_size(text: str, minimum: int) -> int | tuple[int, ...] | None:
    if len(text) > MAX_DIGITS:
        return None
    values = tuple(int(part) for part in text.split("x"))
    if min(values) < minimum:
        return None
    return values if len(values) > 1 else values[0]


def _options_apply(raw: _RawLayer) -> bool:
    """The options' op rules, as the careful parser checks them."""
    for name in ("ceil_mode", "output_padding", "dilation"):  # the options _misapplied has rules for
        if name in raw.values and _misapplied(raw.op, OPTION_LETTERS[name]):
            return False
    return not (isinstance(raw.values.get("padding"), str) and raw.op != "conv")


def _parse_layer(source: _Text) -> _RawLayer:
    raw = _RawLayer(source.pos)
    if source.peek() in ("", ","):
        raise source.error(f"expected a layer such as 3x3d2 or max2, {source.got()}")
    for word, op in OP_WORDS:
        if source.take(word):
            raw.op = op
            break
    raw.values["kernel_size"] = source.size("a kernel size", minimum=1)
    while source.peek() not in ("", ",", "*"):
        _parse_option(source, raw)
    if source.take("*"):
        start = source.pos
        raw.count = source.number("a repeat count after '*'")
        if raw.count < 1:
            raise source.error("the repeat count must be at least 1", start)
    if source.peek() not in ("", ","):
        raise source.error(f"expected ',' or the end after the repeat count, {source.got()}")
    return raw


def _parse_option(source: _Text, raw: _RawLayer) -> None:
    start = source.pos
    letter = source.peek()
    if letter not in OPTION_NAMES:
        raise source.error(f"expected {EXPECTED_OPTION}, {source.got()}")
    name = OPTION_NAMES[letter]
    if name in raw.values:
        raise source.error(f"{name} ({letter}) is given twice in this layer")
    reason = _misapplied(raw.op, letter)
    if reason:
        raise source.error(reason)
    source.pos += 1
    raw.positions[name] = start
    if name == "ceil_mode":
        raw.values[name] = True
    elif name == "padding":
        raw.values[name] = _padding(source)
        tf_pool = source.convention == "tf" and raw.op in POOLS and raw.values[name] in ("same", "valid")
        if isinstance(raw.values[name], str) and raw.op != "conv" and not tf_pool:
            hint = " (under the tf convention pools take 'same' and 'valid' too)" if raw.op in POOLS else ""
            raise source.error(f"padding {raw.values[name]!r} is supported by conv only, not "
                               f"{OP_PREFIX[raw.op]}{hint}", start)
    elif name == "output_padding":
        raw.values[name] = source.size("an output padding")
    else:
        raw.values[name] = source.size(f"a {name}", minimum=1)


def _misapplied(op: str, letter: str) -> str | None:
    """Why option ``letter`` does not apply to ``op`` (its torch layer takes no such argument), or None."""
    if letter == "c" and op not in POOLS:
        return f"'c' (ceil_mode) applies only to max and avg pools, not {OP_PREFIX[op]}"
    if letter == "o" and op != "conv_transpose":
        return f"'o' (output_padding) applies only to tconv, not {OP_PREFIX[op]}"
    if letter == "d" and op == "avg_pool":
        return "'d' (dilation): avg pooling has no dilation"
    return None


def _padding(source: _Text) -> int | tuple[int, ...] | str:
    start = source.pos
    for mode in PADDING_STRINGS:
        if source.take(mode):
            return mode
    if not source.peek().isdigit():
        raise source.error(f"expected a padding (a size, 'same', 'valid' or 'causal'), {source.got()}", start)
    return source.size("a padding")


def _stack_dims(source: _Text | None, raws: list[_RawLayer], dims: int | None) -> int:
    """One number of spatial dimensions for the whole stack; a mismatch points at its layer."""
    for raw in raws:
        for name, value in raw.values.items():
            if isinstance(value, tuple):
                if dims is None:
                    dims = len(value)
                elif len(value) != dims:
                    pos = raw.positions.get(name, raw.start)
                    message = f"{name} has {len(value)} dimensions where the stack has {dims}"
                    raise source.error(message, pos) if source else SpecError(message)
    if dims is not None and not 1 <= dims <= 3:
        raise SpecError(f"{dims} spatial dimensions given; PyTorch layers have 1, 2 or 3")
    return dims or 2


def format_layer(layer) -> str:
    """The canonical spec of one Layer: ``parse_layers(format_layer(x), x.dims) == [x]``."""
    parts = [OP_PREFIX[layer.op] if layer.op != "conv" else "", _format_size(layer.kernel_size, full=True)]
    if layer.stride != layer.default_stride:
        parts.append("s" + _format_size(layer.stride))
    if any(d != 1 for d in layer.dilation):
        parts.append("d" + _format_size(layer.dilation))
    if isinstance(layer.padding, str):
        parts.append("p" + layer.padding)
    elif layer.explicit:  # F.pad pairs have no spec syntax: shown, not parseable
        parts.append("p" + "x".join(f"({left},{right})" for left, right in layer.padding))
    elif any(layer.padding):
        parts.append("p" + _format_size(layer.padding))
    if any(layer.output_padding):
        parts.append("o" + _format_size(layer.output_padding))
    if layer.ceil_mode:
        parts.append("c")
    return "".join(parts)


def format_layers(layers: list) -> str:
    """A stack as spec text, runs of equal layers written once with ``*count``."""
    groups: list[list] = []
    for layer in layers:
        if groups and groups[-1][0] == layer:
            groups[-1][1] += 1
        else:
            groups.append([layer, 1])
    return ",".join(format_layer(layer) + (f"*{count}" if count > 1 else "") for layer, count in groups)


def _format_size(values: tuple[int, ...], full: bool = False) -> str:
    """``(2, 2)`` -> ``2`` (a scalar applies to every dimension) unless ``full``; ``(1, 7)`` -> ``1x7``."""
    if not full and len(set(values)) == 1:
        return str(values[0])
    return format_size(values)


# -- full tensor shapes ------------------------------------------------------------------------------------

_SHAPE_WRAPPERS = (("torch.size(", ")"), ("[", "]"), ("(", ")"))


def parse_shape(text: str, name: str = "shape") -> tuple[int, ...]:
    """A full shape as people paste it: ``1x3x256x256``, ``[1, 3, 256, 256]`` or
    ``torch.Size([1, 3, 256, 256])``; errors point into the text as typed."""
    start, end = 0, len(text)
    for opening, closing in _SHAPE_WRAPPERS:
        inner = text[start:end]
        stripped = inner.strip()
        if stripped.lower().startswith(opening) and stripped.endswith(closing):
            start += inner.index(stripped[0]) + len(opening)
            end = start + len(stripped) - len(opening) - len(closing)
    try:
        value = parse_size(text[start:end], name)
    except SpecError as exc:
        raise SpecError(exc.reason, text, (exc.position or 0) + start if exc.text is not None else start) from None
    if not isinstance(value, tuple):
        raise SpecError(f"{name}: a shape has N, C and spatial sizes, e.g. 1x3x256x256; got one number", text, 0)
    return value
