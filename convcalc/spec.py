"""Sizes and the layer-spec language: text -> numbers and Layers; every error points at its character.

A size is ``256``, ``256x256`` or ``224,224`` (``10**30`` is a number too). See DESIGN.md,
"Sizes and the layer-spec language".
"""

from __future__ import annotations

import math

from .errors import SpecError

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
    if base > 1 and exponent * math.log10(base) >= MAX_DIGITS:
        raise SpecError(f"{name}: numbers are limited to {MAX_DIGITS} digits", text, pos)
    return base**exponent


def _what_instead(text: str, pos: int) -> str:
    if pos >= len(text):
        return "expected a number at the end"
    if text[pos] == "-":
        return "negative numbers are not allowed here"
    return f"expected a number, got {text[pos]!r}"
