"""One error family, as in einops: every message says which value is wrong and why."""

from __future__ import annotations

from collections.abc import Mapping


def visible(text: str) -> str:
    """``text`` with control characters written as escapes (``\\x1b``), so that user text shown in a
    terminal can neither move the cursor nor change colours."""
    return "".join(ch if ch.isprintable() or ch == " " else ascii(ch)[1:-1] for ch in text)


class ConvcalcError(ValueError):
    """Base class of every error convcalc raises on purpose (bad arguments included).

    A message about an argument names it by its Python name, written ``{name}`` in ``message`` and
    listed in ``parameters``; a front end words it its own way with :meth:`worded` (the CLI shows
    ``--unit`` where the Python API says ``unit``), so no flag name lives in the core.
    """

    def __init__(self, message: str, *, parameters: tuple[str, ...] = ()):
        self.template = message
        self.parameters = parameters
        super().__init__(self.worded({}))

    def worded(self, names: Mapping[str, str]) -> str:
        """The message with each parameter named as ``names`` says (its Python name otherwise)."""
        if not self.parameters:
            return self.template
        return self.template.format(**{p: names.get(p, p) for p in self.parameters})


class SpecError(ConvcalcError):
    """Bad text: a size or layer spec that does not parse.

    ``text`` and ``position`` (0-based index into ``text``) let a caller draw a caret under the
    offending character; ``reason`` is the message without that picture.
    """

    def __init__(self, reason: str, text: str | None = None, position: int | None = None):
        self.reason = reason
        self.text = text
        self.position = position
        super().__init__(reason if text is None else f"{reason}\n{self.pointer()}")

    def pointer(self) -> str:
        """The quoted text with a caret under the offending character."""
        if self.text is None:
            return ""
        position = len(visible(self.text[:self.position or 0]))
        text = visible(self.text)
        if len(text) > 72:
            start = max(0, min(position - 36, len(text) - 72))
            text = ("..." if start else "") + text[start:start + 72] + ("..." if start + 72 < len(text) else "")
            position += (3 if start else 0) - start
        return f"  {text}\n  {' ' * position}^"


class ShapeError(ConvcalcError):
    """A layer (or layer on an input) that PyTorch would reject."""
